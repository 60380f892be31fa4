// A backlog of transcribing visits written straight to Firestore (batched), each with a job at the
// fake AssemblyAI, in the shape the upload trigger leaves them: for pacing tests and the benchmark,
// where thousands of uploads through the trigger would take minutes.

import { db } from "../../functions/src/store/db.js";
import { BUCKET } from "./local-runtime.js";
import type { LocalRuntime } from "./local-runtime.js";

const FILE_NAME = "visit-en.m4a";
const BATCH_LIMIT = 400;
const DAY_MS = 86_400_000;

export interface SeededVisit {
  visitId: string;
  transcriptId: string;
  dueAt: Date;
}

/** `count` transcribing visits, visit `i` due at `dueAt(i)`; written `BATCH_LIMIT` per batch. */
export async function seedTranscribingVisits(
  runtime: LocalRuntime,
  input: { count: number; prefix: string; dueAt: (index: number) => Date; now: Date; checks?: number },
): Promise<SeededVisit[]> {
  const seeded: SeededVisit[] = [];
  for (let start = 0; start < input.count; start += BATCH_LIMIT) {
    const batch = db().batch();
    for (let index = start; index < Math.min(input.count, start + BATCH_LIMIT); index++) {
      const visitId = `${input.prefix}-${index}`;
      const uid = `${input.prefix}-user-${index}`;
      const path = `users/${uid}/visits/${visitId}/${FILE_NAME}`;
      const transcriptId = runtime.assemblyai.seedJob(`${runtime.storage.emulatorHost}/${BUCKET}/${path}`);
      const dueAt = input.dueAt(index);
      batch.set(db().collection("visits").doc(visitId), transcribingVisit({ uid, path, transcriptId, dueAt, now: input.now, checks: input.checks ?? 0 }));
      seeded.push({ visitId, transcriptId, dueAt });
    }
    await batch.commit();
  }
  return seeded;
}

function transcribingVisit(input: { uid: string; path: string; transcriptId: string; dueAt: Date; now: Date; checks: number }) {
  const submittedAt = new Date(Math.min(input.now.getTime(), input.dueAt.getTime()) - 60_000);
  return {
    userId: input.uid,
    audio: { bucket: BUCKET, path: input.path, fileName: FILE_NAME, contentType: "audio/mp4", sizeBytes: 123_456, generation: "1" },
    status: "transcribing",
    transcriptId: input.transcriptId,
    transcript: null,
    summary: null,
    actionItemCount: 0,
    error: null,
    retryCount: 0,
    attempts: { transcription: 1, summarization: 0 },
    checks: input.checks,
    summaryDispatches: 0,
    lease: null,
    nextCheckAt: input.dueAt,
    deadlineAt: new Date(input.now.getTime() + DAY_MS),
    createdAt: submittedAt,
    updatedAt: submittedAt,
    pendingAt: submittedAt,
    transcribingAt: submittedAt,
    history: [
      { status: "pending", event: "upload_accepted", at: submittedAt, code: null },
      { status: "transcribing", event: "transcription_submitted", at: submittedAt, code: null },
    ],
    pendingProviderDeletes: [],
    cost: null,
  };
}

/** The transcript ids whose status was requested (GET /v2/transcript/{id}) among `requests`, in order. */
export function polledTranscriptIds(requests: readonly { method: string; path: string }[]): string[] {
  return requests
    .filter((request) => request.method === "GET" && /^\/v2\/transcript\/[^/?]+$/.test(request.path))
    .map((request) => request.path.slice("/v2/transcript/".length));
}
