// `ops stuck`: unfinished visits past their thresholds — too long in their status, a check that
// is overdue (or none scheduled at all), a lease that expired and was not taken over, a deadline
// that passed — oldest first. Read-only.

import type { Visit } from "../visit/model.js";
import { PROCESSING_STATUSES, STATUS_TIME_FIELD } from "../visit/status.js";
import type { VisitStatus } from "../visit/status.js";
import { scanStatuses } from "./scan.js";
import type { ScanProgress } from "./scan.js";

export type StuckReason = "status_age" | "check_overdue" | "no_check_scheduled" | "lease_expired" | "deadline_passed";

export interface StuckThresholds {
  /** How long a visit may stay in each unfinished status. */
  statusAgeSeconds: Partial<Record<VisitStatus, number>>;
  /** How late a due check, an expired lease or a passed deadline may be before it counts (the checker runs every minute). */
  graceSeconds: number;
}

export const DEFAULT_STUCK_THRESHOLDS: StuckThresholds = {
  // Submission takes seconds; an hour of audio transcribes in well under an hour; a summary in minutes.
  statusAgeSeconds: { pending: 15 * 60, transcribing: 2 * 3600, summarizing: 30 * 60 },
  graceSeconds: 5 * 60,
};

export interface StuckVisit {
  visitId: string;
  status: VisitStatus;
  statusSince: string | null;
  statusAgeSeconds: number | null;
  reasons: StuckReason[];
  nextCheckAt: string | null;
  lease: { stage: string; attempt: number; expiresAt: string } | null;
  deadlineAt: string | null;
  attempts: { transcription: number; summarization: number };
  errorCode: string | null;
}

export interface StuckReport {
  now: string;
  thresholds: StuckThresholds;
  scanned: number;
  stuck: StuckVisit[];
  invalidIds: string[];
}

/** Why `visit` counts as stuck at `now` (empty: it does not). Pure. */
export function stuckReasons(visit: Visit, now: Date, thresholds: StuckThresholds): StuckReason[] {
  if (!PROCESSING_STATUSES.has(visit.status)) return [];
  const late = (at: Date | null) => at !== null && now.getTime() - at.getTime() > thresholds.graceSeconds * 1000;
  const reasons: StuckReason[] = [];
  const since = visit[STATUS_TIME_FIELD[visit.status]];
  const limit = thresholds.statusAgeSeconds[visit.status];
  if (since && limit !== undefined && now.getTime() - since.getTime() > limit * 1000) reasons.push("status_age");
  if (visit.nextCheckAt === null) reasons.push("no_check_scheduled");
  else if (late(visit.nextCheckAt)) reasons.push("check_overdue");
  if (visit.lease && late(visit.lease.expiresAt)) reasons.push("lease_expired");
  if (late(visit.deadlineAt)) reasons.push("deadline_passed");
  return reasons;
}

export async function findStuckVisits(
  now: Date,
  options: { thresholds?: StuckThresholds; progress?: ScanProgress; pageSize?: number } = {},
): Promise<StuckReport> {
  const thresholds = options.thresholds ?? DEFAULT_STUCK_THRESHOLDS;
  const scan = await scanStatuses([...PROCESSING_STATUSES], {
    ...(options.progress ? { progress: options.progress } : {}),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });
  const stuck = scan.visits
    .map((visit) => ({ visit, reasons: stuckReasons(visit, now, thresholds) }))
    .filter((entry) => entry.reasons.length > 0)
    .sort((a, b) => statusSinceMs(a.visit) - statusSinceMs(b.visit) || a.visit.id.localeCompare(b.visit.id))
    .map(({ visit, reasons }) => describe(visit, reasons, now));
  return { now: now.toISOString(), thresholds, scanned: scan.visits.length + scan.invalidIds.length, stuck, invalidIds: scan.invalidIds };
}

function statusSinceMs(visit: Visit): number {
  return (visit[STATUS_TIME_FIELD[visit.status]] ?? visit.createdAt).getTime();
}

function describe(visit: Visit, reasons: StuckReason[], now: Date): StuckVisit {
  const since = visit[STATUS_TIME_FIELD[visit.status]];
  return {
    visitId: visit.id,
    status: visit.status,
    statusSince: since?.toISOString() ?? null,
    statusAgeSeconds: since ? Math.round((now.getTime() - since.getTime()) / 1000) : null,
    reasons,
    nextCheckAt: visit.nextCheckAt?.toISOString() ?? null,
    lease: visit.lease ? { stage: visit.lease.stage, attempt: visit.lease.attempt, expiresAt: visit.lease.expiresAt.toISOString() } : null,
    deadlineAt: visit.deadlineAt?.toISOString() ?? null,
    attempts: visit.attempts,
    errorCode: visit.error?.code ?? null,
  };
}
