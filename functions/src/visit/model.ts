// The visit as the pipeline sees it (plain data, Dates rather than Firestore Timestamps).
// docs/data-model.md is the contract the app reads; keep both in step.

import type { TranscriptionSettings } from "../providers/ports.js";
import type { VisitError } from "./errors.js";
import type { ResumeStage, StatusHistoryEntry, StatusTimeField, VisitStatus } from "./status.js";
import type { VisitSummary } from "./summary.js";

export type AudioRef = {
  bucket: string;
  path: string;
  fileName: string;
  contentType: string;
  sizeBytes: number;
  /** The Cloud Storage object generation, as a decimal string (it exceeds 2^53). */
  generation: string;
  /** When the object was deleted from Storage (retention); a retry then cannot submit it again. */
  deletedAt: Date | null;
};

/**
 * What the visit's paid provider calls cost, summed over attempts, rounds, retries and
 * recordings. Calls whose result was thrown away (a fenced zombie's, a superseded recording's)
 * are counted in `paidCalls` and again in `discardedPaidCalls`, so waste is visible.
 */
export type VisitCost = {
  /** AssemblyAI `audio_duration` of every transcript paid for. */
  audioSeconds: number;
  promptTokens: number;
  completionTokens: number;
  paidCalls: number;
  discardedPaidCalls: number;
  /** From the unit-price params at the time of each call. */
  estimatedUsd: number;
};

/** What an operator did to a visit (ops CLI), who did it, when and why. */
export const AUDIT_ACTIONS = ["requeued", "failed"] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type AuditEntry = {
  action: AuditAction;
  /** `--actor`, else the credential's account, else the OS user (`os:{user}@{host}`). */
  actor: string;
  at: Date;
  /** Why (`--reason`); an operator's words, bounded to AUDIT_REASON_MAX_CHARS. */
  reason: string | null;
  /** For a requeue: the stage it resumed. */
  resumedStage: ResumeStage | null;
};

/** Audit entries kept on a visit (the oldest go first). */
export const AUDIT_LIMIT = 50;
export const AUDIT_REASON_MAX_CHARS = 500;

/** A unit of work that is running somewhere; writes from an older attempt are refused. */
export type LeaseStage = "transcription" | "summarization";

export type Lease = {
  stage: LeaseStage;
  attempt: number;
  owner: string;
  expiresAt: Date;
};

/** What the visit document keeps about its transcript (the text lives in the artifact). */
export type TranscriptInfo = {
  languageCode: string | null;
  languageConfidence: number | null;
  audioDurationSeconds: number | null;
  utteranceCount: number;
  speakerCount: number;
  characterCount: number;
  /** What the transcription job was asked for and did (null: saved before these were recorded). */
  settings: TranscriptionSettings | null;
  /** When the transcript was deleted at AssemblyAI after it was saved here (DELETE_PROVIDER_TRANSCRIPTS). */
  providerDeletedAt: Date | null;
};

/**
 * Something the summarization was asked to write beside the patient summary: `requested` until it
 * is saved, so a visit that ends `partial` with `requested` says which one could not be written.
 */
export const SUMMARY_EXTRA_STATES = ["requested", "saved"] as const;
export type SummaryExtraState = (typeof SUMMARY_EXTRA_STATES)[number];

/** The patient summary in the user's preferred language (the text is in its artifact). */
export type SummaryTranslationInfo = {
  /** ISO 639-1 code of the preferred language it is (to be) written in. */
  language: string;
  state: SummaryExtraState;
  /** The model that wrote it, once saved. */
  model: string | null;
};

/** The clinician's note (SUMMARY_FORMATS `soap`); the note is in its artifact. */
export type ClinicianNoteInfo = {
  format: "soap";
  state: SummaryExtraState;
  /** The model that wrote most of it, once saved. */
  model: string | null;
};

export type StageAttempts = {
  transcription: number;
  summarization: number;
};

/** When the visit last entered each status (`pendingAt`, …); see STATUS_TIME_FIELD. */
export type StatusTimes = { [Field in StatusTimeField]: Date | null };

// A type alias, not an interface: Firestore's typed update paths (store/visits.ts) need one.
export type Visit = StatusTimes & {
  id: string;
  userId: string;
  audio: AudioRef | null;
  status: VisitStatus;
  transcriptId: string | null;
  /**
   * SHA-256 (hex) of the secret AssemblyAI was given to authenticate its webhook delivery for
   * `transcriptId`; null when the job was submitted without a webhook. The secret itself is never stored.
   */
  webhookSecretSha256: string | null;
  transcript: TranscriptInfo | null;
  summary: VisitSummary | null;
  /** The model that wrote the summary (of a summary in parts: the one that wrote most of them). */
  summaryModel: string | null;
  /** Every model that wrote part of the summary, in order of first use (more than one after a fallback). */
  summaryModels: string[];
  /** How many parts the transcript was summarized in (1: one request); null until summarized. */
  summaryParts: number | null;
  /** Null: no translation asked for (no preferred language, or the recording's own). */
  summaryTranslation: SummaryTranslationInfo | null;
  /** Null: no clinician's note asked for. */
  clinicianNote: ClinicianNoteInfo | null;
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
  /** Set when the checker took an unreadable visit document out of its queue. */
  parkedAt: Date | null;
  /** When the retention job deletes the recording (AUDIO_RETENTION_DAYS after the upload); null: kept. */
  audioExpiresAt: Date | null;
  /** AssemblyAI transcripts of this visit still to delete there (a delete that failed is retried). */
  pendingProviderDeletes: string[];
  /** When the checker next tries those deletes. */
  providerCleanupDueAt: Date | null;
  /** Null until the first paid call is accounted for. */
  cost: VisitCost | null;
  /** Operator actions on this visit, oldest first (at most AUDIT_LIMIT). */
  audit: AuditEntry[];
};

/** Everything a visit stores (the id is the document's name). */
export type VisitFields = Omit<Visit, "id">;

/**
 * A write to a visit: top-level fields, or one stage's attempt counter by its dotted path. The
 * store checks at compile time that these are paths of the stored document.
 */
export type VisitPatch = Partial<VisitFields> & { [Path in `attempts.${LeaseStage}`]?: number } & {
  "transcript.providerDeletedAt"?: Date;
};

/** The visit as it is after `patch` was written to it (dotted paths set the nested field). */
export function applyPatch(visit: Visit, patch: VisitPatch): Visit {
  const {
    "attempts.transcription": transcription,
    "attempts.summarization": summarization,
    "transcript.providerDeletedAt": providerDeletedAt,
    ...fields
  } = patch;
  const next: Visit = { ...visit, ...fields };
  if (providerDeletedAt !== undefined && next.transcript) next.transcript = { ...next.transcript, providerDeletedAt };
  if (transcription !== undefined || summarization !== undefined) {
    next.attempts = {
      transcription: transcription ?? next.attempts.transcription,
      summarization: summarization ?? next.attempts.summarization,
    };
  }
  return next;
}

export function sameAudio(audio: AudioRef | null, other: Pick<AudioRef, "bucket" | "path" | "generation">): boolean {
  return audio !== null && audio.bucket === other.bucket && audio.path === other.path && audio.generation === other.generation;
}

export function leaseIsLive(lease: Lease | null, now: Date): lease is Lease {
  return lease !== null && lease.expiresAt.getTime() > now.getTime();
}
