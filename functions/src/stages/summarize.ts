// Stage: summarize a visit whose transcript is saved. One claimed attempt per paid OpenAI call;
// the summary, the visit's action items and the `completed` status land in one commit, fenced by
// the attempt's lease. A failure never touches the transcript: the visit ends `partial` once the
// attempts are used up or the failure is permanent.

import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import { retryPolicy, withRetries } from "../providers/retry.js";
import { writeActionItems } from "../store/actions.js";
import { claimKey, recordClaimOutcome, workClaimKey } from "../store/claims.js";
import { loadTranscript } from "../store/transcripts.js";
import type { StoredTranscript } from "../store/transcripts.js";
import { applyVisitEvent, getVisit, updateVisit } from "../store/visits.js";
import { addSeconds, nextAttemptDelaySeconds } from "../visit/backoff.js";
import { PipelineError, asPipelineError, visitError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";
import { leaseIsLive } from "../visit/model.js";
import type { Visit } from "../visit/model.js";
import { normalizeLanguageCode, normalizeSummary } from "../visit/summary.js";
import { failpoint } from "../runtime-hooks.js";
import { guardedBreakerCall } from "./breaker-gate.js";

export type SummarizeOutcome =
  | "completed"
  | "retry_scheduled"
  | "partial"
  | "not_summarizing"
  | "in_progress_elsewhere"
  | "deferred_outage"
  | "superseded";

export async function summarizeVisit(
  p: Pipeline,
  task: { visitId: string; dispatch: number },
  deadlineMs: number,
): Promise<SummarizeOutcome> {
  const now = p.now();
  const visit = await getVisit(task.visitId);
  if (!visit || visit.status !== "summarizing") {
    logs.summarizationSkipped(task.visitId, visit ? `status_${visit.status}` : "visit_missing");
    return "not_summarizing";
  }
  if (leaseIsLive(visit.lease, now)) {
    logs.summarizationSkipped(visit.id, "attempt_in_progress");
    return "in_progress_elsewhere";
  }
  if (visit.deadlineAt && now >= visit.deadlineAt) return endPartial(p, visit, "deadline_exceeded", null);
  const attempt = visit.attempts.summarization + 1;
  if (attempt > p.config.summaryMaxAttempts) {
    return endPartial(p, visit, visit.error?.code ?? "attempts_exhausted", null);
  }
  // While OpenAI is down, the visit waits without using up an attempt.
  const gate = await guardedBreakerCall(p, "openai");
  if (!gate.allowed) {
    await updateVisit(visit.id, { nextCheckAt: gate.retryAt }, { now, guard: { statuses: ["summarizing"] } });
    logs.workDeferredForOutage(visit.id, "openai", gate.retryAt);
    return "deferred_outage";
  }
  const leaseExpiresAt = addSeconds(now, TIMEOUTS.summarize + 60);
  const key = workClaimKey({ stage: "summarization", generation: visit.audio?.generation ?? "", round: visit.retryCount, attempt });
  if (!(await claimKey({ visitId: visit.id, key, stage: "summarization", attempt, owner: p.owner, now, expiresAt: leaseExpiresAt }))) {
    logs.summarizationSkipped(visit.id, "attempt_claimed_elsewhere");
    return "in_progress_elsewhere";
  }
  const lease = { stage: "summarization" as const, attempt };
  const leased = await updateVisit(
    visit.id,
    {
      "attempts.summarization": attempt,
      lease: { ...lease, owner: p.owner, expiresAt: leaseExpiresAt },
      nextCheckAt: leaseExpiresAt,
    },
    { now, guard: { statuses: ["summarizing"] } },
  );
  if (!leased.applied) return "not_summarizing";
  logs.summarizationStarted(visit.id, attempt, task.dispatch);

  const startedMs = Date.now();
  try {
    const transcript = await loadTranscript(visit.id);
    if (!transcript) throw new PipelineError("internal_error", { detail: "transcript artifact missing" });
    const transcriptText = formatTranscript(transcript);
    if (transcriptText.trim() === "") throw new PipelineError("transcript_empty");
    if (transcriptText.length > p.config.summaryMaxTranscriptChars) {
      throw new PipelineError("transcript_too_long", { detail: `${transcriptText.length} characters` });
    }
    const languageCode = normalizeLanguageCode(transcript.languageCode) ?? null;
    const result = await gate.run(() =>
      withRetries(
        () => p.summarizer().summarize({ transcriptText, languageCode }),
        retryPolicy({ retries: 2, minDelayMs: p.config.providerRetryMinDelayMs, deadlineMs, attemptTimeoutMs: p.config.openAiTimeoutSeconds * 1000 }),
        { onRetry: (error, n, waitMs) => logs.providerRetry(visit.id, "openai", "summarize", error, n, waitMs) },
      ),
    );
    await failpoint("after_summary_call");
    const summary = normalizeSummary(result.summary);
    // The summary must be in the recording's language; one in another language is not stored.
    if (languageCode && /^[a-z]{2}$/.test(summary.language) && summary.language !== languageCode) {
      throw new PipelineError("summary_invalid", { detail: `summary in ${summary.language}, visit in ${languageCode}` });
    }
    const written = await applyVisitEvent(
      visit.id,
      { type: "summary_saved" },
      {
        now: p.now(),
        guard: { statuses: ["summarizing"], lease },
        fields: {
          summary,
          summaryModel: result.model,
          actionItemCount: summary.actionItems.length,
          lease: null,
        },
        alsoWrite: (tx, current) =>
          writeActionItems(tx, {
            visitId: visit.id,
            userId: visit.userId,
            items: summary.actionItems,
            previousCount: current.actionItemCount,
            now: p.now(),
          }),
      },
    );
    await recordClaimOutcome(visit.id, key, { result: "succeeded", now: p.now() });
    if (!written.applied) {
      logs.staleWriteRejected(visit.id, "summarization", attempt, written.reason);
      return "superseded";
    }
    logs.summarizationCompleted(visit.id, {
      attempt,
      model: result.model,
      actionItemCount: summary.actionItems.length,
      promptTokens: result.usage?.promptTokens,
      completionTokens: result.usage?.completionTokens,
      durationMs: Date.now() - startedMs,
    });
    return "completed";
  } catch (thrown) {
    const error = asPipelineError(thrown);
    await recordClaimOutcome(visit.id, key, { result: "failed", code: error.code, now: p.now() });
    const final = !error.transient || attempt >= p.config.summaryMaxAttempts;
    logs.summarizationFailed(visit.id, attempt, error, final);
    if (final) return endPartial(p, visit, error.code, lease);
    // The transient failure is recorded and the lease released; the checker dispatches the
    // next attempt when it is due, no sooner than the provider's Retry-After.
    const failedAt = p.now();
    const delay = nextAttemptDelaySeconds(attempt, p.config.attemptBackoffSeconds, error.retryAfterMs, Math.random());
    const written = await updateVisit(
      visit.id,
      { error: visitError("summarization", error.code), lease: null, nextCheckAt: addSeconds(failedAt, delay) },
      { now: failedAt, guard: { statuses: ["summarizing"], lease } },
    );
    if (!written.applied) logs.staleWriteRejected(visit.id, "summarization", attempt, written.reason);
    return "retry_scheduled";
  }
}

/** The visit's deadline passed while waiting for summarization: it ends partial, transcript kept. */
export function expireSummarization(p: Pipeline, visit: Visit): Promise<SummarizeOutcome> {
  return endPartial(p, visit, "deadline_exceeded", null);
}

async function endPartial(
  p: Pipeline,
  visit: Visit,
  code: ErrorCode,
  lease: { stage: "summarization"; attempt: number } | null,
): Promise<SummarizeOutcome> {
  const written = await applyVisitEvent(
    visit.id,
    { type: "summary_failed", error: visitError("summarization", code) },
    { now: p.now(), guard: { statuses: ["summarizing"], ...(lease ? { lease } : {}) }, fields: { lease: null } },
  );
  if (!written.applied) {
    logs.staleWriteRejected(visit.id, "summarization", lease?.attempt ?? 0, written.reason);
    return "superseded";
  }
  return "partial";
}

/** The transcript as prompt lines: `[mm:ss] Speaker A: text`. */
export function formatTranscript(transcript: StoredTranscript): string {
  if (transcript.utterances.length === 0) return transcript.text;
  return transcript.utterances
    .map((u) => `[${clock(u.startMs)}] ${u.speaker ? `Speaker ${u.speaker}` : "Speaker"}: ${u.text}`)
    .join("\n");
}

function clock(ms: number): string {
  const totalSeconds = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(totalSeconds / 60);
  return `${String(minutes).padStart(2, "0")}:${String(totalSeconds % 60).padStart(2, "0")}`;
}
