// The `api` HTTPS function: the app's retry button and a health check. One error shape for every
// failure — `{ "error": { "code", "message", "requestId", "retryAfterSeconds"? } }` — and no stack
// traces, ever. docs/api.md is the contract.

import { randomUUID } from "node:crypto";
import type { Request, Response } from "express";
import { getAuth } from "firebase-admin/auth";
import { logs } from "../logs.js";
import { TIMEOUTS, pipeline } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import { retryVisit } from "../stages/retry-visit.js";
import type { RetryRejection } from "../stages/retry-visit.js";
import { adminApp } from "../store/db.js";
import { asPipelineError } from "../visit/errors.js";
import { isValidVisitId } from "../visit/upload.js";

interface ApiError {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
}

// The retry endpoint takes no body; anything larger than this is refused unread.
const MAX_BODY_BYTES = 1024;
const SAFETY_MARGIN_MS = 10_000;

const REJECTIONS: Record<RetryRejection, Omit<ApiError, "retryAfterSeconds">> = {
  visit_not_found: { status: 404, code: "visit_not_found", message: "No such visit." },
  already_processing: {
    status: 409,
    code: "already_processing",
    message: "The visit is being processed; there is nothing to retry yet.",
  },
  nothing_to_retry: { status: 409, code: "nothing_to_retry", message: "The visit is complete." },
  not_retryable: {
    status: 409,
    code: "not_retryable",
    message: "Retrying cannot fix this failure; upload a new recording.",
  },
  retry_too_soon: { status: 429, code: "retry_too_soon", message: "This visit was retried moments ago." },
  retry_quota_exceeded: { status: 429, code: "retry_quota_exceeded", message: "Too many retries in the last hour." },
};

function sendError(res: Response, requestId: string, error: ApiError): void {
  if (error.retryAfterSeconds !== undefined) res.set("Retry-After", String(error.retryAfterSeconds));
  res.status(error.status).json({
    error: {
      code: error.code,
      message: error.message,
      requestId,
      ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    },
  });
}

type Route = { name: "health" } | { name: "retry"; rawVisitId: string } | { name: "unknown" };

function matchRoute(path: string): Route {
  const trimmed = path.replace(/\/+$/, "") || "/";
  if (trimmed === "/health") return { name: "health" };
  const retry = /^\/visits\/([^/]+)\/retry$/.exec(trimmed);
  if (retry) return { name: "retry", rawVisitId: retry[1] ?? "" };
  return { name: "unknown" };
}

const ALLOWED_METHOD: Record<"health" | "retry", string> = { health: "GET", retry: "POST" };

export async function handleApiRequest(req: Request, res: Response): Promise<void> {
  const requestId = randomUUID();
  res.set("X-Request-Id", requestId);
  res.set("Cache-Control", "no-store");
  const route = matchRoute(req.path);
  try {
    if (route.name === "unknown") {
      return sendError(res, requestId, { status: 404, code: "not_found", message: "No such endpoint." });
    }
    if (req.method !== ALLOWED_METHOD[route.name]) {
      res.set("Allow", ALLOWED_METHOD[route.name]);
      return sendError(res, requestId, {
        status: 405,
        code: "method_not_allowed",
        message: `Use ${ALLOWED_METHOD[route.name]}.`,
      });
    }
    if (bodySize(req) > MAX_BODY_BYTES) {
      return sendError(res, requestId, { status: 413, code: "payload_too_large", message: "The request body is too large." });
    }
    if (route.name === "health") {
      res.status(200).json(await healthReport(pipeline()));
      return;
    }
    await handleRetry(req, res, requestId, route.rawVisitId);
  } catch (thrown) {
    const error = asPipelineError(thrown);
    logs.apiRequestFailed(requestId, route.name, `${error.code}: ${error.detail ?? ""}`);
    if (!res.headersSent) {
      sendError(res, requestId, { status: 500, code: "internal", message: "Something went wrong; try again later." });
    }
  }
}

async function handleRetry(req: Request, res: Response, requestId: string, rawVisitId: string): Promise<void> {
  const visitId = decodePathSegment(rawVisitId);
  if (visitId === null || !isValidVisitId(visitId)) {
    return sendError(res, requestId, { status: 400, code: "invalid_visit_id", message: "The visit id is not valid." });
  }
  const uid = await authenticate(req);
  if (!uid) {
    return sendError(res, requestId, {
      status: 401,
      code: "unauthenticated",
      message: "Sign in again: a valid Firebase ID token is required.",
    });
  }
  const startedMs = Date.now();
  const outcome = await retryVisit(pipeline(), { visitId, uid }, startedMs + TIMEOUTS.api * 1000 - SAFETY_MARGIN_MS);
  if (outcome.kind === "rejected") {
    logs.retryRejected(visitId, outcome.code);
    return sendError(res, requestId, {
      ...REJECTIONS[outcome.code],
      ...(outcome.retryAfterSeconds !== undefined ? { retryAfterSeconds: outcome.retryAfterSeconds } : {}),
    });
  }
  res.status(202).json({
    visitId: outcome.visitId,
    status: outcome.status,
    resumedStage: outcome.resumedStage,
    retryCount: outcome.retryCount,
    requestId,
  });
}

/** The caller's uid from `Authorization: Bearer <Firebase ID token>`, revocation checked; else null. */
async function authenticate(req: Request): Promise<string | null> {
  const header = req.get("authorization") ?? "";
  const token = /^Bearer ([A-Za-z0-9._-]{20,4096})$/i.exec(header.trim())?.[1];
  if (!token) return null;
  try {
    const decoded = await getAuth(adminApp()).verifyIdToken(token, true);
    return decoded.uid;
  } catch (error) {
    // Invalid, expired, revoked or for another project: all mean "sign in again". Anything else
    // (the Auth service unreachable) is ours, not the caller's.
    if (isAuthTokenError(error)) return null;
    throw error;
  }
}

function isAuthTokenError(error: unknown): boolean {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  return code.startsWith("auth/") && code !== "auth/internal-error";
}

function decodePathSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

function bodySize(req: Request): number {
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  if (raw) return raw.length;
  const declared = Number(req.get("content-length") ?? 0);
  return Number.isFinite(declared) ? declared : Number.POSITIVE_INFINITY;
}

async function healthReport(p: Pipeline) {
  const [assemblyai, openai] = await Promise.all([p.breaker().state("assemblyai"), p.breaker().state("openai")]);
  const breakers = Object.fromEntries(
    [assemblyai, openai].map((b) => [b.provider, { state: b.state, openUntil: b.openUntil?.toISOString() ?? null }]),
  );
  const degraded = assemblyai.state !== "closed" || openai.state !== "closed";
  return { status: degraded ? "degraded" : "ok", breakers };
}
