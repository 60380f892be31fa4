// What an operator's GET /health/ready reports: the provider breakers, the work queue (visits due
// now, the oldest one's wait, visits stuck in a non-terminal status) and the checker's last run.
// `degraded` when a breaker is not closed, a visit is stuck, or the checker has not finished a run
// for a while (it runs every minute).

import type { Pipeline } from "../pipeline.js";
import { countDueVisits, countStuckVisits, lastCheckerRun, oldestDueAt } from "../store/readiness.js";

/** A checker whose last run finished longer ago than this is reported stale (it runs every minute). */
export const CHECKER_STALE_SECONDS = 300;

export interface ReadinessReport {
  status: "ok" | "degraded";
  breakers: Record<string, { state: string; openUntil: string | null }>;
  queue: {
    /** Visits due for a status check now. */
    due: number;
    /** How long the longest-waiting due visit has been due; null when none is. */
    oldestDueAgeSeconds: number | null;
    /** Non-terminal visits whose status is older than STUCK_VISIT_MINUTES, per status and in all. */
    stuck: number;
    stuckByStatus: Record<string, number>;
    stuckAfterMinutes: number;
  };
  checker: {
    lastRun: { startedAt: string; finishedAt: string; durationMs: number; due: number; handled: number; outcomes: Record<string, number> } | null;
    /** True when no run finished within CHECKER_STALE_SECONDS (false before the first run is recorded). */
    stale: boolean;
  };
}

export async function readinessReport(p: Pipeline): Promise<ReadinessReport> {
  const now = p.now();
  const stuckCutoff = new Date(now.getTime() - p.config.stuckVisitMinutes * 60_000);
  const [assemblyai, openai, due, oldest, stuckByStatus, lastRun] = await Promise.all([
    p.breaker().state("assemblyai"),
    p.breaker().state("openai"),
    countDueVisits(now),
    oldestDueAt(now),
    countStuckVisits(stuckCutoff),
    lastCheckerRun(),
  ]);
  const breakers = Object.fromEntries(
    [assemblyai, openai].map((b) => [b.provider, { state: b.state, openUntil: b.openUntil?.toISOString() ?? null }]),
  );
  const stuck = Object.values(stuckByStatus).reduce((sum, count) => sum + count, 0);
  const stale = lastRun !== null && now.getTime() - lastRun.finishedAt.getTime() > CHECKER_STALE_SECONDS * 1000;
  const degraded = assemblyai.state !== "closed" || openai.state !== "closed" || stuck > 0 || stale;
  return {
    status: degraded ? "degraded" : "ok",
    breakers,
    queue: {
      due,
      oldestDueAgeSeconds: oldest ? Math.max(0, Math.round((now.getTime() - oldest.getTime()) / 1000)) : null,
      stuck,
      stuckByStatus,
      stuckAfterMinutes: p.config.stuckVisitMinutes,
    },
    checker: {
      lastRun: lastRun
        ? {
            startedAt: lastRun.startedAt.toISOString(),
            finishedAt: lastRun.finishedAt.toISOString(),
            durationMs: lastRun.durationMs,
            due: lastRun.due,
            handled: lastRun.handled,
            outcomes: lastRun.outcomes,
          }
        : null,
      stale,
    },
  };
}
