// The summary in the preferred language: the model's words, the original's structure and facts.

import { describe, expect, it } from "vitest";
import { applyTranslation } from "../../functions/src/visit/summary-translation.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";

const original: VisitSummary = {
  language: "en",
  speakers: [{ speaker: "A", role: "clinician", certainty: "stated" }],
  overview: "Follow-up for high blood pressure.",
  keyPoints: ["BP 152/96", "Sleeps badly"],
  diagnoses: [{ name: "Hypertension", certainty: "confirmed" }],
  medications: [{ name: "Lisinopril", dose: "10 mg daily", change: "started", instructions: null }],
  testsOrdered: [{ name: "A1C", timing: "within a week" }],
  actionItems: [{ description: "Check your blood pressure every morning", owner: "patient", dueDate: "2026-03-01", timing: null }],
  followUp: { timing: "4 weeks", reason: null },
  warningSigns: ["Severe headache"],
};

const spanish: VisitSummary = {
  language: "es",
  speakers: [{ speaker: "A", role: "patient", certainty: "stated" }],
  overview: "Control de la presión arterial alta.",
  keyPoints: ["PA 152/96", "Duerme mal"],
  diagnoses: [{ name: "Hipertensión", certainty: "suspected" }],
  medications: [{ name: "Lisinopril", dose: "10 mg al día", change: "stopped", instructions: "con comida" }],
  testsOrdered: [{ name: "A1C", timing: "en una semana" }],
  actionItems: [{ description: "Mida su presión arterial cada mañana", owner: "clinician", dueDate: null, timing: "cada mañana" }],
  followUp: { timing: "4 semanas", reason: "revisar" },
  warningSigns: ["Dolor de cabeza intenso"],
};

describe("applyTranslation", () => {
  it("takes the translated texts and keeps everything else of the original: roles, certainties, changes, owners, dates, absent texts", () => {
    expect(applyTranslation(original, spanish, "es")).toEqual({
      language: "es",
      speakers: original.speakers,
      overview: "Control de la presión arterial alta.",
      keyPoints: ["PA 152/96", "Duerme mal"],
      diagnoses: [{ name: "Hipertensión", certainty: "confirmed" }],
      medications: [{ name: "Lisinopril", dose: "10 mg al día", change: "started", instructions: null }],
      testsOrdered: [{ name: "A1C", timing: "en una semana" }],
      actionItems: [{ description: "Mida su presión arterial cada mañana", owner: "patient", dueDate: "2026-03-01", timing: null }],
      followUp: { timing: "4 semanas", reason: null },
      warningSigns: ["Dolor de cabeza intenso"],
    });
  });

  it("keeps the original words where the translation left a text blank, so no item is dropped", () => {
    const blank = { ...spanish, keyPoints: ["PA 152/96", "  "], actionItems: [{ ...spanish.actionItems[0]!, description: "" }] };
    const translated = applyTranslation(original, blank, "es");
    expect(translated.keyPoints).toEqual(["PA 152/96", "Sleeps badly"]);
    expect(translated.actionItems.map((item) => item.description)).toEqual(["Check your blood pressure every morning"]);
  });

  it("keeps every item and the whole overview of a summary merged from parts (100 items a list, a 10,000-character overview)", () => {
    const merged: VisitSummary = {
      ...original,
      overview: "The visit. ".repeat(909).trim(),
      keyPoints: Array.from({ length: 100 }, (_, i) => `Point ${i}`),
      actionItems: Array.from({ length: 100 }, (_, i) => ({ description: `Task ${i}`, owner: "patient" as const, dueDate: null, timing: null })),
    };
    const translation: VisitSummary = {
      ...merged,
      language: "es",
      overview: "La visita. ".repeat(909).trim(),
      keyPoints: merged.keyPoints.map((point) => `  ${point} (es) `),
      actionItems: merged.actionItems.map((item) => ({ ...item, description: `${item.description} (es)` })),
    };
    const translated = applyTranslation(merged, translation, "es");
    expect(translated.overview).toBe(translation.overview);
    expect(translated.overview.length).toBeGreaterThan(9_000);
    expect(translated.keyPoints).toEqual(merged.keyPoints.map((point) => `${point} (es)`));
    expect(translated.actionItems.map((item) => item.description)).toEqual(merged.actionItems.map((item) => `${item.description} (es)`));
  });

  it("refuses a runaway text (more than three times its source, and longer than any summary text) rather than cut it", () => {
    expect(applyTranslation(original, { ...spanish, keyPoints: ["PA 152/96", "x".repeat(2_000)] }, "es").keyPoints[1]).toHaveLength(2_000);
    const runaway = { ...spanish, keyPoints: ["PA 152/96", "x".repeat(2_001)] };
    expect(() => applyTranslation(original, runaway, "es")).toThrow(expect.objectContaining({ code: "summary_invalid" }));
    const long = { ...original, overview: "y".repeat(1_000) };
    expect(applyTranslation(long, { ...spanish, overview: "z".repeat(3_000) }, "es").overview).toHaveLength(3_000);
    expect(() => applyTranslation(long, { ...spanish, overview: "z".repeat(3_001) }, "es")).toThrow(expect.objectContaining({ code: "summary_invalid" }));
  });

  it("refuses a translation in another language, or one that does not line up item for item (summary_invalid)", () => {
    const invalid = expect.objectContaining({ code: "summary_invalid" });
    expect(() => applyTranslation(original, spanish, "fr")).toThrow(invalid);
    expect(() => applyTranslation(original, { ...spanish, language: "en" }, "es")).toThrow(invalid);
    expect(() => applyTranslation(original, { ...spanish, keyPoints: ["PA 152/96"] }, "es")).toThrow(invalid);
    expect(() => applyTranslation(original, { ...spanish, actionItems: [...spanish.actionItems, ...spanish.actionItems] }, "es")).toThrow(invalid);
    expect(() => applyTranslation(original, { ...spanish, followUp: null }, "es")).toThrow(invalid);
    // A regional code is the language's.
    expect(applyTranslation(original, { ...spanish, language: "es_419" }, "es").language).toBe("es");
  });
});
