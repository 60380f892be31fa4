// The retry button's request (POST {apiBaseUrl}/visits/{visitId}/retry) and every answer mapped to what the button does.

import { z } from "zod";
import { RESUME_STAGES, VISIT_STATUSES, isValidVisitId } from "./contract.js";
import type { ResumeStage, VisitStatus } from "./contract.js";
import { errorCode } from "./error-code.js";

export type RetryOutcome =
  /** The visit is moving again; keep watching it. */
  | { kind: "accepted"; status: VisitStatus; resumedStage: ResumeStage }
  /** Retrying cannot apply right now; hide or disable the button. */
  | { kind: "disabled"; reason: "already_processing" | "nothing_to_retry" | "not_retryable" }
  /** Rate limited; disable the button for this long (see RetryCountdown). */
  | { kind: "wait"; retryAfterSeconds: number; reason: "retry_too_soon" | "retry_quota_exceeded" }
  /**
   * Anything else: the API's code (`visit_not_found`, `internal`, …), or `sign_in_again`,
   * `network`, `bad_response` (an answer that does not match the contract).
   */
  | { kind: "error"; code: string; message: string; requestId: string | null };

export interface RetryTransport {
  /** The `api` function's base URL, without a trailing slash. */
  apiBaseUrl: string;
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** The signed-in user's Firebase ID token; rejects when nobody is signed in. */
  getIdToken: () => Promise<string>;
  /** Give up waiting for an answer after this long; default 30 s. */
  timeoutMs?: number;
}

const AcceptedBodySchema = z.object({
  visitId: z.string(),
  status: z.enum(VISIT_STATUSES),
  resumedStage: z.enum(RESUME_STAGES),
  retryCount: z.number().int().nonnegative(),
});

const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string().min(1),
    message: z.string(),
    requestId: z.string(),
    retryAfterSeconds: z.number().nonnegative().optional(),
  }),
});

const DEFAULT_TIMEOUT_MS = 30_000;

export async function retryVisit(transport: RetryTransport, visitId: string): Promise<RetryOutcome> {
  // The server answers 400 for these too; checking here saves a round trip and a token refresh.
  if (!isValidVisitId(visitId)) return failure("invalid_visit_id", `"${visitId}" is not a visit id.`);

  let idToken: string;
  try {
    idToken = await transport.getIdToken();
  } catch (error) {
    if (errorCode(error) === "auth/network-request-failed") return networkFailure(false);
    return failure("sign_in_again", "Please sign in again.");
  }

  // A controller and a timer rather than AbortSignal.timeout(), which React Native lacks.
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, transport.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let response: Response;
  let bodyText: string;
  try {
    response = await transport.fetch(`${transport.apiBaseUrl}/visits/${encodeURIComponent(visitId)}/retry`, {
      method: "POST",
      headers: { Authorization: `Bearer ${idToken}` },
      signal: abort.signal,
    });
    bodyText = await response.text();
  } catch {
    return networkFailure(timedOut);
  } finally {
    clearTimeout(timer);
  }
  return outcomeOf(response.status, response.headers, bodyText);
}

function outcomeOf(status: number, headers: Headers, bodyText: string): RetryOutcome {
  const body = parseJson(bodyText);
  if (status >= 200 && status < 300) {
    const accepted = AcceptedBodySchema.safeParse(body);
    if (!accepted.success) return badResponse(status);
    return { kind: "accepted", status: accepted.data.status, resumedStage: accepted.data.resumedStage };
  }

  const parsed = ErrorBodySchema.safeParse(body);
  // A 401 may come from in front of the function (with an HTML body); either way the token is no good.
  if (status === 401) return failure("sign_in_again", "Please sign in again.", parsed.data?.error.requestId ?? null);
  if (!parsed.success) return badResponse(status);

  const { code, message, requestId, retryAfterSeconds } = parsed.data.error;
  if (status === 409 && (code === "already_processing" || code === "nothing_to_retry" || code === "not_retryable")) {
    return { kind: "disabled", reason: code };
  }
  if (status === 429 && (code === "retry_too_soon" || code === "retry_quota_exceeded")) {
    const seconds = retryAfterSeconds ?? retryAfterHeaderSeconds(headers);
    if (seconds === null) return badResponse(status);
    return { kind: "wait", retryAfterSeconds: seconds, reason: code };
  }
  return failure(code, message, requestId);
}

/** `Retry-After` in its delta-seconds form, which is the form the API sends. */
function retryAfterHeaderSeconds(headers: Headers): number | null {
  const value = headers.get("Retry-After")?.trim();
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function failure(code: string, message: string, requestId: string | null = null): RetryOutcome {
  return { kind: "error", code, message, requestId };
}

function badResponse(status: number): RetryOutcome {
  return failure("bad_response", `The server's answer (HTTP ${status}) could not be understood. Please try again later.`);
}

function networkFailure(timedOut: boolean): RetryOutcome {
  return failure(
    "network",
    timedOut ? "The server did not answer in time. Check the connection and try again." : "The server could not be reached. Check the connection and try again.",
  );
}
