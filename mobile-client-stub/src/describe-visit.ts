// What a visit means on screen, as a pure function of the document and the time (label, step, retry, stuck).

import { PROCESSING_STATUSES, TERMINAL_STATUSES } from "./contract.js";
import type { VisitStatus } from "./contract.js";
import type { VisitDocument } from "./visit-document.js";

/** A visit's status, plus the moment after upload before the pipeline has created the document. */
export type VisitViewStatus = VisitStatus | "waiting_for_upload_processing";
type InProgressStatus = "waiting_for_upload_processing" | "pending" | "transcribing" | "summarizing";

/** How long each in-progress status may last before the app warns the user. */
export type StuckThresholds = Record<InProgressStatus, number>;

const MINUTE_MS = 60_000;

export const DEFAULT_STUCK_AFTER_MS: StuckThresholds = {
  // The upload trigger creates the document within seconds; minutes mean it is not running.
  waiting_for_upload_processing: 2 * MINUTE_MS,
  pending: 5 * MINUTE_MS,
  transcribing: 60 * MINUTE_MS,
  summarizing: 30 * MINUTE_MS,
};

export type RetryDisabledReason =
  | "waiting_for_upload_processing"
  | "already_processing"
  | "nothing_to_retry"
  /** A failure retrying cannot fix (e.g. no speech): a new upload into the visit starts it over. */
  | "needs_new_recording"
  /** The transcript is kept, but summarizing it again cannot help (e.g. content filtered, too long). */
  | "not_retryable";

export interface VisitView {
  status: VisitViewStatus;
  /** Human text for the status line. */
  label: string;
  isTerminal: boolean;
  /** 1 received, 2 transcribing, 3 summarizing, 4 done; a failure stays on the step it failed at. */
  progressStep: 1 | 2 | 3 | 4;
  canRetry: boolean;
  /** Why the retry button is disabled; null when it is enabled. */
  retryDisabledReason: RetryDisabledReason | null;
  transcriptAvailable: boolean;
  error: { code: string; message: string } | null;
  /** In progress for longer than its threshold. */
  stuck: boolean;
  /** How long the visit has been in its status, when stuck; 0 otherwise. */
  stuckForMs: number;
}

export interface DescribeVisitOptions {
  stuckAfterMs?: Partial<StuckThresholds>;
  /** For a missing document: when the app started waiting for it (e.g. when the upload finished). */
  waitingSince?: Date;
}

const LABELS: Record<VisitViewStatus, string> = {
  waiting_for_upload_processing: "Upload received; waiting for processing to start…",
  pending: "Preparing the recording for transcription…",
  transcribing: "Transcribing the recording…",
  summarizing: "Writing the visit summary…",
  completed: "Summary ready.",
  partial: "Transcript ready; the summary could not be written.",
  failed: "Processing failed.",
};

/** `doc` is null while the document does not exist (or is not readable yet). */
export function describeVisit(doc: VisitDocument | null, now: Date, options: DescribeVisitOptions = {}): VisitView {
  const status: VisitViewStatus = doc?.status ?? "waiting_for_upload_processing";
  const error = doc?.error ? { code: doc.error.code, message: doc.error.message } : null;
  const stuckAt = stuckCheckAt(doc, options);
  const stuck = stuckAt !== null && now.getTime() >= stuckAt.getTime();
  const since = stuck ? inStatusSince(doc, options) : null;
  return {
    status,
    label: labelFor(status, error),
    isTerminal: isTerminalView(status),
    progressStep: progressStepFor(doc),
    ...retryState(doc),
    transcriptAvailable: doc !== null && (doc.status === "partial" || doc.status === "completed" || doc.hasTranscript),
    error,
    stuck,
    stuckForMs: since === null ? 0 : now.getTime() - since.getTime(),
  };
}

/**
 * The moment an in-progress visit counts as stuck (its threshold passed, plus 1 ms: "longer than"),
 * or null when it cannot be stuck (terminal, or no timestamp to measure from).
 */
export function stuckCheckAt(doc: VisitDocument | null, options: DescribeVisitOptions = {}): Date | null {
  const status = doc?.status ?? "waiting_for_upload_processing";
  if (!isInProgress(status)) return null;
  const since = inStatusSince(doc, options);
  if (since === null) return null;
  const threshold = options.stuckAfterMs?.[status] ?? DEFAULT_STUCK_AFTER_MS[status];
  return new Date(since.getTime() + threshold + 1);
}

function inStatusSince(doc: VisitDocument | null, options: DescribeVisitOptions): Date | null {
  if (doc === null) return options.waitingSince ?? null;
  return doc.statusEnteredAt ?? doc.updatedAt;
}

function isInProgress(status: VisitViewStatus): status is InProgressStatus {
  return status === "waiting_for_upload_processing" || PROCESSING_STATUSES.has(status);
}

function isTerminalView(status: VisitViewStatus): boolean {
  return status !== "waiting_for_upload_processing" && TERMINAL_STATUSES.has(status);
}

function labelFor(status: VisitViewStatus, error: VisitView["error"]): string {
  if (error === null) return LABELS[status];
  if (status === "failed") return `Processing failed: ${error.message}`;
  if (status === "partial") return `${LABELS.partial} ${error.message}`;
  // The pipeline records the error while it waits for its next automatic attempt.
  return `${LABELS[status]} (${error.message} Trying again automatically.)`;
}

function progressStepFor(doc: VisitDocument | null): VisitView["progressStep"] {
  switch (doc?.status) {
    case undefined:
    case "pending":
      return 1;
    case "transcribing":
      return 2;
    case "summarizing":
    case "partial":
      return 3;
    case "completed":
      return 4;
    case "failed":
      return doc.error?.stage === "transcription" ? 2 : doc.error?.stage === "summarization" ? 3 : 1;
  }
}

function retryState(doc: VisitDocument | null): Pick<VisitView, "canRetry" | "retryDisabledReason"> {
  const disabled = (reason: RetryDisabledReason) => ({ canRetry: false, retryDisabledReason: reason });
  switch (doc?.status) {
    case undefined:
      return disabled("waiting_for_upload_processing");
    case "pending":
    case "transcribing":
    case "summarizing":
      return disabled("already_processing");
    case "completed":
      return disabled("nothing_to_retry");
    case "partial":
      // The transcript is kept and a retry only runs summarization again — when that can help.
      return doc.error?.retryable === false ? disabled("not_retryable") : { canRetry: true, retryDisabledReason: null };
    case "failed":
      return doc.error?.retryable === true ? { canRetry: true, retryDisabledReason: null } : disabled("needs_new_recording");
  }
}
