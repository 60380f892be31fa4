// The structured visit summary: the zod schema sent to OpenAI as a strict JSON schema, and the
// normalization applied after parsing (bounded sizes, real dates), so the app gets clean data.

import { z } from "zod";

const MEDICATION_CHANGES = ["started", "stopped", "changed", "continued"] as const;
const ACTION_OWNERS = ["patient", "clinician", "care_team"] as const;
const DIAGNOSIS_CERTAINTIES = ["confirmed", "suspected", "ruled_out"] as const;
/** Who a speaker label is; `unknown` when the transcript does not make it clear. */
export const SPEAKER_ROLES = ["clinician", "patient", "caregiver", "interpreter", "other", "unknown"] as const;
/**
 * How a role is known: `stated` — the transcript says it (an introduction, being addressed as
 * "doctor", "my mother"); `inferred` — from what the speaker says and asks. An unknown role has none.
 */
export const ROLE_CERTAINTIES = ["stated", "inferred"] as const;

// The rules for telling roles apart are in the prompt (providers/openai.ts); the schema stays short:
// it is sent, and paid for, with every request.
export const SpeakerRoleSchema = z
  .object({
    speaker: z.string().describe("The label, e.g. 'A'."),
    role: z.enum(SPEAKER_ROLES),
    certainty: z.enum(ROLE_CERTAINTIES).nullable().describe("Null when the role is unknown."),
  })
  .strict();

export type SpeakerRole = z.infer<typeof SpeakerRoleSchema>;

// Strict structured outputs require every property to be present: absent values are `null`
// (`.nullable()`), never `.optional()`.
export const VisitSummarySchema = z
  .object({
    language: z
      .string()
      .describe("ISO 639-1 code of the language this summary is written in; it must be the visit's language."),
    speakers: z.array(SpeakerRoleSchema).describe("Each speaker label of the transcript once, with who they are."),
    overview: z.string().describe("Two to four sentences on why the patient came and what was decided."),
    keyPoints: z.array(z.string()).describe("The most important facts and decisions, one per item."),
    diagnoses: z
      .array(
        z
          .object({
            name: z.string(),
            certainty: z.enum(DIAGNOSIS_CERTAINTIES),
          })
          .strict(),
      )
      .describe("Conditions the clinician named, with how certain they were."),
    medications: z
      .array(
        z
          .object({
            name: z.string(),
            dose: z.string().nullable().describe("Strength and frequency as said, e.g. '10 mg once daily'."),
            change: z.enum(MEDICATION_CHANGES),
            instructions: z.string().nullable(),
          })
          .strict(),
      )
      .describe("Every medication discussed and whether it was started, stopped, changed or continued."),
    testsOrdered: z
      .array(z.object({ name: z.string(), timing: z.string().nullable() }).strict())
      .describe("Labs, imaging and other tests ordered."),
    actionItems: z
      .array(
        z
          .object({
            description: z.string(),
            owner: z.enum(ACTION_OWNERS),
            dueDate: z
              .string()
              .nullable()
              .describe("YYYY-MM-DD only if an exact calendar date was stated; otherwise null."),
            timing: z.string().nullable().describe("When, in the visit's words, e.g. 'within a week'."),
          })
          .strict(),
      )
      .describe("Concrete things someone must do after the visit."),
    followUp: z
      .object({ timing: z.string().nullable(), reason: z.string().nullable() })
      .strict()
      .nullable()
      .describe("The next appointment, if one was arranged."),
    warningSigns: z.array(z.string()).describe("Symptoms that should make the patient seek care sooner."),
  })
  .strict();

export type VisitSummary = z.infer<typeof VisitSummarySchema>;

/** A summary as stored: one written before speaker roles were recorded has none. */
export const StoredVisitSummarySchema = VisitSummarySchema.extend({ speakers: z.array(SpeakerRoleSchema).default([]) });
export type ActionItem = VisitSummary["actionItems"][number];

/** The longest text of one answer's summary (a merged summary's overview may be longer: summary-merge.ts). */
export const TEXT_LIMIT = 2_000;
const LIST_LIMIT = 50;

/**
 * Bounds what the model produced before it is stored: a runaway answer must not blow up the
 * visit document (1 MiB limit) or the app's screen. A due date that is not a real calendar date
 * becomes null (the spoken `timing` is kept).
 */
export function normalizeSummary(summary: VisitSummary): VisitSummary {
  const text = (value: string) => clip(value.trim(), TEXT_LIMIT);
  const nullableText = (value: string | null) => (value === null ? null : text(value) || null);
  const list = <T>(items: readonly T[], map: (item: T) => T) => items.slice(0, LIST_LIMIT).map(map);
  return {
    language: normalizeLanguageCode(summary.language) ?? summary.language.trim().slice(0, 16),
    speakers: normalizeSpeakerRoles(summary.speakers),
    overview: text(summary.overview),
    keyPoints: list(summary.keyPoints, text).filter(Boolean),
    diagnoses: list(summary.diagnoses, (d) => ({ ...d, name: text(d.name) })),
    medications: list(summary.medications, (m) => ({
      ...m,
      name: text(m.name),
      dose: nullableText(m.dose),
      instructions: nullableText(m.instructions),
    })),
    testsOrdered: list(summary.testsOrdered, (t) => ({ name: text(t.name), timing: nullableText(t.timing) })),
    actionItems: list(summary.actionItems, (a) => ({
      ...a,
      description: text(a.description),
      dueDate: isCalendarDate(a.dueDate) ? a.dueDate : null,
      timing: nullableText(a.timing),
    })).filter((a) => a.description.length > 0),
    followUp: summary.followUp && {
      timing: nullableText(summary.followUp.timing),
      reason: nullableText(summary.followUp.reason),
    },
    warningSigns: list(summary.warningSigns, text).filter(Boolean),
  };
}

// Speaker labels are short (`A`, `B`, … `AA`); anything longer is not one.
const SPEAKER_LABEL_LIMIT = 16;

/**
 * One entry per label (the first one given), blank or overlong labels dropped. An unknown role
 * carries no certainty; a known role whose certainty the model left out counts as only inferred.
 */
export function normalizeSpeakerRoles(roles: readonly SpeakerRole[]): SpeakerRole[] {
  const byLabel = new Map<string, SpeakerRole>();
  for (const entry of roles.slice(0, LIST_LIMIT)) {
    const speaker = entry.speaker.trim();
    if (speaker === "" || speaker.length > SPEAKER_LABEL_LIMIT || byLabel.has(speaker)) continue;
    byLabel.set(speaker, { speaker, role: entry.role, certainty: entry.role === "unknown" ? null : (entry.certainty ?? "inferred") });
  }
  return [...byLabel.values()];
}

function clip(value: string, limit: number): string {
  return value.length > limit ? `${value.slice(0, limit - 1)}…` : value;
}

export function isCalendarDate(value: string | null): value is string {
  if (value === null || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
}

/**
 * AssemblyAI reports codes like `en`, `en_us`, `es`; the summary uses the bare ISO 639 code.
 * Returns undefined for anything that does not look like a language code.
 */
export function normalizeLanguageCode(code: string | null | undefined): string | undefined {
  const match = code?.trim().toLowerCase().match(/^([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*$/);
  return match?.[1];
}
