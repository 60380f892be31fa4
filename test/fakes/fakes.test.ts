// Behaviour of the fake providers: job lifecycle, outcomes, counts, every fault kind, seeded chaos, limits and shutdown.
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ASSEMBLYAI_ERROR_MESSAGES, ASSEMBLYAI_HTTP_ERRORS, FakeAssemblyAI } from "./assemblyai.js";
import type { FaultKind } from "./faults.js";
import { FakeOpenAI, OPENAI_ERROR_MESSAGES, estimateTokens, generateSchemaInstance, promptOf } from "./openai.js";
import { loadVisitScript, parseVisitScript } from "./scripts.js";

const ASSEMBLYAI_KEY = "test-assemblyai-key";
const OPENAI_KEY = "test-openai-key";
const START = Date.UTC(2025, 0, 15, 9, 0, 0);
const QUEUED_MS = 1_000;
const PROCESSING_MS = 4_000;
const DONE = QUEUED_MS + PROCESSING_MS;
const SPEECH_MODELS = ["universal-3-pro", "universal-2"];

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: () => Record<string, unknown>;
}

async function call(url: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

function jsonPost(body: unknown, authorization: string): RequestInit {
  return { method: "POST", headers: { authorization, "content-type": "application/json" }, body: JSON.stringify(body) };
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("visit scripts", () => {
  it("loads the fixtures as clinician and patient turns", () => {
    const english = loadVisitScript("visit-en");
    const spanish = loadVisitScript("visit-es");
    expect(english).toHaveLength(14);
    expect(english[0]).toEqual({ speaker: "clinician", text: "Good morning. What brings you in today?" });
    expect(spanish).toHaveLength(12);
    expect(spanish.at(-1)).toEqual({ speaker: "patient", text: "Muchas gracias." });
  });

  it("skips blank lines and names the line it cannot read", () => {
    expect(parseVisitScript("D|Hello.\n\nP|Hi.\n")).toEqual([
      { speaker: "clinician", text: "Hello." },
      { speaker: "patient", text: "Hi." },
    ]);
    expect(() => parseVisitScript("D|Hello.\nX|who?", "broken")).toThrow("broken:2");
    expect(() => parseVisitScript("no separator")).toThrow("script:1");
  });
});

describe("FakeAssemblyAI", () => {
  let fake: FakeAssemblyAI;
  let now = START;

  beforeAll(async () => {
    fake = await FakeAssemblyAI.start({ queuedMs: QUEUED_MS, processingMs: PROCESSING_MS, now: () => now });
  });
  beforeEach(() => {
    fake.reset();
    now = START;
  });
  afterAll(() => fake.close());

  const submit = (audioUrl: string, options: Record<string, unknown> = {}): Promise<Reply> =>
    call(`${fake.baseUrl}/v2/transcript`, jsonPost({ audio_url: audioUrl, speech_models: SPEECH_MODELS, ...options }, ASSEMBLYAI_KEY));
  const get = (id: unknown): Promise<Reply> =>
    call(`${fake.baseUrl}/v2/transcript/${String(id)}`, { headers: { authorization: ASSEMBLYAI_KEY } });
  const list = (query = ""): Promise<Reply> =>
    call(`${fake.baseUrl}/v2/transcript${query}`, { headers: { authorization: ASSEMBLYAI_KEY } });
  const statusAt = async (id: unknown, elapsedMs: number): Promise<unknown> => {
    now = START + elapsedMs;
    return (await get(id)).json()["status"];
  };

  describe("lifecycle and outcomes", () => {
    it("moves queued → processing → completed as the injected clock advances", async () => {
      const { id } = (await submit("https://storage.test/visit-en.m4a")).json();
      expect(await statusAt(id, 0)).toBe("queued");
      expect(await statusAt(id, QUEUED_MS - 1)).toBe("queued");
      expect(await statusAt(id, QUEUED_MS)).toBe("processing");
      expect(await statusAt(id, DONE - 1)).toBe("processing");
      expect(await statusAt(id, DONE)).toBe("completed");
    });

    it("times words at ~0.4 s each with 0.5 s between turns and labels speakers in order of appearance", async () => {
      const { id } = (await submit("https://storage.test/visit-en.m4a", { speaker_labels: true })).json();
      now = START + DONE;
      const transcript = (await get(id)).json();
      const words = transcript["words"] as { start: number; end: number; speaker: string }[];
      const utterances = transcript["utterances"] as { start: number; end: number; speaker: string; words: unknown[] }[];
      expect((words[1]?.start ?? 0) - (words[0]?.start ?? 0)).toBe(400);
      expect((utterances[1]?.start ?? 0) - (utterances[0]?.end ?? 0)).toBe(540);
      expect(utterances.slice(0, 3).map((u) => u.speaker)).toEqual(["A", "B", "A"]);
      expect(utterances.flatMap((u) => u.words)).toEqual(words);
      expect(transcript["audio_duration"]).toBe(Math.ceil(((words.at(-1)?.end ?? 0) + 500) / 1000));
    });

    it("leaves utterances out and words unlabelled without speaker_labels", async () => {
      const { id } = (await submit("https://storage.test/visit-en.m4a")).json();
      now = START + DONE;
      const transcript = (await get(id)).json();
      expect(transcript).toMatchObject({ utterances: null, language_code: "en_us", language_confidence: null });
      expect((transcript["words"] as { speaker: unknown }[])[0]?.speaker).toBeNull();
    });

    it("transcribes a visit-es recording (even behind an encoded signed URL) as the Spanish script", async () => {
      const url = "https://storage.test/v0/b/bucket/o/users%2Fu1%2Fvisits%2Fv1%2Fvisit-es.m4a?alt=media&token=abc";
      const { id } = (await submit(url, { language_detection: true })).json();
      now = START + DONE;
      const transcript = (await get(id)).json();
      expect(transcript).toMatchObject({ status: "completed", language_code: "es", speech_model_used: "universal-3-pro" });
      expect(transcript["text"]).toMatch(/^Buenos días\. ¿Qué le trae hoy por aquí\?/);
      expect(transcript["language_confidence"]).toBeGreaterThan(0.9);
    });

    it("falls back to the English script for any other recording", async () => {
      const { id } = (await submit("https://storage.test/recording-42.m4a", { language_detection: true })).json();
      now = START + DONE;
      expect((await get(id)).json()).toMatchObject({ language_code: "en", text: expect.stringMatching(/^Good morning\./) });
    });

    it("serves registered outcomes: the first match on the decoded pathname wins", async () => {
      fake.registerAudio("silent", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.noSpokenAudio });
      fake.registerAudio(/quiet-\d+\.m4a$/, { kind: "empty" });
      fake.registerAudio("silent-too", { kind: "empty" });
      fake.registerAudio("french", {
        kind: "transcript",
        languageCode: "fr",
        turns: [
          { speaker: "patient", text: "Bonjour docteur." },
          { speaker: "clinician", text: "Bonjour." },
        ],
        audioDurationSeconds: 93,
      });
      const silent = (await submit("https://storage.test/silent-too.m4a", { speaker_labels: true })).json();
      const quiet = (await submit("https://storage.test/quiet-7.m4a", { speaker_labels: true })).json();
      const french = (await submit("https://storage.test/french.m4a", { speaker_labels: true, language_detection: true })).json();
      now = START + DONE;
      expect((await get(silent["id"])).json()).toMatchObject({ status: "error", error: ASSEMBLYAI_ERROR_MESSAGES.noSpokenAudio });
      expect((await get(quiet["id"])).json()).toMatchObject({ status: "completed", text: "", words: [], utterances: [] });
      expect((await get(french["id"])).json()).toMatchObject({
        language_code: "fr",
        audio_duration: 93,
        speech_model_used: "universal-3-pro",
        utterances: [{ speaker: "A", text: "Bonjour docteur." }, { speaker: "B", text: "Bonjour." }],
      });
    });

    it("fails the job when detection is less confident than language_confidence_threshold", async () => {
      fake.registerAudio("unsure", { kind: "transcript", languageCode: "de", languageConfidence: 0.61, turns: [] });
      const options = { language_detection: true, language_confidence_threshold: 0.8 };
      const { id } = (await submit("https://storage.test/unsure.m4a", options)).json();
      now = START + DONE;
      expect((await get(id)).json()).toMatchObject({
        status: "error",
        error: "detected language 'de', confidence 0.61, is below the requested confidence threshold value of '0.8'",
      });
    });

    it("counts accepted submits, keeps their bodies and records every request", async () => {
      await submit("https://storage.test/a.m4a");
      await submit("https://storage.test/b.m4a", { speaker_labels: true });
      await call(`${fake.baseUrl}/v2/transcript`, jsonPost({ audio_url: "https://storage.test/c.m4a" }, ASSEMBLYAI_KEY));
      await list();
      expect(fake.submitCount()).toBe(2);
      expect(fake.submittedBodies()).toEqual([
        { audio_url: "https://storage.test/a.m4a", speech_models: SPEECH_MODELS },
        { audio_url: "https://storage.test/b.m4a", speech_models: SPEECH_MODELS, speaker_labels: true },
      ]);
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        "POST /v2/transcript",
        "POST /v2/transcript",
        "POST /v2/transcript",
        "GET /v2/transcript",
      ]);
      expect(fake.requests[0]).toMatchObject({ at: START, headers: { authorization: ASSEMBLYAI_KEY } });
    });

    it("lists newest first, honouring limit, status and the prev_url cursor", async () => {
      for (const name of ["one", "two", "three"]) {
        await submit(`https://storage.test/${name}.m4a`);
        now += PROCESSING_MS;
      }
      const page = (await list("?limit=2")).json();
      const items = page["transcripts"] as { audio_url: string; status: string }[];
      expect(items.map((item) => item.audio_url)).toEqual(["https://storage.test/three.m4a", "https://storage.test/two.m4a"]);
      const prevUrl = (page["page_details"] as { prev_url: string }).prev_url;
      const older = (await call(prevUrl, { headers: { authorization: ASSEMBLYAI_KEY } })).json();
      const olderItems = older["transcripts"] as { audio_url: string }[];
      expect(olderItems.map((item) => item.audio_url)).toEqual(["https://storage.test/one.m4a"]);
      const processing = (await list("?status=processing")).json()["transcripts"] as { audio_url: string }[];
      expect(processing.map((item) => item.audio_url)).toEqual(["https://storage.test/three.m4a"]);
      const completed = (await list("?status=completed")).json()["transcripts"] as { audio_url: string }[];
      expect(completed.map((item) => item.audio_url)).toEqual(["https://storage.test/two.m4a", "https://storage.test/one.m4a"]);
    });

    it("applies setTiming to later jobs and reset() restores the defaults", async () => {
      fake.setTiming({ queuedMs: 10, processingMs: 10 });
      const { id } = (await submit("https://storage.test/a.m4a")).json();
      expect(await statusAt(id, 20)).toBe("completed");
      fake.reset();
      now = START;
      const again = (await submit("https://storage.test/a.m4a")).json();
      expect(await statusAt(again["id"], 20)).toBe("queued");
      expect(fake.submitCount()).toBe(1);
    });
  });

  describe("request checks", () => {
    it("answers 401 to a wrong or missing key, including Bearer-prefixed keys", async () => {
      for (const authorization of ["wrong", `Bearer ${ASSEMBLYAI_KEY}`]) {
        const reply = await call(`${fake.baseUrl}/v2/transcript`, { headers: { authorization } });
        expect([reply.status, reply.json()]).toEqual([401, { error: ASSEMBLYAI_HTTP_ERRORS.unauthorized }]);
      }
      expect((await call(`${fake.baseUrl}/v2/transcript`)).status).toBe(401);
    });

    it("answers 400 without a non-empty speech_models, or with the deprecated speech_model", async () => {
      const post = (body: unknown): Promise<Reply> => call(`${fake.baseUrl}/v2/transcript`, jsonPost(body, ASSEMBLYAI_KEY));
      const missing = await post({ audio_url: "https://storage.test/a.m4a" });
      const empty = await post({ audio_url: "https://storage.test/a.m4a", speech_models: [] });
      const deprecated = await post({ audio_url: "https://storage.test/a.m4a", speech_model: "best", speech_models: SPEECH_MODELS });
      expect([missing.status, missing.json()]).toEqual([400, { error: ASSEMBLYAI_HTTP_ERRORS.speechModelsRequired }]);
      expect(empty.json()).toEqual({ error: ASSEMBLYAI_HTTP_ERRORS.speechModelsRequired });
      expect(deprecated.json()).toEqual({ error: ASSEMBLYAI_HTTP_ERRORS.speechModelDeprecated });
      expect(fake.submitCount()).toBe(0);
    });

    it("validates bodies against TranscriptParams unless told not to", async () => {
      const body = { audio_url: "https://storage.test/a.m4a", speech_models: SPEECH_MODELS, speaker_lables: true };
      const strict = await call(`${fake.baseUrl}/v2/transcript`, jsonPost(body, ASSEMBLYAI_KEY));
      expect(strict.status).toBe(400);
      expect(strict.json()["error"]).toContain("speaker_lables");
      const lenient = await FakeAssemblyAI.start({ validateRequests: false });
      try {
        expect((await call(`${lenient.baseUrl}/v2/transcript`, jsonPost(body, ASSEMBLYAI_KEY))).status).toBe(200);
      } finally {
        await lenient.close();
      }
    });

    it("answers 413 to a body over 1 MB and 404 to unknown routes and ids", async () => {
      const huge = await submit("https://storage.test/a.m4a", { prompt: "x".repeat(1_100_000) });
      expect([huge.status, huge.json()]).toEqual([413, { error: ASSEMBLYAI_HTTP_ERRORS.payloadTooLarge }]);
      const route = await call(`${fake.baseUrl}/v2/upload`, { method: "PUT", headers: { authorization: ASSEMBLYAI_KEY } });
      expect([route.status, route.json()]).toEqual([404, { error: ASSEMBLYAI_HTTP_ERRORS.routeNotFound }]);
      const id = await get("6b1a0c1e-0000-4000-8000-000000000000");
      expect([id.status, id.json()]).toEqual([404, { error: ASSEMBLYAI_HTTP_ERRORS.transcriptNotFound }]);
      expect(fake.requests).toHaveLength(3);
    });
  });

  describe("faults", () => {
    it("status: answers the error and creates no job (the provider rejected it)", async () => {
      fake.faults.enqueue("submit", { kind: "status", status: 503 });
      const reply = await submit("https://storage.test/a.m4a");
      expect([reply.status, reply.json()]).toEqual([503, { error: "Service Unavailable" }]);
      expect(fake.submitCount()).toBe(0);
      expect(fake.requests).toHaveLength(1);
      expect(fake.faults.injected).toEqual([{ route: "submit", kind: "status", at: START }]);
      expect((await submit("https://storage.test/a.m4a")).status).toBe(200);
    });

    it("status: sends a custom body and headers when given", async () => {
      fake.faults.enqueue("get", { kind: "status", status: 500, body: { error: "boom" }, headers: { "x-fault": "yes" } });
      const reply = await get("anything");
      expect([reply.status, reply.json(), reply.headers.get("x-fault")]).toEqual([500, { error: "boom" }, "yes"]);
    });

    it("rateLimit: answers 429 with Retry-After", async () => {
      fake.faults.enqueue("list", { kind: "rateLimit", retryAfterSeconds: 7 });
      const reply = await list();
      expect([reply.status, reply.json(), reply.headers.get("retry-after")]).toEqual([429, { error: "Too Many Requests" }, "7"]);
    });

    it("reset: drops the connection without an answer and creates no job", async () => {
      fake.faults.enqueue("submit", { kind: "reset" });
      await expect(submit("https://storage.test/a.m4a")).rejects.toThrow(TypeError);
      expect(fake.submitCount()).toBe(0);
    });

    it("malformed: answers 200 with a body that is not JSON", async () => {
      fake.faults.enqueue("submit", { kind: "malformed" });
      const reply = await submit("https://storage.test/a.m4a");
      expect(reply.status).toBe(200);
      expect(() => reply.json()).toThrow(SyntaxError);
      expect(fake.submitCount()).toBe(0);
    });

    it("hang: never answers (and creates no job); with ms it answers late", async () => {
      fake.faults.enqueue("submit", { kind: "hang" });
      const hanging = fetch(`${fake.baseUrl}/v2/transcript`, {
        ...jsonPost({ audio_url: "https://storage.test/a.m4a", speech_models: SPEECH_MODELS }, ASSEMBLYAI_KEY),
        signal: AbortSignal.timeout(200),
      });
      await expect(hanging).rejects.toThrow(/timeout|aborted/i);
      expect(fake.submitCount()).toBe(0);

      fake.faults.enqueue("submit", { kind: "hang", ms: 150 });
      const started = performance.now();
      const late = await submit("https://storage.test/a.m4a");
      expect(late.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(140);
      expect(fake.submitCount()).toBe(1);
    });

    it("afterCommit: the job exists and is counted, yet the client sees a 504 / a reset / silence", async () => {
      fake.faults.enqueue("submit", { kind: "status", status: 504, afterCommit: true });
      fake.faults.enqueue("submit", { kind: "reset", afterCommit: true });
      fake.faults.enqueue("submit", { kind: "hang", afterCommit: true });
      expect((await submit("https://storage.test/timeout.m4a")).status).toBe(504);
      await expect(submit("https://storage.test/reset.m4a")).rejects.toThrow(TypeError);
      await expect(
        fetch(`${fake.baseUrl}/v2/transcript`, {
          ...jsonPost({ audio_url: "https://storage.test/hang.m4a", speech_models: SPEECH_MODELS }, ASSEMBLYAI_KEY),
          signal: AbortSignal.timeout(100),
        }),
      ).rejects.toThrow();
      expect(fake.submitCount()).toBe(3);
      const listed = (await list()).json()["transcripts"] as { audio_url: string }[];
      expect(listed.map((item) => item.audio_url)).toEqual([
        "https://storage.test/hang.m4a",
        "https://storage.test/reset.m4a",
        "https://storage.test/timeout.m4a",
      ]);
    });

    it("transcriptError: the submit succeeds, the job ends in error; on 'any' it waits for a submit", async () => {
      fake.faults.enqueue("any", { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.audioTooShort });
      expect((await list()).status).toBe(200);
      const { id } = (await submit("https://storage.test/visit-en.m4a")).json();
      now = START + DONE;
      expect((await get(id)).json()).toMatchObject({ status: "error", error: ASSEMBLYAI_ERROR_MESSAGES.audioTooShort });
      expect(fake.faults.injected.map((f) => `${f.route}:${f.kind}`)).toEqual(["submit:transcriptError"]);
    });

    it("serves queued faults FIFO, `times` each, then answers normally", async () => {
      fake.faults.enqueue("get", { kind: "status", status: 500 }, 2);
      fake.faults.enqueue("any", { kind: "status", status: 503 });
      const statuses = [];
      for (let i = 0; i < 4; i += 1) statuses.push((await get("missing")).status);
      expect(statuses).toEqual([500, 500, 503, 404]);
    });

    it("ignores faults that only mean something to OpenAI", async () => {
      const openAIOnly: FaultKind[] = [{ kind: "refusal" }, { kind: "insufficientQuota" }, { kind: "length" }];
      for (const fault of openAIOnly) fake.faults.enqueue("any", fault);
      expect((await submit("https://storage.test/a.m4a")).status).toBe(200);
      expect(fake.faults.injected).toEqual([]);
    });
  });

  describe("seeded random faults", () => {
    const kinds: FaultKind[] = [{ kind: "status", status: 503 }, { kind: "rateLimit" }];
    const plan = { rate: 0.5, seed: 42, kinds };
    const run = async (): Promise<number[]> => {
      const statuses = [];
      for (let i = 0; i < 24; i += 1) statuses.push((await get("missing")).status);
      return statuses;
    };

    it("is reproducible from the seed and mixes faults with normal answers", async () => {
      fake.faults.setRandom(plan);
      const first = await run();
      const firstInjected = fake.faults.injected.map((f) => f.kind);
      fake.reset();
      fake.faults.setRandom(plan);
      expect(await run()).toEqual(first);
      expect(fake.faults.injected.map((f) => f.kind)).toEqual(firstInjected);
      expect(new Set(first)).toEqual(new Set([404, 429, 503]));
      fake.faults.setRandom({ ...plan, seed: 7 });
      expect(await run()).not.toEqual(first);
    });

    it("only touches the routes it names, and rate 0 never faults", async () => {
      fake.faults.setRandom({ ...plan, rate: 1, routes: ["submit"] });
      expect(new Set(await run())).toEqual(new Set([404]));
      fake.faults.setRandom({ ...plan, rate: 0 });
      expect((await submit("https://storage.test/a.m4a")).status).toBe(200);
      expect(fake.faults.injected).toEqual([]);
    });
  });
});

describe("FakeOpenAI", () => {
  let fake: FakeOpenAI;
  const summarySchema = {
    type: "object",
    properties: {
      language: { type: "string" },
      chiefComplaint: { type: "string" },
      plan: { type: "array", items: { type: "string" } },
    },
    required: ["language", "chiefComplaint", "plan"],
    additionalProperties: false,
  };
  const chatBody = (user: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "Summarize the visit. Language: es" },
      { role: "user", content: user },
    ],
    response_format: { type: "json_schema", json_schema: { name: "visit_summary", strict: true, schema: summarySchema } },
    ...extra,
  });
  const chat = (body: unknown, authorization = `Bearer ${OPENAI_KEY}`): Promise<Reply> =>
    call(`${fake.baseUrl}/chat/completions`, jsonPost(body, authorization));
  const messageOf = (reply: Reply): Record<string, unknown> => {
    const choices = reply.json()["choices"] as { message: Record<string, unknown>; finish_reason: string }[];
    return { ...choices[0]?.message, finish_reason: choices[0]?.finish_reason };
  };
  const transcript = "Tengo tos y fiebre.\nDesde hace tres días. ¿Es grave?";

  beforeAll(async () => {
    fake = await FakeOpenAI.start();
  });
  beforeEach(() => fake.reset());
  afterAll(() => fake.close());

  describe("completions", () => {
    it("answers json_schema requests deterministically with content drawn from the last user message", async () => {
      const first = messageOf(await chat(chatBody(transcript)));
      const second = messageOf(await chat(chatBody(transcript)));
      expect(first).toEqual(second);
      expect(JSON.parse(String(first["content"]))).toEqual({
        language: "es",
        chiefComplaint: "Tengo tos y fiebre.",
        plan: ["Desde hace tres días.", "¿Es grave?"],
      });
      expect(first).toMatchObject({ role: "assistant", refusal: null, finish_reason: "stop" });
      expect(messageOf(await chat(chatBody("Otra cosa.")))["content"]).not.toEqual(first["content"]);
      expect(fake.completionCount()).toBe(3);
    });

    it("answers plain text without a response_format, and respondWith() overrides the content", async () => {
      const plain = messageOf(await chat({ model: "gpt-4o-mini", messages: [{ role: "user", content: transcript }] }));
      expect(plain["content"]).toBe("Summary: Tengo tos y fiebre. Desde hace tres días.");
      fake.respondWith((body) => ({ echoedModel: body.model, turns: body.messages.length }));
      const contentOf = async (): Promise<unknown> => JSON.parse(String(messageOf(await chat(chatBody(transcript)))["content"]));
      expect(await contentOf()).toEqual({ echoedModel: "gpt-4o-mini", turns: 2 });
      fake.reset();
      expect(await contentOf()).toHaveProperty("chiefComplaint");
    });

    it("names the transcript's speakers in a visit summary that asks for them: the opener inferred clinician, the next patient, others unknown", async () => {
      const withSpeakers = { ...summarySchema, properties: { ...summarySchema.properties, speakers: { type: "array", items: { type: "object" } } } };
      const lines = ["[00:00] Speaker A: Good morning.", "[00:02] Speaker B: Hello, doctor.", "[00:04] Speaker A: How are you?", "[00:06] Speaker C: I am his son."].join("\n");
      const body = chatBody(lines, { response_format: { type: "json_schema", json_schema: { name: "visit_summary", strict: true, schema: withSpeakers } } });
      expect(JSON.parse(String(messageOf(await chat(body))["content"]))).toMatchObject({
        speakers: [
          { speaker: "A", role: "clinician", certainty: "inferred" },
          { speaker: "B", role: "patient", certainty: "inferred" },
          { speaker: "C", role: "unknown", certainty: null },
        ],
      });
    });

    it("answers a summary translation with the summary it carries, item for item, its texts marked with the target language", async () => {
      const summary = { language: "en", speakers: [{ speaker: "A", role: "clinician", certainty: "stated" }], overview: "Cough.", keyPoints: ["One", "Two"], actionItems: [{ description: "Rest", owner: "patient", dueDate: "2026-01-02", timing: null }], followUp: null };
      const body = {
        model: "gpt-4o-mini",
        messages: [
          { role: "system", content: "Translate into language code: de" },
          { role: "user", content: `Translate into language code: de\n\nSummary:\n${JSON.stringify(summary)}` },
        ],
        response_format: { type: "json_schema", json_schema: { name: "summary_translation", strict: true, schema: summarySchema } },
      };
      expect(JSON.parse(String(messageOf(await chat(body))["content"]))).toEqual({
        ...summary,
        language: "de",
        overview: "[de] Cough.",
        keyPoints: ["[de] One", "[de] Two"],
        actionItems: [{ description: "[de] Rest", owner: "patient", dueDate: "2026-01-02", timing: null }],
      });
    });

    it("cuts off an answer past the request's max_completion_tokens, or past a limit set for its response format instead, with finish_reason length", async () => {
      const summary = { language: "en", speakers: [], overview: "", keyPoints: Array.from({ length: 40 }, (_, i) => `Key point number ${i} of the visit.`), followUp: null };
      const translation = (extra: Record<string, unknown> = {}) => ({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: `Translate into language code: fr\n\nSummary:\n${JSON.stringify(summary)}` }],
        response_format: { type: "json_schema", json_schema: { name: "summary_translation", strict: true, schema: summarySchema } },
        ...extra,
      });
      const whole = messageOf(await chat(translation()));
      expect(whole["finish_reason"]).toBe("stop");
      // The empty overview stays empty; every key point is marked.
      expect(JSON.parse(String(whole["content"]))).toMatchObject({ language: "fr", overview: "", keyPoints: summary.keyPoints.map((point) => `[fr] ${point}`) });
      const wholeTokens = estimateTokens(String(whole["content"]));

      const cut = messageOf(await chat(translation({ max_completion_tokens: wholeTokens - 1 })));
      expect(cut["finish_reason"]).toBe("length");
      expect(String(cut["content"])).toHaveLength((wholeTokens - 1) * 4);
      expect(() => JSON.parse(String(cut["content"]))).toThrow(SyntaxError);

      // A limit for translations cuts them off, and leaves other formats alone.
      fake.setCompletionLimit(100, "summary_translation");
      expect(messageOf(await chat(translation({ max_completion_tokens: 8_000 })))["finish_reason"]).toBe("length");
      expect(messageOf(await chat(chatBody(transcript)))["finish_reason"]).toBe("stop");
      fake.setCompletionLimit(wholeTokens, "summary_translation");
      expect(messageOf(await chat(translation()))["finish_reason"]).toBe("stop");
      // A provider that ignores the request's limit.
      fake.setCompletionLimit(Number.POSITIVE_INFINITY);
      expect(messageOf(await chat(chatBody(transcript, { max_completion_tokens: 1 })))["finish_reason"]).toBe("stop");
      // A cut-off answer is billed like any other.
      expect(fake.completionCount()).toBe(6);
      expect(fake.servedUsage()[1]?.completionTokens).toBe(wholeTokens - 1);
    });

    it("answers as it would when respondWith() returns undefined for a request", async () => {
      fake.respondWith((body) => (body.model === "other-model" ? { overridden: true } : undefined));
      expect(JSON.parse(String(messageOf(await chat(chatBody(transcript)))["content"]))).toHaveProperty("chiefComplaint");
      expect(JSON.parse(String(messageOf(await chat(chatBody(transcript, { model: "other-model" })))["content"]))).toEqual({ overridden: true });
    });

    it("records requests and counts only accepted completions", async () => {
      await chat(chatBody(transcript));
      await chat({ model: "gpt-4o-mini" });
      await chat(chatBody(transcript), "Bearer wrong");
      expect(fake.completionCount()).toBe(1);
      expect(fake.requests.map((r) => r.body)).toEqual([chatBody(transcript), { model: "gpt-4o-mini" }, chatBody(transcript)]);
    });
  });

  describe("schema instances", () => {
    const schema = {
      type: "object",
      properties: {
        language: { type: "string" },
        kind: { type: "string", enum: ["visit", "call"] },
        version: { const: 2 },
        seenOn: { type: "string", format: "date" },
        pain: { type: "integer", minimum: 3, maximum: 10 },
        ratio: { type: "number", maximum: 0.5 },
        flags: { type: "array", items: { type: "boolean" }, minItems: 4 },
        single: { type: "array", items: { type: "string" }, maxItems: 1 },
        note: { type: ["string", "null"] },
        legacy: { type: "string", nullable: true },
        owner: { anyOf: [{ type: "null" }, { $ref: "#/$defs/person" }] },
        backup: { $ref: "#/definitions/person" },
        tree: { $ref: "#/$defs/node" },
      },
      required: [
        ...["language", "kind", "version", "seenOn", "pain", "ratio", "flags"],
        ...["single", "note", "legacy", "owner", "backup", "tree"],
      ],
      additionalProperties: false,
      $defs: {
        person: {
          type: "object",
          properties: { name: { type: "string", maxLength: 5 } },
          required: ["name"],
          additionalProperties: false,
        },
        node: {
          type: "object",
          properties: { child: { anyOf: [{ $ref: "#/$defs/node" }, { type: "null" }] } },
          required: ["child"],
          additionalProperties: false,
        },
      },
      definitions: { person: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } },
    };
    const facts = promptOf([
      { role: "system", content: "Output language code: pt-BR. Visit date 2025-03-04." },
      { role: "user", content: [{ type: "text", text: "Alpha line.\nBeta line. Gamma!" }] },
    ]);

    it("conform to the schema (checked by Ajv) and follow its keywords", () => {
      const instance = generateSchemaInstance(schema, facts);
      const validate = new Ajv2020({ strict: false }).compile(schema);
      expect(validate(instance), JSON.stringify(validate.errors)).toBe(true);
      expect(instance).toMatchObject({
        language: "pt-BR",
        kind: "visit",
        version: 2,
        seenOn: "2025-03-04",
        pain: 3,
        ratio: 0.5,
        single: ["Alpha line."],
        note: expect.any(String),
        legacy: expect.any(String),
        owner: { name: expect.any(String) },
        backup: { name: expect.any(String) },
      });
      expect((instance as { flags: unknown[] }).flags).toHaveLength(4);
    });

    it("take strings from the last user message in order and fall back to 'en'", () => {
      const strings = generateSchemaInstance(
        { type: "array", items: { type: "string" }, minItems: 3 },
        promptOf([{ role: "user", content: "Alpha line.\nBeta line. Gamma!" }]),
      );
      expect(strings).toEqual(["Alpha line.", "Beta line.", "Gamma!"]);
      expect(promptOf([{ role: "user", content: "The patient speaks English." }]).language).toBe("en");
    });
  });

  describe("request checks", () => {
    it("answers 401 in OpenAI's shape: invalid_api_key for a wrong key, code null for a missing one", async () => {
      const wrong = await chat(chatBody(transcript), "Bearer sk-wrong-key-1234");
      expect([wrong.status, wrong.json()]).toEqual([
        401,
        {
          error: {
            message:
              "Incorrect API key provided: sk-**********1234. You can find your API key at https://platform.openai.com/account/api-keys.",
            type: "invalid_request_error",
            param: null,
            code: "invalid_api_key",
          },
        },
      ]);
      const missing = await call(`${fake.baseUrl}/chat/completions`, { method: "POST", body: JSON.stringify(chatBody(transcript)) });
      expect(missing.json()).toEqual({
        error: { message: OPENAI_ERROR_MESSAGES.missingApiKey, type: "invalid_request_error", param: null, code: null },
      });
    });

    it("answers 400 naming the offending parameter unless validation is off", async () => {
      const body = { model: "gpt-4o-mini", messages: [{ role: "narrator", content: "hi" }], temperature: 7 };
      const strict = await chat(body);
      expect(strict.status).toBe(400);
      expect(strict.json()["error"]).toMatchObject({
        type: "invalid_request_error",
        param: expect.stringMatching(/^messages\[0\]|^temperature$/),
      });
      const lenient = await FakeOpenAI.start({ validateRequests: false });
      try {
        const reply = await call(`${lenient.baseUrl}/chat/completions`, jsonPost(body, `Bearer ${OPENAI_KEY}`));
        expect(reply.status).toBe(200);
      } finally {
        await lenient.close();
      }
    });

    it("answers 400 to invalid JSON and to streaming, 413 over 1 MB, 404 elsewhere", async () => {
      const invalid = await call(`${fake.baseUrl}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${OPENAI_KEY}` },
        body: "{",
      });
      expect([invalid.status, invalid.json()["error"]]).toEqual([
        400,
        expect.objectContaining({ message: OPENAI_ERROR_MESSAGES.invalidJson }),
      ]);
      expect((await chat(chatBody(transcript, { stream: true }))).status).toBe(400);
      expect((await chat(chatBody("x".repeat(1_100_000)))).status).toBe(413);
      const elsewhere = await call(`${fake.baseUrl}/models`, { headers: { authorization: `Bearer ${OPENAI_KEY}` } });
      expect([elsewhere.status, elsewhere.json()["error"]]).toEqual([
        404,
        expect.objectContaining({ message: "Invalid URL (GET /v1/models)" }),
      ]);
      expect(fake.completionCount()).toBe(0);
    });
  });

  describe("faults", () => {
    it("status: server errors in OpenAI's shape, or a custom body", async () => {
      fake.faults.enqueue("chat", { kind: "status", status: 500 });
      const badGateway = { error: { message: "bad gateway", type: "server_error", param: null, code: null } };
      fake.faults.enqueue("chat", { kind: "status", status: 502, body: badGateway });
      const internal = await chat(chatBody(transcript));
      expect([internal.status, internal.json()]).toEqual([
        500,
        { error: { message: OPENAI_ERROR_MESSAGES.serverError, type: "server_error", param: null, code: null } },
      ]);
      expect((await chat(chatBody(transcript))).json()).toMatchObject({ error: { message: "bad gateway" } });
      expect(fake.completionCount()).toBe(0);
    });

    it("rateLimit and insufficientQuota: 429s the SDK tells apart by code", async () => {
      fake.faults.enqueue("chat", { kind: "rateLimit", retryAfterMs: 1_500 });
      fake.faults.enqueue("chat", { kind: "insufficientQuota" });
      const limited = await chat(chatBody(transcript));
      expect([limited.status, limited.headers.get("retry-after"), limited.headers.get("retry-after-ms")]).toEqual([429, "2", "1500"]);
      expect(limited.json()["error"]).toMatchObject({ type: "requests", code: "rate_limit_exceeded" });
      const quota = await chat(chatBody(transcript));
      expect([quota.status, quota.json()["error"]]).toEqual([
        429,
        { message: OPENAI_ERROR_MESSAGES.insufficientQuota, type: "insufficient_quota", param: null, code: "insufficient_quota" },
      ]);
    });

    it("refusal, length and contentFilter shape the completion", async () => {
      fake.faults.enqueue("chat", { kind: "refusal", message: "No." });
      fake.faults.enqueue("chat", { kind: "length" });
      fake.faults.enqueue("chat", { kind: "contentFilter" });
      expect(messageOf(await chat(chatBody(transcript)))).toMatchObject({ content: null, refusal: "No.", finish_reason: "stop" });
      const cut = messageOf(await chat(chatBody(transcript)));
      expect(cut["finish_reason"]).toBe("length");
      expect(() => JSON.parse(String(cut["content"]))).toThrow(SyntaxError);
      expect(messageOf(await chat(chatBody(transcript)))).toMatchObject({
        content: null,
        refusal: null,
        finish_reason: "content_filter",
      });
      expect(fake.completionCount()).toBe(3);
    });

    it("malformed, reset and hang behave as on AssemblyAI; afterCommit still bills the completion", async () => {
      fake.faults.enqueue("chat", { kind: "malformed" });
      fake.faults.enqueue("chat", { kind: "reset" });
      fake.faults.enqueue("chat", { kind: "hang" });
      fake.faults.enqueue("chat", { kind: "status", status: 504, afterCommit: true });
      const malformed = await chat(chatBody(transcript));
      expect(() => malformed.json()).toThrow(SyntaxError);
      await expect(chat(chatBody(transcript))).rejects.toThrow(TypeError);
      await expect(
        fetch(`${fake.baseUrl}/chat/completions`, {
          ...jsonPost(chatBody(transcript), `Bearer ${OPENAI_KEY}`),
          signal: AbortSignal.timeout(100),
        }),
      ).rejects.toThrow();
      expect(fake.completionCount()).toBe(0);
      expect((await chat(chatBody(transcript))).status).toBe(504);
      expect(fake.completionCount()).toBe(1);
    });

    it("ignores transcriptError and adds latencyMs when configured", async () => {
      fake.faults.enqueue("any", { kind: "transcriptError", error: "n/a" });
      expect((await chat(chatBody(transcript))).status).toBe(200);
      expect(fake.faults.injected).toEqual([]);
      const slow = await FakeOpenAI.start({ latencyMs: 120 });
      try {
        const started = performance.now();
        const reply = await call(`${slow.baseUrl}/chat/completions`, jsonPost(chatBody(transcript), `Bearer ${OPENAI_KEY}`));
        expect(reply.status).toBe(200);
        expect(performance.now() - started).toBeGreaterThanOrEqual(110);
      } finally {
        await slow.close();
      }
    });
  });
});

describe("close()", () => {
  let assemblyai: FakeAssemblyAI | undefined;
  let openai: FakeOpenAI | undefined;
  afterEach(async () => {
    await assemblyai?.close();
    await openai?.close();
  });

  it("finishes promptly while requests hang, failing them on the client side", async () => {
    assemblyai = await FakeAssemblyAI.start();
    openai = await FakeOpenAI.start();
    assemblyai.faults.enqueue("any", { kind: "hang" });
    openai.faults.enqueue("chat", { kind: "hang" });
    // Settle into values at once: close() rejects these before the assertions below get to them.
    const outcome = (request: Promise<Response>): Promise<unknown> => request.then(() => "answered", (error: unknown) => error);
    const hangingGet = outcome(fetch(`${assemblyai.baseUrl}/v2/transcript`, { headers: { authorization: ASSEMBLYAI_KEY } }));
    const chatBody = { model: "m", messages: [{ role: "user", content: "hi" }] };
    const hangingChat = outcome(fetch(`${openai.baseUrl}/chat/completions`, jsonPost(chatBody, `Bearer ${OPENAI_KEY}`)));
    const fakes = [assemblyai, openai];
    await waitFor(() => fakes.every((f) => f.requests.length === 1));
    const started = performance.now();
    await Promise.all(fakes.map((f) => f.close()));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await hangingGet).toBeInstanceOf(TypeError);
    expect(await hangingChat).toBeInstanceOf(TypeError);
  });
});
