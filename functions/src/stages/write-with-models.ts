// How the summarization stage has OpenAI write a document — the patient summary or the clinician's
// note of a transcript, or the summary's translation: with the primary model, or with the fallback
// model when the primary cannot; and, for a source over its budget (a transcript over the context
// budget, a summary whose translation would not fit one answer), in parts that are each
// checkpointed (store/summary-parts.ts), so a failed attempt resumes at the part that failed and a
// part the model finds too large is split and written again. Every request is paid for through
// the step runner's `pay`, in the stage's `ask` functions.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { TokenCount } from "../providers/ports.js";
import type { StepWork } from "../steps/paid-step.js";
import { loadSummaryParts, partTextSha256, rangeKey, saveSummaryPart } from "../store/summary-parts.js";
import type { PartDocument, SummaryPart } from "../store/summary-parts.js";
import { PipelineError, asPipelineError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";
import { chunkText, planChunks, splitRange } from "../visit/summary-plan.js";
import type { LineRange } from "../visit/summary-plan.js";

export type ModelAnswer<T> = { value: T; model: string; usage: TokenCount | null };

/** One request's share of the source: its units `range`, their `text`, and whether that is only part of the source. */
export interface PartRequest {
  range: LineRange;
  text: string;
  isPart: boolean;
}

/** Asks `model` to write the document of one part of the source (or of all of it). */
export type AskModel<T> = (model: string, part: PartRequest) => Promise<ModelAnswer<T>>;

// Bad answers of the model itself: one is asked again, a repeated one goes to the fallback model.
const INVALID_OUTPUT: ReadonlySet<ErrorCode> = new Set(["summary_invalid", "summary_truncated"]);
// Failures of the primary model that the fallback model can help with. Outages, timeouts, 5xx and
// 429 are not among them: the breaker and the step runner deal with those.
const FALLBACK_REASONS: ReadonlySet<ErrorCode> = new Set([...INVALID_OUTPUT, "summary_model_unavailable", "summary_context_exceeded"]);

export interface ModelWriter {
  /**
   * The document from the primary model, or from the fallback model when the primary cannot:
   * its model is not found or retired (then for the rest of the attempt, whatever the document),
   * the text is too large even as a single unit, or it answered invalidly twice in a row.
   * "too_large": the answer was one of `splitOn` (the text exceeds the model's context, the answer
   * was cut off) — returned at once, neither asked again nor of the fallback, so that the caller
   * splits the text. Empty: the text cannot be split, and such answers are failures like others.
   */
  write<T>(ask: (model: string) => Promise<ModelAnswer<T>>, splitOn: readonly ErrorCode[]): Promise<ModelAnswer<T> | "too_large">;
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

  const withPrimary = async <T>(ask: (model: string) => Promise<ModelAnswer<T>>, splitOn: readonly ErrorCode[]): Promise<ModelAnswer<T>> => {
    try {
      return await ask(primary);
    } catch (thrown) {
      const error = asPipelineError(thrown);
      if (!fallback || !INVALID_OUTPUT.has(error.code) || splitOn.includes(error.code)) throw error;
      return ask(primary);
    }
  };

  return {
    async write(ask, splitOn) {
      let reason: ErrorCode = "summary_model_unavailable";
      if (!primaryUnavailable) {
        try {
          return await withPrimary(ask, splitOn);
        } catch (thrown) {
          const error = asPipelineError(thrown);
          if (splitOn.includes(error.code)) return "too_large";
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
        if (splitOn.includes(error.code)) return "too_large";
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

/**
 * A document's source cut into its smallest units for one recording — a transcript's prompt lines,
 * a summary's items — and the estimated tokens of units one request may carry.
 */
export interface PartsPlan {
  generation: string;
  units: readonly string[];
  partTokens: number;
}

/** A document written in parts, and how its parts are kept. */
export interface PartDocumentSpec<T> {
  document: PartDocument;
  ask: AskModel<T>;
  /** The answers that mean a part is too large: it is split in two (down to a single unit) and goes on. */
  splitOn: readonly ErrorCode[];
  /** What else the parts' results depend on besides their text (a translation's language): hashed with it. */
  alsoDependsOn?: string;
  /** A saved part's result, or null when the part holds none. */
  stored(part: SummaryPart): T | null;
  /** A result as the part document keeps it. */
  toStored(value: T): Partial<Pick<SummaryPart, "summary" | "note">>;
}

/** One part's result, the units it covers and the model that wrote it. */
export interface WrittenPart<T> {
  value: T;
  model: string;
  range: LineRange;
}

/**
 * The document of the whole source: one request when it fits, else one per part, each part
 * saved under the attempt's lease as soon as it is written (one request for the whole source
 * needs no checkpoint: its result goes straight to the caller). Parts saved by an earlier attempt
 * of this recording, with the same text, are taken as they are. In source order. A single unit
 * still too large (an answer of `splitOn`) throws what the model answered.
 */
export async function writeInParts<T>(
  p: Pipeline,
  work: StepWork<"openai">,
  plan: PartsPlan,
  spec: PartDocumentSpec<T>,
  writer: ModelWriter,
): Promise<WrittenPart<T>[]> {
  const { visit } = work;
  const { generation, units } = plan;
  const saved = await loadSummaryParts(visit.id, generation, spec.document);
  const pending = planChunks(units, plan.partTokens);
  logs.summaryPartsPlanned(visit.id, { document: spec.document, parts: pending.length, alreadySaved: saved.size, units: units.length, partTokens: plan.partTokens });
  const done: WrittenPart<T>[] = [];
  const save = async (part: Pick<SummaryPart, "from" | "to" | "textSha256" | "state" | "model"> & Partial<Pick<SummaryPart, "summary" | "note">>) => {
    const now = p.now();
    const kept = await saveSummaryPart(
      visit.id,
      { kind: "summary_part", document: spec.document, generation, savedAt: now, summary: null, note: null, ...part },
      { statuses: ["summarizing"], lease: { stage: "summarization", attempt: work.attempt }, generation },
      now,
    );
    // Newer work owns the visit (or it is gone): stop paying for parts nobody will use.
    if (!kept) throw new PipelineError("lease_lost", { detail: "summary part fenced off" });
  };

  for (let range = pending.shift(); range; range = pending.shift()) {
    const text = chunkText(units, range);
    const textSha256 = partTextSha256(text, spec.alsoDependsOn);
    const stored = saved.get(rangeKey(range));
    const halves = splitRange(range);
    const storedValue = stored?.textSha256 === textSha256 && stored.state === "summarized" && stored.model ? spec.stored(stored) : null;
    if (stored?.model && storedValue !== null) {
      done.push({ value: storedValue, model: stored.model, range });
      continue;
    }
    if (stored?.textSha256 === textSha256 && stored.state === "too_large" && halves) {
      pending.unshift(...halves);
      continue;
    }
    const isPart = range.from > 0 || range.to < units.length;
    const written = await writer.write((model) => spec.ask(model, { range, text, isPart }), halves ? spec.splitOn : []);
    if (written === "too_large") {
      if (!halves) throw new PipelineError("internal_error", { detail: "a single unit cannot be split" });
      logs.summaryPartSplit(visit.id, spec.document, range.from, range.to);
      await save({ from: range.from, to: range.to, textSha256, state: "too_large", model: null });
      pending.unshift(...halves);
      continue;
    }
    if (isPart) await save({ from: range.from, to: range.to, textSha256, state: "summarized", model: written.model, ...spec.toStored(written.value) });
    done.push({ value: written.value, model: written.model, range });
  }
  return done;
}
