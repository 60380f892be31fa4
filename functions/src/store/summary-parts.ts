// Checkpoints of a summary (and of a clinician's note, and of the summary's translation) written in
// parts: one artifact document per part of the source,
// `visits/{visitId}/artifacts/summary-part-{generation}-{from}-{to}` (the note's: `note-part-…`,
// the translation's: `translation-part-…`, its range over the summary's items), holding that part's
// result (or the record that the model said it was too large, so it is split without asking
// again). A part is named by its recording and its exact range, and carries a hash of the text it
// was written from (and of what else its result depends on: a translation's language): a part of
// an earlier recording, of another split or of another summary, is never taken for this one.
// Written only under the attempt's lease (fenced like every other write of the stage); deleted
// with the transcript (visit deletion, supersede) and once the document they make is saved.

import { createHash } from "node:crypto";
import { z } from "zod";
import { ClinicianNoteSchema } from "../visit/clinician-note.js";
import type { ClinicianNote } from "../visit/clinician-note.js";
import type { LineRange } from "../visit/summary-plan.js";
import { StoredVisitSummarySchema } from "../visit/summary.js";
import type { VisitSummary } from "../visit/summary.js";
import { SUBCOLLECTIONS, deleteDocuments } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { visitRef, writeGuarded } from "./visits.js";
import type { VisitGuard } from "./visits.js";

/** What a part is of: the patient summary, the clinician's note, or the summary's translation. */
export const PART_DOCUMENTS = ["summary", "clinician_note", "summary_translation"] as const;
export type PartDocument = (typeof PART_DOCUMENTS)[number];

const PART_ID_PREFIX: Record<PartDocument, string> = { summary: "summary-part-", clinician_note: "note-part-", summary_translation: "translation-part-" };
const isPartId = (id: string) => Object.values(PART_ID_PREFIX).some((prefix) => id.startsWith(prefix));

export type SummaryPart = LineRange & {
  kind: "summary_part";
  document: PartDocument;
  generation: string;
  /** SHA-256 of the part's source text (a translation's: with its language). */
  textSha256: string;
  /** `summarized`: the part's result is saved (whatever the document); `too_large`: it is split. */
  state: "summarized" | "too_large";
  /** The part's summary (document `summary`), or its translation (`summary_translation`); state `summarized`. */
  summary: VisitSummary | null;
  /** The part's note (document `clinician_note`, state `summarized`). */
  note: ClinicianNote | null;
  model: string | null;
  savedAt: Date;
};

const SummaryPartSchema = z.object({
  kind: z.literal("summary_part"),
  // Parts saved before notes were written in parts are summary parts.
  document: z.enum(PART_DOCUMENTS).default("summary"),
  generation: z.string(),
  from: z.number(),
  to: z.number(),
  textSha256: z.string(),
  state: z.enum(["summarized", "too_large"]),
  summary: StoredVisitSummarySchema.nullable(),
  note: ClinicianNoteSchema.nullish().transform((note) => note ?? null),
  model: z.string().nullable(),
  savedAt: z.date(),
}) satisfies z.ZodType<SummaryPart, unknown>;

const partConverter = typedConverter<SummaryPart>("artifacts", SummaryPartSchema);

function artifacts(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.artifacts);
}

function partRef(visitId: string, document: PartDocument, generation: string, range: LineRange) {
  return artifacts(visitId).doc(`${PART_ID_PREFIX[document]}${generation}-${range.from}-${range.to}`).withConverter(partConverter);
}

/** `alsoDependsOn`: what else the part's result depends on (a translation's language); none for transcript parts. */
export function partTextSha256(text: string, alsoDependsOn?: string): string {
  return createHash("sha256")
    .update(alsoDependsOn === undefined ? text : `${alsoDependsOn}\n${text}`)
    .digest("hex");
}

/** The saved parts of one document of this recording, by `from-to`. */
export async function loadSummaryParts(visitId: string, generation: string, document: PartDocument): Promise<Map<string, SummaryPart>> {
  const snapshot = await artifacts(visitId).where("generation", "==", generation).get();
  const parts = new Map<string, SummaryPart>();
  for (const doc of snapshot.docs) {
    if (!doc.id.startsWith(PART_ID_PREFIX[document])) continue;
    const part = partConverter.fromFirestore(doc);
    parts.set(rangeKey(part), part);
  }
  return parts;
}

export function rangeKey(range: LineRange): string {
  return `${range.from}-${range.to}`;
}

/** Saves a part while `guard` (the attempt's lease and recording) holds; false when fenced off. */
export async function saveSummaryPart(visitId: string, part: SummaryPart, guard: VisitGuard, now: Date): Promise<boolean> {
  const written = await writeGuarded(visitId, { now, guard }, (tx) => {
    tx.set(partRef(visitId, part.document, part.generation, part), part);
  });
  return written.applied;
}

/** Deletes the parts of every recording — of one document, or of all; returns how many. */
export async function deleteSummaryParts(visitId: string, document?: PartDocument): Promise<number> {
  const snapshot = await artifacts(visitId).get();
  const doomed = snapshot.docs.filter((doc) => (document === undefined ? isPartId(doc.id) : doc.id.startsWith(PART_ID_PREFIX[document])));
  return deleteDocuments(doomed.map((doc) => doc.ref));
}

export type ExportedPart = { document: PartDocument; generation: string; from: number; to: number; model: string | null; summary: VisitSummary | null; note: ClinicianNote | null };

/** The saved parts of a visit, for the user's data export (normally none: they go once the summary is saved). */
export async function listSummaryParts(visitId: string): Promise<ExportedPart[]> {
  const snapshot = await artifacts(visitId).get();
  return snapshot.docs
    .filter((doc) => isPartId(doc.id))
    .map((doc) => partConverter.fromFirestore(doc))
    .filter((part) => part.state === "summarized")
    .sort((a, b) => a.document.localeCompare(b.document) || a.generation.localeCompare(b.generation) || a.from - b.from)
    .map(({ document, generation, from, to, model, summary, note }) => ({ document, generation, from, to, model, summary, note }));
}
