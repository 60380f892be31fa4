// The provider modules through the real SDKs over HTTP against the fakes: every fault becomes
// the right error code, Retry-After is kept, a paid call with an unknown outcome is marked so,
// and in-call retries follow the rules (transient only, never an unknown outcome, never past the
// deadline).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { codeForTranscriptError, createAssemblyAi } from "../../functions/src/providers/assemblyai.js";
import { audioUrlHash } from "../../functions/src/providers/ports.js";
import type { SpeechToText, Summarizer } from "../../functions/src/providers/ports.js";
import { codeForHttpStatus, parseRetryAfter } from "../../functions/src/providers/http-errors.js";
import { createOpenAi } from "../../functions/src/providers/openai.js";
import { retryPolicy, withRetries } from "../../functions/src/providers/retry.js";
import { PipelineError } from "../../functions/src/visit/errors.js";
import { ASSEMBLYAI_ERROR_MESSAGES, FakeAssemblyAI } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";

let aai: FakeAssemblyAI;
let oai: FakeOpenAI;
let speech: SpeechToText;
let summarizer: Summarizer;
const AUDIO_URL = "https://storage.googleapis.com/b/users/u1/visits/v1/visit-en.m4a?X-Goog-Signature=abc";

beforeAll(async () => {
  aai = await FakeAssemblyAI.start({ queuedMs: 0, processingMs: 0 });
  oai = await FakeOpenAI.start();
  speech = createAssemblyAi({ apiKey: "test-assemblyai-key", baseUrl: aai.baseUrl, timeoutMs: 300, speechModels: ["universal-3-pro", "universal-2"] });
  summarizer = createOpenAi({ apiKey: "test-openai-key", baseUrl: oai.baseUrl, model: "gpt-4.1-mini", timeoutMs: 300 });
});

afterAll(async () => {
  await aai.close();
  await oai.close();
});

beforeEach(() => {
  aai.reset();
  oai.reset();
});

async function failure(promise: Promise<unknown>): Promise<PipelineError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineError);
    return error as PipelineError;
  }
  throw new Error("expected a failure");
}

describe("AssemblyAI submit", () => {
  it("submits with speaker labels, language detection and the speech model list", async () => {
    const { transcriptId } = await speech.submit(AUDIO_URL);
    expect(transcriptId).toMatch(/^[0-9a-f-]{36}$/);
    expect(aai.submittedBodies()[0]).toMatchObject({
      audio_url: AUDIO_URL,
      speaker_labels: true,
      language_detection: true,
      speech_models: ["universal-3-pro", "universal-2"],
    });
  });

  it.each([
    [{ kind: "rateLimit", retryAfterSeconds: 7 } as const, "provider_rate_limited", false],
    [{ kind: "status", status: 503 } as const, "provider_unavailable", false],
    [{ kind: "status", status: 500 } as const, "provider_unavailable", true],
    [{ kind: "status", status: 502 } as const, "provider_unavailable", true],
    [{ kind: "status", status: 504 } as const, "provider_timeout", true],
    [{ kind: "status", status: 400 } as const, "provider_bad_request", false],
    [{ kind: "status", status: 401 } as const, "provider_auth_failed", false],
    [{ kind: "reset" } as const, "provider_network_error", true],
    [{ kind: "hang", ms: 2_000 } as const, "provider_timeout", true],
    [{ kind: "malformed" } as const, "provider_bad_response", true],
  ])("%j → %s (outcome unknown: %s)", async (fault, code, unknown) => {
    aai.faults.enqueue("submit", fault);
    const error = await failure(speech.submit(AUDIO_URL));
    expect(error.code).toBe(code);
    expect(error.outcomeUnknown).toBe(unknown);
    if (fault.kind === "rateLimit") expect(error.retryAfterMs).toBe(7_000);
    if ("status" in fault) expect(error.httpStatus).toBe(fault.status);
  });

  it("a wrong key is provider_auth_failed, permanent", async () => {
    const wrong = createAssemblyAi({ apiKey: "nope", baseUrl: aai.baseUrl, timeoutMs: 300, speechModels: ["universal-2"] });
    const error = await failure(wrong.submit(AUDIO_URL));
    expect(error).toMatchObject({ code: "provider_auth_failed", transient: false, httpStatus: 401 });
  });

  it("finds the job a submission created although the answer was a 504", async () => {
    aai.faults.enqueue("submit", { kind: "status", status: 504, afterCommit: true });
    const since = new Date(Date.now() - 1_000);
    const error = await failure(speech.submit(AUDIO_URL));
    expect(error.outcomeUnknown).toBe(true);
    expect(aai.submitCount()).toBe(1);
    const found = await speech.findTranscriptByAudioUrl(new Set([audioUrlHash(AUDIO_URL)]), since);
    expect(found).toBe(aai.jobRecords()[0]?.id);
    expect(await speech.findTranscriptByAudioUrl(new Set([audioUrlHash(`${AUDIO_URL}x`)]), since)).toBeNull();
  });

  it("does not adopt a job that already failed", async () => {
    aai.registerAudio("visit-en", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    await speech.submit(AUDIO_URL);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await speech.findTranscriptByAudioUrl(new Set([audioUrlHash(AUDIO_URL)]), new Date(0))).toBeNull();
  });
});

describe("AssemblyAI check", () => {
  it("reads a completed transcript with diarized utterances and the detected language", async () => {
    const { transcriptId } = await speech.submit(AUDIO_URL);
    const check = await speech.check(transcriptId);
    expect(check.state).toBe("completed");
    if (check.state !== "completed") return;
    expect(check.transcript.languageCode).toBe("en");
    expect(check.transcript.utterances).toHaveLength(14);
    expect(new Set(check.transcript.utterances.map((u) => u.speaker))).toEqual(new Set(["A", "B"]));
    expect(check.transcript.audioDurationSeconds).toBeGreaterThan(0);
  });

  it("maps each job error to its code", async () => {
    for (const [name, message] of Object.entries(ASSEMBLYAI_ERROR_MESSAGES)) {
      aai.registerAudio(`job-${name}`, { kind: "error", error: message });
      const { transcriptId } = await speech.submit(`https://x.test/users/u/visits/v/job-${name}.m4a`);
      const check = await speech.check(transcriptId);
      expect(check).toEqual({ state: "error", code: codeForTranscriptError(message), providerMessage: message });
    }
  });

  it("an unknown transcript id is transcript_not_found; an id that is not an id never reaches the provider", async () => {
    expect((await failure(speech.check("00000000-0000-0000-0000-000000000000"))).code).toBe("transcript_not_found");
    const requests = aai.requests.length;
    expect((await failure(speech.check("../../v2/upload"))).code).toBe("transcript_not_found");
    expect(aai.requests.length).toBe(requests);
  });

  it("an empty transcript comes back completed with no text", async () => {
    aai.registerAudio("silence", { kind: "empty" });
    const { transcriptId } = await speech.submit("https://x.test/users/u/visits/v/silence.m4a");
    const check = await speech.check(transcriptId);
    expect(check).toMatchObject({ state: "completed", transcript: { text: "", utterances: [] } });
  });
});

describe("codeForTranscriptError", () => {
  it.each([
    [ASSEMBLYAI_ERROR_MESSAGES.downloadFailed, "audio_download_failed"],
    [ASSEMBLYAI_ERROR_MESSAGES.unsupportedFormat, "unsupported_audio_format"],
    [ASSEMBLYAI_ERROR_MESSAGES.notAudioHtml, "unsupported_audio_format"],
    [ASSEMBLYAI_ERROR_MESSAGES.noSpokenAudio, "no_speech_detected"],
    [ASSEMBLYAI_ERROR_MESSAGES.audioTooShort, "audio_too_short"],
    ["The language 'xx' is not supported by the selected speech models.", "language_not_supported"],
    ["Something unexpected", "transcription_failed"],
    ["", "transcription_failed"],
  ])("%j → %s", (message, code) => {
    expect(codeForTranscriptError(message)).toBe(code);
  });
});

describe("OpenAI summarize", () => {
  const request = { transcriptText: "[00:00] Speaker A: Good morning.\n[00:02] Speaker B: I have a cough.", languageCode: "en" };

  it("returns a summary that matches the schema", async () => {
    const result = await summarizer.summarize(request);
    expect(result.summary.language).toBe("en");
    expect(result.usage?.promptTokens).toBeGreaterThan(0);
    const body = oai.requests.at(-1)?.body as { response_format: { type: string; json_schema: { strict: boolean } } };
    expect(body.response_format).toMatchObject({ type: "json_schema", json_schema: { strict: true } });
  });

  it.each([
    [{ kind: "refusal" } as const, "summary_refused"],
    [{ kind: "length" } as const, "summary_truncated"],
    [{ kind: "contentFilter" } as const, "summary_content_filtered"],
    [{ kind: "insufficientQuota" } as const, "provider_quota_exhausted"],
    [{ kind: "rateLimit", retryAfterMs: 1_500 } as const, "provider_rate_limited"],
    [{ kind: "status", status: 500 } as const, "provider_unavailable"],
    [{ kind: "status", status: 400 } as const, "provider_bad_request"],
    [{ kind: "reset" } as const, "provider_network_error"],
    [{ kind: "hang", ms: 2_000 } as const, "provider_timeout"],
    [{ kind: "malformed" } as const, "provider_bad_response"],
  ])("%j → %s", async (fault, code) => {
    oai.faults.enqueue("chat", fault);
    const error = await failure(summarizer.summarize(request));
    expect(error.code).toBe(code);
    if (fault.kind === "rateLimit") expect(error.retryAfterMs).toBe(1_500);
    // The SDK's own retries are off: one request per call.
    expect(oai.requests).toHaveLength(1);
  });

  it("an answer that does not match the schema is summary_invalid", async () => {
    oai.respondWith(() => ({ overview: "only this" }));
    expect((await failure(summarizer.summarize(request))).code).toBe("summary_invalid");
  });
});

describe("withRetries", () => {
  const policy = (deadlineMs = Date.now() + 10_000) =>
    retryPolicy({ retries: 3, minDelayMs: 1, deadlineMs, attemptTimeoutMs: 300 });

  it("retries a rate limit after its Retry-After and then succeeds", async () => {
    oai.faults.enqueue("chat", { kind: "rateLimit", retryAfterMs: 200 });
    const started = Date.now();
    const waits: number[] = [];
    await withRetries(() => summarizer.summarize({ transcriptText: "A: hi", languageCode: "en" }), policy(), {
      onRetry: (_error, _attempt, waitMs) => waits.push(waitMs),
    });
    expect(oai.completionCount()).toBe(1);
    expect(waits).toEqual([200]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it("does not repeat a submission whose outcome is unknown", async () => {
    aai.faults.enqueue("submit", { kind: "status", status: 504, afterCommit: true });
    const error = await failure(withRetries(() => speech.submit(AUDIO_URL), policy()));
    expect(error.outcomeUnknown).toBe(true);
    expect(aai.requests.filter((r) => r.method === "POST")).toHaveLength(1);
  });

  it("repeats a submission that certainly created nothing", async () => {
    aai.faults.enqueue("submit", { kind: "status", status: 503 });
    await withRetries(() => speech.submit(AUDIO_URL), policy());
    expect(aai.requests.filter((r) => r.method === "POST")).toHaveLength(2);
    expect(aai.submitCount()).toBe(1);
  });

  it("gives up at once on a permanent error", async () => {
    oai.faults.enqueue("chat", { kind: "insufficientQuota" }, 3);
    await failure(withRetries(() => summarizer.summarize({ transcriptText: "A: hi", languageCode: "en" }), policy()));
    expect(oai.requests).toHaveLength(1);
  });

  it("does not start a retry that could not finish before the deadline", async () => {
    oai.faults.enqueue("chat", { kind: "rateLimit", retryAfterMs: 5_000 }, 3);
    const error = await failure(
      withRetries(() => summarizer.summarize({ transcriptText: "A: hi", languageCode: "en" }), policy(Date.now() + 1_000)),
    );
    expect(error.code).toBe("provider_rate_limited");
    // Given up after the first try: no second request was made.
    expect(oai.requests).toHaveLength(1);
  });
});

describe("HTTP classification", () => {
  it.each([
    [400, "provider_bad_request"],
    [401, "provider_auth_failed"],
    [403, "provider_auth_failed"],
    [404, "provider_bad_request"],
    [408, "provider_timeout"],
    [409, "provider_unavailable"],
    [422, "provider_bad_request"],
    [429, "provider_rate_limited"],
    [500, "provider_unavailable"],
    [503, "provider_unavailable"],
    [504, "provider_timeout"],
  ])("%i → %s", (status, code) => {
    expect(codeForHttpStatus(status)).toBe(code);
  });

  it("reads Retry-After as seconds, as an HTTP date, and retry-after-ms first", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter(new Headers({ "retry-after": "12" }), now)).toBe(12_000);
    expect(parseRetryAfter(new Headers({ "retry-after": "Thu, 01 Jan 2026 00:00:30 GMT" }), now)).toBe(30_000);
    expect(parseRetryAfter(new Headers({ "retry-after": "3", "retry-after-ms": "250" }), now)).toBe(250);
    expect(parseRetryAfter(new Headers({ "retry-after": "soon" }), now)).toBeUndefined();
    expect(parseRetryAfter(new Headers(), now)).toBeUndefined();
  });
});
