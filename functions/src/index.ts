// The deployed functions. Their export names are a public contract (docs, ops and monitoring
// refer to them). Each trigger only adapts its event and calls a stage.

import * as functionsV1 from "firebase-functions/v1";
import { setGlobalOptions } from "firebase-functions/v2";
import { onRequest } from "firebase-functions/v2/https";
import { onSchedule } from "firebase-functions/v2/scheduler";
import { onObjectFinalized } from "firebase-functions/v2/storage";
import { onTaskDispatched } from "firebase-functions/v2/tasks";
import { z } from "zod";
import { assemblyAiApiKey, functionsRegion, openAiApiKey } from "./config.js";
import type { SummarizeTask } from "./dispatch/summarization-queue.js";
import { loadOnFirstUse } from "./load-on-first-use.js";
import { logs } from "./logs.js";
import { TIMEOUTS, pipeline } from "./pipeline.js";
import { acceptUpload } from "./stages/accept-upload.js";
import { checkDueVisits } from "./stages/check-due-visits.js";
import { deleteUserData } from "./stages/delete-visit.js";
import { deleteExpiredRecordings } from "./stages/retention.js";
import { summarizeVisit as summarizeVisitStage } from "./stages/summarize.js";
import { isValidVisitId } from "./visit/upload.js";

setGlobalOptions({ region: functionsRegion, maxInstances: 50 });

// Stop starting provider calls this long before the platform kills the function.
const SAFETY_MARGIN_MS = 20_000;

function deadlineFrom(startedMs: number, timeoutSeconds: number): number {
  return startedMs + timeoutSeconds * 1000 - SAFETY_MARGIN_MS;
}

/** A recording landed in the default bucket: validate it, submit it, return at once. */
export const onAudioUploaded = onObjectFinalized(
  {
    secrets: [assemblyAiApiKey],
    timeoutSeconds: TIMEOUTS.upload,
    memory: "256MiB",
    // Storage events are at-least-once anyway; retrying a thrown delivery (e.g. Firestore briefly
    // unavailable) is safe because every effect is keyed by (visit, generation, attempt).
    retry: true,
  },
  async (event) => {
    await acceptUpload(pipeline(), event.data, deadlineFrom(Date.now(), TIMEOUTS.upload));
  },
);

/** Every minute: check due transcripts, resubmit retryable failures, re-fire lost summaries. */
export const checkPendingTranscripts = onSchedule(
  {
    schedule: "every 1 minutes",
    secrets: [assemblyAiApiKey],
    timeoutSeconds: TIMEOUTS.checker,
    memory: "256MiB",
    retryCount: 0,
  },
  async () => {
    const startedMs = Date.now();
    await checkDueVisits(pipeline(), startedMs, deadlineFrom(startedMs, TIMEOUTS.checker));
  },
);

const SummarizeTaskSchema = z.object({
  visitId: z.string().refine(isValidVisitId, "invalid visit id"),
  dispatch: z.number().int().min(1),
});

/** One summarization dispatch of one visit (enqueued by the checker; deduped by task id). */
export const summarizeVisit = onTaskDispatched<SummarizeTask>(
  {
    secrets: [openAiApiKey],
    timeoutSeconds: TIMEOUTS.summarize,
    memory: "512MiB",
    // Cloud Tasks retries only deliveries that crashed or timed out; failures the stage handles
    // are recorded on the visit and re-dispatched by the checker when due.
    retryConfig: { maxAttempts: 5, minBackoffSeconds: 60, maxBackoffSeconds: 900 },
    // Caps concurrent OpenAI calls across all instances.
    rateLimits: { maxConcurrentDispatches: 20 },
  },
  async (request) => {
    const task = SummarizeTaskSchema.safeParse(request.data);
    if (!task.success) {
      // Retrying cannot fix a malformed task; acknowledge it.
      logs.summarizationSkipped("(invalid)", "malformed_task");
      return;
    }
    await summarizeVisitStage(pipeline(), task.data, deadlineFrom(Date.now(), TIMEOUTS.summarize));
  },
);

// The api's routes (express and the stages only it uses) load with its first request: the other
// functions' instances never need them.
const apiHandler = loadOnFirstUse(async () => (await import("./http/api.js")).handleApiRequest);

/** The app-facing HTTPS API: retry, deletion, export, a health check, and AssemblyAI's webhook deliveries (see docs/api.md). */
export const api = onRequest(
  // A retry may check or resubmit the recording at AssemblyAI, and a deletion deletes there.
  { secrets: [assemblyAiApiKey], timeoutSeconds: TIMEOUTS.api, memory: "256MiB", invoker: "public" },
  async (req, res) => {
    (await apiHandler())(req, res);
  },
);

/** Every hour: delete recordings past AUDIO_RETENTION_DAYS from Storage (the visit keeps the rest). */
export const deleteExpiredAudio = onSchedule(
  { schedule: "every 60 minutes", timeoutSeconds: TIMEOUTS.retention, memory: "256MiB", retryCount: 0 },
  async () => {
    await deleteExpiredRecordings(pipeline(), deadlineFrom(Date.now(), TIMEOUTS.retention));
  },
);

/**
 * A Firebase Auth account was deleted: delete all of that user's visits. Gen 2 has no user-deleted
 * event; this is the 1st-gen Auth trigger (as the official delete-user-data extension uses), in
 * the same codebase. An account with more visits than one invocation can delete is carried on by
 * the checker.
 */
export const onAccountDeleted = functionsV1
  .region(functionsRegion)
  // Retried on failure (each step is idempotent); one that runs out of time is carried on by the checker.
  .runWith({ secrets: [assemblyAiApiKey], timeoutSeconds: TIMEOUTS.accountDeletion, memory: "256MB", failurePolicy: true })
  .auth.user()
  .onDelete(async (user) => {
    await deleteUserData(pipeline(), { uid: user.uid, reason: "account_deleted" }, deadlineFrom(Date.now(), TIMEOUTS.accountDeletion));
  });
