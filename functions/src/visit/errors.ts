// Typed pipeline errors with stable codes. Provider modules throw these; stages map them once
// onto the visit. The code table is the contract the app and ops rely on (docs/errors.md).

export type PipelineStage = "upload" | "transcription" | "summarization";

interface CodeSpec {
  /** Whether trying the same call again later can succeed. */
  retryable: boolean;
  /** What the app may show. Never contains transcript or summary text. */
  message: string;
}

export const ERROR_CODES = {
  // Upload validation: the recording itself is not acceptable. Uploading a new file fixes it.
  invalid_content_type: { retryable: false, message: "The upload is not an audio file." },
  empty_audio: { retryable: false, message: "The uploaded recording is empty." },
  audio_too_large: { retryable: false, message: "The uploaded recording is larger than the allowed size." },

  // Transcription outcomes reported by the speech provider.
  audio_download_failed: {
    retryable: true,
    message: "The transcription service could not download the recording.",
  },
  unsupported_audio_format: {
    retryable: false,
    message: "The recording's format could not be decoded. Please record again.",
  },
  no_speech_detected: { retryable: false, message: "No speech was found in the recording." },
  audio_too_short: { retryable: false, message: "The recording is too short to transcribe." },
  language_not_supported: {
    retryable: false,
    message: "The language of the recording is not supported.",
  },
  transcription_failed: { retryable: true, message: "Transcription failed." },
  transcript_not_found: {
    retryable: true,
    message: "The transcription job was not found at the provider; it will be submitted again.",
  },

  // Summarization outcomes.
  summary_refused: { retryable: false, message: "The summary model declined to summarize this visit." },
  summary_truncated: { retryable: true, message: "The summary was cut off before it was complete." },
  summary_invalid: { retryable: true, message: "The summary did not match the expected structure." },
  summary_content_filtered: { retryable: false, message: "The summary was blocked by the content filter." },
  transcript_empty: { retryable: false, message: "The transcript has no text to summarize." },
  transcript_too_long: {
    retryable: false,
    message: "The transcript is too long to summarize in one pass.",
  },

  // Provider faults, classified by HTTP status and error type.
  provider_rate_limited: { retryable: true, message: "The provider is rate limiting requests." },
  provider_unavailable: { retryable: true, message: "The provider is temporarily unavailable." },
  provider_timeout: { retryable: true, message: "The provider did not answer in time." },
  provider_network_error: { retryable: true, message: "The provider could not be reached." },
  provider_bad_response: { retryable: true, message: "The provider sent a response that could not be read." },
  provider_auth_failed: { retryable: false, message: "The provider rejected the service's credentials." },
  provider_bad_request: { retryable: false, message: "The provider rejected the request." },
  provider_quota_exhausted: {
    retryable: false,
    message: "The provider account has run out of quota.",
  },

  // Pipeline-level outcomes.
  attempts_exhausted: { retryable: true, message: "The stage failed after every automatic attempt." },
  deadline_exceeded: { retryable: true, message: "The visit did not finish in the allowed time." },
  config_invalid: { retryable: false, message: "The service is misconfigured." },
  internal_error: { retryable: true, message: "An unexpected error occurred." },
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
  cause?: unknown;
}

export class PipelineError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly detail: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly httpStatus: number | undefined;

  constructor(code: ErrorCode, options: PipelineErrorOptions = {}) {
    super(options.detail ? `${code}: ${options.detail}` : code, { cause: options.cause });
    this.name = "PipelineError";
    this.code = code;
    this.retryable = ERROR_CODES[code].retryable;
    this.detail = options.detail === undefined ? undefined : sanitizeDetail(options.detail);
    this.retryAfterMs = options.retryAfterMs;
    this.httpStatus = options.httpStatus;
  }
}

/** The error as stored on the visit for the app: stage, stable code, our own message, retryable. */
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

const URL_PATTERN = /\bhttps?:\/\/\S+/gi;
const DETAIL_LIMIT = 300;

/**
 * Provider messages can embed the signed audio URL (a credential) — e.g. AssemblyAI's
 * "Download error, unable to download https://…". Strip URLs and bound the length before
 * anything reaches a log line.
 */
export function sanitizeDetail(detail: string): string {
  const stripped = detail.replace(URL_PATTERN, "<url>");
  return stripped.length > DETAIL_LIMIT ? `${stripped.slice(0, DETAIL_LIMIT)}…` : stripped;
}
