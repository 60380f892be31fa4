// Visits written straight to Firestore with firebase-admin, in the shape docs/data-model.md documents and the pipeline leaves them.

import { statSync } from "node:fs";
import path from "node:path";
import { db } from "../../functions/src/store/db.js";
import { visitError } from "../../functions/src/visit/errors.js";
import type { ErrorCode } from "../../functions/src/visit/errors.js";
import { loadVisitScript } from "../fakes/scripts.js";
import { DEFAULT_BUCKET, FIXTURES_DIR } from "./emulator-env.js";

const FILE_NAME = "visit-en.m4a";
const MINUTE_MS = 60_000;

export interface SeedInput {
  visitId: string;
  uid: string;
  now: Date;
}

function audioOf(input: SeedInput) {
  return {
    bucket: DEFAULT_BUCKET,
    path: `users/${input.uid}/visits/${input.visitId}/${FILE_NAME}`,
    fileName: FILE_NAME,
    contentType: "audio/mp4",
    sizeBytes: statSync(path.join(FIXTURES_DIR, FILE_NAME)).size,
    generation: "1732370000000001",
  };
}

function minutesBefore(now: Date, minutes: number): Date {
  return new Date(now.getTime() - minutes * MINUTE_MS);
}

/** The English fixture's script as AssemblyAI's diarized utterances (clinician A, patient B). */
export function scriptedTranscript() {
  let clockMs = 240;
  const utterances = loadVisitScript("visit-en").map((turn) => {
    const startMs = clockMs;
    const endMs = startMs + turn.text.split(/\s+/).length * 400;
    clockMs = endMs + 500;
    return { speaker: turn.speaker === "clinician" ? "A" : "B", startMs, endMs, text: turn.text, confidence: 0.95 };
  });
  const text = utterances.map((utterance) => utterance.text).join(" ");
  const info = {
    languageCode: "en",
    languageConfidence: 0.97,
    audioDurationSeconds: Math.ceil(clockMs / 1000),
    utteranceCount: utterances.length,
    speakerCount: 2,
    characterCount: text.length,
  };
  return { text, utterances, info };
}

/**
 * A visit whose transcript is saved and whose summary was refused: `partial`, retryable, with its
 * `visits/{id}/artifacts/transcript` document (inline storage).
 */
export async function seedPartialVisit(input: SeedInput): Promise<{ transcriptId: string }> {
  const { now } = input;
  const transcriptId = `seeded-${input.visitId}`;
  const transcript = scriptedTranscript();
  const error = visitError("summarization", "summary_refused");
  const at = (minutes: number) => minutesBefore(now, minutes);
  const visitRef = db().collection("visits").doc(input.visitId);
  await visitRef.collection("artifacts").doc("transcript").set({
    provider: "assemblyai",
    // The recording it was made from: a transcript of another generation is not this recording's.
    generation: audioOf(input).generation,
    transcriptId,
    speechModel: "universal-3-pro",
    ...transcript.info,
    savedAt: at(6),
    storage: "inline",
    pageCount: 0,
    text: transcript.text,
    utterances: transcript.utterances,
  });
  await visitRef.set({
    userId: input.uid,
    audio: audioOf(input),
    status: "partial",
    transcriptId,
    transcript: transcript.info,
    summary: null,
    actionItemCount: 0,
    error,
    retryCount: 0,
    attempts: { transcription: 1, summarization: 1 },
    checks: 1,
    summaryDispatches: 1,
    lease: null,
    nextCheckAt: null,
    deadlineAt: new Date(at(10).getTime() + 24 * 60 * MINUTE_MS),
    createdAt: at(10),
    updatedAt: at(5),
    pendingAt: at(10),
    transcribingAt: at(9),
    summarizingAt: at(6),
    partialAt: at(5),
    history: [
      { status: "pending", event: "upload_accepted", at: at(10), code: null },
      { status: "transcribing", event: "transcription_submitted", at: at(9), code: null },
      { status: "summarizing", event: "transcript_saved", at: at(6), code: null },
      { status: "partial", event: "summary_failed", at: at(5), code: error.code },
    ],
  });
  return { transcriptId };
}

/**
 * A visit whose transcription failed before AssemblyAI accepted a job (every automatic submission
 * met a retryable provider failure): `failed`, retryable, no transcript id, no transcript.
 */
export async function seedFailedTranscriptionVisit(
  input: SeedInput,
  code: ErrorCode = "provider_unavailable",
): Promise<void> {
  const { now } = input;
  const error = visitError("transcription", code);
  const at = (minutes: number) => minutesBefore(now, minutes);
  await db().collection("visits").doc(input.visitId).set({
    userId: input.uid,
    audio: audioOf(input),
    status: "failed",
    transcriptId: null,
    transcript: null,
    summary: null,
    actionItemCount: 0,
    error,
    retryCount: 0,
    attempts: { transcription: 3, summarization: 0 },
    checks: 0,
    summaryDispatches: 0,
    lease: null,
    nextCheckAt: null,
    deadlineAt: new Date(at(10).getTime() + 24 * 60 * MINUTE_MS),
    createdAt: at(10),
    updatedAt: at(2),
    pendingAt: at(10),
    failedAt: at(2),
    history: [
      { status: "pending", event: "upload_accepted", at: at(10), code: null },
      { status: "failed", event: "transcription_failed", at: at(2), code: error.code },
    ],
  });
}
