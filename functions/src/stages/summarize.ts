// Stage: summarize a visit whose transcript is saved, as a paid step (steps/paid-step.ts owns the
// claim, lease, retries and outcome). A transcript that fits the model's context budget is one
// request; a longer one is cut into parts on utterance boundaries (visit/summary-plan.ts), each
// part is written and checkpointed, and the parts are merged (visit/summary-merge.ts) — see
// stages/write-with-models.ts. Beside the patient summary the visit may ask for two more paid
// documents: the summary in the user's preferred language (users/{uid}.preferredLanguage, when it
// is not the recording's; in parts too when it would not fit one answer, see
// visit/summary-translation-parts.ts) and a clinician's SOAP note (SUMMARY_FORMATS). Then the summary is saved
// on the visit first (with its action items and the speakers' roles), and each further document is
// saved as its own artifact once written, so a failure never pays again for what is done. The
// `completed` status lands in one commit fenced by the attempt's lease, once everything asked for
// is saved. A failure never touches the transcript (or a saved summary): the visit ends `partial`
// once the attempts are used up or the failure is permanent.

import type { Transaction } from "firebase-admin/firestore";
import { logs } from "../logs.js";
import { TIMEOUTS } from "../pipeline.js";
import type { Pipeline } from "../pipeline.js";
import type { SummaryRequest, Summarizer, TokenCount } from "../providers/ports.js";
import { endStep, runPaidStep } from "../steps/paid-step.js";
import type { PaidStep, StepOutcome, StepWork } from "../steps/paid-step.js";
import type { OperationOf } from "../steps/provider-call.js";
import { writeActionItems } from "../store/actions.js";
import { readPreferredLanguage } from "../store/profiles.js";
import {
  loadClinicianNote,
  loadSummaryTranslation,
  saveClinicianNote,
  saveSummaryTranslation,
  summarySha256,
} from "../store/summary-artifacts.js";
import { deleteSummaryParts } from "../store/summary-parts.js";
import { loadTranscript, speakerLabels, writeSpeakerRoles } from "../store/transcripts.js";
import { updateVisit } from "../store/visits.js";
import type { VisitGuard } from "../store/visits.js";
import { normalizeClinicianNote } from "../visit/clinician-note.js";
import type { ClinicianNote } from "../visit/clinician-note.js";
import { PipelineError, asPipelineError } from "../visit/errors.js";
import type { ClinicianNoteInfo, SummaryTranslationInfo, Visit, VisitPatch } from "../visit/model.js";
import { mergeClinicianNotes, mergeSummaries, mostCommon } from "../visit/summary-merge.js";
import { MIN_CHUNK_TOKENS, contextBudget, estimatedChunkCount, maxLineCharsFor, transcriptLines } from "../visit/summary-plan.js";
import { applyTranslation } from "../visit/summary-translation.js";
import {
  mergeTranslatedParts,
  planTranslationParts,
  translationPartSource,
  translationPartTokens,
  translationUnits,
} from "../visit/summary-translation-parts.js";
import { normalizeLanguageCode, normalizeSummary } from "../visit/summary.js";
import type { VisitSummary } from "../visit/summary.js";
import { modelWriter, writeInParts } from "./write-with-models.js";
import type { AskModel, ModelAnswer, ModelWriter, PartDocumentSpec, PartsPlan } from "./write-with-models.js";

/** What one attempt produced: the patient summary, who wrote it, and what was written beside it. */
export interface VisitSummaryOutput {
  summary: VisitSummary;
  /** The model that wrote most parts (the first of them on a tie). */
  model: string;
  models: string[];
  parts: number;
  /** The summary (with its action items and the speakers' roles) was saved on the visit already. */
  summaryAlreadySaved: boolean;
  translation: SummaryTranslationInfo | null;
  clinicianNote: ClinicianNoteInfo | null;
  /** Summed over this attempt's requests (what earlier attempts saved is not counted again). */
  usage: TokenCount | null;
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
    paidCallAllowance: async (visit) => (await partsCallAllowance(p, visit)) + translationCallAllowance(visit),
    async perform(work) {
      logs.summarizationStarted(work.visit.id, work.attempt, dispatch);
      return writeVisitDocuments(p, work);
    },
    checkpoint: (output, now) => ({
      event: { type: "summary_saved" },
      fields: {
        ...(output.summaryAlreadySaved ? {} : summaryFields(output)),
        summaryTranslation: output.translation,
        clinicianNote: output.clinicianNote,
      },
      // Action items saved with the summary may have been ticked off since: they are not rewritten.
      alsoWrite: output.summaryAlreadySaved ? undefined : (tx, current) => writeWithSummary(tx, current, output, now),
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

function summaryFields(output: Pick<VisitSummaryOutput, "summary" | "model" | "models" | "parts">): VisitPatch {
  const { summary, model, models, parts } = output;
  return { summary, summaryModel: model, summaryModels: models, summaryParts: parts, actionItemCount: summary.actionItems.length };
}

/** What is written with the summary, in its commit: the action items and, on the transcript, the speakers' roles. */
function writeWithSummary(tx: Transaction, current: Visit, output: Pick<VisitSummaryOutput, "summary">, now: Date): void {
  writeActionItems(tx, {
    visitId: current.id,
    userId: current.userId,
    items: output.summary.actionItems,
    previousCount: current.actionItemCount,
    now,
  });
  writeSpeakerRoles(tx, current.id, output.summary.speakers);
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
 * Room in the paid-call budget for documents written in parts: every planned part of each
 * transcript document (the summary, and the clinician's note when asked for) may be sent, refused
 * as too large and sent again as two halves (three calls a part). Estimated from the visit's
 * transcript counts, so bounded by the audio cap; MAX_PAID_CALLS_PER_VISIT stays on top for
 * retries and the translation.
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
  const documents = p.config.clinicianNote ? 2 : 1;
  return parts > 1 ? 3 * parts * documents : 0;
}

/**
 * Room in the paid-call budget for the summary's translation in parts, once the summary it
 * translates is saved on the visit (before that, nothing says how large it is: the step runner asks
 * again when a call of the attempt that saved it would pass the ceiling): three calls a planned
 * part, like the transcript's parts.
 */
function translationCallAllowance(visit: Visit): number {
  if (!visit.summary || visit.summaryTranslation === null) return 0;
  const parts = planTranslationParts(visit.summary).length;
  return parts > 1 ? 3 * parts : 0;
}

/** Everything one attempt writes: what earlier attempts of this recording saved is taken as it is. */
async function writeVisitDocuments(p: Pipeline, work: StepWork<"openai">): Promise<VisitSummaryOutput> {
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
  const plan: PartsPlan = { generation, units: transcriptLines(transcript, maxLineCharsFor(tokens)), partTokens: tokens };
  if (plan.units.join("").trim() === "") throw new PipelineError("transcript_empty");

  const writer = modelWriter(p, visit.id);
  const languageCode = normalizeLanguageCode(visit.transcript?.languageCode) ?? null;
  const guard = { statuses: ["summarizing"], lease: { stage: "summarization", attempt: work.attempt }, generation } satisfies VisitGuard;

  const saved = savedSummaryOf(visit);
  const written = saved ?? (await writeSummary(p, work, plan, writer, { languageCode, speakerLabels: speakerLabels(transcript) }));
  const translateTo = await translationTarget(visit, written.summary);
  const wantsNote = p.config.clinicianNote;
  const moreToWrite = translateTo !== null || wantsNote;
  // With more to write, the summary is saved first: what follows may fail without losing it.
  if (!saved && moreToWrite) await saveSummaryFirst(p, work, written, { translateTo, wantsNote }, guard);
  const summaryAlreadySaved = saved !== null || moreToWrite;

  const translation = translateTo ? await translatedSummary(p, work, written.summary, translateTo, guard, writer) : null;
  const clinicianNote = wantsNote ? await writtenClinicianNote(p, work, plan, writer, languageCode, guard) : null;
  return { ...written, summaryAlreadySaved, translation, clinicianNote, usage: writer.usage() };
}

type WrittenSummary = Pick<VisitSummaryOutput, "summary" | "model" | "models" | "parts">;

/**
 * A summary on a visit that is still summarizing, with a mark for what else it asked for, was
 * saved by an earlier attempt of this recording while that went on (a new recording clears both):
 * it is not paid for again.
 */
function savedSummaryOf(visit: Visit): WrittenSummary | null {
  if (!visit.summary || (visit.summaryTranslation === null && visit.clinicianNote === null)) return null;
  return { summary: visit.summary, model: visit.summaryModel ?? "", models: visit.summaryModels, parts: visit.summaryParts ?? 1 };
}

/** The patient summary of the transcript, merged from its parts. */
async function writeSummary(
  p: Pipeline,
  work: StepWork<"openai">,
  plan: PartsPlan,
  writer: ModelWriter,
  context: { languageCode: string | null; speakerLabels: readonly string[] },
): Promise<WrittenSummary> {
  const spec: PartDocumentSpec<VisitSummary> = {
    document: "summary",
    ask: askForTranscriptDocument(p, work, writer, {
      what: "summary",
      operation: "summarize",
      languageCode: context.languageCode,
      send: (summarizer, request) => summarizer.summarize(request).then(({ summary, ...rest }) => ({ value: summary, ...rest })),
      normalize: normalizeSummary,
    }),
    splitOn: TRANSCRIPT_PART_TOO_LARGE,
    stored: (part) => part.summary,
    toStored: (summary) => ({ summary }),
  };
  const parts = await writeInParts(p, work, plan, spec, writer);
  const merged = mergeSummaries(
    parts.map((part) => part.value),
    context,
  );
  if (merged.clipped > 0) logs.summaryMergeClipped(work.visit.id, parts.length, merged.clipped);
  return { summary: merged.summary, ...writtenBy(parts) };
}

/** Who wrote a document in parts: the model of most parts (the first on a tie), every model, how many parts. */
function writtenBy(parts: readonly { model: string }[]): { model: string; models: string[]; parts: number } {
  const models = parts.map((part) => part.model);
  return { model: mostCommon(models), models: [...new Set(models)], parts: parts.length };
}

// A part of the transcript is split when the model finds it beyond its context, and when its answer
// is cut off: a long, dense visit can need more than one answer's tokens to summarize whole, and the
// same request again (or to the fallback model, held to the same answer length) would be cut off
// again. A single turn whose answer is still cut off is asked again, then of the fallback model.
const TRANSCRIPT_PART_TOO_LARGE = ["summary_context_exceeded", "summary_truncated"] as const;
// A part of a summary being translated is split when its translation is cut off, too: it is as long
// as its source, so a smaller part is what helps.
const TRANSLATION_PART_TOO_LARGE = ["summary_context_exceeded", "summary_truncated"] as const;

/**
 * How a document of the transcript (the summary, the clinician's note) is asked for: paid through
 * the step, normalized, and refused (`summary_invalid`, asked again) when it is not in the
 * recording's language — one in another language is never stored.
 */
function askForTranscriptDocument<T extends { language: string }>(
  p: Pipeline,
  work: StepWork<"openai">,
  writer: ModelWriter,
  document: {
    what: string;
    operation: OperationOf<"openai">;
    languageCode: string | null;
    send(summarizer: Summarizer, request: SummaryRequest): Promise<ModelAnswer<T>>;
    normalize(value: T): T;
  },
): AskModel<T> {
  return async (model, part) => {
    const request: SummaryRequest = { transcriptText: part.text, languageCode: document.languageCode, model, part: part.isPart };
    const answer = await paidAnswer(p, work, writer, document.operation, (summarizer) => document.send(summarizer, request));
    const value = document.normalize(answer.value);
    const { languageCode } = document;
    if (languageCode && /^[a-z]{2}$/.test(value.language) && value.language !== languageCode) {
      throw new PipelineError("summary_invalid", { detail: `${document.what} in ${value.language}, visit in ${languageCode}` });
    }
    return { ...answer, value };
  };
}
/** One paid OpenAI request through the step's `pay`: its usage goes on the visit's cost and the attempt's tally. */
async function paidAnswer<T>(
  p: Pipeline,
  work: StepWork<"openai">,
  writer: ModelWriter,
  operation: OperationOf<"openai">,
  send: (summarizer: Summarizer) => Promise<ModelAnswer<T>>,
): Promise<ModelAnswer<T>> {
  const answer = await work.pay(operation, () => send(p.summarizer()), undefined, (result) => result.usage);
  writer.count(answer.usage);
  return answer;
}

/**
 * The language the summary is also written in: the user's preferred language, when there is one
 * and it is not the summary's own. A preference the pipeline cannot use is logged and left out.
 */
async function translationTarget(visit: Visit, summary: VisitSummary): Promise<string | null> {
  const preferred = await readPreferredLanguage(visit.userId);
  if (!preferred.ok) {
    logs.preferredLanguageIgnored(visit.id, preferred.code);
    return null;
  }
  return preferred.language !== null && preferred.language !== summary.language ? preferred.language : null;
}

/**
 * Saves the summary on the visit (with its action items and the speakers' roles, still
 * `summarizing`) before anything else is written, marking what else was asked for as `requested`:
 * from here on a failure keeps it, and a later attempt or retry round does not pay for it again.
 */
async function saveSummaryFirst(
  p: Pipeline,
  work: StepWork<"openai">,
  written: WrittenSummary,
  extras: { translateTo: string | null; wantsNote: boolean },
  guard: VisitGuard,
): Promise<void> {
  const now = p.now();
  const saved = await updateVisit(
    work.visit.id,
    {
      ...summaryFields(written),
      summaryTranslation: extras.translateTo ? { language: extras.translateTo, state: "requested", model: null } : null,
      clinicianNote: extras.wantsNote ? { format: "soap", state: "requested", model: null } : null,
    },
    { now, guard, alsoWrite: (tx, current) => writeWithSummary(tx, current, written, now) },
  );
  if (!saved.applied) throw new PipelineError("lease_lost", { detail: `summary fenced off (${saved.reason})` });
  logs.summarySavedBeforeExtras(work.visit.id, work.attempt, extras.translateTo, extras.wantsNote);
  // The saved summary holds what its parts said: their checkpoints are no longer needed.
  await deleteSummaryParts(work.visit.id, "summary");
}

/**
 * The summary in `language`: the one an earlier attempt saved for exactly this summary, or written
 * now — in one request when it fits one answer, else in parts of consecutive items
 * (visit/summary-translation-parts.ts), each checkpointed like the transcript's parts and split
 * further when its answer is cut off, then put back together item for item.
 */
async function translatedSummary(
  p: Pipeline,
  work: StepWork<"openai">,
  summary: VisitSummary,
  language: string,
  guard: VisitGuard & { generation: string },
  writer: ModelWriter,
): Promise<SummaryTranslationInfo> {
  const { visit } = work;
  const saved = await loadSummaryTranslation(visit.id, { generation: guard.generation, language, source: summary });
  if (saved) return { language, state: "saved", model: saved.model };
  const spec: PartDocumentSpec<VisitSummary> = {
    document: "summary_translation",
    async ask(model, part) {
      const source = translationPartSource(summary, part.range);
      const answer = await paidAnswer(p, work, writer, "translate_summary", (summarizer) =>
        summarizer.translateSummary({ summary: source, targetLanguage: language, model, part: part.isPart }).then(({ summary: value, ...rest }) => ({ value, ...rest })),
      );
      // Each part is checked against its own items as it comes back: one that does not line up is asked again, not merged.
      return { ...answer, value: applyTranslation(source, answer.value, language) };
    },
    splitOn: TRANSLATION_PART_TOO_LARGE,
    // A part translated into another language is never taken for this one.
    alsoDependsOn: language,
    stored: (part) => part.summary,
    toStored: (translated) => ({ summary: translated }),
  };
  const plan: PartsPlan = { generation: guard.generation, units: translationUnits(summary), partTokens: translationPartTokens(summary) };
  const parts = await writeInParts(p, work, plan, spec, writer).catch((thrown: unknown) => {
    // Larger parts are split when cut off: a cut-off answer that comes out here was of a single item.
    const error = asPipelineError(thrown);
    throw error.code === "summary_truncated" ? new PipelineError("translation_item_too_long", { detail: error.detail, cause: error }) : error;
  });
  const translated = mergeTranslatedParts(
    summary,
    parts.map(({ value, range }) => ({ range, translated: value })),
    language,
  );
  const { model } = writtenBy(parts);
  const stored = await saveSummaryTranslation(
    visit.id,
    {
      kind: "summary_translation",
      generation: guard.generation,
      language,
      sourceSha256: summarySha256(summary),
      summary: translated,
      model,
      parts: parts.length,
      savedAt: p.now(),
    },
    guard,
  );
  if (!stored) throw new PipelineError("lease_lost", { detail: "translation fenced off" });
  // The saved translation holds what its parts said: their checkpoints are no longer needed. (One
  // request leaves none; leftovers of another language go with the visit's success, or with it.)
  if (parts.length > 1) await deleteSummaryParts(visit.id, "summary_translation");
  logs.summaryExtraSaved(visit.id, "summary_translation", model, { language, parts: parts.length });
  return { language, state: "saved", model };
}

/** The clinician's SOAP note of the transcript: the one an earlier attempt saved, or written now (in parts like the summary). */
async function writtenClinicianNote(
  p: Pipeline,
  work: StepWork<"openai">,
  plan: PartsPlan,
  writer: ModelWriter,
  languageCode: string | null,
  guard: VisitGuard & { generation: string },
): Promise<ClinicianNoteInfo> {
  const { visit } = work;
  const saved = await loadClinicianNote(visit.id, guard.generation);
  if (saved) return { format: "soap", state: "saved", model: saved.model };
  const spec: PartDocumentSpec<ClinicianNote> = {
    document: "clinician_note",
    ask: askForTranscriptDocument(p, work, writer, {
      what: "note",
      operation: "write_clinician_note",
      languageCode,
      send: (summarizer, request) => summarizer.writeClinicianNote(request).then(({ note, ...rest }) => ({ value: note, ...rest })),
      normalize: normalizeClinicianNote,
    }),
    splitOn: TRANSCRIPT_PART_TOO_LARGE,
    stored: (part) => part.note,
    toStored: (note) => ({ note }),
  };
  const parts = await writeInParts(p, work, plan, spec, writer);
  const merged = mergeClinicianNotes(
    parts.map((part) => part.value),
    languageCode,
  );
  if (merged.clipped > 0) logs.summaryMergeClipped(visit.id, parts.length, merged.clipped, "clinician_note");
  const { model, models } = writtenBy(parts);
  const stored = await saveClinicianNote(
    visit.id,
    { kind: "clinician_note", generation: guard.generation, format: "soap", note: merged.note, model, models, parts: parts.length, savedAt: p.now() },
    guard,
  );
  if (!stored) throw new PipelineError("lease_lost", { detail: "clinician note fenced off" });
  await deleteSummaryParts(visit.id, "clinician_note");
  logs.summaryExtraSaved(visit.id, "clinician_note", model, { parts: parts.length });
  return { format: "soap", state: "saved", model };
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
  // The saved summary (and note) hold what the parts said: their checkpoints are no longer needed.
  if (outcome === "succeeded" || outcome === "recovered") await deleteSummaryParts(task.visitId);
  return outcome;
}

/** The visit's deadline passed while waiting for summarization: it ends partial, transcript kept. */
export function expireSummarization(p: Pipeline, visit: Visit): Promise<StepOutcome> {
  return endStep(p, summarizationStep(p, visit.summaryDispatches), visit, "deadline_exceeded", null);
}
