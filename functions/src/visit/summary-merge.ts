// The reduce step of a summary written in parts: the parts' summaries (in transcript order) become
// one VisitSummary, deterministically — no model call, so nothing a part found can be dropped by
// a second model. Duplicates (a medication named in three parts) are found by a normalized text
// key and kept once, at their first position; what a later part says about the same thing wins
// where the visit moves on (a suspected diagnosis later confirmed, a dose later changed).

import type { VisitSummary } from "./summary.js";

/** Bounds of a merged summary (one part is bounded by normalizeSummary: 50 items, 2,000 characters). */
export const MERGED_LIST_LIMIT = 100;
export const MERGED_OVERVIEW_LIMIT = 10_000;

/** Case, accents, punctuation and spacing do not tell two entries apart. */
export function dedupKey(text: string): string {
  const key = text
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
  return key === "" ? text.trim() : key;
}

export interface MergedSummary {
  summary: VisitSummary;
  /** Entries past the merged bounds (reported in the logs, never silently). */
  clipped: number;
}

export function mergeSummaries(parts: readonly VisitSummary[], languageCode: string | null): MergedSummary {
  const [only] = parts;
  if (parts.length === 1 && only) return { summary: only, clipped: 0 };
  let clipped = 0;
  const bound = <T>(items: T[]): T[] => {
    clipped += Math.max(0, items.length - MERGED_LIST_LIMIT);
    return items.slice(0, MERGED_LIST_LIMIT);
  };

  const overviews = mergeBy(parts.map((part) => part.overview).filter((text) => text.trim() !== ""), dedupKey, (kept) => kept);
  let overview = overviews.join("\n\n");
  if (overview.length > MERGED_OVERVIEW_LIMIT) {
    clipped += 1;
    overview = `${overview.slice(0, MERGED_OVERVIEW_LIMIT - 1)}…`;
  }
  const summary: VisitSummary = {
    language: languageCode ?? mostCommon(parts.map((part) => part.language)),
    overview,
    keyPoints: bound(mergeBy(parts.flatMap((part) => part.keyPoints), dedupKey, (kept) => kept)),
    diagnoses: bound(mergeBy(parts.flatMap((part) => part.diagnoses), (d) => dedupKey(d.name), (kept, later) => ({ ...kept, certainty: later.certainty }))),
    medications: bound(
      mergeBy(
        parts.flatMap((part) => part.medications),
        (m) => dedupKey(m.name),
        (kept, later) => ({
          name: kept.name,
          change: later.change,
          dose: later.dose ?? kept.dose,
          instructions: later.instructions ?? kept.instructions,
        }),
      ),
    ),
    testsOrdered: bound(mergeBy(parts.flatMap((part) => part.testsOrdered), (t) => dedupKey(t.name), (kept, later) => ({ ...kept, timing: kept.timing ?? later.timing }))),
    actionItems: bound(
      mergeBy(
        parts.flatMap((part) => part.actionItems),
        (a) => `${a.owner}|${dedupKey(a.description)}`,
        (kept, later) => ({ ...kept, dueDate: kept.dueDate ?? later.dueDate, timing: kept.timing ?? later.timing }),
      ),
    ),
    // The arrangement made last: follow-ups are usually agreed at the end of a visit.
    followUp: parts.map((part) => part.followUp).findLast((f) => f !== null && (f.timing !== null || f.reason !== null)) ?? null,
    warningSigns: bound(mergeBy(parts.flatMap((part) => part.warningSigns), dedupKey, (kept) => kept)),
  };
  return { summary, clipped };
}

/** One entry per key, at the position of its first occurrence, folded left to right. */
function mergeBy<T>(items: readonly T[], key: (item: T) => string, combine: (kept: T, later: T) => T): T[] {
  const merged = new Map<string, T>();
  for (const item of items) {
    const k = key(item);
    const kept = merged.get(k);
    merged.set(k, kept === undefined ? item : combine(kept, item));
  }
  return [...merged.values()];
}

/** The most frequent value; a tie goes to the one seen first. */
export function mostCommon(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best = values[0] ?? "";
  for (const [value, count] of counts) if (count > (counts.get(best) ?? 0)) best = value;
  return best;
}
