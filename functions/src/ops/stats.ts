// `ops stats`: what happened to the visits created in a window — counts by status, outcome rates,
// time per stage (from the status history), retries, cost (`visit.cost`; null counts as unknown),
// paid calls thrown away, and the most frequent error codes. Read-only.

import type { Visit } from "../visit/model.js";
import { VISIT_STATUSES, isTerminal } from "../visit/status.js";
import type { VisitStatus } from "../visit/status.js";
import { scanCreatedSince } from "./scan.js";
import type { ScanProgress } from "./scan.js";

export interface Percentiles {
  count: number;
  p50Seconds: number | null;
  p95Seconds: number | null;
}

export interface StatsReport {
  since: string;
  until: string;
  visits: number;
  invalidIds: string[];
  byStatus: Record<VisitStatus, number>;
  /** Shares of the visits that reached a terminal status. */
  rates: { terminal: number; completed: number | null; partial: number | null; failed: number | null };
  /** Time spent in each status before the next one (a visit retried twice counts each stay), and upload → terminal. */
  stageSeconds: { pending: Percentiles; transcribing: Percentiles; summarizing: Percentiles; endToEnd: Percentiles };
  retries: { visitsRetried: number; retryRounds: number; extraAttempts: number };
  cost: {
    visitsWithCost: number;
    visitsCostUnknown: number;
    totalUsd: number;
    perVisitUsd: number | null;
    paidCalls: number;
    discardedPaidCalls: number;
  };
  topErrorCodes: { code: string; count: number }[];
}

const TOP_ERROR_CODES = 10;

export async function collectStats(
  since: Date,
  now: Date,
  options: { progress?: ScanProgress; pageSize?: number } = {},
): Promise<StatsReport> {
  const scan = await scanCreatedSince(since, options);
  return summarizeVisits(scan.visits, { since, now, invalidIds: scan.invalidIds });
}

/** The report for these visits. Pure. */
export function summarizeVisits(visits: readonly Visit[], window: { since: Date; now: Date; invalidIds: string[] }): StatsReport {
  const byStatus = Object.fromEntries(VISIT_STATUSES.map((status) => [status, 0])) as Record<VisitStatus, number>;
  const stays: Record<"pending" | "transcribing" | "summarizing" | "endToEnd", number[]> = {
    pending: [],
    transcribing: [],
    summarizing: [],
    endToEnd: [],
  };
  const errorCounts = new Map<string, number>();
  const retries = { visitsRetried: 0, retryRounds: 0, extraAttempts: 0 };
  const cost = { visitsWithCost: 0, visitsCostUnknown: 0, totalUsd: 0, paidCalls: 0, discardedPaidCalls: 0 };

  for (const visit of visits) {
    byStatus[visit.status] += 1;
    const history = visit.history;
    for (let i = 0; i + 1 < history.length; i++) {
      const entry = history[i];
      const next = history[i + 1];
      if (!entry || !next) continue;
      const seconds = (next.at.getTime() - entry.at.getTime()) / 1000;
      if (entry.status === "pending" || entry.status === "transcribing" || entry.status === "summarizing") stays[entry.status].push(seconds);
    }
    const first = history[0];
    const last = history.at(-1);
    if (first && last && isTerminal(visit.status) && last.status === visit.status) {
      stays.endToEnd.push((last.at.getTime() - first.at.getTime()) / 1000);
    }
    for (const entry of history) {
      if (entry.code && entry.at.getTime() >= window.since.getTime()) errorCounts.set(entry.code, (errorCounts.get(entry.code) ?? 0) + 1);
    }
    if (visit.retryCount > 0) retries.visitsRetried += 1;
    retries.retryRounds += visit.retryCount;
    retries.extraAttempts += Math.max(0, visit.attempts.transcription - 1) + Math.max(0, visit.attempts.summarization - 1);
    if (visit.cost) {
      cost.visitsWithCost += 1;
      cost.totalUsd += visit.cost.estimatedUsd;
      cost.paidCalls += visit.cost.paidCalls;
      cost.discardedPaidCalls += visit.cost.discardedPaidCalls;
    } else {
      cost.visitsCostUnknown += 1;
    }
  }

  const terminal = byStatus.completed + byStatus.partial + byStatus.failed;
  const share = (count: number) => (terminal === 0 ? null : round(count / terminal, 4));
  return {
    since: window.since.toISOString(),
    until: window.now.toISOString(),
    visits: visits.length,
    invalidIds: window.invalidIds,
    byStatus,
    rates: { terminal, completed: share(byStatus.completed), partial: share(byStatus.partial), failed: share(byStatus.failed) },
    stageSeconds: {
      pending: percentiles(stays.pending),
      transcribing: percentiles(stays.transcribing),
      summarizing: percentiles(stays.summarizing),
      endToEnd: percentiles(stays.endToEnd),
    },
    retries,
    cost: {
      ...cost,
      totalUsd: round(cost.totalUsd, 6),
      perVisitUsd: cost.visitsWithCost === 0 ? null : round(cost.totalUsd / cost.visitsWithCost, 6),
    },
    topErrorCodes: [...errorCounts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, TOP_ERROR_CODES)
      .map(([code, count]) => ({ code, count })),
  };
}

/** Nearest-rank percentiles. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => {
    const value = sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
    return value === undefined ? null : round(value, 3);
  };
  return { count: sorted.length, p50Seconds: rank(0.5), p95Seconds: rank(0.95) };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
