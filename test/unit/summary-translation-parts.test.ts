// A summary translated in parts: the planner (consecutive groups of items within the output budget,
// the overview and follow-up first), each part's source, and the merge back, item for item.

import { describe, expect, it } from "vitest";
import { MAX_COMPLETION_TOKENS, estimateTokens } from "../../functions/src/visit/summary-plan.js";
import type { LineRange } from "../../functions/src/visit/summary-plan.js";
import { applyTranslation } from "../../functions/src/visit/summary-translation.js";
import {
  TRANSLATION_PART_TOKENS,
  mergeTranslatedParts,
  planTranslationParts,
  translationPartSource,
  translationPartTokens,
  translationUnits,
} from "../../functions/src/visit/summary-translation-parts.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";
import { visitSummary } from "../support/summaries.js";

const small = visitSummary({
  speakers: [{ speaker: "A", role: "clinician", certainty: "stated" }],
  overview: "Follow-up for high blood pressure.",
  keyPoints: ["BP 152/96"],
  medications: [{ name: "Lisinopril", dose: "10 mg daily", change: "started", instructions: null }],
  actionItems: [{ description: "Check your blood pressure every morning", owner: "patient", dueDate: "2026-03-01", timing: null }],
  followUp: { timing: "4 weeks", reason: null },
  warningSigns: ["Severe headache"],
});

const sentence = (i: number) => `Item ${i}: the patient will keep a written record of the morning and evening readings for the clinician.`;

/** A summary merged from a long visit's parts: 100 key points and action items, 40 of the other lists. */
function longSummary(followUp: VisitSummary["followUp"] = { timing: "in three months", reason: "review the readings" }): VisitSummary {
  return visitSummary({
    speakers: [
      { speaker: "A", role: "clinician", certainty: "stated" },
      { speaker: "B", role: "patient", certainty: "inferred" },
    ],
    overview: "A long visit about blood pressure, sleep and medication. ".repeat(60).trim(),
    keyPoints: Array.from({ length: 100 }, (_, i) => sentence(i)),
    diagnoses: Array.from({ length: 40 }, (_, i) => ({ name: `Condition ${i}`, certainty: i % 2 === 0 ? ("confirmed" as const) : ("suspected" as const) })),
    medications: Array.from({ length: 40 }, (_, i) => ({ name: `Medicine ${i}`, dose: `${i} mg`, change: "continued" as const, instructions: i % 3 === 0 ? null : "with food" })),
    testsOrdered: Array.from({ length: 40 }, (_, i) => ({ name: `Test ${i}`, timing: i % 2 === 0 ? null : "next week" })),
    actionItems: Array.from({ length: 100 }, (_, i) => ({ description: sentence(i), owner: "patient" as const, dueDate: i === 7 ? "2026-05-01" : null, timing: null })),
    followUp,
    warningSigns: Array.from({ length: 40 }, (_, i) => `Warning sign ${i}`),
  });
}

/** What a faithful model answers for a part: every text marked `[es]`, an empty text left empty, the rest as sent. */
function translate(source: VisitSummary): VisitSummary {
  const text = (value: string) => (value === "" ? "" : `[es] ${value}`);
  const nullable = (value: string | null) => (value === null ? null : text(value));
  return {
    ...source,
    language: "es",
    overview: text(source.overview),
    keyPoints: source.keyPoints.map(text),
    diagnoses: source.diagnoses.map((d) => ({ ...d, name: text(d.name) })),
    medications: source.medications.map((m) => ({ ...m, name: text(m.name), dose: nullable(m.dose), instructions: nullable(m.instructions) })),
    testsOrdered: source.testsOrdered.map((t) => ({ name: text(t.name), timing: nullable(t.timing) })),
    actionItems: source.actionItems.map((a) => ({ ...a, description: text(a.description), timing: nullable(a.timing) })),
    followUp: source.followUp && { timing: nullable(source.followUp.timing), reason: nullable(source.followUp.reason) },
    warningSigns: source.warningSigns.map(text),
  };
}

/** Each planned part translated and checked against its own items, as the stage does. */
function translatedParts(summary: VisitSummary, ranges: readonly LineRange[]) {
  return ranges.map((range) => {
    const source = translationPartSource(summary, range);
    return { range, translated: applyTranslation(source, translate(source), "es") };
  });
}

describe("planTranslationParts", () => {
  it("keeps a summary that fits one answer in one part, the whole summary (no extra request)", () => {
    const units = translationUnits(small);
    // The overview, the follow-up, one key point, one medication, one action item, one warning sign.
    expect(units).toHaveLength(6);
    expect(planTranslationParts(small)).toEqual([{ from: 0, to: 6 }]);
    // The whole summary is sent, but for the speakers (not text: they are the original's).
    expect(translationPartSource(small, { from: 0, to: 6 })).toEqual({ ...small, speakers: [] });
  });

  it("states its budget: half of one answer, less what every part carries", () => {
    expect(TRANSLATION_PART_TOKENS).toBe(MAX_COMPLETION_TOKENS / 2);
    const empty = translationPartSource(small, { from: 0, to: 0 });
    expect(translationPartTokens(small)).toBe(TRANSLATION_PART_TOKENS - estimateTokens(JSON.stringify(empty)));
  });

  it("cuts a long summary into consecutive parts that cover every item once, each within the budget, the overview and follow-up first", () => {
    const summary = longSummary();
    const units = translationUnits(summary);
    expect(estimateTokens(units.join(","))).toBeGreaterThan(2 * TRANSLATION_PART_TOKENS);
    const ranges = planTranslationParts(summary);
    expect(ranges.length).toBeGreaterThan(2);
    expect(ranges[0]!.from).toBe(0);
    expect(ranges.at(-1)!.to).toBe(units.length);
    for (const [i, range] of ranges.entries()) {
      expect(range.to).toBeGreaterThan(range.from);
      if (i > 0) expect(range.from).toBe(ranges[i - 1]!.to);
      // What the part sends, as JSON, fits the budget by the project's estimate.
      expect(estimateTokens(JSON.stringify(translationPartSource(summary, range)))).toBeLessThanOrEqual(TRANSLATION_PART_TOKENS);
    }
    const first = translationPartSource(summary, ranges[0]!);
    expect(first.overview).toBe(summary.overview);
    expect(first.followUp).toEqual(summary.followUp);
    for (const range of ranges.slice(1)) {
      const later = translationPartSource(summary, range);
      expect(later.overview).toBe("");
      expect(later.followUp).toBeNull();
      expect(later.speakers).toEqual([]);
    }
    // Every item in exactly one part, in order.
    const parts = ranges.map((range) => translationPartSource(summary, range));
    expect(parts.flatMap((part) => part.keyPoints)).toEqual(summary.keyPoints);
    expect(parts.flatMap((part) => part.actionItems)).toEqual(summary.actionItems);
    expect(parts.flatMap((part) => part.medications)).toEqual(summary.medications);
    // Deterministic: the same summary, the same parts (what makes checkpoints reusable).
    expect(planTranslationParts(structuredClone(summary))).toEqual(ranges);
  });

  it("lays the items out without a follow-up when there is none", () => {
    const summary = longSummary(null);
    const ranges = planTranslationParts(summary);
    expect(translationUnits(summary)).toHaveLength(1 + 100 + 40 + 40 + 40 + 100 + 40);
    expect(ranges.map((range) => translationPartSource(summary, range)).flatMap((part) => part.warningSigns)).toEqual(summary.warningSigns);
    expect(ranges.map((range) => translationPartSource(summary, range).followUp)).toEqual(ranges.map(() => null));
  });

  it("gives an item larger than a part's budget a part of its own", () => {
    const summary = visitSummary({ overview: "Short.", keyPoints: ["a", "b".repeat(3 * TRANSLATION_PART_TOKENS + 300), "c"] });
    expect(planTranslationParts(summary)).toEqual([
      { from: 0, to: 2 },
      { from: 2, to: 3 },
      { from: 3, to: 4 },
    ]);
  });
});

describe("translationPartSource", () => {
  it("slices across list boundaries: a part may end inside one list and start the next", () => {
    // overview 0, follow-up 1, key point 2, medication 3, action item 4, warning sign 5.
    expect(translationPartSource(small, { from: 2, to: 4 })).toEqual(
      visitSummary({ keyPoints: small.keyPoints, medications: small.medications }),
    );
    expect(translationPartSource(small, { from: 1, to: 2 })).toEqual(visitSummary({ followUp: small.followUp }));
    expect(translationPartSource(small, { from: 5, to: 6 })).toEqual(visitSummary({ warningSigns: small.warningSigns }));
  });
});

describe("mergeTranslatedParts", () => {
  it("puts the parts back item for item: the same as the whole summary translated in one answer", () => {
    const summary = longSummary();
    const merged = mergeTranslatedParts(summary, translatedParts(summary, planTranslationParts(summary)), "es");
    expect(merged).toEqual(applyTranslation(summary, translate(summary), "es"));
    expect(merged.actionItems).toHaveLength(100);
    expect(merged.actionItems[99]!.description).toBe(`[es] ${sentence(99)}`);
    expect(merged.actionItems[7]!.dueDate).toBe("2026-05-01");
    expect(merged.speakers).toEqual(summary.speakers);
    expect(merged.overview).toBe(`[es] ${summary.overview}`);
  });

  it("takes only text, and the overview and follow-up only from the part that holds them", () => {
    const summary = longSummary();
    const ranges = planTranslationParts(summary);
    const parts = translatedParts(summary, ranges).map((part, i) =>
      i === 0
        ? part
        : // A later part whose model wrote an overview and a follow-up of its own, and changed an owner and a certainty.
          {
            ...part,
            translated: {
              ...part.translated,
              overview: "Invented",
              followUp: { timing: "never", reason: null },
              actionItems: part.translated.actionItems.map((item) => ({ ...item, owner: "clinician" as const })),
              diagnoses: part.translated.diagnoses.map((d) => ({ ...d, certainty: "ruled_out" as const })),
            },
          },
    );
    const merged = mergeTranslatedParts(summary, parts, "es");
    expect(merged.overview).toBe(`[es] ${summary.overview}`);
    expect(merged.followUp).toEqual({ timing: "[es] in three months", reason: "[es] review the readings" });
    expect(merged.actionItems.map((item) => item.owner)).toEqual(summary.actionItems.map((item) => item.owner));
    expect(merged.diagnoses.map((d) => d.certainty)).toEqual(summary.diagnoses.map((d) => d.certainty));
  });

  it("refuses parts that do not cover the items once and in order (internal_error), and parts that do not line up (summary_invalid)", () => {
    const summary = longSummary();
    const parts = translatedParts(summary, planTranslationParts(summary));
    const internal = expect.objectContaining({ code: "internal_error" });
    expect(() => mergeTranslatedParts(summary, parts.slice(0, -1), "es")).toThrow(internal);
    expect(() => mergeTranslatedParts(summary, parts.slice(1), "es")).toThrow(internal);
    expect(() => mergeTranslatedParts(summary, [parts[1]!, parts[0]!, ...parts.slice(2)], "es")).toThrow(internal);
    expect(() => mergeTranslatedParts(summary, [...parts, parts.at(-1)!], "es")).toThrow(internal);
    expect(() => mergeTranslatedParts(summary, [], "es")).toThrow(internal);
    const [first, ...rest] = parts;
    const short = { ...first!, translated: { ...first!.translated, keyPoints: first!.translated.keyPoints.slice(1) } };
    expect(() => mergeTranslatedParts(summary, [short, ...rest], "es")).toThrow(expect.objectContaining({ code: "summary_invalid" }));
  });
});
