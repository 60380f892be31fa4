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
