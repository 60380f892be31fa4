// Stage: summarize a visit whose transcript is saved, as a paid step (steps/paid-step.ts owns the
// claim, lease, retries and outcome). A transcript that fits the model's context budget is one
// request; a longer one is cut into parts on utterance boundaries (visit/summary-plan.ts), each
// part is summarized and checkpointed (store/summary-parts.ts), and the parts are merged
// (visit/summary-merge.ts). A failed attempt resumes at the part that failed; a part the model
// finds too large is split and summarized again. The merged summary, the visit's action items and
// the `completed` status land in one commit, fenced by the attempt's lease. A failure never
// touches the transcript: the visit ends `partial` once the attempts are used up or the failure
// is permanent.

import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import type { SummaryResult } from "../providers/ports.js";
import { endStep, runPaidStep } from "../steps/paid-step.js";
import type { PaidStep, StepOutcome, StepWork } from "../steps/paid-step.js";
import { writeActionItems } from "../store/actions.js";
import { deleteSummaryParts, loadSummaryParts, partTextSha256, rangeKey, saveSummaryPart } from "../store/summary-parts.js";
import type { SummaryPart } from "../store/summary-parts.js";
import { loadTranscript } from "../store/transcripts.js";
import { PipelineError, asPipelineError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";
import type { Visit } from "../visit/model.js";
import { mergeSummaries, mostCommon } from "../visit/summary-merge.js";
import {
  MIN_CHUNK_TOKENS,
  chunkText,
  contextBudget,
  estimatedChunkCount,
  maxLineCharsFor,
  planChunks,
  splitRange,
  transcriptLines,
} from "../visit/summary-plan.js";
import { normalizeLanguageCode, normalizeSummary } from "../visit/summary.js";
import type { VisitSummary } from "../visit/summary.js";

/** What one attempt produced: the merged summary and who wrote it. */
export interface VisitSummaryOutput {
  summary: VisitSummary;
  /** The model that wrote most parts (the first of them on a tie). */
  model: string;
  models: string[];
  parts: number;
  /** Summed over this attempt's requests (parts saved by earlier attempts are not counted again). */
  usage: { promptTokens: number; completionTokens: number } | null;
}

function summarizationStep(p: Pipeline, dispatch: number): PaidStep<"openai", VisitSummaryOutput> {
  return {
    stage: "summarization",
    provider: "openai",
    status: "summarizing",
    maxPaidAttempts: p.config.summaryMaxAttempts,
    leaseSeconds: TIMEOUTS.summarize + 60,
    afterPaidCall: "after_summary_call",
    // Past the audio cap nothing is planned or paid for.
    cannotRun: (visit) => (exceedsAudioCap(p, (visit.transcript?.audioDurationSeconds ?? 0) * 1000) ? "transcript_too_long" : null),
    paidCallAllowance: (visit) => partsCallAllowance(p, visit),
    async perform(work) {
      logs.summarizationStarted(work.visit.id, work.attempt, dispatch);
      return summarizeInParts(p, work);
    },
    checkpoint: ({ summary, model, models, parts }, now) => ({
      event: { type: "summary_saved" },
      fields: { summary, summaryModel: model, summaryModels: models, summaryParts: parts, actionItemCount: summary.actionItems.length },
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

function exceedsAudioCap(p: Pipeline, durationMs: number): boolean {
  return durationMs > p.config.summaryMaxAudioSeconds * 1000;
}

/** Prompt tokens left for transcript text in one request. */
async function chunkTokens(p: Pipeline): Promise<number> {
  const budget = contextBudget(p.config.summaryContextTokens, p.config.openAiModel, p.config.openAiFallbackModel || null);
  return budget - (await p.summarizer().promptOverheadTokens());
}

/**
 * Room in the paid-call budget for a summary in parts: every planned part may be sent, refused as
 * too large and sent again as two halves (three calls a part). Estimated from the visit's
 * transcript counts, so bounded by the audio cap; MAX_PAID_CALLS_PER_VISIT stays on top for retries.
 */
async function partsCallAllowance(p: Pipeline, visit: Visit): Promise<number> {
  if (!visit.transcript) return 0;
  let tokens: number;
  try {
    tokens = await chunkTokens(p);
  } catch {
    // No summarizer (a missing secret): the attempt itself ends the stage with config_invalid.
    return 0;
  }
  const parts = estimatedChunkCount(visit.transcript, Math.max(1, tokens));
  return parts > 1 ? 3 * parts : 0;
}

async function summarizeInParts(p: Pipeline, work: StepWork<"openai">): Promise<VisitSummaryOutput> {
  const { visit } = work;
  const generation = visit.audio?.generation;
  // Only this recording's transcript: never one an earlier recording of the visit left behind.
  const transcript = generation ? await loadTranscript(visit.id, generation) : null;
  if (!generation || !transcript) throw new PipelineError("internal_error", { detail: "transcript artifact missing" });
  const lastMs = transcript.utterances.at(-1)?.endMs ?? 0;
  if (exceedsAudioCap(p, lastMs)) throw new PipelineError("transcript_too_long", { detail: `${Math.round(lastMs / 1000)} s of speech` });
  const tokens = await chunkTokens(p);
  if (tokens < MIN_CHUNK_TOKENS) {
    throw new PipelineError("config_invalid", { detail: `SUMMARY_CONTEXT_TOKENS leaves ${tokens} tokens for transcript text` });
  }
  const lines = transcriptLines(transcript, maxLineCharsFor(tokens));
  if (lines.join("").trim() === "") throw new PipelineError("transcript_empty");

  const languageCode = normalizeLanguageCode(visit.transcript?.languageCode) ?? null;
  const saved = await loadSummaryParts(visit.id, generation);
  const writer = partWriter(p, work, languageCode);
  const pending = planChunks(lines, tokens);
  logs.summaryPartsPlanned(visit.id, { parts: pending.length, alreadySaved: saved.size, lines: lines.length, chunkTokens: tokens });
  const done: { summary: VisitSummary; model: string }[] = [];
  const save = async (part: Omit<SummaryPart, "kind" | "generation" | "savedAt">) => {
    const now = p.now();
    const kept = await saveSummaryPart(
      visit.id,
      { kind: "summary_part", generation, savedAt: now, ...part },
      { statuses: ["summarizing"], lease: { stage: "summarization", attempt: work.attempt }, generation },
      now,
    );
    // Newer work owns the visit (or it is gone): stop paying for parts nobody will use.
    if (!kept) throw new PipelineError("internal_error", { detail: "summary part fenced off: the attempt lost its lease" });
  };

  for (let range = pending.shift(); range; range = pending.shift()) {
    const text = chunkText(lines, range);
    const textSha256 = partTextSha256(text);
    const stored = saved.get(rangeKey(range));
    const halves = splitRange(range);
    if (stored?.textSha256 === textSha256 && stored.state === "summarized" && stored.summary && stored.model) {
      done.push({ summary: stored.summary, model: stored.model });
      continue;
    }
    if (stored?.textSha256 === textSha256 && stored.state === "too_large" && halves) {
      pending.unshift(...halves);
      continue;
    }
    const isPart = range.from > 0 || range.to < lines.length;
    const written = await writer.write(text, isPart, halves !== null);
    if (written === "too_large" && halves) {
      logs.summaryPartSplit(visit.id, range.from, range.to);
      await save({ from: range.from, to: range.to, textSha256, state: "too_large", summary: null, model: null });
      pending.unshift(...halves);
      continue;
    }
    if (written === "too_large") throw new PipelineError("summary_context_exceeded", { detail: "a single line" });
    // One request for the whole transcript needs no checkpoint: its result goes straight to the visit.
    if (isPart) await save({ from: range.from, to: range.to, textSha256, state: "summarized", summary: written.summary, model: written.model });
    done.push({ summary: written.summary, model: written.model });
  }

  const merged = mergeSummaries(
    done.map((part) => part.summary),
    languageCode,
  );
  if (merged.clipped > 0) logs.summaryMergeClipped(visit.id, done.length, merged.clipped);
  const models = [...new Set(done.map((part) => part.model))];
  return { summary: merged.summary, model: mostCommon(done.map((part) => part.model)), models, parts: done.length, usage: writer.usage() };
}

// Bad answers of the model itself: one is asked again, a repeated one goes to the fallback model.
const INVALID_OUTPUT: ReadonlySet<ErrorCode> = new Set(["summary_invalid", "summary_truncated"]);
// Failures of the primary model that the fallback model can help with. Outages, timeouts, 5xx and
// 429 are not among them: the breaker and the step runner deal with those.
const FALLBACK_REASONS: ReadonlySet<ErrorCode> = new Set([...INVALID_OUTPUT, "summary_model_unavailable", "summary_context_exceeded"]);

/**
 * Writes one part (or the whole transcript) with the primary model, or with the fallback model
 * when the primary cannot: its model is not found or retired (then for the rest of the attempt),
 * the text is too large even as a single line, or it answered invalidly twice in a row.
 * "too_large": the model said the text exceeds its context, and the text can still be split.
 */
function partWriter(p: Pipeline, work: StepWork<"openai">, languageCode: string | null) {
  const primary = p.config.openAiModel;
  const fallback = p.config.openAiFallbackModel || null;
  let primaryUnavailable = false;
  let promptTokens = 0;
  let completionTokens = 0;
  let counted = false;

  const ask = async (model: string, transcriptText: string, part: boolean): Promise<SummaryResult> => {
    const result = await work.pay(
      "summarize",
      () => p.summarizer().summarize({ transcriptText, languageCode, model, part }),
      undefined,
      (answer) => answer.usage,
    );
    if (result.usage) {
      counted = true;
      promptTokens += result.usage.promptTokens;
      completionTokens += result.usage.completionTokens;
    }
    const summary = normalizeSummary(result.summary);
    // The summary must be in the recording's language; one in another language is not stored.
    if (languageCode && /^[a-z]{2}$/.test(summary.language) && summary.language !== languageCode) {
      throw new PipelineError("summary_invalid", { detail: `summary in ${summary.language}, visit in ${languageCode}` });
    }
    return { ...result, summary };
  };

  const withPrimary = async (text: string, part: boolean): Promise<SummaryResult> => {
    try {
      return await ask(primary, text, part);
    } catch (thrown) {
      const error = asPipelineError(thrown);
      if (!fallback || !INVALID_OUTPUT.has(error.code)) throw error;
      return ask(primary, text, part);
    }
  };

  return {
    async write(text: string, part: boolean, splittable: boolean): Promise<SummaryResult | "too_large"> {
      let reason: ErrorCode = "summary_model_unavailable";
      if (!primaryUnavailable) {
        try {
          return await withPrimary(text, part);
        } catch (thrown) {
          const error = asPipelineError(thrown);
          if (error.code === "summary_context_exceeded" && splittable) return "too_large";
          if (!fallback || !FALLBACK_REASONS.has(error.code)) throw error;
          if (error.code === "summary_model_unavailable") primaryUnavailable = true;
          reason = error.code;
        }
      }
      if (!fallback) throw new PipelineError("summary_model_unavailable");
      logs.summaryFallbackUsed(work.visit.id, fallback, reason);
      try {
        return await ask(fallback, text, part);
      } catch (thrown) {
        const error = asPipelineError(thrown);
        if (error.code === "summary_context_exceeded" && splittable) return "too_large";
        throw error;
      }
    },
    usage: () => (counted ? { promptTokens, completionTokens } : null),
  };
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
  // The saved summary holds what the parts said: their checkpoints are no longer needed.
  if (outcome === "succeeded" || outcome === "recovered") await deleteSummaryParts(task.visitId, null);
  return outcome;
}

/** The visit's deadline passed while waiting for summarization: it ends partial, transcript kept. */
export function expireSummarization(p: Pipeline, visit: Visit): Promise<StepOutcome> {
  return endStep(p, summarizationStep(p, visit.summaryDispatches), visit, "deadline_exceeded", null);
}
