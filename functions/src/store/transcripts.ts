// The transcript artifact, kept out of the visit document so list views stay small. It belongs to
// one recording (the object generation it was made from): a reader asks for the visit's current
// recording and never gets another one's transcript. A paid-for transcript is written before
// anything else happens to the visit, and writing it again (a repeated check) is harmless.

import type { QueryDocumentSnapshot, Transaction } from "firebase-admin/firestore";
import { z } from "zod";
import type { CompletedTranscript, Utterance } from "../providers/ports.js";
import type { TranscriptInfo } from "../visit/model.js";
import { SpeakerRoleSchema } from "../visit/summary.js";
import type { SpeakerRole } from "../visit/summary.js";
import { SUBCOLLECTIONS, db, deleteDocuments } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { visitRef } from "./visits.js";

export const TRANSCRIPT_ARTIFACT_ID = "transcript";
const PAGES = "pages";
// Firestore documents hold at most 1 MiB. Long recordings are split into pages of utterances
// well under that; the artifact document is written last, so its presence means complete.
const INLINE_LIMIT_BYTES = 700_000;
const PAGE_LIMIT_BYTES = 500_000;
// Deletes per commit (Firestore allows 500 writes).

const UtteranceSchema = z.object({
  speaker: z.string().nullable(),
  startMs: z.number(),
  endMs: z.number(),
  text: z.string(),
  confidence: z.number().nullable(),
}) satisfies z.ZodType<Utterance, unknown>;

type TranscriptArtifact = {
  provider: "assemblyai";
  /** The recording (object generation) this transcript was made from. */
  generation: string;
  transcriptId: string;
  speechModel: string | null;
  languageCode: string | null;
  languageConfidence: number | null;
  audioDurationSeconds: number | null;
  utteranceCount: number;
  speakerCount: number;
  characterCount: number;
  savedAt: Date;
  storage: "inline" | "paged";
  pageCount: number;
  text: string | null;
  utterances: Utterance[] | null;
  /** Who each speaker label is, as the summary found (null until the summary is written). */
  speakerRoles: SpeakerRole[] | null;
};

const ArtifactSchema = z.object({
  provider: z.literal("assemblyai"),
  // Artifacts written before transcripts were tied to a recording have none: they match nothing.
  generation: z.string().default(""),
  transcriptId: z.string(),
  speechModel: z.string().nullish().transform((v) => v ?? null),
  languageCode: z.string().nullable(),
  languageConfidence: z.number().nullable(),
  audioDurationSeconds: z.number().nullable(),
  utteranceCount: z.number(),
  speakerCount: z.number(),
  characterCount: z.number(),
  savedAt: z.date(),
  storage: z.enum(["inline", "paged"]),
  pageCount: z.number(),
  text: z.string().nullish().transform((v) => v ?? null),
  utterances: z.array(UtteranceSchema).nullish().transform((v) => v ?? null),
  speakerRoles: z.array(SpeakerRoleSchema).nullish().transform((v) => v ?? null),
}) satisfies z.ZodType<TranscriptArtifact, unknown>;

type TranscriptPage = { generation: string; index: number; utterances: Utterance[] };
const PageSchema = z.object({ generation: z.string().default(""), index: z.number(), utterances: z.array(UtteranceSchema) }) satisfies z.ZodType<
  TranscriptPage,
  unknown
>;

const artifactConverter = typedConverter<TranscriptArtifact>("artifacts", ArtifactSchema);
const pageConverter = typedConverter<TranscriptPage>("pages", PageSchema);

function artifacts(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.artifacts);
}

function artifactRef(visitId: string) {
  return artifacts(visitId).doc(TRANSCRIPT_ARTIFACT_ID).withConverter(artifactConverter);
}

function pages(visitId: string) {
  return artifacts(visitId).doc(TRANSCRIPT_ARTIFACT_ID).collection(PAGES);
}

// Page ids carry the recording, so a new recording's pages never overwrite (or mix with) an
// earlier one's, and an earlier, longer transcript's pages are recognisable as leftovers.
function pageRef(visitId: string, generation: string, index: number) {
  return pages(visitId).doc(`${generation}-${String(index).padStart(4, "0")}`).withConverter(pageConverter);
}

export function transcriptInfo(transcript: CompletedTranscript): TranscriptInfo {
  const speakers = new Set(transcript.utterances.map((u) => u.speaker).filter((s) => s !== null));
  return {
    languageCode: transcript.languageCode,
    languageConfidence: transcript.languageConfidence,
    audioDurationSeconds: transcript.audioDurationSeconds,
    utteranceCount: transcript.utterances.length,
    speakerCount: speakers.size,
    characterCount: transcript.text.length,
    settings: transcript.settings,
    providerDeletedAt: null,
  };
}

/**
 * Saves a recording's transcript: pages first, then the artifact (its presence means complete),
 * then pages of any other recording are removed. The artifact is written only while the visit
 * exists, so work that outlives a deletion does not bring the transcript back.
 */
export async function saveTranscript(
  visitId: string,
  generation: string,
  transcript: CompletedTranscript,
  now: Date,
): Promise<"saved" | "already_saved" | "visit_missing" | "superseded"> {
  // A repeated check of the same job finds it saved: nothing is rewritten.
  const existing = (await artifactRef(visitId).get()).data();
  if (existing?.generation === generation && existing.transcriptId === transcript.transcriptId) return "already_saved";
  const { providerDeletedAt: _notStoredHere, ...info } = transcriptInfo(transcript);
  const header = {
    provider: "assemblyai" as const,
    generation,
    transcriptId: transcript.transcriptId,
    speechModel: transcript.speechModel,
    ...info,
    savedAt: now,
  };
  let artifact: TranscriptArtifact;
  if (byteSize({ text: transcript.text, utterances: transcript.utterances }) <= INLINE_LIMIT_BYTES) {
    artifact = { ...header, storage: "inline", pageCount: 0, text: transcript.text, utterances: transcript.utterances, speakerRoles: null };
  } else {
    const split = paginate(transcript.utterances, PAGE_LIMIT_BYTES);
    const batchSize = 10; // ≤ 5 MB per commit
    for (let start = 0; start < split.length; start += batchSize) {
      const batch = db().batch();
      split.slice(start, start + batchSize).forEach((utterances, offset) => {
        const index = start + offset;
        batch.set(pageRef(visitId, generation, index), { generation, index, utterances });
      });
      await batch.commit();
    }
    artifact = { ...header, storage: "paged", pageCount: split.length, text: null, utterances: null, speakerRoles: null };
  }
  const written = await db().runTransaction(async (tx) => {
    const visit = (await tx.get(visitRef(visitId))).data();
    if (!visit) return "visit_missing" as const;
    // A check of a recording the visit no longer has (a new upload replaced it) keeps nothing.
    if (visit.audio?.generation !== generation) return "superseded" as const;
    tx.set(artifactRef(visitId), artifact);
    return "saved" as const;
  });
  // Saved: other recordings' pages (and a longer earlier save's) go. Not saved: the pages just written go.
  await deletePages(visitId, (page) =>
    written === "saved" ? page.generation !== generation || page.index >= artifact.pageCount : page.generation === generation,
  );
  return written;
}

export interface StoredTranscript {
  transcriptId: string;
  languageCode: string | null;
  text: string;
  utterances: Utterance[];
  speakerRoles: SpeakerRole[] | null;
}

/** The transcript of this recording, or null if none is saved for it. */
export async function loadTranscript(visitId: string, generation: string): Promise<StoredTranscript | null> {
  const artifact = (await artifactRef(visitId).get()).data();
  if (!artifact || artifact.generation !== generation) return null;
  const { transcriptId, languageCode, speakerRoles } = artifact;
  if (artifact.storage === "inline") {
    return { transcriptId, languageCode, text: artifact.text ?? "", utterances: artifact.utterances ?? [], speakerRoles };
  }
  const refs = Array.from({ length: artifact.pageCount }, (_, index) => pageRef(visitId, generation, index));
  const utterances: Utterance[] = [];
  // getAll() keeps the order of the references it is given; read in slices of 100.
  for (let start = 0; start < refs.length; start += 100) {
    for (const snapshot of await db().getAll(...refs.slice(start, start + 100))) {
      const page = pageConverter.fromFirestore(snapshot as QueryDocumentSnapshot);
      utterances.push(...page.utterances);
    }
  }
  return { transcriptId, languageCode, text: utterances.map((u) => u.text).join(" "), utterances, speakerRoles };
}

/** The transcript's speaker labels, in order of first utterance (what speaker roles are given for). */
export function speakerLabels(transcript: { utterances: readonly Utterance[] }): string[] {
  return [...new Set(transcript.utterances.flatMap((u) => (u.speaker === null ? [] : [u.speaker])))];
}

/**
 * Records on the transcript who each speaker is, in the commit that saves the summary they come
 * from (so the app can show "Clinician:" instead of "A:"). The artifact is there: the summary was
 * just written from it, and while the visit is summarizing only its deletion removes it (and then
 * this commit fails).
 */
export function writeSpeakerRoles(tx: Transaction, visitId: string, roles: readonly SpeakerRole[]): void {
  tx.update(artifactRef(visitId), { speakerRoles: [...roles] });
}

export async function transcriptExists(visitId: string, generation: string): Promise<boolean> {
  return (await artifactRef(visitId).get()).data()?.generation === generation;
}

/**
 * Removes the transcript of every recording but `keepGeneration` (all of them when null) and
 * everything written from it — every artifact names its recording: the pages, summary and note
 * parts, the clinician's note, the translated summary. The transcript goes last. Returns how many
 * documents it deleted.
 */
export async function deleteTranscripts(visitId: string, keepGeneration: string | null): Promise<number> {
  const pagesDeleted = await deletePages(visitId, (page) => page.generation !== keepGeneration);
  const snapshot = await artifacts(visitId).get();
  const doomed = snapshot.docs.filter((doc) => keepGeneration === null || doc.get("generation") !== keepGeneration);
  const [transcript, derived] = [doomed.filter((doc) => doc.id === TRANSCRIPT_ARTIFACT_ID), doomed.filter((doc) => doc.id !== TRANSCRIPT_ARTIFACT_ID)];
  return pagesDeleted + (await deleteDocuments(derived.map((doc) => doc.ref))) + (await deleteDocuments(transcript.map((doc) => doc.ref)));
}

/** Deletes the pages `doomed` picks (read without the converter: a leftover may be of any shape). */
async function deletePages(visitId: string, doomed: (page: { generation: string; index: number }) => boolean): Promise<number> {
  const snapshot = await pages(visitId).get();
  const refs = snapshot.docs
    .filter((doc) => {
      const generation: unknown = doc.get("generation");
      const index: unknown = doc.get("index");
      return doomed({ generation: typeof generation === "string" ? generation : "", index: typeof index === "number" ? index : -1 });
    })
    .map((doc) => doc.ref);
  return deleteDocuments(refs);
}

function byteSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

/** Splits utterances into consecutive pages of at most `limitBytes` (one oversized utterance is cut). */
export function paginate(utterances: Utterance[], limitBytes: number): Utterance[][] {
  const result: Utterance[][] = [];
  let page: Utterance[] = [];
  let pageBytes = 0;
  for (const utterance of utterances.flatMap((u) => splitOversized(u, limitBytes))) {
    const size = byteSize(utterance);
    if (page.length > 0 && pageBytes + size > limitBytes) {
      result.push(page);
      page = [];
      pageBytes = 0;
    }
    page.push(utterance);
    pageBytes += size;
  }
  if (page.length > 0) result.push(page);
  return result;
}

function splitOversized(utterance: Utterance, limitBytes: number): Utterance[] {
  if (byteSize(utterance) <= limitBytes) return [utterance];
  // Characters can take up to 4 bytes in UTF-8; quarter the budget to stay under it.
  const chunkChars = Math.floor(limitBytes / 4);
  const parts: Utterance[] = [];
  for (let i = 0; i < utterance.text.length; i += chunkChars) {
    parts.push({ ...utterance, text: utterance.text.slice(i, i + chunkChars) });
  }
  return parts;
}
