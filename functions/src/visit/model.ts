// The visit as the pipeline sees it (plain data, Dates rather than Firestore Timestamps).
// docs/data-model.md is the contract the app reads; keep both in step.

import type { VisitError } from "./errors.js";
import type { StatusHistoryEntry, VisitStatus } from "./status.js";
import type { VisitSummary } from "./summary.js";

export interface AudioRef {
  bucket: string;
  path: string;
  fileName: string;
  contentType: string;
  sizeBytes: number;
  /** The Cloud Storage object generation, as a decimal string (it exceeds 2^53). */
  generation: string;
}

/** A unit of work that is running somewhere; writes from an older attempt are refused. */
export type LeaseStage = "transcription" | "summarization";

export interface Lease {
  stage: LeaseStage;
  attempt: number;
  owner: string;
  expiresAt: Date;
}

/** What the visit document keeps about its transcript (the text lives in the artifact). */
export interface TranscriptInfo {
  languageCode: string | null;
  languageConfidence: number | null;
  audioDurationSeconds: number | null;
  utteranceCount: number;
  speakerCount: number;
  characterCount: number;
}

export interface StageAttempts {
  transcription: number;
  summarization: number;
}

export interface Visit {
  id: string;
  userId: string;
  audio: AudioRef | null;
  status: VisitStatus;
  transcriptId: string | null;
  transcript: TranscriptInfo | null;
  summary: VisitSummary | null;
  actionItemCount: number;
  error: VisitError | null;
  retryCount: number;
  attempts: StageAttempts;
  /** Status checks made for the current transcript job. */
  checks: number;
  /** Summarization tasks ever enqueued for this visit; names the next task id (never reused). */
  summaryDispatches: number;
  lease: Lease | null;
  nextCheckAt: Date | null;
  /** When an unfinished visit gives up (deadline_exceeded); set at upload and at each retry. */
  deadlineAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  history: StatusHistoryEntry[];
}

export function sameAudio(audio: AudioRef | null, other: Pick<AudioRef, "bucket" | "path" | "generation">): boolean {
  return audio !== null && audio.bucket === other.bucket && audio.path === other.path && audio.generation === other.generation;
}

export function leaseIsLive(lease: Lease | null, now: Date): lease is Lease {
  return lease !== null && lease.expiresAt.getTime() > now.getTime();
}
