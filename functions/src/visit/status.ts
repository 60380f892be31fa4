// The visit state machine: the only place that knows which status may follow which.
// Every status write in the pipeline is planned here (pure, time passed in) and applied by
// store/visits.ts, so an illegal move is an exception, never a silent overwrite.

import type { VisitError } from "./errors.js";
import type { VisitPatch } from "./model.js";

export const VISIT_STATUSES = [
  "pending",
  "transcribing",
  "summarizing",
  "partial",
  "completed",
  "failed",
] as const;
export type VisitStatus = (typeof VISIT_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<VisitStatus> = new Set(["completed", "partial", "failed"]);
export const PROCESSING_STATUSES: ReadonlySet<VisitStatus> = new Set(["pending", "transcribing", "summarizing"]);

export function isTerminal(status: VisitStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/**
 * What happened to a visit. Each event names the status it leads to; the table below names the
 * statuses it may start from. Events carry what the status write needs, nothing else.
 */
export type VisitEvent =
  | { type: "upload_accepted" }
  | { type: "upload_rejected"; error: VisitError }
  | { type: "transcription_submitted"; transcriptId: string }
  | { type: "transcript_saved" }
  | { type: "transcription_failed"; error: VisitError }
  | { type: "summary_saved" }
  | { type: "summary_failed"; error: VisitError }
  | { type: "retry_accepted"; resume: ResumeStage }
  /** An operator resumed a failed or partial visit (ops CLI); resumes like a retry. */
  | { type: "operator_requeued"; resume: ResumeStage }
  /** An operator ended an unfinished visit (ops CLI); a saved transcript is kept (partial). */
  | { type: "operator_failed"; error: VisitError };

/** The stages a retry may resume, in pipeline order; a retry resumes only the one that failed. */
export const RESUME_STAGES = ["transcription", "transcript_checkpoint", "summarization"] as const;
/** The stage a retry resumes: only the one that failed. */
export type ResumeStage = (typeof RESUME_STAGES)[number];

type EventType = VisitEvent["type"];

interface TransitionRule {
  from: readonly (VisitStatus | null)[];
  to: VisitStatus | ((event: VisitEvent) => VisitStatus);
}

/**
 * The allowed transitions. `null` in `from` means "no visit yet". A recording is taken (accepted
 * or rejected) only by a new or failed visit; a re-upload after a failure starts over
 * (failed → pending); a retry resumes from the failed stage; nothing else moves a
 * visit backwards.
 */
const RULES: Record<EventType, TransitionRule> = {
  upload_accepted: { from: [null, "failed"], to: "pending" },
  upload_rejected: { from: [null, "failed"], to: "failed" },
  transcription_submitted: { from: ["pending"], to: "transcribing" },
  transcript_saved: { from: ["transcribing"], to: "summarizing" },
  transcription_failed: { from: ["pending", "transcribing"], to: "failed" },
  summary_saved: { from: ["summarizing"], to: "completed" },
  summary_failed: { from: ["summarizing"], to: "partial" },
  retry_accepted: {
    from: ["failed", "partial"],
    to: (event) => (event.type === "retry_accepted" ? statusForResume(event.resume) : "failed"),
  },
  operator_requeued: {
    from: ["failed", "partial"],
    to: (event) => (event.type === "operator_requeued" ? statusForResume(event.resume) : "failed"),
  },
  // Summarizing means the transcript is saved: ending it keeps that, as a failed summary does.
  operator_failed: {
    from: ["pending", "transcribing", "summarizing"],
    to: (event) => (event.type === "operator_failed" && event.error.stage === "summarization" ? "partial" : "failed"),
  },
};

export function isVisitEventType(value: unknown): value is EventType {
  return typeof value === "string" && Object.hasOwn(RULES, value);
}

function statusForResume(resume: ResumeStage): VisitStatus {
  switch (resume) {
    case "transcription":
      return "pending";
    case "transcript_checkpoint":
      return "transcribing";
    case "summarization":
      return "summarizing";
  }
}

export class IllegalTransitionError extends Error {
  readonly code = "illegal_transition";
  constructor(
    readonly from: VisitStatus | null,
    readonly event: EventType,
  ) {
    super(`A visit in status ${from ?? "(none)"} cannot take event ${event}`);
    this.name = "IllegalTransitionError";
  }
}

export function canApply(from: VisitStatus | null, event: VisitEvent): boolean {
  return RULES[event.type].from.includes(from);
}

export function nextStatus(from: VisitStatus | null, event: VisitEvent): VisitStatus {
  const rule = RULES[event.type];
  if (!rule.from.includes(from)) throw new IllegalTransitionError(from, event.type);
  return typeof rule.to === "function" ? rule.to(event) : rule.to;
}

/** Timestamp field recording when a visit entered each status. */
export const STATUS_TIME_FIELD = {
  pending: "pendingAt",
  transcribing: "transcribingAt",
  summarizing: "summarizingAt",
  partial: "partialAt",
  completed: "completedAt",
  failed: "failedAt",
} as const satisfies Record<VisitStatus, string>;
export type StatusTimeField = (typeof STATUS_TIME_FIELD)[VisitStatus];

export const HISTORY_LIMIT = 50;

export interface StatusHistoryEntry {
  status: VisitStatus;
  event: EventType;
  at: Date;
  code: string | null;
}

export interface PlannedTransition {
  status: VisitStatus;
  /** Field values to write (besides timestamps the store adds). Pure data, no Firestore types. */
  fields: VisitPatch;
  historyEntry: StatusHistoryEntry;
}

/**
 * Plans the status write for an event: the next status, the fields the event sets or clears,
 * and the history entry. `now` is passed in so the plan is pure and testable.
 */
export function planTransition(from: VisitStatus | null, event: VisitEvent, now: Date): PlannedTransition {
  const status = nextStatus(from, event);
  const fields: VisitPatch = { status, [STATUS_TIME_FIELD[status]]: now, updatedAt: now };
  switch (event.type) {
    case "upload_accepted":
      fields.error = null;
      fields.transcriptId = null;
      fields.summary = null;
      break;
    case "transcription_submitted":
      fields.transcriptId = event.transcriptId;
      fields.error = null;
      break;
    case "transcript_saved":
    case "summary_saved":
      fields.error = null;
      break;
    case "upload_rejected":
    case "transcription_failed":
    case "summary_failed":
      fields.error = event.error;
      break;
    case "operator_failed":
      fields.error = event.error;
      fields.lease = null;
      break;
    case "retry_accepted":
    case "operator_requeued":
      fields.error = null;
      break;
  }
  if (isTerminal(status)) fields.nextCheckAt = null;
  const code = "error" in event ? event.error.code : null;
  return { status, fields, historyEntry: { status, event: event.type, at: now, code } };
}

export function appendHistory(
  history: readonly StatusHistoryEntry[],
  entry: StatusHistoryEntry,
): StatusHistoryEntry[] {
  return [...history, entry].slice(-HISTORY_LIMIT);
}
