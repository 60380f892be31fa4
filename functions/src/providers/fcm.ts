// Push notifications through Firebase Cloud Messaging (the HTTP v1 API, `projects/{p}/messages:send`,
// through the Admin SDK's messaging). The only module that knows FCM: it implements PushSender
// (providers/ports.ts) and classifies FCM's errors once.
//
// FCM has no emulator. The Admin SDK's single-message `send()` goes over HTTP/1.1 through the app's
// `httpAgent` to the fixed host fcm.googleapis.com, so a local runtime can hand it an agent that
// connects to a loopback server speaking the same API (FCM_EMULATOR_HOST, loopback only): the real
// SDK then builds, sends and parses every request, and only the socket's destination differs.

import { Agent } from "node:https";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { initializeApp, getApps } from "firebase-admin/app";
import type { App, Credential } from "firebase-admin/app";
import { getMessaging } from "firebase-admin/messaging";
import type { Messaging } from "firebase-admin/messaging";
import { PipelineError } from "../visit/errors.js";
import type { PushMessage, PushSender } from "./ports.js";

/** FCM's answers that mean "this token will never work again": the token is removed. */
const STALE_TOKEN_CODES = new Set(["messaging/registration-token-not-registered", "messaging/invalid-registration-token"]);

/** Answers worth another try later (FCM's own advice for 429/5xx); the sender does not retry them. */
const TRANSIENT_CODES = new Set(["messaging/server-unavailable", "messaging/internal-error", "messaging/message-rate-exceeded", "messaging/device-message-rate-exceeded"]);

export function createFcmSender(messaging: Messaging): PushSender {
  return {
    async send(token: string, message: PushMessage) {
      try {
        await messaging.send({
          token,
          notification: { title: message.title, body: message.body },
          data: message.data,
          android: { priority: "high" },
          apns: { payload: { aps: { sound: "default" } } },
        });
        return "sent";
      } catch (error) {
        const code = fcmErrorCode(error);
        if (code && STALE_TOKEN_CODES.has(code)) return "token_unregistered";
        throw new PipelineError(code && TRANSIENT_CODES.has(code) ? "provider_unavailable" : "internal_error", {
          // The code only: FCM's message can quote the token.
          detail: `fcm ${code ?? "request failed"}`,
          cause: error,
        });
      }
    },
  };
}

function fcmErrorCode(error: unknown): string | null {
  if (typeof error !== "object" || error === null || !("code" in error)) return null;
  return typeof error.code === "string" ? error.code : null;
}

const LOCAL_APP_NAME = "fcm-local";
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost):(\d{1,5})$/;

/**
 * The messaging client: the default app's in production; under FCM_EMULATOR_HOST (a loopback
 * `host:port`, for local runtimes only) an app whose HTTP agent connects there, with a stand-in
 * access token (the local server checks that one is sent, not what it is).
 */
export function fcmMessaging(defaultApp: App, emulatorHost: string | undefined): Messaging {
  if (!emulatorHost) return getMessaging(defaultApp);
  const match = LOOPBACK_HOST.exec(emulatorHost);
  if (!match) throw new PipelineError("config_invalid", { detail: "FCM_EMULATOR_HOST must be a loopback host:port" });
  const existing = getApps().find((app) => app.name === LOCAL_APP_NAME);
  const app =
    existing ??
    initializeApp(
      { projectId: defaultApp.options.projectId ?? process.env.GCLOUD_PROJECT, credential: LOCAL_CREDENTIAL, httpAgent: loopbackAgent(Number(match[2])) },
      LOCAL_APP_NAME,
    );
  return getMessaging(app);
}

const LOCAL_CREDENTIAL: Credential = {
  getAccessToken: () => Promise.resolve({ access_token: "local-fcm-access-token", expires_in: 3600 }),
};

/** An https agent whose sockets are plain TCP connections to 127.0.0.1:port (the local FCM server). */
class LoopbackAgent extends Agent {
  constructor(private readonly port: number) {
    super({ keepAlive: false });
  }

  override createConnection(): Duplex {
    return connect(this.port, "127.0.0.1");
  }
}

function loopbackAgent(port: number): Agent {
  return new LoopbackAgent(port);
}
