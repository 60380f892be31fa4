// What the stages need from the outside world, built once per instance from the validated
// configuration: the clock, the providers, the audio URL signer and the summarization queue.
// Stages take it as an argument so a test can hand them another clock or instance identity.

import { randomUUID } from "node:crypto";
import { getStorage } from "firebase-admin/storage";
import { assemblyAiApiKey, getConfig, openAiApiKey, requireSecret } from "./config.js";
import type { Config } from "./config.js";
import { enqueueSummarization } from "./dispatch/summarization-queue.js";
import type { EnqueueResult, SummarizeTask } from "./dispatch/summarization-queue.js";
import { webhookSecret } from "./providers/assemblyai-webhook.js";
import { createFcmSender, fcmMessaging } from "./providers/fcm.js";
import { speechToTextOnFirstUse, summarizerOnFirstUse } from "./providers/lazy-adapters.js";
import type { PushSender, SpeechToText, Summarizer } from "./providers/ports.js";
import { currentTime } from "./runtime-hooks.js";
import { breakerSettingsFrom } from "./providers/outage-policy.js";
import { createFirestoreBreaker } from "./store/breaker.js";
import type { OutageBreaker } from "./store/breaker.js";
import { adminApp } from "./store/db.js";
import { RequestBudget } from "./steps/request-budget.js";
import { logs } from "./logs.js";
import { PipelineError } from "./visit/errors.js";
import type { AudioRef } from "./visit/model.js";

export interface Pipeline {
  config: Config;
  now(): Date;
  /** Identifies this instance in leases and claims (for diagnosing takeovers). */
  owner: string;
  speech(): SpeechToText;
  summarizer(): Summarizer;
  /** Push notifications to the app (FCM). */
  pushSender(): PushSender;
  /** The provider outage breaker shared by all instances (state in Firestore). */
  breaker(): OutageBreaker;
  /** AssemblyAI's request budget, shared by all callers (blocks claimed in Firestore). */
  requestBudget(): RequestBudget;
  signAudioUrl(audio: AudioRef, expiresAt: Date): Promise<string>;
  enqueueSummarization(task: SummarizeTask): Promise<EnqueueResult>;
  /** The visit's AssemblyAI webhook secret (derived from the API key; see providers/assemblyai-webhook.ts). */
  webhookSecret(visitId: string): string;
}

/** Function timeouts, in seconds: the platform limits each trigger kind differently. */
export const TIMEOUTS = {
  upload: 120,
  checker: 120,
  summarize: 900,
  api: 60,
  retention: 300,
  accountDeletion: 540,
} as const;

function createPipeline(config: Config = getConfig()): Pipeline {
  let speech: SpeechToText | undefined;
  let summarizer: Summarizer | undefined;
  let pushSender: PushSender | undefined;
  const breaker = createFirestoreBreaker(breakerSettingsFrom(config), {
    opened: (provider, failures, untilMs) => logs.breakerOpened(provider, failures, new Date(untilMs)),
    closed: (provider) => logs.breakerClosed(provider),
    probeStarted: (provider) => logs.breakerProbeStarted(provider),
  });
  const owner = `${process.env.K_REVISION ?? "local"}/${randomUUID().slice(0, 8)}`;
  const requestBudget = new RequestBudget({
    provider: "assemblyai",
    requestsPerMinute: config.assemblyAiRequestsPerMinute,
    owner,
    clock: currentTime,
    observer: {
      paused: (provider, untilMs) => logs.requestBudgetPaused(provider, new Date(untilMs)),
      windowSpent: (provider, pool, windowStartMs, spent) => logs.requestBudgetWindowSpent(provider, pool, new Date(windowStartMs), spent),
    },
  });
  return {
    config,
    now: currentTime,
    owner,
    speech() {
      speech ??= speechToTextOnFirstUse({
        apiKey: requireSecret(assemblyAiApiKey),
        baseUrl: config.assemblyAiBaseUrl,
        timeoutMs: config.assemblyAiTimeoutSeconds * 1000,
        speechModels: config.speechModelList,
        transcription: config.transcription,
        beforeRequest: () => requestBudget.beforeRequest(),
      });
      return speech;
    },
    summarizer() {
      summarizer ??= summarizerOnFirstUse({
        apiKey: requireSecret(openAiApiKey),
        baseUrl: config.openAiBaseUrl,
        model: config.openAiModel,
        timeoutMs: config.openAiTimeoutSeconds * 1000,
      });
      return summarizer;
    },
    pushSender() {
      pushSender ??= createFcmSender(fcmMessaging(adminApp(), config.fcmEmulatorHost));
      return pushSender;
    },
    breaker: () => breaker,
    requestBudget: () => requestBudget,
    signAudioUrl: (audio, expiresAt) => signReadUrl(audio, expiresAt),
    enqueueSummarization: (task) =>
      enqueueSummarization(task, { region: config.region, dispatchDeadlineSeconds: TIMEOUTS.summarize }),
    webhookSecret: (visitId) => webhookSecret(requireSecret(assemblyAiApiKey), visitId),
  };
}

/**
 * Under the Firebase Storage emulator there is nothing to sign with (no service account key) and no
 * signature to check: the emulator serves the object at its media URL.
 */
function storageEmulatorMediaUrl(host: string, audio: AudioRef): string {
  const origin = /^https?:\/\//.test(host) ? host.replace(/\/+$/, "") : `http://${host}`;
  return `${origin}/v0/b/${encodeURIComponent(audio.bucket)}/o/${encodeURIComponent(audio.path)}?alt=media`;
}

let instancePipeline: Pipeline | undefined;

/** The instance's pipeline, built on first use. */
export function pipeline(): Pipeline {
  instancePipeline ??= createPipeline();
  return instancePipeline;
}

/** Rebuild from the current environment; for local runtimes that change it between runs. */
export function resetPipeline(): void {
  instancePipeline = undefined;
}

async function signReadUrl(audio: AudioRef, expiresAt: Date): Promise<string> {
  // Only the Firebase emulator suite's variable selects the media URL (for functions it sets both it
  // and STORAGE_EMULATOR_HOST=http://host). STORAGE_EMULATOR_HOST alone — the local runtime's fake
  // JSON API — keeps real v4 signing, done locally with the service-account key; the URL then names
  // that host (http://127.0.0.1:PORT/bucket/path?X-Goog-…) instead of storage.googleapis.com.
  const firebaseEmulatorHost = process.env.FIREBASE_STORAGE_EMULATOR_HOST;
  if (firebaseEmulatorHost) return storageEmulatorMediaUrl(firebaseEmulatorHost, audio);
  try {
    const [url] = await getStorage(adminApp())
      .bucket(audio.bucket)
      .file(audio.path)
      .getSignedUrl({ version: "v4", action: "read", expires: expiresAt });
    return url;
  } catch (error) {
    // In production this is usually a missing "Service Account Token Creator" role (signBlob).
    throw new PipelineError("internal_error", {
      detail: `could not sign the audio URL: ${error instanceof Error ? error.message : String(error)}`,
      cause: error,
    });
  }
}
