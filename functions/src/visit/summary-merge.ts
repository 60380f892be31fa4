// The reduce step of a summary written in parts: the parts' summaries (in transcript order) become
// one VisitSummary, deterministically — no model call, so nothing a part found can be dropped by
// a second model. Duplicates (a medication named in three parts) are found by a normalized text
// key and kept once, at their first position; what a later part says about the same thing wins
// where the visit moves on (a suspected diagnosis later confirmed, a dose later changed). Speaker
// roles and clinician's notes written in parts are combined here too, by rules of their own.

import type { ClinicianNote } from "./clinician-note.js";
import type { SpeakerRole, VisitSummary } from "./summary.js";

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

/**
 * `speakerLabels`: the transcript's speaker labels in order of first utterance — the speakers the
 * merged summary names, each exactly once (see mergeSpeakerRoles).
 */
export function mergeSummaries(
  parts: readonly VisitSummary[],
  context: { languageCode: string | null; speakerLabels: readonly string[] },
): MergedSummary {
  const speakers = mergeSpeakerRoles(
    parts.map((part) => part.speakers),
    context.speakerLabels,
  );
  const [only] = parts;
  if (parts.length === 1 && only) return { summary: { ...only, speakers }, clipped: 0 };
  const { bound, clipped } = boundedLists();

  const overviews = mergeBy(parts.map((part) => part.overview).filter((text) => text.trim() !== ""), dedupKey, (kept) => kept);
  let overview = overviews.join("\n\n");
  let overviewClipped = 0;
  if (overview.length > MERGED_OVERVIEW_LIMIT) {
    overviewClipped = 1;
    overview = `${overview.slice(0, MERGED_OVERVIEW_LIMIT - 1)}…`;
  }
  const summary: VisitSummary = {
    language: context.languageCode ?? mostCommon(parts.map((part) => part.language)),
    speakers,
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
  return { summary, clipped: clipped() + overviewClipped };
}

/** Merged lists are cut at MERGED_LIST_LIMIT; `clipped` says how many entries that dropped. */
function boundedLists(): { bound: <T>(items: T[]) => T[]; clipped: () => number } {
  let dropped = 0;
  return {
    bound: (items) => {
      dropped += Math.max(0, items.length - MERGED_LIST_LIMIT);
      return items.slice(0, MERGED_LIST_LIMIT);
    },
    clipped: () => dropped,
  };
}

/**
 * Who each speaker is, from what every part (or the one request) said, for exactly the
 * transcript's labels in their order. A part sees only its stretch of the visit, so parts may
 * disagree; the rule never resolves a disagreement by guessing:
 *
 * - no part names a role for the label (absent, or `unknown`) → `unknown`;
 * - parts that say the role is `stated` outweigh parts that only inferred one: when stated roles
 *   exist and agree, that role, `stated`; when stated roles disagree → `unknown`;
 * - with inferred roles only: all agree → that role, `inferred`; any disagreement → `unknown`.
 *
 * Labels the model named that the transcript does not have are dropped.
 */
export function mergeSpeakerRoles(parts: readonly (readonly SpeakerRole[])[], speakerLabels: readonly string[]): SpeakerRole[] {
  return [...new Set(speakerLabels)].map((speaker) => {
    const claims = parts.flatMap((roles) => roles.filter((entry) => entry.speaker === speaker && entry.role !== "unknown"));
    const stated = claims.filter((claim) => claim.certainty === "stated");
    const strongest = stated.length > 0 ? stated : claims;
    const roles = new Set(strongest.map((claim) => claim.role));
    const [role] = roles;
    if (roles.size !== 1 || role === undefined) return { speaker, role: "unknown", certainty: null };
    return { speaker, role, certainty: stated.length > 0 ? "stated" : "inferred" };
  });
}

/**
 * A clinician's note written in parts, as one note: each section's statements in transcript
 * order, duplicates (by dedupKey) kept once at their first position, the first chief complaint
 * stated; sections bounded like merged summary lists.
 */
export function mergeClinicianNotes(parts: readonly ClinicianNote[], languageCode: string | null): { note: ClinicianNote; clipped: number } {
  const [only] = parts;
  if (parts.length === 1 && only) return { note: only, clipped: 0 };
  const { bound, clipped } = boundedLists();
  const section = (pick: (part: ClinicianNote) => readonly string[]) => bound(mergeBy(parts.flatMap(pick), dedupKey, (kept) => kept));
  const note: ClinicianNote = {
    language: languageCode ?? mostCommon(parts.map((part) => part.language)),
    chiefComplaint: parts.map((part) => part.chiefComplaint).find((complaint) => complaint !== null) ?? null,
    subjective: section((part) => part.subjective),
    objective: section((part) => part.objective),
    assessment: section((part) => part.assessment),
    plan: section((part) => part.plan),
  };
  return { note, clipped: clipped() };
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
