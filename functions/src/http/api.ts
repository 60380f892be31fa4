// The `api` HTTPS function: the app's retry button, deletion, export, a health check and
// AssemblyAI's webhook deliveries, routed
// by express. One error shape for every failure — `{ "error": { "code", "message", "requestId",
// "retryAfterSeconds"? } }` — and no stack traces, ever. docs/api.md is the contract.

import { randomUUID } from "node:crypto";
import express from "express";
import type { NextFunction, Request, Response } from "express";
import { getAppCheck } from "firebase-admin/app-check";
import { getAuth } from "firebase-admin/auth";
import { z } from "zod";
import { logs } from "../logs.js";
import { WEBHOOK_AUTH_HEADER, WEBHOOK_PATH } from "../providers/assemblyai-webhook.js";
import { TIMEOUTS, pipeline } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import { deleteUserData, deleteVisit } from "../stages/delete-visit.js";
import { exportUserData } from "../stages/export-user-data.js";
import { readinessReport } from "../stages/readiness.js";
import { retryVisit } from "../stages/retry-visit.js";
import { receiveTranscriptWebhook } from "../stages/transcript-webhook.js";
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

// No user endpoint takes a body, and AssemblyAI's webhook body is `{ transcript_id, status }`:
// anything larger than this is refused unread.
const MAX_BODY_BYTES = 1024;
// AssemblyAI counts a delivery unanswered after 10 s: the check it starts gets this long, and the
// answer goes out by the second limit even if the check is still running (it is fenced and leased
// like any check, so finishing later is safe; the checker takes over a check that never finishes).
// Half the 10 s: a busy instance's event loop can be seconds late (the chaos suite saw 2 s).
const WEBHOOK_WORK_MS = 4_000;
const WEBHOOK_ANSWER_MS = 5_000;
const SAFETY_MARGIN_MS = 10_000;

const REJECTIONS: Record<RetryRejection, Omit<ApiError, "retryAfterSeconds">> = {
  visit_not_found: { status: 404, code: "visit_not_found", message: "No such visit." },
  audio_deleted: {
    status: 409,
    code: "audio_deleted",
    message: "The recording was deleted after its retention period; upload it again to transcribe it.",
  },
  upload_quota_exceeded: {
    status: 429,
    code: "upload_quota_exceeded",
    message: "Too many recordings today; try again after Retry-After seconds.",
  },
  too_many_active_visits: {
    status: 429,
    code: "too_many_active_visits",
    message: "Other visits are still being processed; try again when one of them is done.",
  },
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

const ERRORS = {
  notFound: { status: 404, code: "not_found", message: "No such endpoint." },
  tooLarge: { status: 413, code: "payload_too_large", message: "The request body is too large." },
  invalidVisitId: { status: 400, code: "invalid_visit_id", message: "The visit id is not valid." },
  unauthenticated: { status: 401, code: "unauthenticated", message: "Sign in again: a valid Firebase ID token is required." },
  forbidden: { status: 403, code: "forbidden", message: "This endpoint is for operators." },
  appCheckFailed: { status: 401, code: "app_check_failed", message: "A valid App Check token is required (X-Firebase-AppCheck)." },
  appCheckReplayed: { status: 401, code: "app_check_replayed", message: "This App Check token was already used; get a fresh one." },
  visitNotFound: REJECTIONS.visit_not_found,
  webhookUnauthenticated: {
    status: 401,
    code: "webhook_unauthenticated",
    message: `A webhook delivery needs its visit (?visit=) and that visit's secret in ${WEBHOOK_AUTH_HEADER}.`,
  },
  internal: { status: 500, code: "internal", message: "Something went wrong; try again later." },
} satisfies Record<string, ApiError>;

/** Per request: its id (in the answer and the logs) and, once authenticated, the caller. */
interface Locals {
  requestId: string;
  uid: string;
  visitId: string;
  deadlineMs: number;
}

function locals(res: Response): Locals {
  return res.locals as Locals;
}

function sendError(res: Response, error: ApiError): void {
  if (error.retryAfterSeconds !== undefined) res.set("Retry-After", String(error.retryAfterSeconds));
  res.status(error.status).json({
    error: {
      code: error.code,
      message: error.message,
      requestId: locals(res).requestId,
      ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    },
  });
}

type Handler = (req: Request, res: Response) => Promise<void>;

function app(): express.Express {
  const api = express();
  api.disable("x-powered-by");
  // The Functions runtime has parsed the body already; every route here takes none.
  api.use(startRequest);
  // Liveness for anyone, without touching Firestore; readiness details for operators only.
  route(api, "/health", { GET: (_req, res) => Promise.resolve(void res.status(200).json({ status: "ok" })) });
  route(api, "/health/ready", { GET: withOperator((_req, res) => readiness(pipeline(), res)) });
  route(api, "/visits/:visitId/retry", { POST: withVisit(retry, "consume") });
  route(api, "/visits/:visitId", { DELETE: withVisit(removeVisit, "consume") });
  route(api, "/me", { DELETE: withUser(removeUser, "consume") });
  route(api, "/me/export", { GET: withUser(exportData, "verify") });
  route(api, WEBHOOK_PATH, { POST: receiveWebhook });
  api.use((_req, res) => sendError(res, ERRORS.notFound));
  api.use((thrown: unknown, req: Request, res: Response, _next: NextFunction) => {
    // express's own 400: a path parameter with a malformed percent escape.
    if (isClientError(thrown)) return sendError(res, ERRORS.invalidVisitId);
    const error = asPipelineError(thrown);
    logs.apiRequestFailed(locals(res).requestId, req.route ? String((req.route as { path: unknown }).path) : "unknown", `${error.code}: ${error.detail ?? ""}`);
    if (!res.headersSent) sendError(res, ERRORS.internal);
    else res.end();
  });
  return api;
}

/** One path: its methods, and 405 with `Allow` for any other. */
function route(api: express.Express, path: string, methods: Partial<Record<"GET" | "POST" | "DELETE", Handler>>): void {
  const allowed = Object.keys(methods).join(", ");
  api.all(path, (req, res, next) => {
    const handler = methods[req.method as keyof typeof methods];
    if (!handler) {
      res.set("Allow", allowed);
      return sendError(res, { status: 405, code: "method_not_allowed", message: `Use ${allowed}.` });
    }
    if (bodySize(req) > MAX_BODY_BYTES) return sendError(res, ERRORS.tooLarge);
    handler(req, res).catch(next);
  });
}

function startRequest(req: Request, res: Response, next: NextFunction): void {
  const requestId = randomUUID();
  Object.assign(res.locals, { requestId, deadlineMs: Date.now() + TIMEOUTS.api * 1000 - SAFETY_MARGIN_MS });
  res.set("X-Request-Id", requestId);
  res.set("Cache-Control", "no-store");
  // A trailing slash is ignored.
  if (req.url.length > 1 && req.path.endsWith("/")) req.url = req.url.replace(/\/+(?=\?|$)/, "");
  next();
}

/** Authenticated, with a valid visit id (checked first: a malformed id is 400 even without a token). */
function withVisit(handler: Handler, appCheck: AppCheckUse): Handler {
  return async (req, res) => {
    // express has decoded the segment (a malformed escape is a 400 in the error handler).
    const visitId = String(req.params.visitId ?? "");
    if (!isValidVisitId(visitId)) return sendError(res, ERRORS.invalidVisitId);
    locals(res).visitId = visitId;
    await withUser(handler, appCheck)(req, res);
  };
}

/** A state-changing call consumes its App Check token (a replay is refused); a read only verifies it. */
type AppCheckUse = "consume" | "verify";

function withUser(handler: Handler, appCheck: AppCheckUse): Handler {
  return async (req, res) => {
    const uid = await authenticate(req);
    if (!uid) return sendError(res, ERRORS.unauthenticated);
    if (pipeline().config.enforceAppCheck) {
      const refusal = await checkAppCheck(req, appCheck);
      if (refusal) return sendError(res, refusal);
    }
    locals(res).uid = uid;
    await handler(req, res);
  };
}

async function retry(_req: Request, res: Response): Promise<void> {
  const { visitId, uid, deadlineMs, requestId } = locals(res);
  const outcome = await retryVisit(pipeline(), { visitId, uid }, deadlineMs);
  if (outcome.kind === "rejected") {
    logs.retryRejected(visitId, outcome.code);
    return sendError(res, {
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

async function removeVisit(_req: Request, res: Response): Promise<void> {
  const { visitId, uid, deadlineMs, requestId } = locals(res);
  const outcome = await deleteVisit(pipeline(), { visitId, uid, reason: "user" }, deadlineMs);
  if (outcome.kind === "not_found") return sendError(res, ERRORS.visitNotFound);
  res.status(200).json({
    visitId,
    deleted: true,
    alreadyDeleted: outcome.alreadyDeleted,
    removed: outcome.removed,
    pendingProviderDeletes: outcome.pendingProviderDeletes,
    requestId,
  });
}

async function removeUser(_req: Request, res: Response): Promise<void> {
  const { uid, deadlineMs, requestId } = locals(res);
  const result = await deleteUserData(pipeline(), { uid, reason: "user" }, deadlineMs);
  // Not finished in time: the rest is deleted by the checker; the app may call again to see.
  res.status(result.complete ? 200 : 202).json({ ...result, requestId });
}

async function exportData(req: Request, res: Response): Promise<void> {
  const { uid, deadlineMs, requestId } = locals(res);
  const after = typeof req.query.after === "string" ? req.query.after : null;
  if (after !== null && !isValidVisitId(after)) return sendError(res, ERRORS.invalidVisitId);
  res.status(200).type("application/json").set("Content-Disposition", 'attachment; filename="visits-export.json"');
  await exportUserData(pipeline(), { uid, requestId, after }, (chunk) => writeChunk(res, chunk), deadlineMs);
  res.end();
}

/** Writes one piece of a streamed answer, waiting when the client reads slowly. */
function writeChunk(res: Response, chunk: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.write(chunk)) resolve();
    else res.once("drain", () => resolve());
  });
}

const WebhookBodySchema = z.object({ transcript_id: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/), status: z.string().max(64) });

/**
 * AssemblyAI's delivery: `?visit=<id>` names the visit, the header carries its secret. 401 for a
 * caller without the secret (AssemblyAI always sends it, so that is someone else); 200 for every
 * authenticated delivery, used or not — AssemblyAI never retries a 4xx, and there is nothing to retry.
 */
async function receiveWebhook(req: Request, res: Response): Promise<void> {
  const { requestId } = locals(res);
  const visitId = typeof req.query.visit === "string" ? req.query.visit : "";
  if (!isValidVisitId(visitId)) {
    logs.webhookRejected(null, "visit_id_invalid");
    return sendError(res, ERRORS.webhookUnauthenticated);
  }
  const body = WebhookBodySchema.safeParse(webhookBody(req));
  const work = receiveTranscriptWebhook(
    pipeline(),
    { visitId, presentedSecret: req.get(WEBHOOK_AUTH_HEADER) ?? null, transcriptId: body.success ? body.data.transcript_id : null },
    Date.now() + WEBHOOK_WORK_MS,
  );
  const late = Symbol("late");
  let timer: NodeJS.Timeout | undefined;
  const answered = await Promise.race([work, new Promise<typeof late>((resolve) => (timer = setTimeout(() => resolve(late), WEBHOOK_ANSWER_MS)))]);
  clearTimeout(timer);
  if (answered === late) {
    // Still checking: the delivery was authenticated or not, but either way it is answered in time.
    work.catch((thrown: unknown) => logs.apiRequestFailed(requestId, WEBHOOK_PATH, asPipelineError(thrown).code));
    res.status(200).json({ received: true, outcome: "checking", requestId });
    return;
  }
  if (!answered.authenticated) return sendError(res, ERRORS.webhookUnauthenticated);
  res.status(200).json({ received: true, outcome: answered.outcome, requestId });
}

/** The body as JSON: parsed by the platform for `application/json`, else the raw bytes (which may be anything). */
function webhookBody(req: Request): unknown {
  const body: unknown = req.body;
  const text = Buffer.isBuffer(body) ? body.toString("utf8") : typeof body === "string" ? body : null;
  if (text === null) return body;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** A signed-in operator: an ID token whose custom claims carry `operator: true` (set with the Admin SDK). */
function withOperator(handler: Handler): Handler {
  return async (req, res) => {
    const caller = await authenticateToken(req);
    if (!caller) return sendError(res, ERRORS.unauthenticated);
    if (caller.operator !== true) return sendError(res, ERRORS.forbidden);
    await handler(req, res);
  };
}

async function readiness(p: Pipeline, res: Response): Promise<void> {
  res.status(200).json(await readinessReport(p));
}

/** The caller's uid from `Authorization: Bearer <Firebase ID token>`, revocation checked; else null. */
async function authenticate(req: Request): Promise<string | null> {
  return (await authenticateToken(req))?.uid ?? null;
}

async function authenticateToken(req: Request): Promise<{ uid: string; operator?: unknown } | null> {
  const header = req.get("authorization") ?? "";
  const token = /^Bearer ([A-Za-z0-9._-]{20,4096})$/i.exec(header.trim())?.[1];
  if (!token) return null;
  try {
    return await getAuth(adminApp()).verifyIdToken(token, true);
  } catch (error) {
    // Invalid, expired, revoked or for another project: all mean "sign in again". Anything else
    // (the Auth service unreachable) is ours, not the caller's.
    if (isAuthTokenError(error)) return null;
    throw error;
  }
}

/**
 * `onRequest` does not check App Check (only callable functions do): the header is verified here
 * with the Admin SDK, and consumed on state-changing calls so a captured token cannot be replayed.
 */
async function checkAppCheck(req: Request, use: AppCheckUse): Promise<ApiError | null> {
  const token = req.get("x-firebase-appcheck")?.trim() ?? "";
  if (!/^[A-Za-z0-9._-]{20,4096}$/.test(token)) return ERRORS.appCheckFailed;
  try {
    const verified = await getAppCheck(adminApp()).verifyToken(token, use === "consume" ? { consume: true } : undefined);
    return verified.alreadyConsumed ? ERRORS.appCheckReplayed : null;
  } catch (error) {
    // An invalid, expired or other-project token; anything else is ours, not the caller's.
    const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
    if (code.startsWith("app-check/") && code !== "app-check/internal-error") return ERRORS.appCheckFailed;
    throw error;
  }
}

function isAuthTokenError(error: unknown): boolean {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
  return code.startsWith("auth/") && code !== "auth/internal-error";
}

function isClientError(error: unknown): boolean {
  return typeof error === "object" && error !== null && "status" in error && error.status === 400;
}

function bodySize(req: Request): number {
  const raw = (req as Request & { rawBody?: Buffer }).rawBody;
  if (raw) return raw.length;
  const declared = Number(req.get("content-length") ?? 0);
  return Number.isFinite(declared) ? declared : Number.POSITIVE_INFINITY;
}

let instanceApp: express.Express | undefined;

/** The handler `onRequest` serves: the express app, built once per instance. */
export function handleApiRequest(req: Request, res: Response): void {
  instanceApp ??= app();
  instanceApp(req, res);
}
