// Stage: the scheduled checker. Finds visits whose next check is due and moves each one on:
// transcribing → poll AssemblyAI; pending → (re)submit after a retryable failure or a crashed
// attempt; summarizing → dispatch summarization again if no attempt is alive. Oldest due first,
// read in batches; concurrency paced by AssemblyAI's request budget (steps/request-budget.ts);
// a time budget so one run never overlaps the next for long.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { claimCheck } from "../store/claims.js";
import { CheckerRunPace } from "../steps/request-budget.js";
import { recordCheckerRun } from "../store/readiness.js";
import { findDueVisits, parkInvalidVisit, updateVisit } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { asPipelineError } from "../visit/errors.js";
import { leaseIsLive } from "../visit/model.js";
import type { Visit } from "../visit/model.js";
import { continueUserDeletions, sweepDeletedVisits } from "./delete-visit.js";
import { dispatchSummarization } from "./dispatch-summarization.js";
import { retryProviderDeletes } from "./provider-cleanup.js";
import { pollTranscript } from "./poll-transcript.js";
import { submitTranscription } from "./submit-transcription.js";
import { expireSummarization } from "./summarize.js";

export interface CheckerReport {
  due: number;
  handled: number;
  outcomes: Record<string, number>;
  durationMs: number;
  /** AssemblyAI requests this run sent (tokens it spent). */
  requests: number;
  /** Most visits the run had in flight at once. */
  peakConcurrency: number;
  /** Moving average of one visit's check time, which sizes the concurrency. */
  meanVisitMs: number;
}

// How long one visit's check may take before another checker run may take it over.
const CHECK_LEASE_SECONDS = 300;
// A check claim only matters while its due time is current.
const GATE_CLAIM_PURGE_SECONDS = 86_400;

export async function checkDueVisits(p: Pipeline, startedMs: number, deadlineMs: number): Promise<CheckerReport> {
  const budgetEndsMs = Math.min(deadlineMs, startedMs + p.config.checkTimeBudgetSeconds * 1000);
  // A check started just before the time budget ends may still finish one provider request (no
  // retry past it): the run stays well inside the function's timeout.
  const checksEndMs = Math.min(deadlineMs, budgetEndsMs + p.config.assemblyAiTimeoutSeconds * 1000);
  const budget = p.requestBudget();
  const pace = new CheckerRunPace(budget, budget.newCheckerPool(), {
    maxConcurrency: p.config.checkConcurrency,
    runEndsMs: budgetEndsMs,
    clock: () => p.now(),
  });
  const outcomes: Record<string, number> = {};
  const queue = new DueQueue(p);

  // Workers take the oldest due visit next, as many at once as the pace allows.
  const worker = async () => {
    while (await pace.admitVisit()) {
      const visit = await queue.next();
      if (!visit) return pace.unused();
      const outcome = await pace.check(() => checkVisit(p, visit, checksEndMs));
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
  };
  // Housekeeping (deletions) runs alongside, not after: a backlog that fills the run must not hold it back.
  await budget.inPool(pace.pool, async () => {
    const [, housekept] = await Promise.all([
      Promise.all(Array.from({ length: p.config.checkConcurrency }, worker)),
      housekeeping(p, checksEndMs),
    ]);
    Object.assign(outcomes, housekept);
  });
  const report = {
    due: queue.taken,
    handled: queue.taken,
    outcomes,
    durationMs: Date.now() - startedMs,
    requests: pace.pool.spent,
    peakConcurrency: pace.peakConcurrency,
    meanVisitMs: Math.round(pace.meanVisitMs),
  };
  logs.checkerRunFinished(report);
  await recordRun(p, report);
  return report;
}

/** The run, for GET /health/ready; a failure to record it is logged and does not fail the run. */
async function recordRun(p: Pipeline, report: CheckerReport): Promise<void> {
  const finishedAt = p.now();
  try {
    await recordCheckerRun({ ...report, startedAt: new Date(finishedAt.getTime() - report.durationMs), finishedAt, owner: p.owner });
  } catch (thrown) {
    logs.checkerRunNotRecorded(asPipelineError(thrown));
  }
}

/**
 * Due visits, oldest due time first, read a batch at a time as workers need them. A visit handled
 * in this run whose next check is already due again waits for the next run.
 */
class DueQueue {
  private buffer: Visit[] = [];
  private readonly seen = new Set<string>();
  private drained = false;
  private reading: Promise<void> | null = null;
  taken = 0;

  constructor(private readonly p: Pipeline) {}

  async next(): Promise<Visit | undefined> {
    while (this.buffer.length === 0 && !this.drained) {
      this.reading ??= this.read().finally(() => (this.reading = null));
      await this.reading;
    }
    const visit = this.buffer.shift();
    if (visit) this.taken += 1;
    return visit;
  }

  private async read(): Promise<void> {
    const batch = await findDueVisits(this.p.now(), this.p.config.checkBatchSize);
    for (const visitId of batch.invalidIds) {
      logs.visitDocumentInvalid(visitId);
      await parkInvalidVisit(visitId, this.p.now());
    }
    // Visits taken earlier in this run may still read as due while their check is in flight.
    const fresh = batch.visits.filter((visit) => !this.seen.has(visit.id));
    fresh.forEach((visit) => this.seen.add(visit.id));
    this.buffer.push(...fresh);
    if (fresh.length === 0 || batch.visits.length + batch.invalidIds.length < this.p.config.checkBatchSize) this.drained = true;
  }
}

/**
 * One visit's check. The claim key is the due time being served: overlapping checker runs read
 * the same due time, so exactly one of them gets the visit; pushing the due time out to the end
 * of the check lease means a crashed check is picked up again later, under a new key. A webhook
 * delivery (stages/transcript-webhook.ts) checks its visit through here too, under the same rule.
 */
export async function checkVisit(p: Pipeline, visit: Visit, deadlineMs: number): Promise<string> {
  if (!visit.nextCheckAt) return "not_due";
  const now = p.now();
  const claimed = await claimCheck(visit.id, visit.nextCheckAt, {
    owner: p.owner,
    now,
    expiresAt: addSeconds(now, CHECK_LEASE_SECONDS),
    purgeAt: addSeconds(now, GATE_CLAIM_PURGE_SECONDS),
  });
  if (!claimed) return "claimed_elsewhere";
  const leased = await updateVisit(
    visit.id,
    { nextCheckAt: addSeconds(now, CHECK_LEASE_SECONDS) },
    { now, guard: { statuses: [visit.status] } },
  );
  if (!leased.applied) return "superseded";

  try {
    switch (visit.status) {
      case "transcribing":
        return await pollTranscript(p, visit, deadlineMs);
      case "pending":
        return await submitTranscription(p, visit.id, deadlineMs);
      case "summarizing":
        return await watchSummarization(p, visit);
      default:
        // Terminal visits carry no due time; clear a stray one.
        await updateVisit(visit.id, { nextCheckAt: null }, { now, guard: { statuses: [visit.status] } });
        return "terminal";
    }
  } catch (thrown) {
    // One visit's failure must not stop the run; the visit is due again after the check lease.
    logs.checkerVisitFailed(visit.id, asPipelineError(thrown));
    return "error";
  }
}

// Per run: deleted visits swept, visits whose provider deletes are retried, account deletions continued.
const HOUSEKEEPING_LIMITS = { sweeps: 20, providerDeletes: 20, userDeletions: 2 };

/** Deletion work the checker carries on; one part's failure does not stop the others or the run. */
async function housekeeping(p: Pipeline, deadlineMs: number): Promise<Record<string, number>> {
  const parts: [string, () => Promise<number>][] = [
    ["deleted_visits_swept", () => sweepDeletedVisits(p, HOUSEKEEPING_LIMITS.sweeps, deadlineMs)],
    ["provider_deletes_retried", () => retryProviderDeletes(p, HOUSEKEEPING_LIMITS.providerDeletes, deadlineMs)],
    ["user_deletions_continued", () => continueUserDeletions(p, HOUSEKEEPING_LIMITS.userDeletions, deadlineMs)],
  ];
  const counts: Record<string, number> = {};
  for (const [name, part] of parts) {
    try {
      const count = await part();
      if (count > 0) counts[name] = count;
    } catch (thrown) {
      logs.housekeepingFailed(name, asPipelineError(thrown));
    }
  }
  return counts;
}

/** A summarizing visit is due: its attempt is still running, or its task was lost or failed. */
async function watchSummarization(p: Pipeline, visit: Visit): Promise<string> {
  const now = p.now();
  if (leaseIsLive(visit.lease, now)) {
    await updateVisit(visit.id, { nextCheckAt: visit.lease.expiresAt }, { now, guard: { statuses: ["summarizing"] } });
    return "summarization_running";
  }
  if (visit.deadlineAt && now >= visit.deadlineAt) return expireSummarization(p, visit);
  // With no attempts left the summarize stage ends the visit `partial`: that decision lives there.
  const outcome = await dispatchSummarization(p, visit);
  return outcome === "dispatched" ? "summarization_redispatched" : outcome;
}
