// The provider modules through the real SDKs over HTTP against the fakes: every fault becomes
// the right error code, Retry-After is kept, a paid call with an unknown outcome is marked so,
// and in-call retries follow the rules (transient only, never an unknown outcome, never past the
// deadline).

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { codeForTranscriptError, createAssemblyAi } from "../../functions/src/providers/assemblyai.js";
import { audioUrlHash } from "../../functions/src/providers/ports.js";
import type { SpeechToText, Summarizer } from "../../functions/src/providers/ports.js";
import { codeForHttpStatus, parseRetryAfter } from "../../functions/src/providers/http-errors.js";
import { RESPONSE_FORMATS, createOpenAi } from "../../functions/src/providers/openai.js";
import { retryPolicy, withRetries } from "../../functions/src/providers/retry.js";
import { ERROR_CODES, PipelineError } from "../../functions/src/visit/errors.js";
import type { ErrorCode } from "../../functions/src/visit/errors.js";
import { ASSEMBLYAI_ERROR_MESSAGES, FakeAssemblyAI, NO_TRANSCRIPTION_OPTIONS } from "../fakes/assemblyai.js";
import type { FaultKind } from "../fakes/faults.js";
import { FakeOpenAI } from "../fakes/openai.js";

let aai: FakeAssemblyAI;
let oai: FakeOpenAI;
let speech: SpeechToText;
let summarizer: Summarizer;
const AUDIO_URL = "https://storage.googleapis.com/b/users/u1/visits/v1/visit-en.m4a?X-Goog-Signature=abc";

beforeAll(async () => {
  aai = await FakeAssemblyAI.start({ queuedMs: 0, processingMs: 0 });
  oai = await FakeOpenAI.start();
  speech = createAssemblyAi({ apiKey: "test-assemblyai-key", baseUrl: aai.baseUrl, timeoutMs: 300, speechModels: ["universal-3-pro", "universal-2"], transcription: NO_TRANSCRIPTION_OPTIONS });
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
    const wrong = createAssemblyAi({ apiKey: "nope", baseUrl: aai.baseUrl, timeoutMs: 300, speechModels: ["universal-2"], transcription: NO_TRANSCRIPTION_OPTIONS });
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

  // A failed job carries only a message: the one place we classify by text (codeForTranscriptError).
  // At least one realistic message per family (the fake's ASSEMBLYAI_ERROR_MESSAGES are worded as
  // AssemblyAI words them; the others are variants of the same families), through the SDK and a
  // job the fake fails with that message.
  const JOB_ERRORS: [message: string, code: ErrorCode][] = [
    ["Transcoding failed. File does not appear to contain audio. File type is application/octet-stream (data).", "unsupported_audio_format"],
    [ASSEMBLYAI_ERROR_MESSAGES.unsupportedFormat, "unsupported_audio_format"],
    [ASSEMBLYAI_ERROR_MESSAGES.notAudioHtml, "unsupported_audio_format"],
    ["Download error, unable to download https://x/y?sig=abc", "audio_download_failed"],
    [ASSEMBLYAI_ERROR_MESSAGES.downloadFailed, "audio_download_failed"],
    [ASSEMBLYAI_ERROR_MESSAGES.downloadForbidden, "audio_download_failed"],
    ["Download error: 404 Client Error: Not Found for url", "audio_download_failed"],
    [ASSEMBLYAI_ERROR_MESSAGES.noSpokenAudio, "no_speech_detected"],
    ["No spoken audio found in the file.", "no_speech_detected"],
    [ASSEMBLYAI_ERROR_MESSAGES.audioTooShort, "audio_too_short"],
    ["The language 'xx' is not supported by the selected speech models.", "language_not_supported"],
    ["Language 'yo' is not available for the requested speech models.", "language_not_supported"],
    // Thresholds we never request: if they ever show up, they are a plain failed job.
    [ASSEMBLYAI_ERROR_MESSAGES.belowSpeechThreshold, "transcription_failed"],
    [ASSEMBLYAI_ERROR_MESSAGES.belowLanguageConfidence, "transcription_failed"],
    ["Internal server error, please try again later.", "transcription_failed"],
  ];

  it("the table has a row for every fake job error message", () => {
    const messages = new Set(JOB_ERRORS.map(([message]) => message));
    for (const message of Object.values(ASSEMBLYAI_ERROR_MESSAGES)) expect(messages).toContain(message);
  });

  it.each(JOB_ERRORS)("a job failed with %j → %s", async (message, code) => {
    aai.faults.enqueue("submit", { kind: "transcriptError", error: message });
    const { transcriptId } = await speech.submit(AUDIO_URL);
    expect(await speech.check(transcriptId)).toEqual({ state: "error", code, providerMessage: message });
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

describe("OpenAI response format", () => {
  it.each([
    ["summary", "visit_summary"],
    ["clinicianNote", "clinician_note"],
    ["translation", "summary_translation"],
  ] as const)("%s: the strict JSON schema zodResponseFormat generates, named %s, with an object root", (format, name) => {
    const { parseable } = RESPONSE_FORMATS[format];
    expect(parseable.type).toBe("json_schema");
    expect(parseable.json_schema.name).toBe(name);
    expect(parseable.json_schema.strict).toBe(true);
    expect(parseable.json_schema.schema?.["type"]).toBe("object");
    expect(parseable.json_schema.schema?.["additionalProperties"]).toBe(false);
  });

  it("parses content with VisitSummarySchema: a mismatch is summary_invalid naming where, not what", () => {
    let thrown: unknown;
    try {
      RESPONSE_FORMATS.summary.parseable.$parseRaw(JSON.stringify({ overview: "Patient reports chest pain" }));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PipelineError);
    expect(thrown).toMatchObject({ code: "summary_invalid", detail: "schema mismatch at language: invalid_type" });
    expect(String((thrown as PipelineError).message)).not.toContain("chest pain");
  });
});

describe("OpenAI summarize", () => {
  const request = { transcriptText: "[00:00] Speaker A: Good morning.\n[00:02] Speaker B: I have a cough.", languageCode: "en" };

  /** A 200 with exactly this body (a status fault answers with its own body). */
  const answer200 = (body: unknown) => oai.faults.enqueue("chat", { kind: "status", status: 200, body });
  const completion = (content: string | null, extra: Record<string, unknown> = {}) => ({
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 1_767_225_600,
    model: "gpt-4.1-mini-2025-04-14",
    choices: [{ index: 0, message: { role: "assistant", content, refusal: null, annotations: [] }, finish_reason: "stop", logprobs: null }],
    usage: { prompt_tokens: 120, completion_tokens: 40, total_tokens: 160 },
    ...extra,
  });

  it("returns a summary that matches the schema, with the completion's model and usage", async () => {
    const result = await summarizer.summarize(request);
    expect(result.summary.language).toBe("en");
    expect(result.model).toBe("gpt-4.1-mini");
    expect(result.usage?.promptTokens).toBeGreaterThan(0);
    expect(result.usage?.completionTokens).toBeGreaterThan(0);
    const body = oai.requests.at(-1)?.body as Record<string, unknown>;
    expect(body).toMatchObject({
      model: "gpt-4.1-mini",
      store: false,
      max_completion_tokens: 8_000,
      response_format: { type: "json_schema", json_schema: { name: "visit_summary", strict: true, schema: { type: "object" } } },
    });
  });

  it("takes the model name the completion reports, and no usage when there is none", async () => {
    const summary = await summarizer.summarize(request);
    oai.reset();
    answer200(completion(JSON.stringify(summary.summary), { usage: undefined }));
    const result = await summarizer.summarize(request);
    expect(result).toEqual({ summary: summary.summary, model: "gpt-4.1-mini-2025-04-14", usage: null });
  });

  // One test per error family, through the real SDK against the fake.
  it.each<[FaultKind, ErrorCode]>([
    [{ kind: "refusal" }, "summary_refused"],
    [{ kind: "length" }, "summary_truncated"],
    [{ kind: "contentFilter" }, "summary_content_filtered"],
    [{ kind: "malformed" }, "provider_bad_response"],
    [{ kind: "insufficientQuota" }, "provider_quota_exhausted"],
    [{ kind: "rateLimit", retryAfterMs: 1_500 }, "provider_rate_limited"],
    [{ kind: "status", status: 500 }, "provider_unavailable"],
    [{ kind: "status", status: 503 }, "provider_unavailable"],
    [{ kind: "status", status: 400 }, "provider_bad_request"],
    [{ kind: "status", status: 401 }, "provider_auth_failed"],
    [{ kind: "reset" }, "provider_network_error"],
    [{ kind: "hang", ms: 2_000 }, "provider_timeout"],
  ])("%j → %s", async (fault, code) => {
    oai.faults.enqueue("chat", fault);
    const error = await failure(summarizer.summarize(request));
    expect(error.code).toBe(code);
    expect(error.transient).toBe(ERROR_CODES[code].transient);
    if ("status" in fault) expect(error.httpStatus).toBe(fault.status);
    // The SDK's own retries are off: one request per call.
    expect(oai.requests).toHaveLength(1);
  });

  it("a rate limit keeps retry-after-ms; retry-after (seconds) alone is read too", async () => {
    oai.faults.enqueue("chat", { kind: "rateLimit", retryAfterMs: 1_500 });
    expect(await failure(summarizer.summarize(request))).toMatchObject({
      code: "provider_rate_limited",
      transient: true,
      httpStatus: 429,
      retryAfterMs: 1_500,
    });
    oai.faults.enqueue("chat", { kind: "status", status: 429, headers: { "retry-after": "3" } });
    expect(await failure(summarizer.summarize(request))).toMatchObject({ code: "provider_rate_limited", retryAfterMs: 3_000 });
  });

  it("429 insufficient_quota is permanent, not a rate limit", async () => {
    oai.faults.enqueue("chat", { kind: "insufficientQuota" });
    expect(await failure(summarizer.summarize(request))).toMatchObject({
      code: "provider_quota_exhausted",
      transient: false,
      httpStatus: 429,
    });
  });

  it("a wrong key is provider_auth_failed (401), permanent", async () => {
    const wrong = createOpenAi({ apiKey: "sk-wrong-key-1234", baseUrl: oai.baseUrl, model: "gpt-4.1-mini", timeoutMs: 300 });
    expect(await failure(wrong.summarize(request))).toMatchObject({ code: "provider_auth_failed", transient: false, httpStatus: 401 });
  });

  it("our time budget (the signal) ends a hanging call as provider_timeout", async () => {
    const patient = createOpenAi({ apiKey: "test-openai-key", baseUrl: oai.baseUrl, model: "gpt-4.1-mini", timeoutMs: 5_000 });
    oai.faults.enqueue("chat", { kind: "hang", ms: 2_000 });
    const started = Date.now();
    expect((await failure(patient.summarize(request, AbortSignal.timeout(100)))).code).toBe("provider_timeout");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("content that is not JSON is summary_invalid, and the detail does not quote it", async () => {
    answer200(completion("Here is the summary: the patient has a cough."));
    const error = await failure(summarizer.summarize(request));
    expect(error).toMatchObject({ code: "summary_invalid", detail: "message content is not JSON", transient: true });
    expect(error.message).not.toContain("cough");
  });

  it("JSON that does not match the schema is summary_invalid, naming where it deviated", async () => {
    oai.respondWith(() => ({ overview: "The patient has a cough." }));
    const error = await failure(summarizer.summarize(request));
    expect(error).toMatchObject({ code: "summary_invalid", detail: "schema mismatch at language: invalid_type" });
    expect(error.message).not.toContain("cough");

    oai.respondWith(null);
    const good = (await summarizer.summarize(request)).summary;
    oai.respondWith(() => ({ ...good, diagnoses: [{ name: "Cough", certainty: "likely" }] }));
    expect(await failure(summarizer.summarize(request))).toMatchObject({
      code: "summary_invalid",
      detail: "schema mismatch at diagnoses.0.certainty: invalid_value",
    });
  });

  it("empty content without a refusal is summary_invalid", async () => {
    answer200(completion(""));
    expect(await failure(summarizer.summarize(request))).toMatchObject({ code: "summary_invalid", detail: "empty message content" });
  });

  it.each([
    ["no choices", { id: "chatcmpl-test", object: "chat.completion" }],
    ["an empty choices list", { id: "chatcmpl-test", object: "chat.completion", choices: [] }],
    ["a choice without a message", { id: "chatcmpl-test", choices: [{ index: 0, finish_reason: "stop" }] }],
    ["choices that are not a list", { id: "chatcmpl-test", choices: "none" }],
    ["a body that is not an object", ["not", "a", "completion"]],
  ])("a 200 with %s is provider_bad_response", async (_label, body) => {
    answer200(body);
    expect(await failure(summarizer.summarize(request))).toMatchObject({ code: "provider_bad_response", transient: true });
  });

  /** A server that answers 200 headers and the start of a body, then `then` the socket. */
  async function halfAnswer(then: "cut" | "stall", run: (summarizer: Summarizer) => Promise<void>): Promise<void> {
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "4096" });
      res.write('{"id":"chatcmpl-test","choices":[');
      if (then === "cut") setTimeout(() => req.socket.destroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await run(createOpenAi({ apiKey: "k", baseUrl: `http://127.0.0.1:${port}/v1`, model: "gpt-4.1-mini", timeoutMs: 300 }));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it("a connection cut while the body is read is provider_network_error, not a bad response", async () => {
    await halfAnswer("cut", async (cut) => {
      expect((await failure(cut.summarize(request))).code).toBe("provider_network_error");
    });
  });

  it("a body that stalls after the headers is provider_timeout within the timeout", async () => {
    await halfAnswer("stall", async (stalled) => {
      const started = Date.now();
      expect((await failure(stalled.summarize(request))).code).toBe("provider_timeout");
      expect(Date.now() - started).toBeLessThan(1_500);
    });
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
