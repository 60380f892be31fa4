// Checkpoints of a summary written in parts: one artifact document per part of the transcript,
// `visits/{visitId}/artifacts/summary-part-{generation}-{from}-{to}`, holding that part's summary
// (or the note that the model said it was too large, so it is split without asking again). A part
// is named by its recording and its exact line range, and carries a hash of the text it was
// written from: a part of an earlier recording, or of another split, is never taken for this one.
// Written only under the attempt's lease (fenced like every other write of the stage); deleted
// with the transcript (visit deletion, supersede) and once the visit's summary is saved.

import { createHash } from "node:crypto";
import { z } from "zod";
import type { LineRange } from "../visit/summary-plan.js";
import { VisitSummarySchema } from "../visit/summary.js";
import type { VisitSummary } from "../visit/summary.js";
import { SUBCOLLECTIONS, deleteDocuments } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { visitRef, writeGuarded } from "./visits.js";
import type { VisitGuard } from "./visits.js";

const PART_ID_PREFIX = "summary-part-";

export type SummaryPart = LineRange & {
  kind: "summary_part";
  generation: string;
  /** SHA-256 of the part's prompt text. */
  textSha256: string;
  state: "summarized" | "too_large";
  summary: VisitSummary | null;
  model: string | null;
  savedAt: Date;
};

const SummaryPartSchema = z.object({
  kind: z.literal("summary_part"),
  generation: z.string(),
  from: z.number(),
  to: z.number(),
  textSha256: z.string(),
  state: z.enum(["summarized", "too_large"]),
  summary: VisitSummarySchema.nullable(),
  model: z.string().nullable(),
  savedAt: z.date(),
}) satisfies z.ZodType<SummaryPart, unknown>;

const partConverter = typedConverter<SummaryPart>("artifacts", SummaryPartSchema);

function artifacts(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.artifacts);
}

function partRef(visitId: string, generation: string, range: LineRange) {
  return artifacts(visitId).doc(`${PART_ID_PREFIX}${generation}-${range.from}-${range.to}`).withConverter(partConverter);
}

export function partTextSha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The saved parts of this recording whose text matches, by `from-to`. */
export async function loadSummaryParts(visitId: string, generation: string): Promise<Map<string, SummaryPart>> {
  const snapshot = await artifacts(visitId).where("generation", "==", generation).get();
  const parts = new Map<string, SummaryPart>();
  for (const doc of snapshot.docs) {
    if (!doc.id.startsWith(PART_ID_PREFIX)) continue;
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
    tx.set(partRef(visitId, part.generation, part), part);
  });
  return written.applied;
}

/** Deletes the parts of every recording but `keepGeneration` (all of them when null); returns how many. */
export async function deleteSummaryParts(visitId: string, keepGeneration: string | null): Promise<number> {
  const snapshot = await artifacts(visitId).get();
  const refs = snapshot.docs
    .filter((doc) => doc.id.startsWith(PART_ID_PREFIX) && (keepGeneration === null || doc.get("generation") !== keepGeneration))
    .map((doc) => doc.ref);
  return deleteDocuments(refs);
}

/** The saved part summaries of a visit, for the user's data export (normally none: they go once the summary is saved). */
export async function listSummaryParts(visitId: string): Promise<{ generation: string; from: number; to: number; model: string | null; summary: VisitSummary | null }[]> {
  const snapshot = await artifacts(visitId).get();
  return snapshot.docs
    .filter((doc) => doc.id.startsWith(PART_ID_PREFIX))
    .map((doc) => partConverter.fromFirestore(doc))
    .filter((part) => part.state === "summarized")
    .sort((a, b) => a.generation.localeCompare(b.generation) || a.from - b.from)
    .map(({ generation, from, to, model, summary }) => ({ generation, from, to, model, summary }));
}
