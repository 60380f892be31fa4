// Stage: submit a pending visit's recording to AssemblyAI, as a paid step (steps/paid-step.ts
// owns the claim, lease, retries and outcome). The transcript id is recorded at once and the
// stage returns without waiting for the transcript. AssemblyAI has no idempotency key, so a
// submission whose outcome is unknown is never repeated blindly: the next attempt first looks for
// the job it may have created.

import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import { webhookRequest, webhookSecretHash } from "../providers/assemblyai-webhook.js";
import type { WebhookRequest } from "../providers/assemblyai-webhook.js";
import { audioUrlHash } from "../providers/ports.js";
import { runPaidStep } from "../steps/paid-step.js";
import type { PaidStep, StepOutcome } from "../steps/paid-step.js";
import type { Claim } from "../store/claims.js";
import { addPendingProviderDelete } from "../store/tombstones.js";
import { SWEEP_DELAY_SECONDS } from "./delete-visit.js";
import { deleteAtAssemblyAi, settle } from "./provider-cleanup.js";
import { addSeconds } from "../visit/backoff.js";
import { PipelineError } from "../visit/errors.js";
import type { VisitPatch } from "../visit/model.js";

/** `adopted`: the job an earlier, interrupted attempt created (found by recovery). */
type Submission = { transcriptId: string; adopted: boolean };

/**
 * With webhooks on, every submission of a visit asks AssemblyAI to announce the job's end with the
 * visit's derived secret (providers/assemblyai-webhook.ts): the same value whichever attempt's job
 * is adopted, so nothing about it needs recording before the send.
 */
function webhookOf(p: Pipeline, visitId: string): WebhookRequest | null {
  return p.config.webhookBaseUrl ? webhookRequest(p.config.webhookBaseUrl, visitId, p.webhookSecret(visitId)) : null;
}

/**
 * What the checkpoint records of the webhook: the secret's hash, and a first check at the safety
 * net's cadence instead of the polling one. Not for an adopted job: it may have ended, and its
 * delivery been answered ("other_job": the visit did not know it yet), before the visit recorded
 * it, so it is polled at the usual cadence (which also covers one submitted before webhooks were on).
 */
function webhookFields(p: Pipeline, visitId: string, adopted: boolean, now: Date): VisitPatch {
  const webhook = webhookOf(p, visitId);
  const announced = webhook !== null && !adopted;
  return {
    webhookSecretSha256: webhook ? webhookSecretHash(webhook.authHeaderValue) : null,
    nextCheckAt: addSeconds(now, announced ? p.config.webhookSafetyPollSeconds : p.config.pollInitialDelaySeconds),
  };
}

function transcriptionStep(p: Pipeline, visitId: string): PaidStep<"assemblyai", Submission> {
  return {
    stage: "transcription",
    provider: "assemblyai",
    status: "pending",
    maxPaidAttempts: p.config.transcriptionMaxAttempts,
    // A crashed try is retried only after the caller's whole time budget (upload trigger or checker).
    leaseSeconds: Math.max(TIMEOUTS.upload, TIMEOUTS.checker, TIMEOUTS.api) + 60,
    afterPaidCall: "after_transcription_submit",
    // Retention (or a new upload replacing it) deleted the recording: a signed URL would only fail.
    cannotRun: (visit) => (visit.audio?.deletedAt ? "audio_deleted" : null),
    async perform(work) {
      const audio = work.visit.audio;
      if (!audio) throw new PipelineError("internal_error", { detail: "pending visit without a recording" });
      // Retention deleted it: a signed URL to it would only fail at AssemblyAI.
      if (audio.deletedAt) throw new PipelineError("audio_deleted");
      const audioUrl = await p.signAudioUrl(audio, addSeconds(p.now(), p.config.signedUrlTtlHours * 3600));
      const webhook = webhookOf(p, visitId);
      const { transcriptId } = await work.pay("submit", () => p.speech().submit(audioUrl, webhook), { audioUrlSha256: audioUrlHash(audioUrl) });
      return { transcriptId, adopted: false };
    },
    recover: (work, leftovers) => findEarlierJob(p, work.visit.id, leftovers, (request) => work.ask("find_transcript", request)),
    resultId: (submission) => submission.transcriptId,
    checkpoint: ({ transcriptId, adopted }, now) => ({
      event: { type: "transcription_submitted", transcriptId },
      fields: { checks: 0, ...webhookFields(p, visitId, adopted, now) },
    }),
    endEvent: (error) => ({ type: "transcription_failed", error }),
    // A job created for a visit deleted meanwhile (or for a recording a new upload replaced) is
    // deleted at AssemblyAI at once, or later by the sweep (or the visit's provider cleanup).
    async abandon(visitId, { transcriptId }, visitDeleted) {
      const result = await deleteAtAssemblyAi(p, visitId, [transcriptId], Date.now() + 30_000);
      if (result.failed.length === 0) return;
      if (visitDeleted) await addPendingProviderDelete(visitId, transcriptId, addSeconds(p.now(), SWEEP_DELAY_SECONDS));
      else await settle(p, visitId, result);
    },
    succeeded: (visit, { transcriptId }, attempt, durationMs) =>
      logs.transcriptionSubmitted(visit.id, transcriptId, attempt, durationMs),
  };
}

/**
 * A job an earlier attempt created but never checkpointed: one whose id its claim recorded, or
 * else one AssemblyAI lists with the audio URL an interrupted submission sent.
 */
async function findEarlierJob(
  p: Pipeline,
  visitId: string,
  leftovers: readonly Claim[],
  ask: (request: () => Promise<string | null>) => Promise<string | null>,
): Promise<Submission | null> {
  const recorded = leftovers.find((claim) => claim.transcriptId !== null)?.transcriptId;
  if (recorded) return { transcriptId: recorded, adopted: true };
  const hashes = new Set(leftovers.flatMap((claim) => (claim.audioUrlSha256 ? [claim.audioUrlSha256] : [])));
  if (hashes.size === 0) return null;
  const since = new Date(Math.min(...leftovers.map((claim) => claim.claimedAt.getTime())));
  const transcriptId = await ask(() => p.speech().findTranscriptByAudioUrl(hashes, since));
  return transcriptId ? { transcriptId, adopted: true } : null;
}

export function submitTranscription(p: Pipeline, visitId: string, deadlineMs: number): Promise<StepOutcome> {
  return runPaidStep(p, transcriptionStep(p, visitId), visitId, deadlineMs);
}
