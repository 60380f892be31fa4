// The clinician's note: a SOAP note (subjective, objective, assessment, plan) written from the
// transcript for the care team, beside the patient-facing summary, when SUMMARY_FORMATS asks for
// it. Its own zod schema, sent to OpenAI as a strict JSON schema, and the normalization applied
// after parsing. Each section is a list of statements, so a note written in parts merges by
// concatenation without a second model call (visit/summary-merge.ts).

import { z } from "zod";
import { normalizeLanguageCode } from "./summary.js";

/** What SUMMARY_FORMATS may list: the patient summary (always written) and the SOAP note. */
export const SUMMARY_FORMATS = ["patient", "soap"] as const;
export type SummaryFormat = (typeof SUMMARY_FORMATS)[number];

const statements = (what: string) => z.array(z.string()).describe(`${what} One statement per item; an empty list when the visit says nothing of it.`);

// Strict structured outputs require every property: absent values are `null`, never optional.
export const ClinicianNoteSchema = z
  .object({
    language: z.string().describe("ISO 639-1 code of the language this note is written in; it must be the visit's language."),
    chiefComplaint: z.string().nullable().describe("Why the patient came, in a few words; null if the transcript does not say."),
    subjective: statements("What the patient (or a caregiver) reports: symptoms, history, concerns, current medications."),
    objective: statements("What was observed or measured and said aloud: vital signs, examination findings, test results."),
    assessment: statements("The clinician's assessment: diagnoses and differential, with the certainty expressed."),
    plan: statements("Treatment, prescriptions, tests ordered, referrals, patient education and follow-up."),
  })
  .strict();

export type ClinicianNote = z.infer<typeof ClinicianNoteSchema>;

export const NOTE_SECTIONS = ["subjective", "objective", "assessment", "plan"] as const;

const TEXT_LIMIT = 2_000;
const LIST_LIMIT = 50;

/** Bounds what the model produced (like normalizeSummary): trimmed, blank statements dropped, sizes capped. */
export function normalizeClinicianNote(note: ClinicianNote): ClinicianNote {
  const text = (value: string) => {
    const trimmed = value.trim();
    return trimmed.length > TEXT_LIMIT ? `${trimmed.slice(0, TEXT_LIMIT - 1)}…` : trimmed;
  };
  const section = (items: readonly string[]) => items.slice(0, LIST_LIMIT).map(text).filter(Boolean);
  return {
    language: normalizeLanguageCode(note.language) ?? note.language.trim().slice(0, 16),
    chiefComplaint: note.chiefComplaint === null ? null : text(note.chiefComplaint) || null,
    subjective: section(note.subjective),
    objective: section(note.objective),
    assessment: section(note.assessment),
    plan: section(note.plan),
  };
}
