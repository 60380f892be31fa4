// The `api` HTTPS function: a small router with one error shape for every failure,
// `{ "error": { "code", "message", "requestId" } }`, and no stack traces, ever.

import { randomUUID } from "node:crypto";
import type { Request, Response } from "express";

export interface ApiError {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
}

export function sendError(res: Response, requestId: string, error: ApiError): void {
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

export function handleApiRequest(req: Request, res: Response): void {
  const requestId = randomUUID();
  res.set("X-Request-Id", requestId);
  res.set("Cache-Control", "no-store");
  const path = req.path.replace(/\/+$/, "") || "/";
  if (path === "/health") {
    if (req.method !== "GET") {
      res.set("Allow", "GET");
      return sendError(res, requestId, { status: 405, code: "method_not_allowed", message: "Use GET." });
    }
    res.status(200).json({ status: "ok" });
    return;
  }
  sendError(res, requestId, { status: 404, code: "not_found", message: "No such endpoint." });
}
