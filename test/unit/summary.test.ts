import { describe, expect, it } from "vitest";
import { zodResponseFormat } from "openai/helpers/zod";
import { ClinicianNoteSchema, normalizeClinicianNote } from "../../functions/src/visit/clinician-note.js";
import { VisitSummarySchema, isCalendarDate, normalizeLanguageCode, normalizeSpeakerRoles, normalizeSummary } from "../../functions/src/visit/summary.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";

const base: VisitSummary = {
  language: "en",
  speakers: [{ speaker: "A", role: "clinician", certainty: "stated" }],
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

describe("speaker roles", () => {
  it("are part of the strict schema: every field required, the certainty nullable, unknown roles refused", () => {
    const schema = zodResponseFormat(VisitSummarySchema, "visit_summary").json_schema.schema as {
      properties: { speakers: { items: { required: string[]; properties: { certainty: { anyOf?: unknown[]; type?: unknown } } } } };
    };
    expect(schema.properties.speakers.items.required.sort()).toEqual(["certainty", "role", "speaker"]);
    expect(JSON.stringify(schema.properties.speakers.items.properties.certainty)).toContain("null");
    expect(VisitSummarySchema.safeParse({ ...base, speakers: [{ speaker: "A", role: "doctor", certainty: "stated" }] }).success).toBe(false);
    expect(VisitSummarySchema.safeParse({ ...base, speakers: [{ speaker: "A", role: "clinician" }] }).success).toBe(false);
  });

  it("keep one entry per label, never give an unknown role a certainty, and count a known role without one as inferred", () => {
    expect(
      normalizeSpeakerRoles([
        { speaker: " A ", role: "clinician", certainty: "stated" },
        { speaker: "A", role: "patient", certainty: "stated" },
        { speaker: "B", role: "unknown", certainty: "stated" },
        { speaker: "C", role: "caregiver", certainty: null },
        { speaker: "", role: "patient", certainty: "inferred" },
        { speaker: "x".repeat(17), role: "patient", certainty: "inferred" },
      ]),
    ).toEqual([
      { speaker: "A", role: "clinician", certainty: "stated" },
      { speaker: "B", role: "unknown", certainty: null },
      { speaker: "C", role: "caregiver", certainty: "inferred" },
    ]);
  });
});

describe("ClinicianNoteSchema", () => {
  const note = { language: "en", chiefComplaint: " Headache ", subjective: ["Three days of headache", "  "], objective: ["BP 150/95"], assessment: ["Tension headache, suspected"], plan: ["Ibuprofen 400 mg as needed"] };

  it("is accepted by OpenAI's strict converter: an object root, every field required, no extra fields", () => {
    const format = zodResponseFormat(ClinicianNoteSchema, "clinician_note");
    const schema = format.json_schema.schema as { type: string; required: string[]; additionalProperties: boolean };
    expect(format.json_schema.strict).toBe(true);
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required.sort()).toEqual(Object.keys(ClinicianNoteSchema.shape).sort());
    expect(ClinicianNoteSchema.safeParse({ ...note, history: [] }).success).toBe(false);
    expect(ClinicianNoteSchema.safeParse({ ...note, chiefComplaint: undefined }).success).toBe(false);
  });

  it("is normalized like the summary: trimmed, blank statements dropped, sections bounded", () => {
    expect(normalizeClinicianNote({ ...note, language: "en_us" })).toEqual({ ...note, chiefComplaint: "Headache", subjective: ["Three days of headache"] });
    expect(normalizeClinicianNote({ ...note, chiefComplaint: "  " }).chiefComplaint).toBeNull();
    expect(normalizeClinicianNote({ ...note, plan: Array.from({ length: 80 }, (_, i) => `step ${i}`) }).plan).toHaveLength(50);
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
