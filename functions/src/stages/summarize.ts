// Stage: summarize a visit whose transcript is saved, as a paid step (steps/paid-step.ts owns the
// claim, lease, retries and outcome). The summary, the visit's action items and the `completed`
// status land in one commit, fenced by the attempt's lease. A failure never touches the
// transcript: the visit ends `partial` once the attempts are used up or the failure is permanent.

import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import type { SummaryResult } from "../providers/ports.js";
import { endStep, runPaidStep } from "../steps/paid-step.js";
import type { PaidStep, StepOutcome } from "../steps/paid-step.js";
import { writeActionItems } from "../store/actions.js";
import { loadTranscript } from "../store/transcripts.js";
import type { StoredTranscript } from "../store/transcripts.js";
import { PipelineError } from "../visit/errors.js";
import type { Visit } from "../visit/model.js";
import { normalizeLanguageCode, normalizeSummary } from "../visit/summary.js";

function summarizationStep(p: Pipeline, dispatch: number): PaidStep<"openai", SummaryResult> {
  return {
    stage: "summarization",
    provider: "openai",
    status: "summarizing",
    maxPaidAttempts: p.config.summaryMaxAttempts,
    leaseSeconds: TIMEOUTS.summarize + 60,
    afterPaidCall: "after_summary_call",
    async perform(work) {
      logs.summarizationStarted(work.visit.id, work.attempt, dispatch);
      const transcriptText = await promptTranscript(p, work.visit);
      const languageCode = normalizeLanguageCode(work.visit.transcript?.languageCode) ?? null;
      const result = await work.pay(
        "summarize",
        () => p.summarizer().summarize({ transcriptText, languageCode }),
        undefined,
        (answer) => answer.usage,
      );
      const summary = normalizeSummary(result.summary);
      // The summary must be in the recording's language; one in another language is not stored.
      if (languageCode && /^[a-z]{2}$/.test(summary.language) && summary.language !== languageCode) {
        throw new PipelineError("summary_invalid", { detail: `summary in ${summary.language}, visit in ${languageCode}` });
      }
      return { ...result, summary };
    },
    checkpoint: ({ summary, model }, now) => ({
      event: { type: "summary_saved" },
      fields: { summary, summaryModel: model, actionItemCount: summary.actionItems.length },
      alsoWrite: (tx, current) =>
        writeActionItems(tx, {
          visitId: current.id,
          userId: current.userId,
          items: summary.actionItems,
          previousCount: current.actionItemCount,
          now,
        }),
    }),
    endEvent: (error) => ({ type: "summary_failed", error }),
    succeeded: (visit, result, attempt, durationMs) =>
      logs.summarizationCompleted(visit.id, {
        attempt,
        model: result.model,
        actionItemCount: result.summary.actionItems.length,
        promptTokens: result.usage?.promptTokens,
        completionTokens: result.usage?.completionTokens,
        durationMs,
        cost: visit.cost,
      }),
  };
}

/** The saved transcript as the model reads it; one that cannot be summarized fails before paying. */
async function promptTranscript(p: Pipeline, visit: Visit): Promise<string> {
  // Only this recording's transcript: never one an earlier recording of the visit left behind.
  const transcript = visit.audio ? await loadTranscript(visit.id, visit.audio.generation) : null;
  if (!transcript) throw new PipelineError("internal_error", { detail: "transcript artifact missing" });
  const text = formatTranscript(transcript);
  if (text.trim() === "") throw new PipelineError("transcript_empty");
  if (text.length > p.config.summaryMaxTranscriptChars) {
    throw new PipelineError("transcript_too_long", { detail: `${text.length} characters` });
  }
  return text;
}

const SKIP_REASONS: Partial<Record<StepOutcome, string>> = {
  not_ready: "not_summarizing",
  busy: "attempt_in_progress",
};

export async function summarizeVisit(
  p: Pipeline,
  task: { visitId: string; dispatch: number },
  deadlineMs: number,
): Promise<StepOutcome> {
  const outcome = await runPaidStep(p, summarizationStep(p, task.dispatch), task.visitId, deadlineMs);
  const skipped = SKIP_REASONS[outcome];
  if (skipped) logs.summarizationSkipped(task.visitId, skipped);
  return outcome;
}

/** The visit's deadline passed while waiting for summarization: it ends partial, transcript kept. */
export function expireSummarization(p: Pipeline, visit: Visit): Promise<StepOutcome> {
  return endStep(p, summarizationStep(p, visit.summaryDispatches), visit, "deadline_exceeded", null);
}

/** The transcript as prompt lines: `[mm:ss] Speaker A: text`. */
function formatTranscript(transcript: StoredTranscript): string {
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
