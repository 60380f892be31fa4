// The transcript artifact, kept out of the visit document so list views stay small. A paid-for
// transcript is written before anything else happens to the visit, and writing it again (a
// repeated check) is harmless: the same id gives the same content.

import type { CompletedTranscript, Utterance } from "../providers/ports.js";
import type { TranscriptInfo } from "../visit/model.js";
import { SUBCOLLECTIONS, db } from "./db.js";
import { visitRef } from "./visits.js";

const TRANSCRIPT_ARTIFACT_ID = "transcript";
// Firestore documents hold at most 1 MiB. Long recordings are split into pages of utterances
// well under that; the artifact document is written last, so its presence means complete.
const INLINE_LIMIT_BYTES = 700_000;
const PAGE_LIMIT_BYTES = 500_000;

function artifactRef(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.artifacts).doc(TRANSCRIPT_ARTIFACT_ID);
}

function pageRef(visitId: string, index: number) {
  return artifactRef(visitId).collection("pages").doc(String(index).padStart(4, "0"));
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
  };
}

export async function saveTranscript(visitId: string, transcript: CompletedTranscript, now: Date): Promise<void> {
  const header = {
    provider: "assemblyai",
    transcriptId: transcript.transcriptId,
    speechModel: transcript.speechModel,
    ...transcriptInfo(transcript),
    savedAt: now,
  };
  if (byteSize({ text: transcript.text, utterances: transcript.utterances }) <= INLINE_LIMIT_BYTES) {
    await artifactRef(visitId).set({ ...header, storage: "inline", pageCount: 0, text: transcript.text, utterances: transcript.utterances });
    return;
  }
  const pages = paginate(transcript.utterances, PAGE_LIMIT_BYTES);
  const batchSize = 10; // ≤ 5 MB per commit
  for (let start = 0; start < pages.length; start += batchSize) {
    const batch = db().batch();
    pages.slice(start, start + batchSize).forEach((utterances, offset) => {
      batch.set(pageRef(visitId, start + offset), { index: start + offset, utterances });
    });
    await batch.commit();
  }
  await artifactRef(visitId).set({ ...header, storage: "paged", pageCount: pages.length });
}

export interface StoredTranscript {
  transcriptId: string;
  languageCode: string | null;
  text: string;
  utterances: Utterance[];
}

export async function loadTranscript(visitId: string): Promise<StoredTranscript | null> {
  const snapshot = await artifactRef(visitId).get();
  const data = snapshot.data();
  if (!data) return null;
  const transcriptId = String(data.transcriptId);
  const languageCode = typeof data.languageCode === "string" ? data.languageCode : null;
  if (data.storage !== "paged") {
    return { transcriptId, languageCode, text: String(data.text ?? ""), utterances: (data.utterances ?? []) as Utterance[] };
  }
  const pageCount = Number(data.pageCount);
  const pages = await db().getAll(...Array.from({ length: pageCount }, (_, i) => pageRef(visitId, i)));
  const utterances = pages.flatMap((page) => (page.data()?.utterances ?? []) as Utterance[]);
  return { transcriptId, languageCode, text: utterances.map((u) => u.text).join(" "), utterances };
}

export async function transcriptExists(visitId: string): Promise<boolean> {
  return (await artifactRef(visitId).get()).exists;
}

function byteSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

/** Splits utterances into consecutive pages of at most `limitBytes` (one oversized utterance is cut). */
export function paginate(utterances: Utterance[], limitBytes: number): Utterance[][] {
  const pages: Utterance[][] = [];
  let page: Utterance[] = [];
  let pageBytes = 0;
  for (const utterance of utterances.flatMap((u) => splitOversized(u, limitBytes))) {
    const size = byteSize(utterance);
    if (page.length > 0 && pageBytes + size > limitBytes) {
      pages.push(page);
      page = [];
      pageBytes = 0;
    }
    page.push(utterance);
    pageBytes += size;
  }
  if (page.length > 0) pages.push(page);
  return pages;
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
