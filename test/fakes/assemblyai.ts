// Fake AssemblyAI v2 transcript API (submit, get, list, delete) on loopback; job status derives lazily from a clock.
// Webhooks: a job submitted with `webhook_url` is announced by POST `{ transcript_id, status }` with
// its auth header once it has ended, as the real service does — when the test calls
// deliverWebhooks() (no timers run: the test moves its clock, then lets the deliveries out), with
// switches for duplicated, late (so out of order) and unauthenticated deliveries.
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { assemblyAIContract, formatViolations, isRecord } from "./contracts.js";
import type { Contract, JsonObject } from "./contracts.js";
import { FaultInjector, isTransportFault } from "./faults.js";
import type { ErrorAnswerFault, FaultKind, RequestRoute } from "./faults.js";
import { answerThroughFault, readJsonBody, recordRequest, sendJson, startLoopbackServer } from "./http.js";
import type { JsonAnswer, LoopbackServer, RecordedRequest } from "./http.js";
import { loadVisitScript } from "./scripts.js";

/**
 * Examples of the `error` a failed transcript job carries, worded as AssemblyAI words them
 * (from its docs, cookbook and error reports). URLs, file types and numbers vary in real messages.
 */
export const ASSEMBLYAI_ERROR_MESSAGES = {
  downloadFailed:
    "Download error, unable to download https://storage.example.com/visit.m4a. Please make sure the file exists and is accessible from the internet.",
  downloadForbidden: "Download error: Forbidden URL",
  notAudioHtml:
    "File does not appear to contain audio. File type is text/html (HTML document, ASCII text, with very long lines (56754)).",
  unsupportedFormat:
    "Transcoding failed. File does not appear to contain audio. File type is text/plain (ASCII text, with no line terminators).",
  noSpokenAudio: "language_detection cannot be performed on files with no spoken audio.",
  audioTooShort: "Audio duration is too short.",
  belowSpeechThreshold: "Audio speech threshold 0.0461 is below the requested speech threshold value 0.5",
  belowLanguageConfidence:
    "detected language 'en', confidence 0.6602, is below the requested confidence threshold value of '0.8'",
} as const;

/** Bodies of the fake's HTTP errors. `speechModelsRequired` is our wording: the real 400 text is not documented. */
export const ASSEMBLYAI_HTTP_ERRORS = {
  unauthorized: "Authentication error, API token missing/invalid",
  transcriptNotFound: "Transcript not found",
  routeNotFound: "Not found",
  speechModelsRequired:
    '"speech_models" is required and must list at least one model. See documentation: https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model',
  speechModelDeprecated:
    'speech_model is deprecated. Use "speech_models" instead. See documentation: https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model',
  audioUrlRequired: "audio_url is required",
  invalidJson: "Request body must be valid JSON",
  payloadTooLarge: "Payload Too Large",
  tooManyRequests: "Too Many Requests",
} as const;

export interface FakeAssemblyAIOptions {
  /** Expected Authorization value (no "Bearer"); default "test-assemblyai-key". */
  apiKey?: string;
  /** How long a job stays "queued" (default 30 ms). */
  queuedMs?: number;
  /** How long it then stays "processing" (default 60 ms). */
  processingMs?: number;
  /** Validate POST bodies against the contract's TranscriptParams (default true). */
  validateRequests?: boolean;
  /** Clock; default Date.now. Status is derived from it when a transcript is read, so no timers run. */
  now?: () => number;
  /** How long the fake takes to answer, per route (real time; default 0). */
  latencyMs?: Partial<Record<RequestRoute, number>>;
  /** Answer 429 (with Retry-After) past this many requests per fixed window, as AssemblyAI limits accounts. */
  rateLimit?: { requests: number; windowMs: number };
}

export type TranscriptOutcome =
  | {
      kind: "transcript";
      languageCode: string;
      languageConfidence?: number;
      turns: { speaker: string; text: string }[];
      audioDurationSeconds?: number;
    }
  | { kind: "empty" }
  | { kind: "error"; error: string };

export interface JobRecord {
  id: string;
  audioUrl: string;
  createdAt: number;
  /** When the job reaches its final status (completed, or error). */
  finishesAt: number;
  outcome: TranscriptOutcome["kind"];
}

interface AudioRegistration {
  match: string | RegExp;
  outcome: TranscriptOutcome;
}

interface TranscriptJob {
  readonly id: string;
  readonly createdAt: number;
  readonly audioUrl: string;
  readonly params: JsonObject;
  readonly outcome: TranscriptOutcome;
  readonly queuedMs: number;
  readonly processingMs: number;
  deleted: boolean;
  webhook: JobWebhook | null;
}

interface JobWebhook {
  url: string;
  headerName: string | null;
  headerValue: string | null;
  /** Answered (2xx or 4xx: the real service never retries a 4xx) or given up. */
  done: boolean;
  attempts: number;
  /** The last answer's HTTP status, as the transcript's `webhook_status_code` reports it. */
  statusCode: number | null;
  /** deliverWebhooks() calls to skip before this one goes out (a late delivery). */
  holdCalls: number;
  /** A delivery is on its way and not answered yet: a concurrent deliverWebhooks() call leaves it be. */
  sending: boolean;
}

/** How deliverWebhooks() misbehaves, as a busy real service (or someone else) could. */
export interface WebhookBehaviour {
  /** Chance that a delivery goes out twice at once. */
  duplicateRate?: number;
  /** Chance that a delivery is held back for 1–2 calls, arriving after newer ones (out of order). */
  lateRate?: number;
  /** Chance that an extra delivery without the auth header (a caller who is not AssemblyAI) goes out too. */
  unauthenticatedRate?: number;
  /** Chance that an extra delivery with a wrong secret goes out too. */
  wrongSecretRate?: number;
  /** Chance that a delivery goes out again one call later (a redelivery after the answer was lost). */
  redeliveryRate?: number;
  /** Random source in [0, 1); default Math.random. */
  random?: () => number;
  /**
   * Deliveries in flight at once (default 16). The real service sends them all at once, to a
   * function that scales out; here one test process plays every instance, so a burst of hundreds
   * would measure this machine's event loop rather than the route.
   */
  concurrency?: number;
}

/** One delivery the fake made: for which job, how authenticated, and how it was answered. */
export interface WebhookDeliveryRecord {
  transcriptId: string;
  status: "completed" | "error";
  auth: "secret" | "missing" | "wrong";
  /** The HTTP status of the answer; 0 when none came (network error or 10 s timeout). */
  answer: number;
  durationMs: number;
}

type TranscriptStatus = "queued" | "processing" | "completed" | "error";

interface TimedWord {
  text: string;
  start: number;
  end: number;
  confidence: number;
  speaker: string | null;
}

const DEFAULT_API_KEY = "test-assemblyai-key";
/** AssemblyAI waits this long for a webhook answer. */
const WEBHOOK_TIMEOUT_MS = 10_000;
/** Deliveries answered 5xx (or not at all) are tried again, up to this many times in all. */
const WEBHOOK_MAX_ATTEMPTS = 10;
const WEBHOOK_CONCURRENCY = 16;
const DEFAULT_QUEUED_MS = 30;
const DEFAULT_PROCESSING_MS = 60;
const DEFAULT_LANGUAGE_CONFIDENCE = 0.97;
const EMPTY_AUDIO_DURATION_SECONDS = 12;
const FIRST_WORD_START_MS = 240;
const WORD_MS = 400;
const WORD_SOUNDING_MS = 360;
const TURN_GAP_MS = 500;
const LIST_DEFAULT_LIMIT = 10;
/** What the real API puts in place of the audio URL once a transcript is deleted. */
const DELETED_AUDIO_URL = "http://deleted_by_user";
const LIST_MAX_LIMIT = 200;
/** Languages Medical Mode serves; for others the API skips it, says so in a warning, and does not charge it. */
const MEDICAL_MODE_LANGUAGES = new Set(["en", "es", "de", "fr"]);
const MEDICAL_MODE_SKIPPED_WARNING = "Skipped medical-v1 domain correction because the language is not supported";

/** Languages Universal-3 Pro serves; other languages fall through to the next model in `speech_models`. */
const UNIVERSAL_3_PRO_LANGUAGES = new Set(["en", "es", "de", "fr", "it", "pt"]);

/** What an adapter made directly in a test asks of AssemblyAI beyond the speech models: nothing. */
export const NO_TRANSCRIPTION_OPTIONS = { medicalMode: false, redactPiiPolicies: null, speakersExpected: null };

/** Request options the Transcript schema also has; the real API echoes them back. */
const ECHOED_OPTIONS = [
  "speech_models",
  "domain",
  "redact_pii_policies",
  "redact_pii_sub",
  "speakers_expected",
  "language_codes",
  "language_detection_options",
  "keyterms_prompt",
  "prompt",
  "temperature",
  "disfluencies",
  "multichannel",
  "filter_profanity",
  "webhook_url",
  "webhook_auth_header_name",
  "audio_start_from",
  "audio_end_at",
  "speech_threshold",
  "custom_spelling",
] as const;

export class FakeAssemblyAI {
  readonly requests: RecordedRequest[] = [];
  readonly faults: FaultInjector;
  private readonly jobs = new Map<string, TranscriptJob>();
  private registrations: AudioRegistration[] = [];
  private queuedMs: number;
  private processingMs: number;
  private latencyMs: Partial<Record<RequestRoute, number>>;
  private rateLimit: { requests: number; windowMs: number } | undefined;
  private readonly windowCounts = new Map<number, number>();
  /** 429s the fake's own rate limit answered (injected faults are in `faults.injected`). */
  rateLimitedCount = 0;
  private readonly apiKey: string;
  private readonly contract: Contract | null;
  private readonly now: () => number;
  private webhookBehaviour: WebhookBehaviour = {};
  private pendingRedeliveries: TranscriptJob[] = [];
  readonly webhookDeliveries: WebhookDeliveryRecord[] = [];

  private constructor(
    private readonly server: LoopbackServer,
    private readonly options: FakeAssemblyAIOptions,
  ) {
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY;
    this.queuedMs = options.queuedMs ?? DEFAULT_QUEUED_MS;
    this.processingMs = options.processingMs ?? DEFAULT_PROCESSING_MS;
    this.latencyMs = options.latencyMs ?? {};
    this.rateLimit = options.rateLimit;
    this.contract = options.validateRequests === false ? null : assemblyAIContract();
    this.now = options.now ?? Date.now;
    this.faults = new FaultInjector(appliesToAssemblyAI, this.now);
  }

  static async start(options: FakeAssemblyAIOptions = {}): Promise<FakeAssemblyAI> {
    let fake: FakeAssemblyAI | undefined;
    const server = await startLoopbackServer((req, res) => {
      if (fake === undefined) throw new Error("request before the fake finished starting");
      return fake.handle(req, res);
    });
    fake = new FakeAssemblyAI(server, options);
    // Compile the request schema now: on a busy machine that takes long enough to trip a short
    // client timeout if it happened on the first request.
    fake.contract?.violations("TranscriptParams", {});
    return fake;
  }

  /** The bare origin, as the SDK's `baseUrl` expects. */
  get baseUrl(): string {
    return this.server.origin;
  }

  /** Accepted submits that created a job. A submit the provider rejected (fault, 4xx) creates none. */
  submitCount(): number {
    return this.jobs.size;
  }

  submittedBodies(): unknown[] {
    return [...this.jobs.values()].map((job) => job.params);
  }

  /** Every job created, with when it finished (or will finish) and how — for invariant checks. */
  jobRecords(): JobRecord[] {
    return [...this.jobs.values()].map((job) => ({
      id: job.id,
      audioUrl: job.audioUrl,
      createdAt: job.createdAt,
      finishesAt: job.createdAt + job.queuedMs + job.processingMs,
      outcome: job.outcome.kind,
    }));
  }

  /** Jobs whose audio_url pathname (decoded) contains `match`, or matches it, end with `outcome`. First match wins. */
  registerAudio(match: string | RegExp, outcome: TranscriptOutcome): void {
    this.registrations.push({ match, outcome });
  }

  /** Applies to jobs submitted afterwards. */
  setTiming(timing: { queuedMs?: number; processingMs?: number }): void {
    this.queuedMs = timing.queuedMs ?? this.queuedMs;
    this.processingMs = timing.processingMs ?? this.processingMs;
  }

  /** Applies to requests from now on. */
  setLatency(latencyMs: Partial<Record<RequestRoute, number>>): void {
    this.latencyMs = latencyMs;
  }

  setRateLimit(rateLimit: { requests: number; windowMs: number } | undefined): void {
    this.rateLimit = rateLimit;
  }

  /**
   * Requests received per fixed window of `windowMs` (aligned to the epoch, as the pipeline's
   * request budget counts), keyed by window start; `since` skips earlier requests.
   */
  requestsPerWindow(windowMs: number, since = -Infinity): Map<number, number> {
    const counts = new Map<number, number>();
    for (const request of this.requests) {
      if (request.at < since) continue;
      const window = Math.floor(request.at / windowMs) * windowMs;
      counts.set(window, (counts.get(window) ?? 0) + 1);
    }
    return counts;
  }

  /** A job created as a submission would, without a request (to seed large backlogs quickly). */
  seedJob(audioUrl: string): string {
    const job: TranscriptJob = {
      id: randomUUID(),
      createdAt: this.now(),
      audioUrl,
      params: { audio_url: audioUrl, speech_models: ["universal-3-pro"], speaker_labels: true, language_detection: true },
      outcome: this.outcomeFor(audioUrl),
      queuedMs: this.queuedMs,
      processingMs: this.processingMs,
      deleted: false,
      webhook: null,
    };
    this.jobs.set(job.id, job);
    return job.id;
  }

  /** How later deliverWebhooks() calls misbehave. */
  setWebhookBehaviour(behaviour: WebhookBehaviour): void {
    this.webhookBehaviour = behaviour;
  }

  /**
   * Delivers the webhook of every job that has ended and has not been announced (or whose last
   * delivery failed with a 5xx or no answer, up to 10 tries), as the real service does at the
   * job's end; resolves when every delivery was answered.
   */
  async deliverWebhooks(): Promise<WebhookDeliveryRecord[]> {
    const behaviour = this.webhookBehaviour;
    const random = behaviour.random ?? Math.random;
    const chance = (rate: number | undefined) => rate !== undefined && rate > 0 && random() < rate;
    const redeliveries = this.pendingRedeliveries;
    this.pendingRedeliveries = [];
    const due: TranscriptJob[] = [...redeliveries];
    for (const job of this.jobs.values()) {
      const status = this.statusOf(job);
      const webhook = job.webhook;
      if (!webhook || webhook.done || webhook.sending || (status !== "completed" && status !== "error")) continue;
      if (webhook.attempts === 0 && webhook.holdCalls === 0 && chance(behaviour.lateRate)) webhook.holdCalls = 1 + Math.floor(random() * 2);
      if (webhook.holdCalls > 0) {
        webhook.holdCalls--;
        continue;
      }
      webhook.sending = true;
      due.push(job);
    }
    // A duplicate goes out right next to its original, so the two race.
    const sends: (() => Promise<WebhookDeliveryRecord>[])[] = [];
    for (const job of due) {
      const auths: WebhookDeliveryRecord["auth"][] = ["secret"];
      if (chance(behaviour.duplicateRate)) auths.push("secret");
      if (chance(behaviour.unauthenticatedRate)) auths.push("missing");
      if (chance(behaviour.wrongSecretRate)) auths.push("wrong");
      sends.push(() => auths.map((auth) => this.sendWebhook(job, auth)));
      if (!redeliveries.includes(job) && chance(behaviour.redeliveryRate)) this.pendingRedeliveries.push(job);
    }
    const records = (await inBatches(sends, behaviour.concurrency ?? WEBHOOK_CONCURRENCY)).flat();
    this.webhookDeliveries.push(...records);
    return records;
  }

  /** Jobs with a webhook not yet answered (or given up), including ones held back as late. */
  pendingWebhookCount(): number {
    return [...this.jobs.values()].filter((job) => job.webhook && !job.webhook.done).length + this.pendingRedeliveries.length;
  }

  private async sendWebhook(job: TranscriptJob, auth: WebhookDeliveryRecord["auth"]): Promise<WebhookDeliveryRecord> {
    const webhook = job.webhook!;
    const status = this.statusOf(job) === "error" ? "error" : "completed";
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (webhook.headerName && webhook.headerValue && auth !== "missing") {
      headers[webhook.headerName] = auth === "secret" ? webhook.headerValue : `${webhook.headerValue.slice(0, -4)}AAAA`;
    }
    const startedMs = Date.now();
    let answer = 0;
    try {
      const response = await fetch(webhook.url, {
        method: "POST",
        headers,
        body: JSON.stringify({ transcript_id: job.id, status }),
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      answer = response.status;
    } catch {
      answer = 0;
    }
    if (auth === "secret") {
      webhook.sending = false;
      webhook.attempts++;
      webhook.statusCode = answer === 0 ? null : answer;
      const retryable = answer === 0 || answer >= 500;
      if (!retryable || webhook.attempts >= WEBHOOK_MAX_ATTEMPTS) webhook.done = true;
    }
    return { transcriptId: job.id, status, auth, answer, durationMs: Date.now() - startedMs };
  }

  reset(): void {
    this.webhookBehaviour = {};
    this.pendingRedeliveries = [];
    this.webhookDeliveries.length = 0;
    this.jobs.clear();
    this.requests.length = 0;
    this.windowCounts.clear();
    this.rateLimitedCount = 0;
    this.latencyMs = this.options.latencyMs ?? {};
    this.rateLimit = this.options.rateLimit;
    this.registrations = [];
    this.queuedMs = this.options.queuedMs ?? DEFAULT_QUEUED_MS;
    this.processingMs = this.options.processingMs ?? DEFAULT_PROCESSING_MS;
    this.faults.clear();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    this.requests.push(recordRequest(req, body, this.now()));
    if (body.kind === "tooLarge") return sendJson(res, errorAnswer(413, ASSEMBLYAI_HTTP_ERRORS.payloadTooLarge));
    if (req.headers.authorization !== this.apiKey) {
      return sendJson(res, errorAnswer(401, ASSEMBLYAI_HTTP_ERRORS.unauthorized));
    }
    const url = new URL(req.url ?? "/", this.baseUrl);
    const route = routeOf(req.method ?? "GET", url.pathname);
    if (route === undefined) return sendJson(res, errorAnswer(404, ASSEMBLYAI_HTTP_ERRORS.routeNotFound));

    const latency = this.latencyMs[route.name] ?? 0;
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    const limited = this.overRateLimit();
    if (limited !== undefined) {
      this.rateLimitedCount += 1;
      return sendJson(res, errorAnswer(429, ASSEMBLYAI_HTTP_ERRORS.tooManyRequests, { "retry-after": String(limited) }));
    }
    const fault = this.faults.draw(route.name);
    const json = body.kind === "json" ? body.value : undefined;
    await answerThroughFault(req, res, fault, errorAnswerForFault, () => this.answer(route, url, json, fault));
  }

  /** Seconds to the end of the window when this request is over the account's limit. */
  private overRateLimit(): number | undefined {
    if (this.rateLimit === undefined) return undefined;
    const { requests, windowMs } = this.rateLimit;
    const window = Math.floor(this.now() / windowMs);
    const count = (this.windowCounts.get(window) ?? 0) + 1;
    this.windowCounts.set(window, count);
    return count > requests ? Math.max(1, Math.ceil(((window + 1) * windowMs - this.now()) / 1000)) : undefined;
  }

  private answer(route: Route, url: URL, body: unknown, fault: FaultKind | undefined): JsonAnswer {
    switch (route.name) {
      case "submit":
        return this.submit(body, fault?.kind === "transcriptError" ? fault.error : undefined);
      case "list":
        return { status: 200, body: this.list(url.searchParams) };
      case "get":
        return this.withJob(route.id, (job) => this.render(job));
      case "delete":
        return this.withJob(route.id, (job) => {
          job.deleted = true;
          return this.render(job);
        });
    }
  }

  private submit(body: unknown, injectedError: string | undefined): JsonAnswer {
    if (!isRecord(body)) return errorAnswer(400, ASSEMBLYAI_HTTP_ERRORS.invalidJson);
    const rejection = this.rejectionOf(body);
    if (rejection !== undefined) return errorAnswer(400, rejection);
    const audioUrl = String(body["audio_url"]);
    const outcome: TranscriptOutcome =
      injectedError !== undefined ? { kind: "error", error: injectedError } : this.outcomeFor(audioUrl);
    const job: TranscriptJob = {
      id: randomUUID(),
      createdAt: this.now(),
      audioUrl,
      params: body,
      outcome: applyLanguageConfidenceThreshold(body, outcome),
      queuedMs: this.queuedMs,
      processingMs: this.processingMs,
      deleted: false,
      webhook: webhookOf(body),
    };
    this.jobs.set(job.id, job);
    return { status: 200, body: this.render(job) };
  }

  /** Why the real API would answer 400, if it would. */
  private rejectionOf(body: JsonObject): string | undefined {
    if (body["speech_model"] !== undefined && body["speech_model"] !== null) {
      return ASSEMBLYAI_HTTP_ERRORS.speechModelDeprecated;
    }
    const models = body["speech_models"];
    if (!Array.isArray(models) || models.length === 0) return ASSEMBLYAI_HTTP_ERRORS.speechModelsRequired;
    if (typeof body["audio_url"] !== "string") return ASSEMBLYAI_HTTP_ERRORS.audioUrlRequired;
    const violations = this.contract?.violations("TranscriptParams", body) ?? [];
    return violations.length > 0 ? `Invalid request: ${formatViolations(violations)}` : undefined;
  }

  private outcomeFor(audioUrl: string): TranscriptOutcome {
    const pathname = decodedPathname(audioUrl);
    const registered = this.registrations.find(({ match }) =>
      typeof match === "string" ? pathname.includes(match) : match.test(pathname),
    );
    return registered?.outcome ?? defaultOutcomeFor(pathname);
  }

  private withJob(id: string, answer: (job: TranscriptJob) => JsonObject): JsonAnswer {
    const job = this.jobs.get(id);
    return job === undefined
      ? errorAnswer(404, ASSEMBLYAI_HTTP_ERRORS.transcriptNotFound)
      : { status: 200, body: answer(job) };
  }

  private statusOf(job: TranscriptJob): TranscriptStatus {
    const elapsed = this.now() - job.createdAt;
    if (elapsed < job.queuedMs) return "queued";
    if (elapsed < job.queuedMs + job.processingMs) return "processing";
    return job.outcome.kind === "error" ? "error" : "completed";
  }

  private render(job: TranscriptJob): JsonObject {
    const status = this.statusOf(job);
    const base = { ...pendingTranscript(job), status, webhook_status_code: job.webhook?.statusCode ?? null };
    if (job.deleted) return { ...base, text: "Deleted by user.", audio_url: DELETED_AUDIO_URL };
    if (status === "error" && job.outcome.kind === "error") return { ...base, error: job.outcome.error };
    if (status !== "completed") return base;
    return { ...base, ...completedFields(job.params, job.outcome) };
  }

  private list(query: URLSearchParams): JsonObject {
    const limit = clampInteger(Number(query.get("limit") ?? LIST_DEFAULT_LIMIT), 1, LIST_MAX_LIMIT);
    const status = query.get("status");
    const beforeId = query.get("before_id");
    const newestFirst = [...this.jobs.values()].reverse();
    const afterCursor = beforeId === null ? newestFirst : newestFirst.slice(newestFirst.findIndex((j) => j.id === beforeId) + 1);
    const matching = afterCursor.filter((job) => status === null || this.statusOf(job) === status);
    const page = matching.slice(0, limit);
    const oldest = page.at(-1);
    const pageUrl = (extra: string): string =>
      `${this.baseUrl}/v2/transcript?limit=${limit}${status === null ? "" : `&status=${status}`}${extra}`;
    return {
      page_details: {
        limit,
        result_count: page.length,
        current_url: pageUrl(beforeId === null ? "" : `&before_id=${beforeId}`),
        prev_url: matching.length > limit && oldest !== undefined ? pageUrl(`&before_id=${oldest.id}`) : null,
        next_url: null,
      },
      transcripts: page.map((job) => this.listItem(job)),
    };
  }

  private listItem(job: TranscriptJob): JsonObject {
    const status = this.statusOf(job);
    const finished = status === "completed" || status === "error";
    return {
      id: job.id,
      resource_url: `${this.baseUrl}/v2/transcript/${job.id}`,
      status,
      created: listTimestamp(job.createdAt),
      completed: finished ? listTimestamp(job.createdAt + job.queuedMs + job.processingMs) : null,
      audio_url: job.deleted ? DELETED_AUDIO_URL : job.audioUrl,
      error: status === "error" && job.outcome.kind === "error" ? job.outcome.error : null,
    };
  }
}

/** Runs each group of requests, at most `limit` groups at a time, keeping their order. */
async function inBatches<T>(groups: readonly (() => Promise<T>[])[], limit: number): Promise<T[][]> {
  const results: T[][] = new Array<T[]>(groups.length);
  let next = 0;
  const worker = async () => {
    while (next < groups.length) {
      const index = next++;
      results[index] = await Promise.all(groups[index]!());
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, groups.length)) }, worker));
  return results;
}

function webhookOf(params: JsonObject): JobWebhook | null {
  const url = params["webhook_url"];
  if (typeof url !== "string") return null;
  const name = params["webhook_auth_header_name"];
  const value = params["webhook_auth_header_value"];
  return {
    url,
    headerName: typeof name === "string" ? name : null,
    headerValue: typeof value === "string" ? value : null,
    done: false,
    attempts: 0,
    statusCode: null,
    holdCalls: 0,
    sending: false,
  };
}

type Route = { name: "submit" } | { name: "list" } | { name: "get"; id: string } | { name: "delete"; id: string };

function routeOf(method: string, pathname: string): Route | undefined {
  if (pathname === "/v2/transcript") {
    if (method === "POST") return { name: "submit" };
    if (method === "GET") return { name: "list" };
    return undefined;
  }
  const id = /^\/v2\/transcript\/([^/]+)$/.exec(pathname)?.[1];
  if (id === undefined) return undefined;
  if (method === "GET") return { name: "get", id };
  if (method === "DELETE") return { name: "delete", id };
  return undefined;
}

function appliesToAssemblyAI(fault: FaultKind, route: RequestRoute): boolean {
  if (fault.kind === "transcriptError") return route === "submit";
  return isTransportFault(fault) && fault.kind !== "insufficientQuota";
}

function errorAnswer(status: number, message: string, headers?: Record<string, string>): JsonAnswer {
  return { status, body: { error: message }, ...(headers === undefined ? {} : { headers }) };
}

function errorAnswerForFault(fault: ErrorAnswerFault): JsonAnswer {
  switch (fault.kind) {
    case "status":
      return {
        status: fault.status,
        body: fault.body ?? { error: STATUS_CODES[fault.status] ?? `HTTP ${fault.status}` },
        headers: fault.headers ?? {},
      };
    case "rateLimit":
      return errorAnswer(429, ASSEMBLYAI_HTTP_ERRORS.tooManyRequests, { "retry-after": String(retryAfterSeconds(fault)) });
    case "insufficientQuota":
      throw new Error("insufficientQuota is an OpenAI fault; appliesToAssemblyAI keeps it from being drawn");
  }
}

function retryAfterSeconds(fault: { retryAfterSeconds?: number; retryAfterMs?: number }): number {
  return fault.retryAfterSeconds ?? Math.ceil((fault.retryAfterMs ?? 1000) / 1000);
}

function decodedPathname(audioUrl: string): string {
  const pathname = URL.canParse(audioUrl) ? new URL(audioUrl).pathname : audioUrl;
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

function defaultOutcomeFor(pathname: string): TranscriptOutcome {
  const spanish = pathname.includes("visit-es");
  return {
    kind: "transcript",
    languageCode: spanish ? "es" : "en",
    languageConfidence: DEFAULT_LANGUAGE_CONFIDENCE,
    turns: [...loadVisitScript(spanish ? "visit-es" : "visit-en")],
  };
}

/** The real API fails the job when detection is less sure than the caller's threshold. */
function applyLanguageConfidenceThreshold(params: JsonObject, outcome: TranscriptOutcome): TranscriptOutcome {
  const threshold = params["language_confidence_threshold"];
  if (params["language_detection"] !== true || typeof threshold !== "number" || outcome.kind !== "transcript") {
    return outcome;
  }
  const confidence = outcome.languageConfidence ?? DEFAULT_LANGUAGE_CONFIDENCE;
  if (confidence >= threshold) return outcome;
  return {
    kind: "error",
    error: `detected language '${outcome.languageCode}', confidence ${confidence}, is below the requested confidence threshold value of '${threshold}'`,
  };
}

/** Fields every transcript carries, with results still empty (as while queued or processing). */
function pendingTranscript(job: TranscriptJob): JsonObject {
  const params = job.params;
  const echoed = Object.fromEntries(ECHOED_OPTIONS.filter((key) => key in params).map((key) => [key, params[key]]));
  return {
    id: job.id,
    audio_url: job.audioUrl,
    speech_model: null,
    language_model: "assemblyai_default",
    acoustic_model: "assemblyai_default",
    ...echoed,
    speaker_labels: params["speaker_labels"] === true,
    language_detection: params["language_detection"] === true,
    // The contract's language_code is a non-nullable string: with detection on it appears once detected.
    ...(params["language_detection"] === true ? {} : { language_code: params["language_code"] ?? "en_us" }),
    language_confidence_threshold: params["language_confidence_threshold"] ?? null,
    language_confidence: null,
    punctuate: params["punctuate"] ?? true,
    format_text: params["format_text"] ?? true,
    auto_highlights: params["auto_highlights"] === true,
    redact_pii: params["redact_pii"] === true,
    summarization: params["summarization"] === true,
    webhook_auth: typeof params["webhook_auth_header_name"] === "string",
    webhook_status_code: null,
    text: null,
    words: null,
    utterances: null,
    confidence: null,
    audio_duration: null,
  };
}

function completedFields(params: JsonObject, outcome: TranscriptOutcome): JsonObject {
  const detection = params["language_detection"] === true;
  const speakerLabels = params["speaker_labels"] === true;
  const turns = outcome.kind === "transcript" ? outcome.turns : [];
  const language = outcome.kind === "transcript" ? outcome.languageCode : "en";
  const timedTurns = timeTurns(turns, speakerLabels);
  const words = timedTurns.flat();
  const lastWord = words.at(-1);
  return {
    text: turns.map((turn) => turn.text).join(" "),
    words,
    utterances: speakerLabels ? timedTurns.map(toUtterance) : null,
    confidence: words.length === 0 ? null : averageConfidence(words),
    audio_duration:
      outcome.kind === "transcript" && outcome.audioDurationSeconds !== undefined
        ? outcome.audioDurationSeconds
        : lastWord === undefined
          ? EMPTY_AUDIO_DURATION_SECONDS
          : Math.ceil((lastWord.end + TURN_GAP_MS) / 1000),
    ...(detection
      ? {
          language_code: language,
          language_confidence:
            outcome.kind === "transcript" ? (outcome.languageConfidence ?? DEFAULT_LANGUAGE_CONFIDENCE) : null,
        }
      : {}),
    speech_model_used: modelServing(params["speech_models"], detection ? language : (typeof params["language_code"] === "string" ? params["language_code"] : "en")),
    ...(params["domain"] === "medical-v1"
      ? {
          metadata: MEDICAL_MODE_LANGUAGES.has(language)
            ? { domain_used: "medical-v1" }
            : { domain_used: null, warning: MEDICAL_MODE_SKIPPED_WARNING },
        }
      : {}),
  };
}

/** ~0.4 s per word and 0.5 s between turns; speakers become "A", "B", … in order of first appearance. */
function timeTurns(turns: readonly { speaker: string; text: string }[], speakerLabels: boolean): TimedWord[][] {
  const letters = new Map<string, string>();
  let cursor = FIRST_WORD_START_MS;
  let wordIndex = 0;
  return turns.map((turn, turnIndex) => {
    if (turnIndex > 0) cursor += TURN_GAP_MS;
    if (!letters.has(turn.speaker)) letters.set(turn.speaker, String.fromCharCode(65 + letters.size));
    const speaker = speakerLabels ? (letters.get(turn.speaker) ?? null) : null;
    return turn.text.split(/\s+/).filter(Boolean).map((text) => {
      const word = { text, start: cursor, end: cursor + WORD_SOUNDING_MS, confidence: wordConfidence(wordIndex), speaker };
      cursor += WORD_MS;
      wordIndex += 1;
      return word;
    });
  });
}

function toUtterance(words: TimedWord[]): JsonObject {
  return {
    speaker: words[0]?.speaker ?? "A",
    start: words[0]?.start ?? 0,
    end: words.at(-1)?.end ?? 0,
    confidence: averageConfidence(words),
    text: words.map((word) => word.text).join(" "),
    words,
  };
}

/** Deterministic, word-to-word varying confidences in [0.86, 0.98]. */
function wordConfidence(index: number): number {
  return Math.round((0.86 + ((index * 7) % 13) / 100) * 100) / 100;
}

function averageConfidence(words: readonly TimedWord[]): number {
  const sum = words.reduce((total, word) => total + word.confidence, 0);
  return Math.round((sum / Math.max(words.length, 1)) * 10_000) / 10_000;
}

/** The first requested model that serves the language, as the real routing does. */
function modelServing(requested: unknown, language: string): string {
  const models = Array.isArray(requested) ? requested.filter((m): m is string => typeof m === "string") : [];
  const baseLanguage = language.split(/[-_]/)[0] ?? language;
  const serving = models.find((model) => model !== "universal-3-pro" || UNIVERSAL_3_PRO_LANGUAGES.has(baseLanguage));
  return serving ?? models[0] ?? "universal-2";
}

/** The list endpoint's timestamps: ISO 8601 without a zone, as its schema's pattern requires. */
function listTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "");
}

function clampInteger(value: number, min: number, max: number): number {
  return Number.isFinite(value) ? Math.min(max, Math.max(min, Math.trunc(value))) : min;
}
