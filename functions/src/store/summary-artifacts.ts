// What the summarization writes beside the patient summary, one artifact document each (so the
// visit document stays small), each naming the recording it was written from:
//
//   visits/{visitId}/artifacts/clinician-note       the SOAP note (SUMMARY_FORMATS `soap`)
//   visits/{visitId}/artifacts/summary-translation  the patient summary in the preferred language
//
// Each is saved under the attempt's lease in one commit with the visit's marker for it
// (`clinicianNote` / `summaryTranslation` → `saved`), so a later attempt or retry round finds it
// and never pays for it again, and a visit that ends `partial` says what it has. Deleted with the
// transcript (a new recording, the visit's deletion): store/transcripts.ts deleteTranscripts.

import { createHash } from "node:crypto";
import type { DocumentData, DocumentReference } from "firebase-admin/firestore";
import { z } from "zod";
import { ClinicianNoteSchema } from "../visit/clinician-note.js";
import type { ClinicianNote } from "../visit/clinician-note.js";
import type { VisitPatch } from "../visit/model.js";
import { StoredVisitSummarySchema } from "../visit/summary.js";
import type { VisitSummary } from "../visit/summary.js";
import { SUBCOLLECTIONS } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { updateVisit, visitRef } from "./visits.js";
import type { VisitGuard } from "./visits.js";

export const CLINICIAN_NOTE_ARTIFACT_ID = "clinician-note";
export const TRANSLATION_ARTIFACT_ID = "summary-translation";

export type ClinicianNoteArtifact = {
  kind: "clinician_note";
  generation: string;
  format: "soap";
  note: ClinicianNote;
  /** The model that wrote most of it, and every model that wrote a part. */
  model: string;
  models: string[];
  /** Parts it was written in (1: one request). */
  parts: number;
  savedAt: Date;
};

export type SummaryTranslationArtifact = {
  kind: "summary_translation";
  generation: string;
  /** ISO 639-1 code it is written in. */
  language: string;
  /** SHA-256 of the summary it translates: reused only for that very summary. */
  sourceSha256: string;
  summary: VisitSummary;
  /** The model that translated most of it. */
  model: string;
  /** Parts it was translated in (1: one request). */
  parts: number;
  savedAt: Date;
};

const ClinicianNoteArtifactSchema = z.object({
  kind: z.literal("clinician_note"),
  generation: z.string(),
  format: z.literal("soap"),
  note: ClinicianNoteSchema,
  model: z.string(),
  models: z.array(z.string()),
  parts: z.number(),
  savedAt: z.date(),
}) satisfies z.ZodType<ClinicianNoteArtifact, unknown>;

const SummaryTranslationArtifactSchema = z.object({
  kind: z.literal("summary_translation"),
  generation: z.string(),
  language: z.string(),
  sourceSha256: z.string(),
  summary: StoredVisitSummarySchema,
  model: z.string(),
  // Translations saved before summaries were translated in parts were one request.
  parts: z.number().default(1),
  savedAt: z.date(),
}) satisfies z.ZodType<SummaryTranslationArtifact, unknown>;

const noteConverter = typedConverter<ClinicianNoteArtifact>("artifacts", ClinicianNoteArtifactSchema);
const translationConverter = typedConverter<SummaryTranslationArtifact>("artifacts", SummaryTranslationArtifactSchema);

function noteRef(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.artifacts).doc(CLINICIAN_NOTE_ARTIFACT_ID).withConverter(noteConverter);
}

function translationRef(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.artifacts).doc(TRANSLATION_ARTIFACT_ID).withConverter(translationConverter);
}

/** What a translation is checked against: the summary it was made from, exactly. */
export function summarySha256(summary: VisitSummary): string {
  return createHash("sha256").update(JSON.stringify(summary)).digest("hex");
}

/** The clinician's note of this recording, or null. */
export async function loadClinicianNote(visitId: string, generation: string): Promise<ClinicianNoteArtifact | null> {
  const note = (await noteRef(visitId).get()).data();
  return note?.generation === generation ? note : null;
}

/** The translation of this recording's summary into `language`, made from exactly `source`; or null. */
export async function loadSummaryTranslation(
  visitId: string,
  wanted: { generation: string; language: string; source: VisitSummary },
): Promise<SummaryTranslationArtifact | null> {
  const translation = (await translationRef(visitId).get()).data();
  const matches =
    translation?.generation === wanted.generation && translation.language === wanted.language && translation.sourceSha256 === summarySha256(wanted.source);
  return matches ? translation : null;
}

/** Saves the note while `guard` (the attempt's lease and recording) holds; false when fenced off. */
export function saveClinicianNote(visitId: string, note: ClinicianNoteArtifact, guard: VisitGuard): Promise<boolean> {
  return saveWithMark(visitId, noteRef(visitId), note, { clinicianNote: { format: note.format, state: "saved", model: note.model } }, guard);
}

/** Saves the translation while `guard` holds; false when fenced off. */
export function saveSummaryTranslation(visitId: string, translation: SummaryTranslationArtifact, guard: VisitGuard): Promise<boolean> {
  const mark = { summaryTranslation: { language: translation.language, state: "saved" as const, model: translation.model } };
  return saveWithMark(visitId, translationRef(visitId), translation, mark, guard);
}

/** The artifact and the visit's mark for it in one commit, while `guard` holds. */
async function saveWithMark<T extends { savedAt: Date }>(
  visitId: string,
  ref: DocumentReference<T, DocumentData>,
  artifact: T,
  mark: VisitPatch,
  guard: VisitGuard,
): Promise<boolean> {
  const written = await updateVisit(visitId, mark, { now: artifact.savedAt, guard, alsoWrite: (tx) => tx.set(ref, artifact) });
  return written.applied;
}

/** Both artifacts as stored, whatever they were written for (for the user's data export). */
export async function exportSummaryArtifacts(
  visitId: string,
): Promise<{ clinicianNote: ClinicianNoteArtifact | null; summaryTranslation: SummaryTranslationArtifact | null }> {
  const [note, translation] = await Promise.all([noteRef(visitId).get(), translationRef(visitId).get()]);
  return { clinicianNote: note.data() ?? null, summaryTranslation: translation.data() ?? null };
}
