// Typed pipeline errors with stable codes. Provider modules throw these; stages map them once
// onto the visit. The code table is the contract the app and ops rely on (docs/errors.md).

export const PIPELINE_STAGES = ["upload", "transcription", "summarization"] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

interface CodeSpec {
  /** Whether the same call may succeed if tried again automatically (in-call or next attempt). */
  transient: boolean;
  /** Whether the app's retry button can help (stored on the visit as `error.retryable`). */
  retryable: boolean;
  /** What the app may show. Never contains transcript or summary text. */
  message: string;
}

export const ERROR_CODES = {
  // Upload validation: the recording itself is not acceptable. Uploading a new file fixes it.
  invalid_content_type: { transient: false, retryable: false, message: "The upload is not an audio file." },
  empty_audio: { transient: false, retryable: false, message: "The uploaded recording is empty." },
  audio_deleted: {
    transient: false,
    retryable: false,
    message: "The recording was deleted after its retention period; upload it again to transcribe it.",
  },
  audio_too_large: {
    transient: false,
    retryable: false,
    message: "The uploaded recording is larger than the allowed size.",
  },

  // Abuse limits: nothing is paid for a visit that hits one.
  upload_quota_exceeded: {
    transient: false,
    retryable: true,
    message: "Too many recordings today. Try again tomorrow; the retry button says when.",
  },
  too_many_active_visits: {
    transient: false,
    retryable: true,
    message: "Other visits are still being processed. Try again when one of them is done.",
  },
  anonymous_upload_refused: {
    transient: false,
    retryable: false,
    message: "Recordings need a signed-in account. Sign in and upload the recording again.",
  },

  // Transcription outcomes reported by the speech provider.
  audio_download_failed: {
    transient: true,
    retryable: true,
    message: "The transcription service could not download the recording.",
  },
  unsupported_audio_format: {
    transient: false,
    retryable: false,
    message: "The recording's format could not be decoded. Please record again.",
  },
  no_speech_detected: { transient: false, retryable: false, message: "No speech was found in the recording." },
  audio_too_short: { transient: false, retryable: false, message: "The recording is too short to transcribe." },
  language_not_supported: {
    transient: false,
    retryable: false,
    message: "The language of the recording is not supported.",
  },
  transcription_failed: { transient: true, retryable: true, message: "Transcription failed." },
  transcript_not_found: {
    transient: false,
    retryable: true,
    message: "The transcription job was lost at the provider; retrying submits the recording again.",
  },

  // Summarization outcomes.
  summary_refused: {
    transient: false,
    retryable: true,
    message: "The summary model declined to summarize this visit.",
  },
  summary_truncated: { transient: true, retryable: true, message: "The summary was cut off before it was complete." },
  summary_invalid: { transient: true, retryable: true, message: "The summary did not match the expected structure." },
  summary_content_filtered: {
    transient: false,
    retryable: false,
    message: "The summary was blocked by the content filter.",
  },
  transcript_empty: { transient: false, retryable: false, message: "The transcript has no text to summarize." },
  transcript_too_long: {
    transient: false,
    retryable: false,
    message: "The recording is longer than the longest visit that is summarized.",
  },
  summary_context_exceeded: {
    transient: false,
    retryable: true,
    message: "Part of the visit was too long for the summary model even when split as far as it can be.",
  },
  translation_item_too_long: {
    transient: true,
    retryable: true,
    message: "One item of the summary could not be translated within one answer, even on its own.",
  },
  summary_model_unavailable: {
    transient: false,
    retryable: true,
    message: "The summary model is not available; the service's configuration must be updated.",
  },

  // Provider faults, classified by HTTP status and error type.
  provider_rate_limited: { transient: true, retryable: true, message: "The provider is rate limiting requests." },
  provider_unavailable: { transient: true, retryable: true, message: "The provider is temporarily unavailable." },
  provider_timeout: { transient: true, retryable: true, message: "The provider did not answer in time." },
  provider_network_error: { transient: true, retryable: true, message: "The provider could not be reached." },
  provider_bad_response: {
    transient: true,
    retryable: true,
    message: "The provider sent a response that could not be read.",
  },
  // Permanent for automatic retries, but fixed by an operator (key, quota, deploy): the button helps later.
  provider_auth_failed: {
    transient: false,
    retryable: true,
    message: "The provider rejected the service's credentials.",
  },
  provider_bad_request: { transient: false, retryable: true, message: "The provider rejected the request." },
  // Our own pacing, not the provider: the minute's request budget is spent (or paused after a 429).
  request_budget_exhausted: {
    transient: true,
    retryable: true,
    message: "The service is at its request limit with the provider; the work continues shortly.",
  },
  provider_quota_exhausted: {
    transient: false,
    retryable: true,
    message: "The provider account has run out of quota.",
  },

  // The user's profile (users/{uid}): refused before anything is written.
  invalid_language: {
    transient: false,
    retryable: false,
    message: "The preferred language must be a two-letter ISO 639-1 code, such as en or es.",
  },

  // Pipeline-level outcomes.
  paid_call_budget_exhausted: {
    transient: false,
    retryable: false,
    message: "This visit has used up its processing budget; upload the recording again in a new visit.",
  },
  attempts_exhausted: {
    transient: false,
    retryable: true,
    message: "The stage failed after every automatic attempt.",
  },
  deadline_exceeded: { transient: false, retryable: true, message: "The visit did not finish in the allowed time." },
  config_invalid: { transient: false, retryable: true, message: "The service is misconfigured." },
  operator_failed: {
    transient: false,
    retryable: true,
    message: "Processing was stopped by the service's operators; the retry button starts it again.",
  },
  // Never stored on a visit: an attempt found, when it saved part of its work, that newer work (or a
  // deletion, or a new recording) owns the visit; it stops there, as any fenced-off write does.
  lease_lost: {
    transient: false,
    retryable: true,
    message: "Newer work took over the visit.",
  },
  // Never stored on a visit: an attempt that would start a paid call its invocation might not see
  // finish stops there; the next attempt carries on from what it saved and is not counted as a try.
  attempt_time_spent: {
    transient: true,
    retryable: true,
    message: "The work took longer than one run; it continues in the next.",
  },
  // Never stored on a visit: an upload delivery that met another recording being put in place of
  // the same one throws it, and Cloud Storage delivers the event again.
  upload_conflict: {
    transient: true,
    retryable: false,
    message: "Another recording for this visit is being put in place; the upload is processed again shortly.",
  },
  internal_error: { transient: true, retryable: true, message: "An unexpected error occurred." },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

export interface PipelineErrorOptions {
  /** Provider- or library-level detail for logs; sanitized, never shown to users. */
  detail?: string;
  /** How long the provider asked us to wait (Retry-After), when it said. */
  retryAfterMs?: number;
  /** HTTP status the provider answered with, when there was one. */
  httpStatus?: number;
  /**
   * The request may have taken effect although it failed (timeout, reset, 5xx after sending, an
   * unreadable 2xx). A paid call with an unknown outcome is never repeated blindly.
   */
  outcomeUnknown?: boolean;
  /**
   * Tokens an answer used although it could not be used (cut off, refused, filtered, not matching
   * the schema): the provider bills them, so the visit's cost counts them.
   */
  usage?: { promptTokens: number; completionTokens: number };
  cause?: unknown;
}

export class PipelineError extends Error {
  readonly code: ErrorCode;
  /** Worth trying the same call again automatically. */
  readonly transient: boolean;
  readonly detail: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly httpStatus: number | undefined;
  readonly outcomeUnknown: boolean;
  readonly usage: { promptTokens: number; completionTokens: number } | undefined;

  constructor(code: ErrorCode, options: PipelineErrorOptions = {}) {
    // The message reaches logs and stack traces too: it is built from the sanitized detail.
    const detail = options.detail === undefined ? undefined : sanitizeDetail(options.detail);
    super(detail ? `${code}: ${detail}` : code, { cause: options.cause });
    this.name = "PipelineError";
    this.code = code;
    this.transient = ERROR_CODES[code].transient;
    this.detail = detail;
    this.retryAfterMs = options.retryAfterMs;
    this.httpStatus = options.httpStatus;
    this.outcomeUnknown = options.outcomeUnknown ?? false;
    this.usage = options.usage;
  }

  /** The same error, marked as possibly having taken effect. */
  withOutcomeUnknown(): PipelineError {
    return new PipelineError(this.code, {
      detail: this.detail,
      retryAfterMs: this.retryAfterMs,
      httpStatus: this.httpStatus,
      outcomeUnknown: true,
      ...(this.usage ? { usage: this.usage } : {}),
      cause: this.cause,
    });
  }
}

/**
 * The error as stored on the visit for the app: stage, stable code, our own message, and
 * whether the retry button can help.
 */
export interface VisitError {
  stage: PipelineStage;
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export function visitError(stage: PipelineStage, code: ErrorCode): VisitError {
  const spec = ERROR_CODES[code];
  return { stage, code, message: spec.message, retryable: spec.retryable };
}

/** Any thrown value as a PipelineError: ours pass through; anything else is an internal error. */
export function asPipelineError(error: unknown): PipelineError {
  if (error instanceof PipelineError) return error;
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new PipelineError("internal_error", { detail, cause: error });
}

// A separator in its plain, JSON-escaped (`\/`, `\\/`, `\u002F`) and percent-encoded (also
// double-encoded: `%252F`) forms; likewise ':' and '='.
const SLASH = String.raw`(?:\\{0,8}\/|%(?:25){0,3}2[fF]|\\u002[fF])`;
const COLON = String.raw`(?::|%(?:25){0,3}3[aA]|\\u003[aA])`;
const EQUALS = String.raw`(?:=|%(?:25){0,3}3[dD]|\\u003[dD])`;
const SEGMENT = String.raw`(?:(?!${SLASH})\S){1,400}`;
// Where a file name surely ends: a separator, or the start of another object name or URL.
const FILE_NAME_END = String.raw`${SLASH}|users${SLASH}|https?${COLON}`;
/**
 * `users/<uid>/visits/<visitId>/<file>`. A file name may hold spaces and quotes, so everything up
 * to the next separator, object name, URL or control character goes with it.
 */
const OBJECT_NAME_PATTERN = new RegExp(
  String.raw`users${SLASH}${SEGMENT}?${SLASH}visits${SLASH}${SEGMENT}?${SLASH}(?:(?!${FILE_NAME_END})[^\u0000-\u001f\u007f]){0,800}`,
  "gi",
);
const JWT_PATTERN = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
// A run of text between whitespace, quotes and angle brackets; one that holds a URL scheme or a
// signed-URL parameter (with or without scheme and host in front) is replaced whole.
const TOKEN_PATTERN = /[^\s"'`<>]+/g;
const URL_IN_TOKEN = new RegExp(
  String.raw`https?${COLON}${SLASH}{2}|(?:X-Goog-[a-z]{1,40}|X-Amz-[a-z]{1,40}|GoogleAccessId|Signature)(?:-[a-z]{1,40}){0,4}${EQUALS}`,
  "i",
);
// "<url><object><url>": one URL whose path held an object name.
const ADJACENT_PLACEHOLDERS = /(?:<(?:url|object)>){2,}/g;
const DETAIL_LIMIT = 300;

/**
 * Provider messages can embed the signed audio URL (a credential) — e.g. AssemblyAI's
 * "Download error, unable to download https://…" — and library messages can carry an object
 * name (a file name can identify a patient) or a token. Strip object names, JWTs and URLs —
 * plain, JSON-escaped, percent-encoded, or scheme-less `host/path?X-Goog-…` — then bound the
 * length, before anything reaches a log line.
 */
export function sanitizeDetail(detail: string): string {
  const stripped = detail
    .replace(OBJECT_NAME_PATTERN, "<object>")
    .replace(JWT_PATTERN, "<token>")
    .replace(TOKEN_PATTERN, (token) => (URL_IN_TOKEN.test(token) ? "<url>" : token))
    .replace(ADJACENT_PLACEHOLDERS, (run) => (run.includes("<url>") ? "<url>" : "<object>"));
  return stripped.length > DETAIL_LIMIT ? `${stripped.slice(0, DETAIL_LIMIT)}…` : stripped;
}
