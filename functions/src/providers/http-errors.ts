// Classification of provider transport failures into pipeline error codes, by HTTP status and
// error type — never by message text. Shared by the AssemblyAI and OpenAI modules.

import { PipelineError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";

export function codeForHttpStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return "provider_auth_failed";
  if (status === 408) return "provider_timeout";
  if (status === 429) return "provider_rate_limited";
  if (status === 409 || status === 425) return "provider_unavailable";
  if (status >= 500) return status === 504 ? "provider_timeout" : "provider_unavailable";
  return "provider_bad_request";
}

/**
 * Retry-After is either delta-seconds or an HTTP date; OpenAI also sends `retry-after-ms`.
 * Returns milliseconds, or undefined when absent or unreadable.
 */
export function parseRetryAfter(headers: Headers | undefined, nowMs: number): number | undefined {
  if (!headers) return undefined;
  const milliseconds = headers.get("retry-after-ms");
  if (milliseconds !== null && /^\d+(\.\d+)?$/.test(milliseconds.trim())) return Math.ceil(Number(milliseconds));
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

// Connection errors that happen before a request is sent: the provider never saw it.
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);

/** True when the failed request certainly did not reach the provider. */
function requestNeverSent(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

/**
 * Whether a failed create-style request certainly made nothing at the provider: it was refused
 * (4xx, including 429) or unavailable (503), or it never left this machine. Anything else — a
 * timeout, a reset, a 500/502/504, an unreadable success — may have created the resource.
 */
export function certainlyNotCreated(error: PipelineError): boolean {
  // Refused by our own request budget before anything was sent.
  if (error.code === "request_budget_exhausted") return true;
  if (error.httpStatus !== undefined) return error.httpStatus === 503 || (error.httpStatus >= 400 && error.httpStatus < 500);
  return error.code === "provider_network_error" && requestNeverSent(error.cause);
}

/**
 * A failure below HTTP: the request timed out (our AbortSignal), the connection failed or was
 * reset, or the body was not JSON.
 */
export function classifyTransportError(error: unknown): PipelineError {
  if (error instanceof PipelineError) return error;
  const name = error instanceof Error ? error.name : "";
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (name === "TimeoutError" || name === "AbortError") {
    return new PipelineError("provider_timeout", { detail, cause: error });
  }
  if (error instanceof SyntaxError) return new PipelineError("provider_bad_response", { detail, cause: error });
  if (error instanceof TypeError) return new PipelineError("provider_network_error", { detail, cause: error });
  return new PipelineError("provider_network_error", { detail, cause: error });
}
