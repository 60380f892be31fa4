// The parts of the pipeline's contract the app relies on, restated so this folder can be copied into an app.

// Source of truth: docs/data-model.md, functions/src/visit/status.ts (statuses, their time fields,
// resume stages), functions/src/visit/errors.ts (the stored error), functions/src/visit/upload.ts
// (visit ids, file names, the upload path) and storage.rules (upload size, content type). This
// folder must not import functions/; test/contract.test.ts fails when this file drifts from them.

export const VISIT_STATUSES = ["pending", "transcribing", "summarizing", "partial", "completed", "failed"] as const;
export type VisitStatus = (typeof VISIT_STATUSES)[number];

/** Statuses the pipeline never leaves on its own (only a retry or a new upload moves them). */
export const TERMINAL_STATUSES: ReadonlySet<VisitStatus> = new Set(["completed", "partial", "failed"]);
/** Statuses in which the pipeline is working and the retry endpoint answers `already_processing`. */
export const PROCESSING_STATUSES: ReadonlySet<VisitStatus> = new Set(["pending", "transcribing", "summarizing"]);

/** The visit field recording when the visit last entered each status. */
export const STATUS_TIME_FIELD = {
  pending: "pendingAt",
  transcribing: "transcribingAt",
  summarizing: "summarizingAt",
  partial: "partialAt",
  completed: "completedAt",
  failed: "failedAt",
} as const satisfies Record<VisitStatus, string>;

export const PIPELINE_STAGES = ["upload", "transcription", "summarization"] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/**
 * `visit.error`. `code` stays a plain string here: the backend may add codes, and an app already
 * in users' hands must still show the (safe) message and honour `retryable` for them.
 */
export interface VisitError {
  stage: PipelineStage;
  code: string;
  message: string;
  retryable: boolean;
}

/** The stage a retry resumes (the retry endpoint's `resumedStage`). */
export const RESUME_STAGES = ["transcription", "transcript_checkpoint", "summarization"] as const;
export type ResumeStage = (typeof RESUME_STAGES)[number];

/** storage.rules: `request.resource.size <= 250 * 1024 * 1024` (and the MAX_UPLOAD_BYTES param). */
export const MAX_UPLOAD_BYTES = 250 * 1024 * 1024;

// Visit ids are Firestore document ids and Cloud Tasks task ids; Firestore auto-ids qualify.
export const VISIT_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
// The functions refuse object names with a slash or control characters in the file name.
export const FILE_NAME_PATTERN = /^[^/\u0000-\u001f\u007f]{1,255}$/;

/** Also excludes `__name__`-style ids, which Firestore reserves. */
export function isValidVisitId(visitId: string): boolean {
  return VISIT_ID_PATTERN.test(visitId) && !/^__.*__$/.test(visitId);
}

export function isValidFileName(fileName: string): boolean {
  return FILE_NAME_PATTERN.test(fileName) && fileName !== "." && fileName !== "..";
}

/** The only object layout the upload trigger accepts. */
export function visitAudioPath(uid: string, visitId: string, fileName: string): string {
  return `users/${uid}/visits/${visitId}/${fileName}`;
}
