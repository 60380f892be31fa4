// Fake OpenAI Chat Completions API on loopback: answers json_schema requests with deterministic, conforming content
// (for the pipeline's own formats a little more: a visit summary names the transcript's speakers, a
// summary translation keeps the summary's structure item for item, as a real model is asked to).
import { randomBytes, randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { formatViolations, isRecord, openAIContract } from "./contracts.js";
import type { Contract, JsonObject, Violation } from "./contracts.js";
import { FaultInjector } from "./faults.js";
import type { ErrorAnswerFault, FaultKind, RequestRoute } from "./faults.js";
import { answerThroughFault, delayUnlessClosed, readJsonBody, recordRequest, sendJson, startLoopbackServer } from "./http.js";
import type { JsonAnswer, LoopbackServer, RecordedRequest, RequestBody } from "./http.js";

export interface FakeOpenAIOptions {
  /** Expected bearer token; default "test-openai-key". */
  apiKey?: string;
  /** Validate bodies against the contract's CreateChatCompletionRequest (default true). */
  validateRequests?: boolean;
  /** Added before every chat completion answer (default 0). */
  latencyMs?: number;
}

export interface ChatMessage {
  role: string;
  content?: unknown;
}

export type ChatResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name: string; strict?: boolean | null; schema?: JsonObject } };

export interface ChatRequestBody {
  model: string;
  messages: ChatMessage[];
  response_format?: ChatResponseFormat;
  [parameter: string]: unknown;
}

/** Examples of OpenAI error messages, as the API words them. */
export const OPENAI_ERROR_MESSAGES = {
  missingApiKey:
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
  invalidJson:
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
  insufficientQuota:
    "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
  serverError: "The server had an error while processing your request. Sorry about that!",
  overloaded: "The server is overloaded or not ready yet.",
  refusal: "I'm sorry, but I can't assist with that request.",
  streamingUnsupported: "FakeOpenAI does not implement streaming; send stream: false.",
  payloadTooLarge: "Request body is too large.",
} as const;

const DEFAULT_API_KEY = "test-openai-key";
const SYSTEM_FINGERPRINT = "fp_fa4e0c0de1";
const MAX_STRING_CHARS = 200;
/** Beyond this nesting depth the generator takes null / the fewest items, so recursive schemas terminate. */
const MAX_SCHEMA_DEPTH = 8;
const FALLBACK_DATE = "2025-01-15";
const LANGUAGE_IN_PROMPT = /language(?:[ _]code)?"?\s*[:=]\s*"?([a-z]{2,3}(?:[-_][A-Za-z]{2})?)\b/i;
const ISO_DATE_IN_PROMPT = /\b(\d{4}-\d{2}-\d{2})\b/;

export class FakeOpenAI {
  readonly requests: RecordedRequest[] = [];
  readonly faults = new FaultInjector(appliesToOpenAI);
  private completions = 0;
  private readonly usage: { promptTokens: number; completionTokens: number }[] = [];
  private override: ((body: ChatRequestBody) => unknown) | null = null;
  private readonly contextLimits = new Map<string | null, number>();
  private readonly completionLimits = new Map<string | null, number>();
  private readonly missingModels = new Set<string>();
  private readonly apiKey: string;
  private readonly contract: Contract | null;

  private constructor(
    private readonly server: LoopbackServer,
    private readonly options: FakeOpenAIOptions,
  ) {
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY;
    this.contract = options.validateRequests === false ? null : openAIContract();
  }

  static async start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
    let fake: FakeOpenAI | undefined;
    const server = await startLoopbackServer((req, res) => {
      if (fake === undefined) throw new Error("request before the fake finished starting");
      return fake.handle(req, res);
    });
    fake = new FakeOpenAI(server, options);
    // Compile the request schema now: on a busy machine that takes long enough to trip a short
    // client timeout if it happened on the first request.
    fake.contract?.violations("CreateChatCompletionRequest", {});
    return fake;
  }

  /** Ends in /v1, as the SDK's `baseURL` expects. */
  get baseUrl(): string {
    return `${this.server.origin}/v1`;
  }

  /** Completions produced (and billed). A request the provider rejected (fault, 4xx) produces none. */
  completionCount(): number {
    return this.completions;
  }

  /** The `usage` of every completion answered, in order (what a caller is billed for). */
  servedUsage(): readonly { promptTokens: number; completionTokens: number }[] {
    return this.usage;
  }

  /**
   * Replaces the generated content: the assistant message becomes JSON.stringify(fn(body)); when
   * fn returns undefined, the fake answers that request as it would without it.
   */
  respondWith(fn: ((body: ChatRequestBody) => unknown) | null): void {
    this.override = fn;
  }

  /**
   * Answers 400 `context_length_exceeded`, as OpenAI does, for a request whose messages this fake
   * estimates (4 characters a token) at more than `tokens` — for `model` only, or for every model
   * without a limit of its own; null: no limit.
   */
  setContextLimit(tokens: number | null, model: string | null = null): void {
    if (tokens === null) this.contextLimits.delete(model);
    else this.contextLimits.set(model, tokens);
  }

  /**
   * Cuts off (`finish_reason: "length"`, the content ended mid-way, as OpenAI does when an answer
   * reaches its token limit) every answer whose content this fake estimates (4 characters a token)
   * at more than `tokens` — for requests of the response format `format` only (`summary_translation`,
   * …), or for every request without a limit of its own; null: no limit set. Without a limit set,
   * an answer is held to the request's own `max_completion_tokens`; a limit set replaces it, so
   * `Infinity` plays a provider that ignores it.
   */
  setCompletionLimit(tokens: number | null, format: string | null = null): void {
    if (tokens === null) this.completionLimits.delete(format);
    else this.completionLimits.set(format, tokens);
  }

  /** Answers 404 `model_not_found` for requests naming one of these models (retired or never existing). */
  setMissingModels(models: readonly string[]): void {
    this.missingModels.clear();
    for (const model of models) this.missingModels.add(model);
  }

  reset(): void {
    this.requests.length = 0;
    this.usage.length = 0;
    this.completions = 0;
    this.override = null;
    this.contextLimits.clear();
    this.completionLimits.clear();
    this.missingModels.clear();
    this.faults.clear();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    this.requests.push(recordRequest(req, body, Date.now()));
    const send = (answer: JsonAnswer): void => sendJson(res, withRequestId(answer));
    if (body.kind === "tooLarge") return send(openAIError(413, OPENAI_ERROR_MESSAGES.payloadTooLarge, "invalid_request_error"));
    const authFailure = this.authFailure(req.headers.authorization);
    if (authFailure !== undefined) return send(authFailure);
    if (req.method !== "POST" || new URL(req.url ?? "/", this.server.origin).pathname !== "/v1/chat/completions") {
      return send(openAIError(404, `Invalid URL (${req.method ?? "GET"} ${req.url ?? "/"})`, "invalid_request_error"));
    }

    const fault = this.faults.draw("chat");
    const answerFor = (errorFault: ErrorAnswerFault): JsonAnswer => withRequestId(errorAnswerForFault(errorFault));
    await answerThroughFault(req, res, fault, answerFor, async () => {
      if (this.options.latencyMs !== undefined && this.options.latencyMs > 0) {
        await delayUnlessClosed(this.options.latencyMs, req.socket);
      }
      return withRequestId(this.complete(body, fault));
    });
  }

  private authFailure(authorization: string | undefined): JsonAnswer | undefined {
    const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
    if (token === this.apiKey) return undefined;
    if (token === undefined) return openAIError(401, OPENAI_ERROR_MESSAGES.missingApiKey, "invalid_request_error");
    return openAIError(
      401,
      `Incorrect API key provided: ${maskKey(token)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      "invalid_request_error",
      { code: "invalid_api_key" },
    );
  }

  private complete(body: RequestBody, fault: FaultKind | undefined): JsonAnswer {
    const checked = this.checkRequest(body);
    if (!checked.ok) return checked.answer;
    const refused = this.modelRefusal(checked.request);
    if (refused !== undefined) return refused;
    this.completions += 1;
    const response = completionResponse(checked.request, this.contentFor(checked.request), fault, this.completionLimitFor(checked.request));
    const usage = response.usage as { prompt_tokens: number; completion_tokens: number };
    this.usage.push({ promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens });
    return { status: 200, body: response };
  }

  /** The 400s: unparseable JSON, contract violations, then what this fake cannot serve. */
  private checkRequest(body: RequestBody): { ok: true; request: ChatRequestBody } | { ok: false; answer: JsonAnswer } {
    const reject = (message: string, param: string | null = null): { ok: false; answer: JsonAnswer } => ({
      ok: false,
      answer: openAIError(400, message, "invalid_request_error", { param }),
    });
    if (body.kind !== "json") return reject(OPENAI_ERROR_MESSAGES.invalidJson);
    const violations = this.contract?.violations("CreateChatCompletionRequest", body.value) ?? [];
    const first = mostSpecific(violations);
    if (first !== undefined) return { ok: false, answer: invalidParameterError(first, violations) };
    if (!isChatRequestBody(body.value)) return reject("The request needs a string 'model' and a 'messages' array.");
    if (body.value.stream === true) return reject(OPENAI_ERROR_MESSAGES.streamingUnsupported, "stream");
    return { ok: true, request: body.value };
  }

  /** What the model itself refuses before generating (no completion is billed). */
  private modelRefusal(request: ChatRequestBody): JsonAnswer | undefined {
    if (this.missingModels.has(request.model)) {
      return openAIError(404, `The model \`${request.model}\` does not exist or you do not have access to it.`, "invalid_request_error", {
        code: "model_not_found",
      });
    }
    const tokens = estimateTokens(JSON.stringify(request.messages));
    const limit = this.contextLimits.get(request.model) ?? this.contextLimits.get(null);
    if (limit !== undefined && tokens > limit) {
      return openAIError(
        400,
        `This model's maximum context length is ${limit} tokens. However, your messages resulted in ${tokens} tokens. Please reduce the length of the messages.`,
        "invalid_request_error",
        { param: "messages", code: "context_length_exceeded" },
      );
    }
    return undefined;
  }

  /** The most tokens an answer to this request may have: the limit set for it, else the request's own. */
  private completionLimitFor(request: ChatRequestBody): number | null {
    const configured = this.completionLimits.get(responseFormatName(request)) ?? this.completionLimits.get(null);
    if (configured !== undefined) return configured;
    const requested = request["max_completion_tokens"] ?? request["max_tokens"];
    return typeof requested === "number" ? requested : null;
  }

  private contentFor(request: ChatRequestBody): string {
    const overridden: unknown = this.override?.(request);
    if (overridden !== undefined) return JSON.stringify(overridden);
    const prompt = promptOf(request.messages);
    const schema = jsonSchemaOf(request.response_format);
    const format = responseFormatName(request);
    if (format === "summary_translation") return summaryTranslationContent(request);
    if (schema !== undefined) {
      const instance = generateSchemaInstance(schema, prompt);
      if (format === "visit_summary" && isRecord(instance) && "speakers" in instance) instance["speakers"] = speakersOf(prompt.lastUserText);
      return JSON.stringify(instance);
    }
    if (request.response_format?.type === "json_object") return JSON.stringify({ summary: sentencesOf(prompt.lastUserText)[0] ?? "" });
    return `Summary: ${sentencesOf(prompt.lastUserText).slice(0, 2).join(" ")}`.slice(0, MAX_STRING_CHARS);
  }
}

/** The shape this fake relies on; with validation on, the contract has already checked far more. */
function isChatRequestBody(body: unknown): body is ChatRequestBody {
  return (
    isRecord(body) &&
    typeof body["model"] === "string" &&
    Array.isArray(body["messages"]) &&
    body["messages"].every((message) => isRecord(message) && typeof message["role"] === "string") &&
    (body["response_format"] === undefined || isRecord(body["response_format"]))
  );
}

/** The name of the json_schema the request asks for (`visit_summary`, `clinician_note`, `summary_translation`), or null. */
export function responseFormatName(body: ChatRequestBody): string | null {
  return body.response_format?.type === "json_schema" ? body.response_format.json_schema.name : null;
}

/**
 * The transcript's speaker labels (`[mm:ss] Speaker A: …` lines) with roles, as a model asked not
 * to guess might answer when nobody introduces themselves: the first to speak (who opens the
 * visit) inferred to be the clinician, the second the patient, anyone else unknown.
 */
function speakersOf(transcript: string): JsonObject[] {
  const labels = [...new Set([...transcript.matchAll(/^\[\d+:\d\d\] Speaker (\S+): /gm)].map((match) => match[1] ?? ""))];
  const roles = ["clinician", "patient"];
  return labels.map((speaker, index) => {
    const role = roles[index];
    return role ? { speaker, role, certainty: "inferred" } : { speaker, role: "unknown", certainty: null };
  });
}

/** What this fake answers to a summary translation request, before a completion limit cuts it off. */
export function summaryTranslationContent(body: ChatRequestBody): string {
  return JSON.stringify(translatedSummary(promptOf(body.messages)));
}

/**
 * A summary translation: the summary the prompt carries (after "Summary:"), every text marked with
 * the target language (`[es] …`) as this fake's stand-in for translating it, every list the same
 * length, every value that is not free text unchanged — of a whole summary or of a part of one.
 */
function translatedSummary(prompt: PromptFacts): unknown {
  const source = prompt.lastUserText.slice(prompt.lastUserText.indexOf("Summary:") + "Summary:".length).trim();
  const summary: unknown = JSON.parse(source);
  const mark = (value: unknown, key: string | null): unknown => {
    // An empty text (the overview of a part that does not carry it) stays empty, as a model leaves it.
    if (typeof value === "string") return TEXT_FIELDS.has(key ?? "") && value !== "" ? `[${prompt.language}] ${value}` : value;
    if (Array.isArray(value)) return value.map((item) => mark(item, key));
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "speakers" ? v : mark(v, k)]));
    return value;
  };
  const translated = mark(summary, null);
  return isRecord(translated) ? { ...translated, language: prompt.language } : translated;
}

/** The summary fields that are free text (everything else is a code, an enum or a date). */
const TEXT_FIELDS = new Set(["overview", "keyPoints", "name", "dose", "instructions", "timing", "description", "reason", "warningSigns"]);

function jsonSchemaOf(format: ChatResponseFormat | undefined): JsonObject | undefined {
  if (format?.type !== "json_schema") return undefined;
  const jsonSchema: unknown = format.json_schema;
  return isRecord(jsonSchema) && isRecord(jsonSchema["schema"]) ? jsonSchema["schema"] : undefined;
}

/** Refusal, length and content-filter faults, and the completion limit, shape the completion itself. */
function completionResponse(request: ChatRequestBody, content: string, fault: FaultKind | undefined, completionLimit: number | null): JsonObject {
  const choice = shapeChoice(content, fault, completionLimit);
  const promptTokens = estimateTokens(JSON.stringify(request.messages));
  const completionTokens = estimateTokens(choice.content ?? choice.refusal ?? "");
  return {
    id: `chatcmpl-${randomBytes(15).toString("base64url")}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: choice.content, refusal: choice.refusal, annotations: [] },
        finish_reason: choice.finishReason,
        logprobs: null,
      },
    ],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: "default",
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

function shapeChoice(
  content: string,
  fault: FaultKind | undefined,
  completionLimit: number | null,
): { content: string | null; refusal: string | null; finishReason: "stop" | "length" | "content_filter" } {
  switch (fault?.kind) {
    case "refusal":
      return { content: null, refusal: fault.message ?? OPENAI_ERROR_MESSAGES.refusal, finishReason: "stop" };
    case "length":
      // Cut strictly inside the text, so JSON content is always left unterminated.
      return { content: content.slice(0, Math.max(1, Math.floor(content.length / 2))), refusal: null, finishReason: "length" };
    case "contentFilter":
      return { content: null, refusal: null, finishReason: "content_filter" };
    default:
      // Past the limit the answer stops where the limit is reached (JSON content left unterminated).
      if (completionLimit !== null && estimateTokens(content) > completionLimit) {
        return { content: content.slice(0, completionLimit * 4), refusal: null, finishReason: "length" };
      }
      return { content, refusal: null, finishReason: "stop" };
  }
}

function appliesToOpenAI(fault: FaultKind, route: RequestRoute): boolean {
  return route === "chat" && fault.kind !== "transcriptError";
}

function errorAnswerForFault(fault: ErrorAnswerFault): JsonAnswer {
  switch (fault.kind) {
    case "status":
      return {
        ...openAIError(fault.status, serverMessageFor(fault.status), fault.status >= 500 ? "server_error" : "invalid_request_error"),
        ...(fault.body === undefined ? {} : { body: fault.body }),
        headers: fault.headers ?? {},
      };
    case "rateLimit": {
      const ms = fault.retryAfterMs ?? (fault.retryAfterSeconds ?? 1) * 1000;
      return openAIError(
        429,
        `Rate limit reached in organization org-fake on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in ${ms}ms. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        "requests",
        { code: "rate_limit_exceeded" },
        { "retry-after": String(fault.retryAfterSeconds ?? Math.ceil(ms / 1000)), "retry-after-ms": String(ms) },
      );
    }
    case "insufficientQuota":
      return openAIError(429, OPENAI_ERROR_MESSAGES.insufficientQuota, "insufficient_quota", { code: "insufficient_quota" });
  }
}

function serverMessageFor(status: number): string {
  if (status === 500) return OPENAI_ERROR_MESSAGES.serverError;
  if (status === 503) return OPENAI_ERROR_MESSAGES.overloaded;
  return STATUS_CODES[status] ?? `HTTP ${status}`;
}

function openAIError(
  status: number,
  message: string,
  type: string,
  extra: { param?: string | null; code?: string | null } = {},
  headers: Record<string, string> = {},
): JsonAnswer {
  return { status, body: { error: { message, type, param: extra.param ?? null, code: extra.code ?? null } }, headers };
}

function withRequestId(answer: JsonAnswer): JsonAnswer {
  return { ...answer, headers: { "x-request-id": `req_${randomUUID().replaceAll("-", "")}`, ...answer.headers } };
}

/** OpenAI shows the first and last characters of a rejected key. */
function maskKey(key: string): string {
  return key.length <= 8 ? "*".repeat(key.length) : `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

/** The violation deepest in the body: the one a person needs to see first. */
function mostSpecific(violations: readonly Violation[]): Violation | undefined {
  return [...violations].sort((a, b) => b.path.split("/").length - a.path.split("/").length)[0];
}

function invalidParameterError(first: Violation, all: readonly Violation[]): JsonAnswer {
  const param = pointerToParam(first.path);
  if (first.keyword === "required") {
    return openAIError(400, `Missing required parameter: '${param}'.`, "invalid_request_error", {
      param,
      code: "missing_required_parameter",
    });
  }
  return openAIError(400, `Invalid value for '${param}': ${formatViolations(all)}`, "invalid_request_error", {
    param,
    code: first.keyword === "type" ? "invalid_type" : "invalid_value",
  });
}

/** "/messages/0/content" → "messages[0].content", the way OpenAI names parameters in errors. */
function pointerToParam(pointer: string): string {
  return pointer
    .split("/")
    .filter(Boolean)
    .reduce((param, part) => (/^\d+$/.test(part) ? `${param}[${part}]` : param === "" ? part : `${param}.${part}`), "");
}

export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

// --- Deterministic JSON-schema instances --------------------------------------------------------

export interface PromptFacts {
  /** Text of the last user message: the source of generated strings. */
  lastUserText: string;
  /** Language code announced anywhere in the prompt ("language: es"), else "en". */
  language: string;
  /** First ISO date in the prompt, else a fixed date. */
  date: string;
}

export function promptOf(messages: readonly ChatMessage[]): PromptFacts {
  const texts = messages.map((message) => messageText(message.content));
  const lastUser = messages.findLastIndex((message) => message.role === "user");
  const everything = texts.join("\n");
  return {
    lastUserText: texts[lastUser] ?? "",
    language: LANGUAGE_IN_PROMPT.exec(everything)?.[1] ?? "en",
    date: ISO_DATE_IN_PROMPT.exec(everything)?.[1] ?? FALLBACK_DATE,
  };
}

function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => (isRecord(part) && typeof part["text"] === "string" ? part["text"] : ""))
    .filter(Boolean)
    .join("\n");
}

/** Lines, then sentences within them, in order. */
function sentencesOf(text: string): string[] {
  return text
    .split(/\r?\n/)
    .flatMap((line) => line.split(/(?<=[.!?])\s+/))
    .map((sentence) => sentence.trim())
    .filter(Boolean);
}

interface GenerationContext {
  readonly root: JsonObject;
  readonly facts: PromptFacts;
  readonly sentences: readonly string[];
  nextSentence: number;
}

/**
 * An instance that conforms to `schema` (the subset OpenAI structured outputs use), built only from
 * the prompt: strings are the last user message's sentences in order, so the same request always
 * yields the same object and its text visibly comes from the transcript.
 */
export function generateSchemaInstance(schema: JsonObject, facts: PromptFacts): unknown {
  const sentences = sentencesOf(facts.lastUserText);
  const context: GenerationContext = {
    root: schema,
    facts,
    sentences: sentences.length > 0 ? sentences : ["No content was provided."],
    nextSentence: 0,
  };
  return instanceOf(schema, context, 0, undefined);
}

function instanceOf(schema: unknown, context: GenerationContext, depth: number, propertyName: string | undefined): unknown {
  if (!isRecord(schema)) return nextString(context);
  if (typeof schema["$ref"] === "string") {
    return instanceOf(resolveRef(schema["$ref"], context.root), context, depth + 1, propertyName);
  }
  if ("const" in schema) return schema["const"];
  if (Array.isArray(schema["enum"])) return enumChoice(schema["enum"], propertyName, context);
  const branches = schema["anyOf"] ?? schema["oneOf"];
  if (Array.isArray(branches)) return instanceOf(preferredBranch(branches, depth), context, depth + 1, propertyName);
  switch (typeOf(schema, depth)) {
    case "null":
      return null;
    case "object":
      return objectOf(schema, context, depth);
    case "array":
      return arrayOf(schema, context, depth, propertyName);
    case "integer":
      return numberOf(schema, true);
    case "number":
      return numberOf(schema, false);
    case "boolean":
      return false;
    default:
      return stringOf(schema, context, propertyName);
  }
}

/** Non-null first; past the depth limit, null first, so recursive schemas end. */
function preferredBranch(branches: readonly unknown[], depth: number): unknown {
  const isNull = (branch: unknown): boolean => isRecord(branch) && branch["type"] === "null";
  const wanted = depth > MAX_SCHEMA_DEPTH ? branches.find(isNull) : branches.find((branch) => !isNull(branch));
  return wanted ?? branches[0];
}

function typeOf(schema: JsonObject, depth: number): string {
  const declared = schema["type"];
  if (typeof declared === "string") return depth > MAX_SCHEMA_DEPTH && schema["nullable"] === true ? "null" : declared;
  if (Array.isArray(declared)) {
    const types = declared.filter((t): t is string => typeof t === "string");
    const nonNull = types.find((t) => t !== "null");
    return depth > MAX_SCHEMA_DEPTH && types.includes("null") ? "null" : (nonNull ?? "null");
  }
  if (isRecord(schema["properties"])) return "object";
  if ("items" in schema) return "array";
  return "string";
}

function objectOf(schema: JsonObject, context: GenerationContext, depth: number): JsonObject {
  const properties = isRecord(schema["properties"]) ? schema["properties"] : {};
  return Object.fromEntries(
    Object.entries(properties).map(([name, sub]) => [name, instanceOf(sub, context, depth + 1, name)]),
  );
}

function arrayOf(schema: JsonObject, context: GenerationContext, depth: number, propertyName: string | undefined): unknown[] {
  const minItems = numberKeyword(schema, "minItems") ?? (depth > MAX_SCHEMA_DEPTH ? 0 : 1);
  const maxItems = numberKeyword(schema, "maxItems") ?? 3;
  const count = Math.max(minItems, Math.min(2, maxItems));
  return Array.from({ length: count }, () => instanceOf(schema["items"], context, depth + 1, propertyName));
}

function numberOf(schema: JsonObject, integer: boolean): number {
  const minimum = numberKeyword(schema, "minimum");
  const maximum = numberKeyword(schema, "maximum");
  let value = 1;
  if (minimum !== undefined && value < minimum) value = minimum;
  if (maximum !== undefined && value > maximum) value = maximum;
  if (!integer) return value;
  return maximum !== undefined && Math.ceil(value) > maximum ? Math.floor(value) : Math.ceil(value);
}

function stringOf(schema: JsonObject, context: GenerationContext, propertyName: string | undefined): string {
  if (schema["format"] === "date") return context.facts.date;
  if (schema["format"] === "date-time") return `${context.facts.date}T00:00:00Z`;
  if (propertyName === "language") return context.facts.language;
  const maxLength = numberKeyword(schema, "maxLength") ?? MAX_STRING_CHARS;
  return nextString(context).slice(0, Math.min(maxLength, MAX_STRING_CHARS));
}

function enumChoice(values: readonly unknown[], propertyName: string | undefined, context: GenerationContext): unknown {
  if (propertyName === "language" && values.includes(context.facts.language)) return context.facts.language;
  return values.find((value) => value !== null) ?? null;
}

function nextString(context: GenerationContext): string {
  const sentence = context.sentences[context.nextSentence % context.sentences.length] ?? "";
  context.nextSentence += 1;
  return sentence.slice(0, MAX_STRING_CHARS);
}

function numberKeyword(schema: JsonObject, keyword: string): number | undefined {
  const value = schema[keyword];
  return typeof value === "number" ? value : undefined;
}

/** Local refs only ("#/$defs/X", "#/definitions/X", any "#/…" pointer), with ~ and %-escapes decoded. */
function resolveRef(ref: string, root: JsonObject): unknown {
  if (!ref.startsWith("#")) throw new Error(`FakeOpenAI only resolves local $refs, got ${ref}`);
  return ref
    .slice(1)
    .split("/")
    .filter(Boolean)
    .map((token) => decodeURIComponent(token).replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce<unknown>((node, token) => (isRecord(node) ? node[token] : undefined), root);
}
