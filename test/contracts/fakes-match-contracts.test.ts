// Proves the fakes speak the providers' published APIs: real SDKs drive them, raw JSON validates against the OpenAPI specs.
import { readFileSync } from "node:fs";
import { AssemblyAI } from "assemblyai";
import OpenAI, { AuthenticationError, RateLimitError } from "openai";
import { LengthFinishReasonError } from "openai/core/error";
import { zodResponseFormat } from "openai/helpers/zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ASSEMBLYAI_ERROR_MESSAGES, ASSEMBLYAI_HTTP_ERRORS, FakeAssemblyAI } from "../fakes/assemblyai.js";
import {
  CONTRACT_FILES,
  OPENAI_SCHEMA_ROOTS,
  assemblyAIContract,
  contractLoadTimings,
  extractSchemas,
  openAIContract,
  readSpecFile,
} from "../fakes/contracts.js";
import type { Contract } from "../fakes/contracts.js";
import { FakeOpenAI } from "../fakes/openai.js";
import { loadVisitScript } from "../fakes/scripts.js";

const ASSEMBLYAI_KEY = "contract-assemblyai-key";
const OPENAI_KEY = "contract-openai-key";
const START = Date.UTC(2025, 0, 15, 9, 0, 0);
const QUEUED_MS = 1_000;
const PROCESSING_MS = 2_000;

const VisitSummary = z.object({
  language: z.string(),
  chiefComplaint: z.string(),
  visitType: z.enum(["in_person", "telehealth"]),
  painScore: z.number().int().min(0).max(10),
  medications: z.array(z.object({ name: z.string(), dose: z.string().nullable() })),
  followUpDate: z.iso.date().nullable(),
  needsLabWork: z.boolean(),
});

function expectConforms(contract: Contract, schemaName: string, data: unknown): void {
  expect(contract.violations(schemaName, data), `${contract.name} ${schemaName}`).toEqual([]);
}

async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}

describe("contracts", () => {
  it("the OpenAI extract is up to date with the published YAML", () => {
    const extract: unknown = JSON.parse(readFileSync(CONTRACT_FILES.openAIExtract, "utf8"));
    expect(extract).toEqual(extractSchemas(readSpecFile(CONTRACT_FILES.openAIYaml), OPENAI_SCHEMA_ROOTS));
  });

  it("reads AssemblyAI's allOf-composed TranscriptParams as one closed object", () => {
    const aai = assemblyAIContract();
    expectConforms(aai, "TranscriptParams", { audio_url: "https://x.test/a.m4a", speech_models: ["universal-2"] });
    expect(aai.violations("TranscriptParams", { audio_url: "https://x.test/a.m4a", speech_models: [], bogus: 1 })).toEqual([
      expect.objectContaining({ keyword: "additionalProperties", message: expect.stringContaining("bogus") }),
    ]);
    expect(aai.violations("TranscriptParams", { audio_url: "https://x.test/a.m4a" })).toEqual([
      expect.objectContaining({ path: "/speech_models", keyword: "required" }),
    ]);
  });

  it("reads OpenAI's OpenAPI-3.0 `nullable` as 'or null'", () => {
    expectConforms(openAIContract(), "CreateChatCompletionRequest", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
      max_completion_tokens: null,
      prediction: null,
    });
  });

  // How long the parse takes is a figure for a benchmark, not an assertion; that it happens once is checked here.
  it("parses what the fakes load once per process, however often they ask", () => {
    for (let i = 0; i < 3; i++) {
      assemblyAIContract();
      openAIContract();
    }
    const fakeSpecs = ["parse assemblyai-openapi.yml", "parse openai-schemas.json"];
    const parses = contractLoadTimings().filter((timing) => fakeSpecs.includes(timing.step));
    expect(parses.map((timing) => timing.step).sort()).toEqual(fakeSpecs);
  });
});

describe("FakeAssemblyAI speaks AssemblyAI's v2 transcript API", () => {
  let fake: FakeAssemblyAI;
  let now = START;
  let client: AssemblyAI;
  const aai = (): Contract => assemblyAIContract();
  const submitParams = {
    speech_models: ["universal-3-pro", "universal-2"],
    speaker_labels: true,
    language_detection: true,
  };

  beforeAll(async () => {
    fake = await FakeAssemblyAI.start({ apiKey: ASSEMBLYAI_KEY, queuedMs: QUEUED_MS, processingMs: PROCESSING_MS, now: () => now });
    client = new AssemblyAI({ apiKey: ASSEMBLYAI_KEY, baseUrl: fake.baseUrl });
  });
  afterAll(() => fake.close());

  it("walks a job from queued through processing to a completed, diarized transcript", async () => {
    now = START;
    const queued = await client.transcripts.submit({ audio_url: "https://storage.test/visits/visit-en.m4a", ...submitParams });
    expect(queued.status).toBe("queued");
    expectConforms(aai(), "Transcript", queued);
    expectConforms(aai(), "TranscriptParams", fake.submittedBodies()[0]);

    now = START + QUEUED_MS;
    const processing = await client.transcripts.get(queued.id);
    expect(processing.status).toBe("processing");
    expectConforms(aai(), "Transcript", processing);

    now = START + QUEUED_MS + PROCESSING_MS;
    const completed = await client.transcripts.get(queued.id);
    expectConforms(aai(), "Transcript", completed);
    const script = loadVisitScript("visit-en");
    expect(completed).toMatchObject({
      status: "completed",
      language_code: "en",
      speaker_labels: true,
      language_detection: true,
      speech_models: submitParams.speech_models,
      speech_model_used: "universal-3-pro",
      text: script.map((turn) => turn.text).join(" "),
    });
    expect(completed.utterances?.map((u) => u.speaker)).toEqual(script.map((turn) => (turn.speaker === "clinician" ? "A" : "B")));
    expect(completed.audio_duration).toBeGreaterThan(0);
    expect(Number.isInteger(completed.audio_duration)).toBe(true);

    const raw = await fetchJson(`${fake.baseUrl}/v2/transcript/${queued.id}`, { headers: { authorization: ASSEMBLYAI_KEY } });
    expect(raw.status).toBe(200);
    expectConforms(aai(), "Transcript", raw.body);
  });

  it("ends a failed job in status error with AssemblyAI's message", async () => {
    now = START;
    fake.registerAudio("unreachable", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    const queued = await client.transcripts.submit({ audio_url: "https://storage.test/unreachable.m4a", ...submitParams });
    now = START + QUEUED_MS + PROCESSING_MS;
    const failed = await client.transcripts.get(queued.id);
    expect(failed).toMatchObject({ status: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    expectConforms(aai(), "Transcript", failed);
  });

  it("lists transcripts newest first", async () => {
    const listed = await client.transcripts.list({ limit: 2 });
    expect(listed.transcripts).toHaveLength(2);
    const raw = await fetchJson(`${fake.baseUrl}/v2/transcript?limit=2`, { headers: { authorization: ASSEMBLYAI_KEY } });
    expectConforms(aai(), "TranscriptList", raw.body);
    expect(raw.body).toMatchObject({
      page_details: { limit: 2, result_count: 2, next_url: null },
      transcripts: [{ audio_url: "https://storage.test/unreachable.m4a" }, { audio_url: "https://storage.test/visits/visit-en.m4a" }],
    });
  });

  it("deletes a transcript the way the real API redacts it", async () => {
    const [newest] = (await client.transcripts.list({ limit: 1 })).transcripts;
    const deleted = await client.transcripts.delete(newest?.id ?? "missing");
    expectConforms(aai(), "Transcript", deleted);
    expect(deleted).toMatchObject({ text: "Deleted by user.", audio_url: "http://deleted_by_user" });
  });

  it("answers 401 and 404 with the contract's Error body, which the SDK surfaces", async () => {
    const unauthorized = await fetchJson(`${fake.baseUrl}/v2/transcript`, { headers: { authorization: "wrong" } });
    expect(unauthorized).toEqual({ status: 401, body: { error: ASSEMBLYAI_HTTP_ERRORS.unauthorized } });
    expectConforms(aai(), "Error", unauthorized.body);

    const missing = await fetchJson(`${fake.baseUrl}/v2/transcript/00000000-0000-4000-8000-000000000000`, {
      headers: { authorization: ASSEMBLYAI_KEY },
    });
    expect(missing).toEqual({ status: 404, body: { error: ASSEMBLYAI_HTTP_ERRORS.transcriptNotFound } });
    expectConforms(aai(), "Error", missing.body);

    const wrongKeyClient = new AssemblyAI({ apiKey: "wrong", baseUrl: fake.baseUrl });
    await expect(wrongKeyClient.transcripts.get("any")).rejects.toThrow(ASSEMBLYAI_HTTP_ERRORS.unauthorized);
  });

  it("echoes the request options the Transcript schema has, at every stage", async () => {
    now = START;
    const options = {
      audio_url: "https://storage.test/visits/visit-es.m4a",
      speech_models: ["universal-3-pro", "universal-2"],
      language_code: "es",
      speakers_expected: 2,
      keyterms_prompt: ["amoxicilina", "paracetamol"],
      punctuate: true,
      format_text: true,
      disfluencies: false,
      filter_profanity: false,
      webhook_url: "https://hooks.test/assemblyai",
      webhook_auth_header_name: "x-webhook-secret",
      webhook_auth_header_value: "s3cret",
      audio_start_from: 0,
      speech_threshold: 0.2,
    };
    const queued = await client.transcripts.submit(options);
    expectConforms(aai(), "Transcript", queued);
    now = START + QUEUED_MS + PROCESSING_MS;
    const completed = await client.transcripts.get(queued.id);
    expectConforms(aai(), "Transcript", completed);
    const { webhook_auth_header_value: secret, ...echoed } = options;
    expect(completed).toMatchObject({ ...echoed, webhook_auth: true, utterances: null });
    expect(JSON.stringify(completed)).not.toContain(secret);
  });

  it("keeps to the contract for empty transcripts and every error it answers", async () => {
    now = START;
    fake.registerAudio("quiet", { kind: "empty" });
    const quiet = await client.transcripts.submit({ audio_url: "https://storage.test/quiet.m4a", ...submitParams });
    now = START + QUEUED_MS + PROCESSING_MS;
    expectConforms(aai(), "Transcript", await client.transcripts.get(quiet.id));

    const post = (body: unknown): Promise<{ status: number; body: unknown }> =>
      fetchJson(`${fake.baseUrl}/v2/transcript`, {
        method: "POST",
        headers: { authorization: ASSEMBLYAI_KEY, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const valid = { audio_url: "https://storage.test/a.m4a", ...submitParams };
    fake.faults.enqueue("submit", { kind: "rateLimit" });
    fake.faults.enqueue("submit", { kind: "status", status: 503 });
    const answers = [
      await post(valid),
      await post(valid),
      await post({ audio_url: valid.audio_url }),
      await post({ ...valid, prompt: "x".repeat(1_100_000) }),
    ];
    expect(answers.map((answer) => answer.status)).toEqual([429, 503, 400, 413]);
    for (const answer of answers) expectConforms(aai(), "Error", answer.body);
  });
});

describe("FakeOpenAI speaks OpenAI's Chat Completions API", () => {
  let fake: FakeOpenAI;
  let client: OpenAI;
  const oai = (): Contract => openAIContract();
  const transcript = loadVisitScript("visit-en")
    .map((turn) => `${turn.speaker}: ${turn.text}`)
    .join("\n");
  const request = {
    model: "gpt-4o-mini",
    messages: [
      { role: "system" as const, content: "Summarize the visit. Output language code: es. Follow up on 2025-02-12." },
      { role: "user" as const, content: transcript },
    ],
    response_format: zodResponseFormat(VisitSummary, "visit_summary"),
  };

  beforeAll(async () => {
    fake = await FakeOpenAI.start({ apiKey: OPENAI_KEY });
    client = new OpenAI({ apiKey: OPENAI_KEY, baseURL: fake.baseUrl, maxRetries: 0 });
  });
  afterAll(() => fake.close());

  async function rawCompletion(): Promise<{ status: number; body: unknown }> {
    return fetchJson(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${OPENAI_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(request),
    });
  }

  it("returns structured output that conforms to the requested zod schema, derived from the transcript", async () => {
    const completion = await client.chat.completions.parse(request);
    const parsed = completion.choices[0]?.message.parsed;
    expect(VisitSummary.parse(parsed)).toEqual(parsed);
    expect(parsed).toMatchObject({ language: "es", followUpDate: "2025-02-12", visitType: "in_person" });
    expect(transcript).toContain(parsed?.chiefComplaint);
    expect(completion.model).toBe("gpt-4o-mini");

    expectConforms(oai(), "CreateChatCompletionRequest", fake.requests.at(-1)?.body);
    const raw = await rawCompletion();
    expect(raw.status).toBe(200);
    expectConforms(oai(), "CreateChatCompletionResponse", raw.body);
  });

  it("returns a refusal the SDK exposes as message.refusal", async () => {
    fake.faults.enqueue("chat", { kind: "refusal" }, 2);
    const completion = await client.chat.completions.parse(request);
    expect(completion.choices[0]?.message).toMatchObject({ content: null, parsed: null, refusal: expect.any(String) });
    const raw = await rawCompletion();
    expectConforms(oai(), "CreateChatCompletionResponse", raw.body);
  });

  it("returns a truncated completion the SDK rejects with LengthFinishReasonError", async () => {
    fake.faults.enqueue("chat", { kind: "length" }, 2);
    await expect(client.chat.completions.parse(request)).rejects.toBeInstanceOf(LengthFinishReasonError);
    const raw = await rawCompletion();
    expectConforms(oai(), "CreateChatCompletionResponse", raw.body);
    expect(raw.body).toMatchObject({ choices: [{ finish_reason: "length" }] });
  });

  it("answers errors in OpenAI's error shape, which the SDK maps to its error classes", async () => {
    const wrongKey = new OpenAI({ apiKey: "sk-wrong-key-123456", baseURL: fake.baseUrl, maxRetries: 0 });
    await expect(wrongKey.chat.completions.create(request)).rejects.toBeInstanceOf(AuthenticationError);
    fake.faults.enqueue("chat", { kind: "rateLimit", retryAfterSeconds: 2 });
    await expect(client.chat.completions.create(request)).rejects.toMatchObject({
      constructor: RateLimitError,
      code: "rate_limit_exceeded",
      type: "requests",
    });

    const unauthorized = await fetchJson(`${fake.baseUrl}/chat/completions`, { method: "POST", body: "{}" });
    const invalid = await fetchJson(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${OPENAI_KEY}` },
      body: JSON.stringify({ model: "gpt-4o-mini" }),
    });
    const unknownRoute = await fetchJson(`${fake.baseUrl}/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${OPENAI_KEY}` },
      body: "{}",
    });
    fake.faults.enqueue("chat", { kind: "insufficientQuota" });
    const quota = await rawCompletion();
    expect([unauthorized.status, invalid.status, unknownRoute.status, quota.status]).toEqual([401, 400, 404, 429]);
    for (const { body } of [unauthorized, invalid, unknownRoute, quota]) expectConforms(oai(), "ErrorResponse", body);
    expect(invalid.body).toMatchObject({ error: { param: "messages", code: "missing_required_parameter" } });
  });

  it("keeps to the contract for filtered completions and server-side errors", async () => {
    fake.faults.enqueue("chat", { kind: "contentFilter" });
    fake.faults.enqueue("chat", { kind: "status", status: 503 });
    const filtered = await rawCompletion();
    expectConforms(oai(), "CreateChatCompletionResponse", filtered.body);
    expect(filtered.body).toMatchObject({ choices: [{ finish_reason: "content_filter", message: { content: null } }] });
    const overloaded = await rawCompletion();
    expect(overloaded.status).toBe(503);
    expectConforms(oai(), "ErrorResponse", overloaded.body);
  });
});
