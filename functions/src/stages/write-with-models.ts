// How the summarization stage has OpenAI write a document — the patient summary or the clinician's
// note of a transcript, or the summary's translation: with the primary model, or with the fallback
// model when the primary cannot; and, for a transcript over the context budget, in parts that are
// each checkpointed (store/summary-parts.ts), so a failed attempt resumes at the part that failed
// and a part the model finds too large is split and written again. Every request is paid for
// through the step runner's `pay`, in the stage's `ask` functions.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { TokenCount } from "../providers/ports.js";
import type { StepWork } from "../steps/paid-step.js";
import { loadSummaryParts, partTextSha256, rangeKey, saveSummaryPart } from "../store/summary-parts.js";
import type { PartDocument, SummaryPart } from "../store/summary-parts.js";
import { PipelineError, asPipelineError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";
import { chunkText, planChunks, splitRange } from "../visit/summary-plan.js";

export type ModelAnswer<T> = { value: T; model: string; usage: TokenCount | null };

/** Asks `model` to write the document of `text` (`part`: one consecutive part of a longer transcript). */
export type AskModel<T> = (model: string, text: string, part: boolean) => Promise<ModelAnswer<T>>;

// Bad answers of the model itself: one is asked again, a repeated one goes to the fallback model.
const INVALID_OUTPUT: ReadonlySet<ErrorCode> = new Set(["summary_invalid", "summary_truncated"]);
// Failures of the primary model that the fallback model can help with. Outages, timeouts, 5xx and
// 429 are not among them: the breaker and the step runner deal with those.
const FALLBACK_REASONS: ReadonlySet<ErrorCode> = new Set([...INVALID_OUTPUT, "summary_model_unavailable", "summary_context_exceeded"]);

export interface ModelWriter {
  /**
   * The document from the primary model, or from the fallback model when the primary cannot:
   * its model is not found or retired (then for the rest of the attempt, whatever the document),
   * the text is too large even as a single line, or it answered invalidly twice in a row.
   * "too_large": the model said the text exceeds its context, and the text can still be split.
   */
  write<T>(ask: (model: string) => Promise<ModelAnswer<T>>, splittable: boolean): Promise<ModelAnswer<T> | "too_large">;
  /** Adds what an answer used to the attempt's tally (for its log line; the cost ledger has its own). */
  count(usage: TokenCount | null): void;
  /** Tokens of this attempt's answers; null when none reported any. */
  usage(): TokenCount | null;
}

export function modelWriter(p: Pipeline, visitId: string): ModelWriter {
  const primary = p.config.openAiModel;
  const fallback = p.config.openAiFallbackModel || null;
  let primaryUnavailable = false;
  let tally: TokenCount | null = null;

  const withPrimary = async <T>(ask: (model: string) => Promise<ModelAnswer<T>>): Promise<ModelAnswer<T>> => {
    try {
      return await ask(primary);
    } catch (thrown) {
      const error = asPipelineError(thrown);
      if (!fallback || !INVALID_OUTPUT.has(error.code)) throw error;
      return ask(primary);
    }
  };

  return {
    async write(ask, splittable) {
      let reason: ErrorCode = "summary_model_unavailable";
      if (!primaryUnavailable) {
        try {
          return await withPrimary(ask);
        } catch (thrown) {
          const error = asPipelineError(thrown);
          if (error.code === "summary_context_exceeded" && splittable) return "too_large";
          if (!fallback || !FALLBACK_REASONS.has(error.code)) throw error;
          if (error.code === "summary_model_unavailable") primaryUnavailable = true;
          reason = error.code;
        }
      }
      if (!fallback) throw new PipelineError("summary_model_unavailable");
      logs.summaryFallbackUsed(visitId, fallback, reason);
      try {
        return await ask(fallback);
      } catch (thrown) {
        const error = asPipelineError(thrown);
        if (error.code === "summary_context_exceeded" && splittable) return "too_large";
        throw error;
      }
    },
    count(usage) {
      if (!usage) return;
      tally = { promptTokens: (tally?.promptTokens ?? 0) + usage.promptTokens, completionTokens: (tally?.completionTokens ?? 0) + usage.completionTokens };
    },
    usage: () => tally,
  };
}

/** A transcript cut into prompt lines for one recording, and the transcript tokens one request may carry. */
export interface PartsPlan {
  generation: string;
  lines: readonly string[];
  chunkTokens: number;
}

/** A document written from the transcript, and how its parts are kept. */
export interface PartDocumentSpec<T> {
  document: PartDocument;
  ask: AskModel<T>;
  /** A saved part's result, or null when the part holds none. */
  stored(part: SummaryPart): T | null;
  /** A result as the part document keeps it. */
  toStored(value: T): Partial<Pick<SummaryPart, "summary" | "note">>;
}

/**
 * The document of the whole transcript: one request when it fits, else one per part, each part
 * saved under the attempt's lease as soon as it is written (one request for the whole transcript
 * needs no checkpoint: its result goes straight to the caller). Parts saved by an earlier attempt
 * of this recording, with the same text, are taken as they are. In transcript order.
 */
export async function writeInParts<T>(
  p: Pipeline,
  work: StepWork<"openai">,
  plan: PartsPlan,
  spec: PartDocumentSpec<T>,
  writer: ModelWriter,
): Promise<{ value: T; model: string }[]> {
  const { visit } = work;
  const { generation, lines } = plan;
  const saved = await loadSummaryParts(visit.id, generation, spec.document);
  const pending = planChunks(lines, plan.chunkTokens);
  logs.summaryPartsPlanned(visit.id, { document: spec.document, parts: pending.length, alreadySaved: saved.size, lines: lines.length, chunkTokens: plan.chunkTokens });
  const done: { value: T; model: string }[] = [];
  const save = async (part: Pick<SummaryPart, "from" | "to" | "textSha256" | "state" | "model"> & Partial<Pick<SummaryPart, "summary" | "note">>) => {
    const now = p.now();
    const kept = await saveSummaryPart(
      visit.id,
      { kind: "summary_part", document: spec.document, generation, savedAt: now, summary: null, note: null, ...part },
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
    const storedValue = stored?.textSha256 === textSha256 && stored.state === "summarized" && stored.model ? spec.stored(stored) : null;
    if (stored?.model && storedValue !== null) {
      done.push({ value: storedValue, model: stored.model });
      continue;
    }
    if (stored?.textSha256 === textSha256 && stored.state === "too_large" && halves) {
      pending.unshift(...halves);
      continue;
    }
    const isPart = range.from > 0 || range.to < lines.length;
    const written = await writer.write((model) => spec.ask(model, text, isPart), halves !== null);
    if (written === "too_large" && halves) {
      logs.summaryPartSplit(visit.id, range.from, range.to);
      await save({ from: range.from, to: range.to, textSha256, state: "too_large", model: null });
      pending.unshift(...halves);
      continue;
    }
    if (written === "too_large") throw new PipelineError("summary_context_exceeded", { detail: "a single line" });
    if (isPart) await save({ from: range.from, to: range.to, textSha256, state: "summarized", model: written.model, ...spec.toStored(written.value) });
    done.push({ value: written.value, model: written.model });
  }
  return done;
}
