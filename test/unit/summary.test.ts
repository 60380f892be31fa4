import { describe, expect, it } from "vitest";
import { zodResponseFormat } from "openai/helpers/zod";
import { VisitSummarySchema, isCalendarDate, normalizeLanguageCode, normalizeSummary } from "../../functions/src/visit/summary.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";

const base: VisitSummary = {
  language: "en",
  overview: "  Follow-up for high blood pressure.  ",
  keyPoints: ["BP 152/96", "   "],
  diagnoses: [{ name: "Hypertension", certainty: "confirmed" }],
  medications: [{ name: "Lisinopril", dose: "10 mg daily", change: "started", instructions: "" }],
  testsOrdered: [{ name: "A1C", timing: "within a week" }],
  actionItems: [
    { description: "Check blood pressure every morning", owner: "patient", dueDate: null, timing: "daily" },
    { description: "Get labs", owner: "patient", dueDate: "2026-02-30", timing: "within a week" },
    { description: "   ", owner: "clinician", dueDate: null, timing: null },
  ],
  followUp: { timing: "4 weeks", reason: "review readings" },
  warningSigns: [],
};

describe("VisitSummarySchema", () => {
  it("is accepted by OpenAI's strict structured-output converter", () => {
    const format = zodResponseFormat(VisitSummarySchema, "visit_summary");
    expect(format.json_schema.strict).toBe(true);
    const schema = format.json_schema.schema as { required: string[]; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required.sort()).toEqual(Object.keys(VisitSummarySchema.shape).sort());
  });

  it("rejects unknown fields and wrong enums", () => {
    expect(VisitSummarySchema.safeParse({ ...base, extra: 1 }).success).toBe(false);
    expect(
      VisitSummarySchema.safeParse({ ...base, medications: [{ ...base.medications[0], change: "paused" }] }).success,
    ).toBe(false);
  });
});

describe("normalizeSummary", () => {
  it("trims text, drops blank entries, turns empty optionals into null and bad dates into null", () => {
    const summary = normalizeSummary(base);
    expect(summary.overview).toBe("Follow-up for high blood pressure.");
    expect(summary.keyPoints).toEqual(["BP 152/96"]);
    expect(summary.medications[0]?.instructions).toBeNull();
    expect(summary.actionItems).toHaveLength(2);
    expect(summary.actionItems[1]).toMatchObject({ dueDate: null, timing: "within a week" });
  });

  it("bounds runaway answers", () => {
    const long = normalizeSummary({ ...base, overview: "x".repeat(10_000), keyPoints: Array.from({ length: 500 }, (_, i) => `p${i}`) });
    expect(long.overview.length).toBe(2000);
    expect(long.keyPoints).toHaveLength(50);
  });

  it("reduces the language to its ISO 639 code", () => {
    expect(normalizeSummary({ ...base, language: "es_419" }).language).toBe("es");
  });
});

describe("helpers", () => {
  it.each([
    ["2026-02-28", true],
    ["2024-02-29", true],
    ["2026-02-29", false],
    ["2026-13-01", false],
    ["next week", false],
    [null, false],
  ])("isCalendarDate(%j) = %s", (value, expected) => {
    expect(isCalendarDate(value)).toBe(expected);
  });

  it.each([
    ["en", "en"],
    ["en_us", "en"],
    ["pt-BR", "pt"],
    ["EN", "en"],
    ["zz-top-secret!", undefined],
    [null, undefined],
  ])("normalizeLanguageCode(%j) = %j", (value, expected) => {
    expect(normalizeLanguageCode(value)).toBe(expected);
  });
});
