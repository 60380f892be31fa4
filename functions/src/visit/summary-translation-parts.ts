// A summary too large to be translated in one answer, translated in parts. Pure: no Firebase, no
// provider. The summary's items, in order — the overview, the follow-up, then every key point,
// diagnosis, medication, test, action item and warning sign — are grouped into consecutive parts
// (planChunks, the transcript's own greedy rule) whose estimated size fits TRANSLATION_PART_TOKENS.
// Each part is a summary of its own, the same strict schema with only its items, so the model
// translates it like a whole one; the parts' translations are put back item for item.

import { PipelineError } from "./errors.js";
import { MAX_COMPLETION_TOKENS, estimateTokens, planChunks } from "./summary-plan.js";
import type { LineRange } from "./summary-plan.js";
import { applyTranslation } from "./summary-translation.js";
import type { VisitSummary } from "./summary.js";

/**
 * The most a part may hold: its source summary (JSON, by estimateTokens) is at most half of one
 * answer. The other half is headroom for a translation longer than its source (more words, a
 * script that takes more tokens) and for the estimate's own error; a part whose answer is cut off
 * all the same is split further (stages/summarize.ts).
 */
export const TRANSLATION_PART_TOKENS = MAX_COMPLETION_TOKENS / 2;

const LISTS = ["keyPoints", "diagnoses", "medications", "testsOrdered", "actionItems", "warningSigns"] as const;
type ListName = (typeof LISTS)[number];

// Where each item stands in the summary's item order (`[from, to)` ranges index into it): the
// overview first, the follow-up (when there is one) next, then the lists' items.
const OVERVIEW_POSITION = 0;

function followUpPosition(summary: VisitSummary): number | null {
  return summary.followUp === null ? null : 1;
}

/** The position of a list's first item (where it would be, for an empty list). */
function listStart(summary: VisitSummary, list: ListName): number {
  const before = LISTS.slice(0, LISTS.indexOf(list));
  return (summary.followUp === null ? 1 : 2) + before.reduce((sum, name) => sum + summary[name].length, 0);
}

function itemCount(summary: VisitSummary): number {
  return listStart(summary, "warningSigns") + summary.warningSigns.length;
}

const holds = (range: LineRange, position: number | null) => position !== null && range.from <= position && position < range.to;

/** Every item as the model writes it back (its JSON), in the summary's item order: what parts are planned from. */
export function translationUnits(summary: VisitSummary): string[] {
  const lists = LISTS.flatMap((list) => {
    const items: readonly unknown[] = summary[list];
    return items.map((item) => JSON.stringify(item));
  });
  return [JSON.stringify(summary.overview), ...(summary.followUp === null ? [] : [JSON.stringify(summary.followUp)]), ...lists];
}

/** The items a part may hold: TRANSLATION_PART_TOKENS less what every part carries (its keys, the language). */
export function translationPartTokens(summary: VisitSummary): number {
  const empty = translationPartSource(summary, { from: 0, to: 0 });
  return TRANSLATION_PART_TOKENS - estimateTokens(JSON.stringify(empty));
}

/** The parts a summary is translated in: one when it fits (no extra request), else consecutive groups of items. */
export function planTranslationParts(summary: VisitSummary): LineRange[] {
  return planChunks(translationUnits(summary), translationPartTokens(summary));
}

/**
 * What a part sends to be translated: the summary with only the items of `range` — the overview
 * empty and the follow-up null where the part does not hold them. Never the speakers: their roles
 * are not text and are taken from the original (applyTranslation), so no part repeats them.
 */
export function translationPartSource(summary: VisitSummary, range: LineRange): VisitSummary {
  const slice = <T>(list: ListName, items: readonly T[]): T[] => {
    const start = listStart(summary, list);
    return items.slice(Math.max(0, range.from - start), Math.max(0, range.to - start));
  };
  return {
    language: summary.language,
    speakers: [],
    overview: holds(range, OVERVIEW_POSITION) ? summary.overview : "",
    keyPoints: slice("keyPoints", summary.keyPoints),
    diagnoses: slice("diagnoses", summary.diagnoses),
    medications: slice("medications", summary.medications),
    testsOrdered: slice("testsOrdered", summary.testsOrdered),
    actionItems: slice("actionItems", summary.actionItems),
    followUp: holds(range, followUpPosition(summary)) ? summary.followUp : null,
    warningSigns: slice("warningSigns", summary.warningSigns),
  };
}

export interface TranslatedPart {
  range: LineRange;
  /** The part's translation, checked against its source by applyTranslation. */
  translated: VisitSummary;
}

/**
 * The whole translation from its parts, which must cover the summary's items once, in order: each
 * list is its parts' lists end to end, the overview and follow-up come from the part that holds
 * them, and the result goes through applyTranslation against the original — the same lengths and
 * order, only text taken, whatever the parts were.
 */
export function mergeTranslatedParts(original: VisitSummary, parts: readonly TranslatedPart[], language: string): VisitSummary {
  // Where the parts' consecutive ranges end, or null at the first gap, overlap or empty range.
  const coveredTo = parts.reduce<number | null>((end, { range }) => (end === range.from && range.to > range.from ? range.to : null), 0);
  if (coveredTo !== itemCount(original)) {
    throw new PipelineError("internal_error", { detail: `translation parts do not cover the summary's ${itemCount(original)} items once, in order` });
  }
  const holder = (position: number | null) => parts.find((part) => holds(part.range, position))?.translated;
  const joined = <T>(list: (part: VisitSummary) => readonly T[]): T[] => parts.flatMap((part) => list(part.translated));
  const merged: VisitSummary = {
    language,
    speakers: original.speakers,
    overview: holder(OVERVIEW_POSITION)?.overview ?? "",
    keyPoints: joined((part) => part.keyPoints),
    diagnoses: joined((part) => part.diagnoses),
    medications: joined((part) => part.medications),
    testsOrdered: joined((part) => part.testsOrdered),
    actionItems: joined((part) => part.actionItems),
    followUp: holder(followUpPosition(original))?.followUp ?? null,
    warningSigns: joined((part) => part.warningSigns),
  };
  return applyTranslation(original, merged, language);
}
