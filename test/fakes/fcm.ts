// Fake Firebase Cloud Messaging on loopback: the HTTP v1 send endpoint
// (`POST /v1/projects/{project}/messages:send`) as the Admin SDK's `messaging.send()` calls it —
// a Bearer access token, `{ message: { token, notification, data, android, apns } }` — answering
// `{ name: "projects/{project}/messages/{id}" }`, or FCM's errors for tokens marked stale: v1's
// `404 NOT_FOUND` with the FcmError `UNREGISTERED`, or the legacy `InvalidRegistration` string
// error (both are what the Admin SDK maps to its stale-token codes), and 500 INTERNAL on demand. FCM has no emulator; the
// functions reach this through FCM_EMULATOR_HOST (providers/fcm.ts).

import type { IncomingMessage, ServerResponse } from "node:http";
import { readJsonBody, recordRequest, sendJson, startLoopbackServer } from "./http.js";
import type { LoopbackServer, RecordedRequest } from "./http.js";

export interface SentPush {
  project: string;
  token: string;
  notification: { title?: string; body?: string } | undefined;
  data: Record<string, string> | undefined;
  /** The whole `message` as sent. */
  message: Record<string, unknown>;
}

const SEND_PATH = /^\/v1\/projects\/([^/]+)\/messages:send$/;
const FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

export class FakeFcm {
  readonly requests: RecordedRequest[] = [];
  readonly sent: SentPush[] = [];
  private readonly unregistered = new Set<string>();
  private readonly invalid = new Set<string>();
  private failing = 0;
  private counter = 0;

  private constructor(private readonly server: LoopbackServer) {}

  static async start(): Promise<FakeFcm> {
    let fake: FakeFcm | undefined;
    const server = await startLoopbackServer((req, res) => fake!.handle(req, res));
    fake = new FakeFcm(server);
    return fake;
  }

  /** `127.0.0.1:PORT`, for FCM_EMULATOR_HOST. */
  get host(): string {
    return this.server.origin.replace(/^http:\/\//, "");
  }

  /** The token's app was uninstalled: FCM answers 404 UNREGISTERED. */
  markUnregistered(token: string): void {
    this.unregistered.add(token);
  }

  /** The token is not one FCM issued: the legacy `InvalidRegistration` answer. */
  markInvalid(token: string): void {
    this.invalid.add(token);
  }

  /** The next `count` sends answer 500 INTERNAL (which the Admin SDK does not retry itself). */
  failNext(count: number): void {
    this.failing = count;
  }

  reset(): void {
    this.requests.length = 0;
    this.sent.length = 0;
    this.unregistered.clear();
    this.invalid.clear();
    this.failing = 0;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    this.requests.push(recordRequest(req, body, Date.now()));
    const path = SEND_PATH.exec(req.url ?? "");
    if (req.method !== "POST" || !path) return sendJson(res, v1Error(404, "NOT_FOUND", "Requested entity was not found."));
    if (!/^Bearer \S+$/.test(req.headers.authorization ?? "")) {
      return sendJson(res, v1Error(401, "UNAUTHENTICATED", "Request is missing required authentication credential."));
    }
    const message = body.kind === "json" && isObject(body.value) && isObject(body.value.message) ? body.value.message : null;
    const token = message && typeof message.token === "string" ? message.token : null;
    if (!message || !token) return sendJson(res, v1Error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", "INVALID_ARGUMENT"));
    if (this.failing > 0) {
      this.failing -= 1;
      return sendJson(res, v1Error(500, "INTERNAL", "Internal error encountered.", "INTERNAL"));
    }
    if (this.unregistered.has(token)) return sendJson(res, v1Error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"));
    if (this.invalid.has(token)) return sendJson(res, { status: 400, body: { error: "InvalidRegistration" } });
    const project = path[1] ?? "";
    this.sent.push({
      project,
      token,
      notification: isObject(message.notification) ? message.notification : undefined,
      data: isObject(message.data) ? stringValues(message.data) : undefined,
      message,
    });
    this.counter += 1;
    return sendJson(res, { status: 200, body: { name: `projects/${project}/messages/0:${Date.now()}%${this.counter}` } });
  }
}

function v1Error(status: number, grpcStatus: string, message: string, fcmErrorCode?: string) {
  return {
    status,
    body: {
      error: {
        code: status,
        message,
        status: grpcStatus,
        ...(fcmErrorCode ? { details: [{ "@type": FCM_ERROR_TYPE, errorCode: fcmErrorCode }] } : {}),
      },
    },
  };
}

function stringValues(record: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, String(value)]));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
