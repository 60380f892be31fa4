// Stage: submit a pending visit's recording to AssemblyAI. The paid call happens only after this
// caller has claimed the (visit, generation, attempt) key; the transcript id is recorded at once
// and the stage returns without waiting for the transcript.

import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import { withRetries } from "../providers/retry.js";
import { DEFAULT_RETRY } from "../providers/retry.js";
import { claimKey, recordClaimOutcome, transcriptionClaimKey } from "../store/claims.js";
import { applyVisitEvent, getVisit, updateVisit } from "../store/visits.js";
import { addSeconds, nextAttemptDelaySeconds } from "../visit/backoff.js";
import { asPipelineError, visitError } from "../visit/errors.js";
import type { ErrorCode, PipelineError } from "../visit/errors.js";
import { leaseIsLive } from "../visit/model.js";
import type { Visit } from "../visit/model.js";

export type SubmissionOutcome = "submitted" | "claimed_elsewhere" | "retry_scheduled" | "failed" | "not_pending";

export async function submitTranscription(p: Pipeline, visitId: string, deadlineMs: number): Promise<SubmissionOutcome> {
  const now = p.now();
  const visit = await getVisit(visitId);
  if (!visit || visit.status !== "pending" || !visit.audio) return "not_pending";
  if (leaseIsLive(visit.lease, now)) return "claimed_elsewhere";

  const attempt = visit.attempts.transcription + 1;
  if (attempt > p.config.transcriptionMaxAttempts) {
    await endTranscription(p, visit, visit.error?.code ?? "attempts_exhausted", null);
    return "failed";
  }
  // The lease outlives the caller's whole time budget: a crashed attempt is retried only after it.
  const leaseExpiresAt = addSeconds(now, TIMEOUTS.upload + 60);
  const key = transcriptionClaimKey(visit.audio.generation, attempt);
  const claimed = await claimKey({ visitId, key, stage: "transcription", attempt, owner: p.owner, now, expiresAt: leaseExpiresAt });
  if (!claimed) {
    logs.transcriptionClaimTaken(visitId, attempt);
    return "claimed_elsewhere";
  }
  const leased = await updateVisit(
    visitId,
    {
      "attempts.transcription": attempt,
      lease: { stage: "transcription", attempt, owner: p.owner, expiresAt: leaseExpiresAt },
      nextCheckAt: leaseExpiresAt,
    },
    { now, guard: { statuses: ["pending"] } },
  );
  if (!leased.applied) return "not_pending";

  const lease = { stage: "transcription" as const, attempt };
  const startedMs = Date.now();
  try {
    const audioUrl = await p.signAudioUrl(visit.audio, addSeconds(now, p.config.signedUrlTtlHours * 3600));
    const { transcriptId } = await withRetries(
      () => p.speech().submit(audioUrl),
      { ...DEFAULT_RETRY, deadlineMs, attemptTimeoutMs: p.config.assemblyAiTimeoutSeconds * 1000 },
      { onRetry: (error, n, waitMs) => logs.providerRetry("assemblyai", "submit", error, n, waitMs) },
    );
    const written = await applyVisitEvent(
      visitId,
      { type: "transcription_submitted", transcriptId },
      {
        now: p.now(),
        guard: { statuses: ["pending"], lease },
        fields: {
          lease: null,
          checks: 0,
          nextCheckAt: addSeconds(p.now(), p.config.pollInitialDelaySeconds),
        },
      },
    );
    await recordClaimOutcome(visitId, key, { result: "succeeded", transcriptId, now: p.now() });
    if (!written.applied) {
      logs.staleWriteRejected(visitId, "transcription", attempt, written.reason);
      return "claimed_elsewhere";
    }
    logs.transcriptionSubmitted(visitId, transcriptId, attempt, Date.now() - startedMs);
    return "submitted";
  } catch (thrown) {
    const error = asPipelineError(thrown);
    await recordClaimOutcome(visitId, key, { result: "failed", code: error.code, now: p.now() });
    return handleSubmitFailure(p, visit, attempt, error);
  }
}

async function handleSubmitFailure(
  p: Pipeline,
  visit: Visit,
  attempt: number,
  error: PipelineError,
): Promise<SubmissionOutcome> {
  const willRetry = error.retryable && attempt < p.config.transcriptionMaxAttempts;
  logs.transcriptionSubmitFailed(visit.id, attempt, error, willRetry);
  const lease = { stage: "transcription" as const, attempt };
  if (!willRetry) {
    await endTranscription(p, visit, error.code, lease);
    return "failed";
  }
  const now = p.now();
  const delay = nextAttemptDelaySeconds(attempt, p.config.attemptBackoffSeconds, error.retryAfterMs, Math.random());
  const written = await updateVisit(
    visit.id,
    { error: visitError("transcription", error.code), lease: null, nextCheckAt: addSeconds(now, delay) },
    { now, guard: { statuses: ["pending"], lease } },
  );
  if (!written.applied) logs.staleWriteRejected(visit.id, "transcription", attempt, written.reason);
  return "retry_scheduled";
}

/** Ends the visit as failed at the transcription stage (the retry button can start it again). */
async function endTranscription(
  p: Pipeline,
  visit: Visit,
  code: ErrorCode,
  lease: { stage: "transcription"; attempt: number } | null,
): Promise<void> {
  const written = await applyVisitEvent(
    visit.id,
    { type: "transcription_failed", error: visitError("transcription", code) },
    { now: p.now(), guard: { statuses: ["pending"], ...(lease ? { lease } : {}) }, fields: { lease: null } },
  );
  if (!written.applied) logs.staleWriteRejected(visit.id, "transcription", lease?.attempt ?? 0, written.reason);
}
