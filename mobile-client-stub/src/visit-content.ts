// What a finished (or partial) visit shows: the summary — in the user's preferred language when the
// pipeline wrote one, with a switch to the original — the speakers by role ("Clinician:" instead
// of "A:"), the transcript with those labels, and the clinician's note when there is one. Parsed
// with zod at the edge; the description is a pure function of the documents and the switch.

import { z } from "zod";
import { ARTIFACT_IDS, NOTE_SECTIONS, ROLE_CERTAINTIES, SPEAKER_ROLES, SUMMARY_EXTRA_STATES } from "./contract.js";
import type { RoleCertainty, SpeakerRoleName } from "./contract.js";

const nullableString = z.string().nullish().transform((value) => value ?? null);

const SpeakerRoleSchema = z.object({
  speaker: z.string(),
  role: z.enum(SPEAKER_ROLES),
  certainty: z.enum(ROLE_CERTAINTIES).nullish().transform((value) => value ?? null),
});

/** The summary fields the app shows; a summary saved before speaker roles were recorded has none. */
const SummarySchema = z.object({
  language: z.string(),
  speakers: z.array(SpeakerRoleSchema).default([]),
  overview: z.string(),
  keyPoints: z.array(z.string()),
  diagnoses: z.array(z.object({ name: z.string(), certainty: z.string() })),
  medications: z.array(z.object({ name: z.string(), dose: nullableString, change: z.string(), instructions: nullableString })),
  testsOrdered: z.array(z.object({ name: z.string(), timing: nullableString })),
  actionItems: z.array(z.object({ description: z.string(), owner: z.string(), dueDate: nullableString, timing: nullableString })),
  followUp: z.object({ timing: nullableString, reason: nullableString }).nullish().transform((value) => value ?? null),
  warningSigns: z.array(z.string()),
});
export type VisitSummaryText = z.infer<typeof SummarySchema>;

const ExtraSchema = z.object({ state: z.enum(SUMMARY_EXTRA_STATES) });
/** Just the visit's marks for its extra documents: which artifacts there are to read. */
const SavedMarksSchema = z.object({ summaryTranslation: ExtraSchema.nullish(), clinicianNote: ExtraSchema.nullish() });

const VisitContentSchema = z.object({
  status: z.string(),
  summary: SummarySchema.nullish().transform((value) => value ?? null),
  summaryTranslation: ExtraSchema.extend({ language: z.string() }).nullish().transform((value) => value ?? null),
  clinicianNote: ExtraSchema.nullish().transform((value) => value ?? null),
});

const TranscriptSchema = z.object({
  storage: z.enum(["inline", "paged"]),
  utterances: z.array(z.object({ speaker: z.string().nullable(), text: z.string() })).nullish().transform((value) => value ?? []),
  speakerRoles: z.array(SpeakerRoleSchema).nullish().transform((value) => value ?? null),
});

const TranslationSchema = z.object({ language: z.string(), summary: SummarySchema });

const NoteSchema = z.object({
  note: z.object({
    chiefComplaint: nullableString,
    subjective: z.array(z.string()),
    objective: z.array(z.string()),
    assessment: z.array(z.string()),
    plan: z.array(z.string()),
  }),
});

/** The documents the view is made of, as Firestore returned them (null: not there, or not read). */
export interface VisitContentDocuments {
  visit: unknown;
  transcript: unknown;
  translation: unknown;
  clinicianNote: unknown;
}

/** Which summary to show: the preferred language's when there is one (the default), or the original. */
export type SummaryChoice = "preferred" | "original";

export interface SpeakerView {
  speaker: string;
  role: SpeakerRoleName;
  certainty: RoleCertainty | null;
  /** What the app writes before the speaker's lines: "Clinician", "Patient (likely)", "Speaker C". */
  label: string;
}

export interface VisitContentView {
  /** The summary shown (null while there is none). */
  summary: VisitSummaryText | null;
  /** The switch between the preferred-language summary and the original; null without a translation. */
  languageSwitch: { showing: SummaryChoice; label: string } | null;
  speakers: SpeakerView[];
  /** The transcript's lines, labelled by role; empty for a transcript stored in pages (`transcriptPaged`). */
  transcriptLines: { label: string; text: string }[];
  transcriptPaged: boolean;
  clinicianNote: { chiefComplaint: string | null; sections: { title: string; items: string[] }[] } | null;
  /** What the visit asked for and does not have, and documents that could not be read. */
  notices: string[];
}

const ROLE_LABELS: Record<Exclude<SpeakerRoleName, "unknown">, string> = {
  clinician: "Clinician",
  patient: "Patient",
  caregiver: "Caregiver",
  interpreter: "Interpreter",
  other: "Other speaker",
};

const SECTION_TITLES: Record<(typeof NOTE_SECTIONS)[number], string> = {
  subjective: "Subjective",
  objective: "Objective",
  assessment: "Assessment",
  plan: "Plan",
};

/**
 * A role the recording states is shown as it is; one only inferred says so ("likely"), so a guess
 * never reads as a fact; an unknown speaker keeps the letter.
 */
export function speakerLabel(speaker: string, role: SpeakerRoleName, certainty: RoleCertainty | null): string {
  if (role === "unknown") return `Speaker ${speaker}`;
  return certainty === "stated" ? ROLE_LABELS[role] : `${ROLE_LABELS[role]} (likely)`;
}

/** A language's name in English ("French"), or its code when the runtime does not know it. */
export function languageName(code: string): string {
  try {
    return new Intl.DisplayNames(["en"], { type: "language", fallback: "code" }).of(code) ?? code;
  } catch {
    return code;
  }
}

export function describeVisitContent(documents: VisitContentDocuments, choice: SummaryChoice = "preferred"): VisitContentView {
  const notices: string[] = [];
  const parse = <T>(schema: z.ZodType<T>, data: unknown, what: string): T | null => {
    if (data === null || data === undefined) return null;
    const parsed = schema.safeParse(data);
    if (!parsed.success) notices.push(`The ${what} could not be read.`);
    return parsed.success ? parsed.data : null;
  };
  const visit = parse(VisitContentSchema, documents.visit, "visit");
  const transcript = parse(TranscriptSchema, documents.transcript, "transcript");
  const translation = visit?.summaryTranslation?.state === "saved" ? parse(TranslationSchema, documents.translation, "translated summary") : null;
  const note = visit?.clinicianNote?.state === "saved" ? parse(NoteSchema, documents.clinicianNote, "clinician's note") : null;

  // The roles the summary found; the transcript artifact carries the same list once it is saved.
  const roles = visit?.summary?.speakers ?? transcript?.speakerRoles ?? [];
  const speakers = roles.map(({ speaker, role, certainty }) => ({ speaker, role, certainty, label: speakerLabel(speaker, role, certainty) }));
  const labelOf = (speaker: string | null) => speakers.find((entry) => entry.speaker === speaker)?.label ?? (speaker === null ? "Speaker" : `Speaker ${speaker}`);

  const original = visit?.summary ?? null;
  const showTranslation = translation !== null && original !== null && choice === "preferred";
  const languageSwitch =
    translation && original
      ? {
          showing: choice,
          label: showTranslation ? `Show the original (${languageName(original.language)})` : `Show in ${languageName(translation.language)}`,
        }
      : null;

  if (visit?.status === "partial" && visit.summaryTranslation?.state === "requested") {
    notices.push(`The summary in ${languageName(visit.summaryTranslation.language)} could not be written; the retry button tries again.`);
  }
  if (visit?.status === "partial" && visit.clinicianNote?.state === "requested") {
    notices.push("The clinician's note could not be written; the retry button tries again.");
  }

  return {
    summary: showTranslation ? translation.summary : original,
    languageSwitch,
    speakers,
    transcriptLines: (transcript?.utterances ?? []).map((utterance) => ({ label: labelOf(utterance.speaker), text: utterance.text })),
    transcriptPaged: transcript?.storage === "paged",
    clinicianNote: note && {
      chiefComplaint: note.note.chiefComplaint,
      sections: NOTE_SECTIONS.map((section) => ({ title: SECTION_TITLES[section], items: note.note[section] })),
    },
    notices,
  };
}

/** The slice of Firestore reading a visit's content needs; firebase-ports.ts implements it with `getDoc`. */
export interface DocumentReader {
  /** The document's data at `path`, or null when it does not exist. */
  read(path: string): Promise<unknown>;
}

/** Reads the visit and the artifacts it says it has (a translation or note only once saved). */
export async function loadVisitContent(reader: DocumentReader, visitId: string): Promise<VisitContentDocuments> {
  const artifact = (id: string) => reader.read(`visits/${visitId}/artifacts/${id}`);
  const visit = await reader.read(`visits/${visitId}`);
  const marks = SavedMarksSchema.safeParse(visit).data;
  const [transcript, translation, clinicianNote] = await Promise.all([
    artifact(ARTIFACT_IDS.transcript),
    marks?.summaryTranslation?.state === "saved" ? artifact(ARTIFACT_IDS.translation) : Promise.resolve(null),
    marks?.clinicianNote?.state === "saved" ? artifact(ARTIFACT_IDS.clinicianNote) : Promise.resolve(null),
  ]);
  return { visit, transcript, translation, clinicianNote };
}
