// Stage: the app's retry button. Resumes only the stage that failed — a saved transcript is
// summarized again; a known transcript job is checked (and saved if complete) rather than paid
// for again; only otherwise is the recording submitted again, as a new round with new keys.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { CompletedTranscript } from "../providers/ports.js";
import { openProviderGate } from "../steps/provider-call.js";
import { claimRetry } from "../store/claims.js";
import { takeRetryAllowance } from "../store/rate-limits.js";
import { transcriptExists } from "../store/transcripts.js";
import { applyVisitEvent, getVisit } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { asPipelineError } from "../visit/errors.js";
import { AUDIT_LIMIT } from "../visit/model.js";
import type { AuditEntry, Visit, VisitPatch } from "../visit/model.js";
import { PROCESSING_STATUSES } from "../visit/status.js";
import type { ResumeStage, VisitEvent, VisitStatus } from "../visit/status.js";
import { dispatchSummarization } from "./dispatch-summarization.js";
import { checkpointTranscript } from "./poll-transcript.js";
import { checkRetryLimits } from "./upload-limits.js";
import { submitTranscription } from "./submit-transcription.js";

export type RetryRejection =
  | "visit_not_found"
  | "upload_quota_exceeded"
  | "too_many_active_visits"
  | "audio_deleted"
  | "already_processing"
  | "nothing_to_retry"
  | "not_retryable"
  | "retry_too_soon"
  | "retry_quota_exceeded";

export type RetryOutcome =
  | { kind: "accepted"; visitId: string; status: VisitStatus; resumedStage: ResumeStage; retryCount: number }
  | { kind: "rejected"; code: RetryRejection; retryAfterSeconds?: number };

// The retry claim's key includes a time slot of this length, so a retry that died before changing
// the visit blocks the button for at most this long. Provider calls stay single regardless: the
// resumed stage's own work keys are per round and attempt.
const RETRY_CLAIM_SLOT_SECONDS = 120;

export async function retryVisit(
  p: Pipeline,
  request: { visitId: string; uid: string },
  deadlineMs: number,
): Promise<RetryOutcome> {
  const now = p.now();
  const visit = await getVisit(request.visitId);
  // Another user's visit answers exactly like a missing one.
  if (!visit || visit.userId !== request.uid) return { kind: "rejected", code: "visit_not_found" };
  const refusal = resumeRefusal(visit);
  if (refusal) return { kind: "rejected", code: refusal };

  const allowance = await takeRetryAllowance({
    visitId: visit.id,
    uid: request.uid,
    now,
    limits: { cooldownSeconds: p.config.retryCooldownSeconds, quotaPerHour: p.config.retryQuotaPerHour },
  });
  if (!allowance.allowed) return { kind: "rejected", code: allowance.code, retryAfterSeconds: allowance.retryAfterSeconds };

  const limits = await checkRetryLimits(p, visit);
  if (!limits.allowed) {
    const code = limits.code === "upload_quota_exceeded" ? "upload_quota_exceeded" : "too_many_active_visits";
    return { kind: "rejected", code, ...(limits.retryAfterSeconds !== undefined ? { retryAfterSeconds: limits.retryAfterSeconds } : {}) };
  }

  return resumeVisit(p, visit, { event: "retry_accepted", deadlineMs });
}

/** Why a visit cannot be resumed now, or null: only a failed or partial visit whose error a retry can help. */
export function resumeRefusal(visit: Visit): "already_processing" | "nothing_to_retry" | "not_retryable" | null {
  if (PROCESSING_STATUSES.has(visit.status)) return "already_processing";
  if (visit.status === "completed") return "nothing_to_retry";
  if (visit.error && !visit.error.retryable) return "not_retryable";
  return null;
}

/** Who resumes a visit: the retry button, or an operator (ops CLI, with an audit entry). */
export type ResumeRequest =
  | { event: "retry_accepted"; deadlineMs: number }
  | {
      event: "operator_requeued";
      deadlineMs: number;
      audit: (stage: ResumeStage) => AuditEntry;
      /**
       * Whether this process may call AssemblyAI (it has the key). Without, a known job is left to
       * the checker's polling and a resubmission to the checker: the visit is due at once.
       */
      inProcess: boolean;
    };

/**
 * Resumes the stage of a failed or partial visit that failed, as a new round: what the retry
 * button does once its rate limits allow it, and what an operator's requeue does without them.
 */
export async function resumeVisit(p: Pipeline, visit: Visit, request: ResumeRequest): Promise<RetryOutcome> {
  const now = p.now();
  const { deadlineMs } = request;
  // One retry per round, however many clicks race here.
  const round = visit.retryCount + 1;
  const slot = Math.floor(now.getTime() / (RETRY_CLAIM_SLOT_SECONDS * 1000));
  const claimed = await claimRetry(visit.id, { round, slot }, {
    owner: p.owner,
    now,
    expiresAt: addSeconds(now, RETRY_CLAIM_SLOT_SECONDS),
    purgeAt: addSeconds(now, 86_400),
  });
  if (!claimed) return { kind: "rejected", code: "already_processing" };

  const inProcess = request.event === "retry_accepted" || request.inProcess;
  const resume = inProcess ? await chooseResume(p, visit, deadlineMs) : await resumeWithoutProvider(visit);
  // Submitting again needs the recording; retention may have deleted it.
  if (resume.stage === "transcription" && visit.audio?.deletedAt) return { kind: "rejected", code: "audio_deleted" };
  const audit = request.event === "operator_requeued" ? { audit: [...visit.audit, request.audit(resume.stage)].slice(-AUDIT_LIMIT) } : {};
  const written = await startRound(p, visit, { type: request.event, resume: resume.stage }, round, now, audit);
  if (!written.applied) return { kind: "rejected", code: "already_processing" };
  if (request.event === "retry_accepted") logs.retryAccepted(visit.id, round, resume.stage);
  else logs.operatorRequeued(visit.id, round, resume.stage);

  if (inProcess || resume.stage === "summarization") await resumeStage(p, written.visit, resume, deadlineMs);
  const after = await getVisit(visit.id);
  return {
    kind: "accepted",
    visitId: visit.id,
    status: after?.status ?? written.visit.status,
    resumedStage: resume.stage,
    retryCount: round,
  };
}

/** The new round: a fresh deadline, due now, and fresh attempts for the stage it resumes. */
function startRound(
  p: Pipeline,
  visit: Visit,
  event: Extract<VisitEvent, { type: "retry_accepted" | "operator_requeued" }>,
  round: number,
  now: Date,
  audit: VisitPatch,
) {
  const stage = event.resume;
  return applyVisitEvent(
    visit.id,
    event,
    {
      now,
      guard: { statuses: [visit.status] },
      fields: {
        ...audit,
        retryCount: round,
        deadlineAt: addSeconds(now, p.config.visitDeadlineHours * 3600),
        lease: null,
        nextCheckAt: now,
        ...(stage === "transcription" ? { "attempts.transcription": 0, transcriptId: null, checks: 0 } : {}),
        ...(stage === "summarization" ? { "attempts.summarization": 0 } : {}),
      },
    },
  );
}

interface ResumePlan {
  stage: ResumeStage;
  /** A transcript AssemblyAI finished for the visit's known job, to be saved now. */
  transcript?: CompletedTranscript;
}

/**
 * chooseResume without asking AssemblyAI: a known job is polled again by the checker, unless
 * AssemblyAI already reported that job failed.
 */
async function resumeWithoutProvider(visit: Visit): Promise<ResumePlan> {
  const fromStore = await resumePlanFromStore(visit);
  if (fromStore) return fromStore;
  // The job itself ended in error (AssemblyAI said so): only a new submission helps.
  if (visit.error && JOB_ERROR_CODES.has(visit.error.code)) return { stage: "transcription" };
  return { stage: "transcript_checkpoint" };
}

/** Codes a visit fails with when AssemblyAI reported its job `error` (and a new submission may succeed). */
const JOB_ERROR_CODES: ReadonlySet<string> = new Set(["transcription_failed", "audio_download_failed"]);

/** The stage to resume when the store alone decides it: a saved transcript is summarized again. */
async function resumePlanFromStore(visit: Visit): Promise<ResumePlan | null> {
  if (visit.audio && (await transcriptExists(visit.id, visit.audio.generation))) return { stage: "summarization" };
  return visit.transcriptId ? null : { stage: "transcription" };
}

async function chooseResume(p: Pipeline, visit: Visit, deadlineMs: number): Promise<ResumePlan> {
  const fromStore = await resumePlanFromStore(visit);
  if (fromStore) return fromStore;
  const transcriptId = visit.transcriptId;
  if (!transcriptId) return { stage: "transcription" };
  const gate = await openProviderGate(p, "assemblyai", { visitId: visit.id, deadlineMs });
  // While AssemblyAI is down, the known job is polled by the checker once it is back.
  if (!gate.allowed) return { stage: "transcript_checkpoint" };
  try {
    const check = await gate.call("get_transcript", () => p.speech().check(transcriptId));
    if (check.state === "completed") return { stage: "transcript_checkpoint", transcript: check.transcript };
    if (check.state === "error") return { stage: "transcription" };
    return { stage: "transcript_checkpoint" }; // still running: resume polling it
  } catch (thrown) {
    const error = asPipelineError(thrown);
    if (error.code === "transcript_not_found") return { stage: "transcription" };
    // Unknown state of a known job: keep polling it rather than risk paying twice.
    return { stage: "transcript_checkpoint" };
  }
}

/** Starts the resumed stage now; if that fails, the visit is already due for the checker. */
async function resumeStage(p: Pipeline, visit: Visit, resume: ResumePlan, deadlineMs: number): Promise<void> {
  try {
    switch (resume.stage) {
      case "summarization":
        await dispatchSummarization(p, visit);
        return;
      case "transcript_checkpoint":
        if (resume.transcript) await checkpointTranscript(p, visit, resume.transcript, visit.checks + 1, deadlineMs);
        return;
      case "transcription":
        await submitTranscription(p, visit.id, deadlineMs);
        return;
    }
  } catch (thrown) {
    logs.retryResumeFailed(visit.id, resume.stage, asPipelineError(thrown));
  }
}
