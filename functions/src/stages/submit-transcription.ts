// Stage: submit a pending visit's recording to AssemblyAI. The paid call happens only after this
// caller has claimed the (visit, generation, round, attempt) key; the transcript id is recorded
// at once and the stage returns without waiting for the transcript. AssemblyAI has no
// idempotency key, so a submission whose outcome is unknown is never repeated blindly: the next
// attempt first looks for the job it may have created.

import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import { audioUrlHash } from "../providers/ports.js";
import { retryPolicy, withRetries } from "../providers/retry.js";
import { failpoint } from "../runtime-hooks.js";
import type { StoredClaim } from "../store/claims.js";
import {
  claimKey,
  listClaims,
  recordClaimOutcome,
  recordSubmittedAudioUrlHash,
  workClaimKey,
} from "../store/claims.js";
import { applyVisitEvent, getVisit, updateVisit } from "../store/visits.js";
import { addSeconds, nextAttemptDelaySeconds } from "../visit/backoff.js";
import { asPipelineError, visitError } from "../visit/errors.js";
import type { ErrorCode, PipelineError } from "../visit/errors.js";
import { leaseIsLive } from "../visit/model.js";
import type { AudioRef, Visit } from "../visit/model.js";
import { guardedBreakerCall } from "./breaker-gate.js";

export type SubmissionOutcome =
  | "submitted"
  | "recovered"
  | "claimed_elsewhere"
  | "retry_scheduled"
  | "deferred_outage"
  | "failed"
  | "not_pending";

type TranscriptionLease = { stage: "transcription"; attempt: number };

export async function submitTranscription(p: Pipeline, visitId: string, deadlineMs: number): Promise<SubmissionOutcome> {
  const now = p.now();
  const visit = await getVisit(visitId);
  if (!visit || visit.status !== "pending" || !visit.audio) return "not_pending";
  if (leaseIsLive(visit.lease, now)) return "claimed_elsewhere";
  if (visit.deadlineAt && now >= visit.deadlineAt) {
    await endTranscription(p, visit, "deadline_exceeded", null);
    return "failed";
  }
  const audio = visit.audio;
  const history = await submissionHistory(visit, audio);
  // Out of paid attempts, and no earlier job left to look for: give up (the button can retry).
  if (history.sentThisRound >= p.config.transcriptionMaxAttempts && history.suspects.length === 0) {
    await endTranscription(p, visit, lastErrorCode(visit), null);
    return "failed";
  }
  // While AssemblyAI is down, the visit waits without using up an attempt.
  const gate = await guardedBreakerCall(p, "assemblyai");
  if (!gate.allowed) return deferForOutage(p, visit, gate.retryAt);

  // Every try has its own key; only tries that send a submission count against the maximum.
  const attempt = visit.attempts.transcription + 1;
  // The lease outlives the caller's whole time budget: a crashed try is retried only after it.
  const leaseExpiresAt = addSeconds(now, TIMEOUTS.upload + 60);
  const key = workClaimKey({ stage: "transcription", generation: audio.generation, round: visit.retryCount, attempt });
  if (!(await claimKey({ visitId, key, stage: "transcription", attempt, owner: p.owner, now, expiresAt: leaseExpiresAt }))) {
    logs.transcriptionClaimTaken(visitId, attempt);
    return "claimed_elsewhere";
  }
  const lease: TranscriptionLease = { stage: "transcription", attempt };
  const leased = await updateVisit(
    visitId,
    {
      "attempts.transcription": attempt,
      lease: { ...lease, owner: p.owner, expiresAt: leaseExpiresAt },
      nextCheckAt: leaseExpiresAt,
    },
    { now, guard: { statuses: ["pending"] } },
  );
  if (!leased.applied) return "claimed_elsewhere";

  let sent = false;
  try {
    if (history.suspects.length > 0) {
      const recovered = await gate.run(() => recoverInterruptedSubmission(p, visit, history.suspects));
      if (recovered) return await recordSubmission(p, visit, key, lease, recovered, "recovered");
      if (history.sentThisRound >= p.config.transcriptionMaxAttempts) {
        await endTranscription(p, visit, lastErrorCode(visit), lease);
        await recordClaimOutcome(visitId, key, { result: "failed", code: "attempts_exhausted", now: p.now() });
        return "failed";
      }
    }
    const audioUrl = await p.signAudioUrl(audio, addSeconds(now, p.config.signedUrlTtlHours * 3600));
    await recordSubmittedAudioUrlHash(visitId, key, audioUrlHash(audioUrl));
    sent = true;
    const startedMs = Date.now();
    const { transcriptId } = await gate.run(() =>
      withRetries(
        () => p.speech().submit(audioUrl),
        retryPolicy({
          retries: 3,
          minDelayMs: p.config.providerRetryMinDelayMs,
          deadlineMs,
          attemptTimeoutMs: p.config.assemblyAiTimeoutSeconds * 1000,
        }),
        { onRetry: (error, n, waitMs) => logs.providerRetry(visitId, "assemblyai", "submit", error, n, waitMs) },
      ),
    );
    await failpoint("after_transcription_submit");
    const outcome = await recordSubmission(p, visit, key, lease, transcriptId, "submitted");
    if (outcome === "submitted") logs.transcriptionSubmitted(visitId, transcriptId, attempt, Date.now() - startedMs);
    return outcome;
  } catch (thrown) {
    const error = asPipelineError(thrown);
    await recordClaimOutcome(visitId, key, {
      result: sent && error.outcomeUnknown ? "unknown" : "failed",
      code: error.code,
      now: p.now(),
    });
    const paidSoFar = history.sentThisRound + (sent ? 1 : 0);
    return handleSubmitFailure(p, visit, attempt, error, paidSoFar, history.suspects.length > 0 || (sent && error.outcomeUnknown));
  }
}

interface SubmissionHistory {
  /** Submissions sent in the visit's current retry round (what the attempt maximum counts). */
  sentThisRound: number;
  /** Submissions of this recording, in any round, whose outcome is unknown. */
  suspects: StoredClaim[];
}

async function submissionHistory(visit: Visit, audio: AudioRef): Promise<SubmissionHistory> {
  const claims = (await listClaims(visit.id, "transcription")).filter(
    (claim) => claim.key.startsWith(`transcription-${audio.generation}-`) && claim.audioUrlSha256 !== null,
  );
  const roundPrefix = `transcription-${audio.generation}-r${visit.retryCount}-`;
  return {
    sentThisRound: claims.filter((claim) => claim.key.startsWith(roundPrefix)).length,
    suspects: claims.filter((claim) => claim.outcome === null || claim.outcome === "unknown"),
  };
}

/**
 * Earlier submissions of this recording that may have created a job without recording it
 * (outcome unknown, or the instance died mid-call): ask AssemblyAI for a live job with one of
 * their audio URLs before paying for another. A search that finds nothing settles them.
 */
async function recoverInterruptedSubmission(p: Pipeline, visit: Visit, suspects: StoredClaim[]): Promise<string | null> {
  const since = new Date(Math.min(...suspects.map((claim) => claim.claimedAt.getTime())));
  const hashes = new Set(suspects.map((claim) => claim.audioUrlSha256 as string));
  const transcriptId = await p.speech().findTranscriptByAudioUrl(hashes, since);
  logs.submissionRecoveryChecked(visit.id, suspects.length, transcriptId !== null);
  if (!transcriptId) {
    await Promise.all(
      suspects.map((claim) => recordClaimOutcome(visit.id, claim.key, { result: "not_created", now: p.now() })),
    );
  }
  return transcriptId;
}

async function recordSubmission(
  p: Pipeline,
  visit: Visit,
  key: string,
  lease: TranscriptionLease,
  transcriptId: string,
  how: "submitted" | "recovered",
): Promise<SubmissionOutcome> {
  const now = p.now();
  const written = await applyVisitEvent(
    visit.id,
    { type: "transcription_submitted", transcriptId },
    {
      now,
      guard: { statuses: ["pending"], lease },
      fields: { lease: null, checks: 0, nextCheckAt: addSeconds(now, p.config.pollInitialDelaySeconds) },
    },
  );
  await recordClaimOutcome(visit.id, key, { result: how === "recovered" ? "recovered" : "succeeded", transcriptId, now });
  if (!written.applied) {
    logs.staleWriteRejected(visit.id, "transcription", lease.attempt, written.reason);
    return "claimed_elsewhere";
  }
  return how;
}

async function handleSubmitFailure(
  p: Pipeline,
  visit: Visit,
  attempt: number,
  error: PipelineError,
  paidSoFar: number,
  jobMayExist: boolean,
): Promise<SubmissionOutcome> {
  // While a job may exist, keep looking for it (bounded by the visit's deadline) rather than give
  // up on something paid for; otherwise retry transient failures until the paid attempts run out.
  const willRetry = jobMayExist || (error.transient && paidSoFar < p.config.transcriptionMaxAttempts);
  logs.transcriptionSubmitFailed(visit.id, attempt, error, willRetry);
  const lease: TranscriptionLease = { stage: "transcription", attempt };
  if (!willRetry) {
    await endTranscription(p, visit, error.code, lease);
    return "failed";
  }
  const now = p.now();
  const delay = nextAttemptDelaySeconds(Math.max(1, paidSoFar), p.config.attemptBackoffSeconds, error.retryAfterMs, Math.random());
  const written = await updateVisit(
    visit.id,
    { error: visitError("transcription", error.code), lease: null, nextCheckAt: addSeconds(now, delay) },
    { now, guard: { statuses: ["pending"], lease } },
  );
  if (!written.applied) logs.staleWriteRejected(visit.id, "transcription", attempt, written.reason);
  return "retry_scheduled";
}

/** The provider is down: no attempt is used; the checker comes back when the breaker says. */
async function deferForOutage(p: Pipeline, visit: Visit, retryAt: Date): Promise<SubmissionOutcome> {
  const now = p.now();
  await updateVisit(visit.id, { nextCheckAt: retryAt }, { now, guard: { statuses: ["pending"] } });
  logs.workDeferredForOutage(visit.id, "assemblyai", retryAt);
  return "deferred_outage";
}

function lastErrorCode(visit: Visit): ErrorCode {
  return visit.error?.code ?? "attempts_exhausted";
}

/** Ends the visit as failed at the transcription stage (the retry button can start it again). */
async function endTranscription(
  p: Pipeline,
  visit: Visit,
  code: ErrorCode,
  lease: TranscriptionLease | null,
): Promise<void> {
  const written = await applyVisitEvent(
    visit.id,
    { type: "transcription_failed", error: visitError("transcription", code) },
    { now: p.now(), guard: { statuses: ["pending"], ...(lease ? { lease } : {}) }, fields: { lease: null } },
  );
  if (!written.applied) logs.staleWriteRejected(visit.id, "transcription", lease?.attempt ?? 0, written.reason);
}

