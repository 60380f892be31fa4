// The step runner: one unit of paid provider work on a visit, the local equivalent of a
// durable-execution `step.run`. It owns, in this order, everything that makes paid work safe —
// the stage says only which call to make, what to save and which status follows:
//
//   guard (status, live lease) → deadline → attempts left → breaker gate (open: defer, no attempt
//   used) → claim the attempt's key with create() (claim before paying) → lease it on the visit
//   → look for what an interrupted earlier attempt produced → note on the claim that the request
//   is leaving (before sending) → the paid call, retried in-call → the outcome on the claim
//   (outcome before status) → the checkpoint, fenced by the lease — or, on failure, the decision
//   table: backoff / end / keep looking.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { ProviderName } from "../providers/outage-policy.js";
import { failpoint } from "../runtime-hooks.js";
import { announceIfEnded } from "../stages/notify-outcome.js";
import type { FailpointName } from "../runtime-hooks.js";
import { claimWork, countPaidCalls, listAllWorkClaims, paidCallsOf, recordWorkOutcome, workKeyOf, writeWorkSent } from "../store/claims.js";
import type { Claim, WorkKey } from "../store/claims.js";
import { reconcileCost, recordCost } from "../store/costs.js";
import type { CostFact } from "../visit/cost.js";
import { discardedCallDelta, paidCallDelta, tokenDelta } from "../visit/cost.js";
import { applyVisitEvent, getVisit, updateVisit } from "../store/visits.js";
import type { GuardedWrite, SameCommitWrites } from "../store/visits.js";
import { addSeconds, nextAttemptDelaySeconds } from "../visit/backoff.js";
import { PipelineError, asPipelineError, visitError } from "../visit/errors.js";
import type { ErrorCode, VisitError } from "../visit/errors.js";
import { leaseIsLive } from "../visit/model.js";
import type { LeaseStage, Visit, VisitPatch } from "../visit/model.js";
import type { VisitEvent, VisitStatus } from "../visit/status.js";
import { openProviderGate } from "./provider-call.js";
import type { OperationOf, ProviderGate } from "./provider-call.js";

// Tries that fail before anything is sent (a URL that cannot be signed, a missing artifact) use no
// paid attempt; this many of them on top of the paid ones end the stage all the same.
export const UNPAID_TRIES_ALLOWED = 3;

const ATTEMPT_TIME_SPENT = "attempt_time_spent";

/** What the stage's paid work may do during one attempt. */
export interface StepWork<P extends ProviderName> {
  /** The visit as this attempt leased it. */
  visit: Visit;
  attempt: number;
  /**
   * The paid request. The claim notes that it is leaving (with what identifies it, for a later
   * search) before it is sent; it then runs through the breaker and the in-call retries.
   */
  pay<T>(
    operation: OperationOf<P>,
    send: () => Promise<T>,
    identifies?: { audioUrlSha256: string },
    /** What the answer says it used (tokens), accounted in the visit's cost as soon as it is back. */
    usage?: (result: T) => TokenUsage | null,
  ): Promise<T>;
  /** A free request (a status read, a search) through the same breaker and retries. */
  ask<T>(operation: OperationOf<P>, request: () => Promise<T>): Promise<T>;
}

export type TokenUsage = { promptTokens: number; completionTokens: number };

/** What the visit becomes when the attempt succeeded (the runner adds `lease: null`). */
export interface Checkpoint {
  event: VisitEvent;
  fields?: VisitPatch;
  alsoWrite?: SameCommitWrites;
}

export interface PaidStep<P extends ProviderName, Output> {
  stage: LeaseStage;
  provider: P;
  /** The status the step works in: every write it makes is guarded by it. */
  status: VisitStatus;
  maxPaidAttempts: number;
  /** How long a claimed attempt owns the visit: longer than the caller's whole time budget. */
  leaseSeconds: number;
  /** Where local runtimes crash or stall an attempt: right after its paid call returned. */
  afterPaidCall: FailpointName;
  /**
   * Paid calls this visit may make beyond MAX_PAID_CALLS_PER_VISIT, for a step that needs several
   * per attempt (a summary in parts). The ceiling is checked before each call, not only per attempt;
   * a call that would pass it asks for the allowance again, of the visit as it is then (what the
   * attempt saved meanwhile may plan more calls).
   */
  paidCallAllowance?(visit: Visit): Promise<number>;
  /** Why the visit cannot take this step at all (checked before anything is claimed), or null. */
  cannotRun?(visit: Visit): ErrorCode | null;
  /** The paid work of one attempt. */
  perform(work: StepWork<P>): Promise<Output>;
  /**
   * Looks for what earlier attempts of this recording produced but did not checkpoint (their
   * claims are passed in). Without it, such work is paid for again.
   */
  recover?(work: StepWork<P>, leftovers: readonly Claim[]): Promise<Output | null>;
  /** A small id of what was paid for (a transcript id), kept on the claim to be found again. */
  resultId?(output: Output): string;
  checkpoint(output: Output, now: Date): Checkpoint;
  /**
   * The visit was deleted, or the recording replaced by a new upload, while this attempt paid:
   * undo at the provider what can be undone (`visitDeleted` says which).
   */
  abandon?(visitId: string, output: Output, visitDeleted: boolean): Promise<void>;
  /** The event that ends the stage: `failed` or `partial`. */
  endEvent(error: VisitError): VisitEvent;
  /** After the checkpoint; `visit` is the visit as checkpointed (with its cost). */
  succeeded?(visit: Visit, output: Output, attempt: number, durationMs: number): void;
}

export type StepOutcome =
  | "succeeded"
  | "recovered"
  /** The visit is not (or no longer) in the step's status. */
  | "not_ready"
  /** An attempt is in flight elsewhere (live lease or claim taken). */
  | "busy"
  | "deferred_outage"
  | "retry_scheduled"
  /** The attempt ran out of its invocation's time; the next one carries on (not counted as a try). */
  | "continued"
  | "ended"
  /** This attempt's write was fenced off: newer work owns the visit. */
  | "superseded";

/** The paid-work history of the visit's current recording, read from the claims' fields. */
interface Ledger {
  /** Attempts of the current round whose request was sent (continued ones not counted). */
  paidThisRound: number;
  /** Attempts of the current round that ran out of their function's time and were continued. */
  continued: number;
  /** Work of this recording that may have produced something no checkpoint recorded. */
  leftovers: Claim[];
}

function ledgerOf(workClaims: readonly Claim[], visit: Visit, stage: LeaseStage, generation: string, canRecover: boolean): Ledger {
  const mine = workClaims.filter((claim) => claim.stage === stage && claim.generation === generation && claim.sentAt);
  const thisRound = (claim: Claim) => claim.round === visit.retryCount;
  // An attempt that ran out of time saved what it wrote and is carried on by the next: not a try that failed.
  const continuedAttempt = (claim: Claim) => claim.code === ATTEMPT_TIME_SPENT;
  return {
    paidThisRound: mine.filter((claim) => thisRound(claim) && !continuedAttempt(claim)).length,
    continued: workClaims.filter((claim) => claim.stage === stage && claim.generation === generation && thisRound(claim) && continuedAttempt(claim)).length,
    leftovers: canRecover
      ? mine.filter(
          (claim) =>
            claim.outcome === null ||
            claim.outcome === "unknown" ||
            // A result recorded while the visit is still in the step's status within the same
            // round was never checkpointed (a round never returns to its starting status).
            (claim.outcome === "succeeded" && claim.transcriptId !== null && thisRound(claim)),
        )
      : [],
  };
}

export async function runPaidStep<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visitId: string,
  deadlineMs: number,
): Promise<StepOutcome> {
  const started = await startAttempt(p, step, visitId, deadlineMs);
  return typeof started === "string" ? started : runAttempt(p, step, started);
}

/** An attempt that holds its claim and its lease, ready to pay. */
interface StartedAttempt<P extends ProviderName> {
  visit: Visit;
  work: WorkKey;
  lease: { stage: LeaseStage; attempt: number };
  gate: Extract<ProviderGate<P>, { allowed: true }>;
  ledger: Ledger;
  outOfAttempts: boolean;
  paidCallCeiling: number;
  /** When the invocation must stop starting provider requests. */
  deadlineMs: number;
}

/** Everything before the paid work: guard, deadline, attempts, breaker gate, claim, lease. */
async function startAttempt<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visitId: string,
  deadlineMs: number,
): Promise<StepOutcome | StartedAttempt<P>> {
  const now = p.now();
  const visit = await getVisit(visitId);
  if (!visit || visit.status !== step.status || !visit.audio) return "not_ready";
  if (leaseIsLive(visit.lease, now)) return "busy";
  if (visit.deadlineAt && now >= visit.deadlineAt) return endStep(p, step, visit, "deadline_exceeded", null);
  const impossible = step.cannotRun?.(visit) ?? null;
  if (impossible) return endStep(p, step, visit, impossible, null);
  const generation = visit.audio.generation;
  // One read of the visit's work claims serves both the attempts ledger and the paid-call ceiling.
  const workClaims = await listAllWorkClaims(visit.id);
  const ledger = ledgerOf(workClaims, visit, step.stage, generation, step.recover !== undefined);
  const attempt = visit.attempts[step.stage] + 1;
  const outOfAttempts =
    ledger.paidThisRound >= step.maxPaidAttempts || attempt - ledger.continued > step.maxPaidAttempts + UNPAID_TRIES_ALLOWED;
  // Out of attempts, and nothing earlier left to look for: give up (the retry button can start over).
  if (outOfAttempts && ledger.leftovers.length === 0) return endStep(p, step, visit, lastErrorCode(visit), null);

  // A ceiling on what one visit may cost, whatever retries and rounds ask for.
  const paidCallCeiling = await paidCallCeilingOf(p, step, visit);
  if (paidCallsOf(workClaims) >= paidCallCeiling) {
    return endStep(p, step, visit, "paid_call_budget_exhausted", null);
  }

  // While the provider is down, the visit waits without using up an attempt.
  const gate = await openProviderGate(p, step.provider, { visitId, deadlineMs });
  if (!gate.allowed) return deferForOutage(p, step, visit, gate.retryAt);

  const work: WorkKey = { stage: step.stage, generation, round: visit.retryCount, attempt };
  const leaseExpiresAt = addSeconds(now, step.leaseSeconds);
  if (!(await claimWork(visitId, work, {
    owner: p.owner,
    now,
    expiresAt: leaseExpiresAt,
    purgeAt: addSeconds(now, p.config.bookkeepingRetentionDays * 86_400),
  }))) {
    logs.attemptClaimedElsewhere(step.stage, visitId, attempt);
    return "busy";
  }
  const lease = { stage: step.stage, attempt };
  const leased = await updateVisit(
    visitId,
    { [`attempts.${step.stage}`]: attempt, lease: { ...lease, owner: p.owner, expiresAt: leaseExpiresAt }, nextCheckAt: leaseExpiresAt },
    { now, guard: { statuses: [step.status], generation } },
  );
  if (!leased.applied) return "superseded";
  return { visit: leased.visit, work, lease, gate, ledger, outOfAttempts, paidCallCeiling, deadlineMs };
}

/** The paid work of a started attempt, its checkpoint, or the decision after its failure. */
async function runAttempt<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  started: StartedAttempt<P>,
): Promise<StepOutcome> {
  const { visit, work, lease, gate, ledger } = started;
  let sent = false;
  // Calls of this attempt so far: an attempt that summarizes in parts pays for several.
  let callsSent = 0;
  let paidCallCeiling = started.paidCallCeiling;
  /** The first call was checked with the attempt; each further one of the same attempt here. */
  const checkPaidCallCeiling = async () => {
    const paid = await countPaidCalls(visit.id);
    if (paid < paidCallCeiling) return;
    // What this attempt saved may plan calls the visit did not know of when the attempt started (a
    // summary saved first, whose translation is written in parts): asked again only here, at the
    // ceiling, so a visit within it pays no extra read.
    const current = await getVisit(visit.id);
    if (current) paidCallCeiling = Math.max(paidCallCeiling, await paidCallCeilingOf(p, step, current));
    if (paid >= paidCallCeiling) throw new PipelineError("paid_call_budget_exhausted");
  };
  const stepWork: StepWork<P> = {
    visit,
    attempt: work.attempt,
    async pay(operation, send, identifies, usage) {
      if (sent) {
        // A further call that might not finish before the platform stops this invocation is left to
        // the next attempt, which takes over what this one saved (parts are checkpointed).
        if (Date.now() + requestTimeoutMs(p, step.provider) > started.deadlineMs) throw new PipelineError(ATTEMPT_TIME_SPENT);
        await checkPaidCallCeiling();
      }
      const call = callsSent++;
      // Counted in the visit's cost in the same commit that notes the claim as sent: nothing is
      // paid for without being counted, whatever happens next.
      const now = p.now();
      await recordCost(visit.id, costKey("sent", work, call), paidCallDelta(), {
        now,
        alsoWrite: (tx) => writeWorkSent(tx, visit.id, work, { now, ...identifies }),
        deferReconcile: true,
      });
      sent = true;
      const recordUsage = async (used: TokenUsage | null | undefined) => {
        if (!used) return;
        logs.paidCallUsage(visit.id, step.stage, used);
        await recordCost(visit.id, costKey("usage", work, call), tokenDelta(used, p.config.unitPrices), { now: p.now(), deferReconcile: true });
      };
      let result: Awaited<ReturnType<typeof send>>;
      try {
        result = await gate.call(operation, send);
      } catch (thrown) {
        // An answer that could not be used (cut off, refused, not matching the schema) was billed all the same.
        if (thrown instanceof PipelineError) await recordUsage(thrown.usage);
        throw thrown;
      }
      await recordUsage(usage?.(result));
      await failpoint(step.afterPaidCall);
      return result;
    },
    ask: (operation, request) => gate.call(operation, request),
  };
  // The calls' cost facts were written without checking the visit against its whole ledger; once
  // the attempt's calls are done, one check repairs a sum a concurrent writer left stale.
  const settleCost = async () => {
    if (sent) await reconcileCost(visit.id);
  };
  const startedMs = Date.now();
  try {
    const recovered = ledger.leftovers.length > 0 ? await recoverLeftovers(p, step, stepWork, ledger.leftovers) : null;
    if (recovered === null && started.outOfAttempts) {
      await recordWorkOutcome(visit.id, work, { result: "failed", code: "attempts_exhausted", now: p.now() });
      return endStep(p, step, visit, lastErrorCode(visit), lease);
    }
    const output = recovered ?? (await step.perform(stepWork));
    await settleCost();
    const { outcome, checkpointed } = await checkpointStep(p, step, visit, work, output, recovered !== null);
    if (checkpointed) step.succeeded?.(checkpointed, output, work.attempt, Date.now() - startedMs);
    return outcome;
  } catch (thrown) {
    const error = asPipelineError(thrown);
    await recordWorkOutcome(visit.id, work, { result: sent && error.outcomeUnknown ? "unknown" : "failed", code: error.code, now: p.now() });
    await settleCost();
    if (error.code === ATTEMPT_TIME_SPENT) return continueInNextAttempt(p, step, visit, work.attempt, lease);
    // Fenced off while saving part of its work: newer work owns the visit, nothing is to be decided here.
    if (error.code === "lease_lost") {
      logs.staleWriteRejected(visit.id, step.stage, work.attempt, error.detail ?? "lease");
      return "superseded";
    }
    const paidSoFar = ledger.paidThisRound + (sent ? 1 : 0);
    // While earlier work may still have produced something, keep looking for it (bounded by the
    // visit's deadline) rather than give up on something paid for.
    const mayHaveProduced = step.recover !== undefined && (ledger.leftovers.length > 0 || (sent && error.outcomeUnknown));
    const attemptsLeft = paidSoFar < step.maxPaidAttempts && work.attempt < step.maxPaidAttempts + UNPAID_TRIES_ALLOWED;
    const willRetry = mayHaveProduced || (error.transient && attemptsLeft);
    logs.attemptFailed(step.stage, visit.id, work.attempt, error, willRetry);
    if (!willRetry) return endStep(p, step, visit, error.code, lease);
    return scheduleNextAttempt(p, step, visit, work.attempt, error, lease);
  }
}

/** The most paid calls the visit may have made: MAX_PAID_CALLS_PER_VISIT and the step's allowance for it. */
async function paidCallCeilingOf<P extends ProviderName, Output>(p: Pipeline, step: PaidStep<P, Output>, visit: Visit): Promise<number> {
  return p.config.maxPaidCallsPerVisit + ((await step.paidCallAllowance?.(visit)) ?? 0);
}

/** Asks the stage for what earlier work produced; a search that finds nothing settles that work. */
async function recoverLeftovers<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  work: StepWork<P>,
  leftovers: readonly Claim[],
): Promise<Output | null> {
  const found = (await step.recover?.(work, leftovers)) ?? null;
  logs.submissionRecoveryChecked(work.visit.id, leftovers.length, found !== null);
  if (found === null) {
    await Promise.all(leftovers.map((claim) => recordWorkOutcome(work.visit.id, claim, { result: "not_created", now: p.now() })));
  }
  return found;
}

/** Outcome on the claim first (so a lost checkpoint can be found again), then the fenced checkpoint. */
async function checkpointStep<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visit: Visit,
  work: WorkKey,
  output: Output,
  recovered: boolean,
): Promise<{ outcome: StepOutcome; checkpointed: Visit | null }> {
  const now = p.now();
  const resultId = step.resultId?.(output);
  await recordWorkOutcome(visit.id, work, { result: recovered ? "recovered" : "succeeded", now, ...(resultId ? { transcriptId: resultId } : {}) });
  const checkpoint = step.checkpoint(output, now);
  const written = await applyVisitEvent(visit.id, checkpoint.event, {
    now,
    guard: { statuses: [step.status], lease: { stage: step.stage, attempt: work.attempt }, generation: work.generation },
    fields: { ...checkpoint.fields, lease: null },
    ...(checkpoint.alsoWrite ? { alsoWrite: checkpoint.alsoWrite } : {}),
  });
  if (written.applied) {
    await announceIfEnded(p, written);
    return { outcome: recovered ? "recovered" : "succeeded", checkpointed: written.visit };
  }
  logs.staleWriteRejected(visit.id, step.stage, work.attempt, written.reason);
  const superseded = { outcome: "superseded", checkpointed: null } as const;
  if (written.reason === "missing" || written.reason === "recording") {
    logs.paidResultAbandoned(visit.id, step.stage);
    // A replaced recording's paid result is waste on the visit's cost (a deleted visit has none).
    if (written.reason === "recording" && !recovered) await recordDiscarded(p, visit.id, work);
    await step.abandon?.(visit.id, output, written.reason === "missing");
    return superseded;
  }
  // Paid for, and of no use now that other work has moved the visit on: counted as waste. While
  // the visit is still in the step's status, the result stays findable for the next attempt — of
  // a step that can recover results; one that cannot will never use it.
  if (written.visit?.status !== step.status) await recordWorkOutcome(visit.id, work, { result: "discarded", now: p.now() });
  const unusable = written.visit?.status !== step.status || step.recover === undefined;
  // A recovered result was paid for by an earlier attempt, not by this one.
  if (unusable && !recovered) await recordDiscarded(p, visit.id, work);
  return superseded;
}

/** The key of a cost fact about one unit of work (and about its n-th call, after the first). */
function costKey(fact: CostFact, work: WorkKey, call = 0) {
  return { fact, workStage: work.stage, of: call === 0 ? workKeyOf(work) : `${workKeyOf(work)}-c${call}` };
}

function recordDiscarded(p: Pipeline, visitId: string, work: WorkKey): Promise<unknown> {
  return recordCost(visitId, costKey("discarded", work), discardedCallDelta(), { now: p.now() });
}

async function scheduleNextAttempt<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visit: Visit,
  attempt: number,
  error: PipelineError,
  lease: { stage: LeaseStage; attempt: number },
): Promise<StepOutcome> {
  const now = p.now();
  const delay = nextAttemptDelaySeconds(attempt, p.config.attemptBackoffSeconds, error.retryAfterMs, Math.random());
  const written = await updateVisit(
    visit.id,
    { error: visitError(step.stage, error.code), lease: null, nextCheckAt: addSeconds(now, delay) },
    { now, guard: { statuses: [step.status], lease, ...recordingOf(visit) } },
  );
  return reportWrite(visit.id, step.stage, attempt, written, "retry_scheduled");
}

/**
 * The attempt spent its invocation's time with work left (a long visit's parts): the visit is due
 * again at once, and the next attempt — not counted against the step's attempts — carries on from
 * what this one saved.
 */
async function continueInNextAttempt<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visit: Visit,
  attempt: number,
  lease: { stage: LeaseStage; attempt: number },
): Promise<StepOutcome> {
  const now = p.now();
  const written = await updateVisit(visit.id, { lease: null, nextCheckAt: now }, { now, guard: { statuses: [step.status], lease, ...recordingOf(visit) } });
  if (written.applied) logs.attemptContinued(visit.id, step.stage, attempt);
  return reportWrite(visit.id, step.stage, attempt, written, "continued");
}

/** How long one request of the provider may take (its timeout): what a further paid call needs left. */
function requestTimeoutMs(p: Pipeline, provider: ProviderName): number {
  return (provider === "assemblyai" ? p.config.assemblyAiTimeoutSeconds : p.config.openAiTimeoutSeconds) * 1000;
}

/** The provider is down: no attempt is used; the checker comes back when the breaker says. */
async function deferForOutage<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visit: Visit,
  retryAt: Date,
): Promise<StepOutcome> {
  const now = p.now();
  await updateVisit(visit.id, { nextCheckAt: retryAt }, { now, guard: { statuses: [step.status] } });
  logs.workDeferredForOutage(visit.id, step.provider, retryAt);
  return "deferred_outage";
}

/** Ends the stage (`failed` / `partial`, by the step's end event); the retry button can resume it. */
export async function endStep<P extends ProviderName, Output>(
  p: Pipeline,
  step: PaidStep<P, Output>,
  visit: Visit,
  code: ErrorCode,
  lease: { stage: LeaseStage; attempt: number } | null,
): Promise<StepOutcome> {
  // A stage that ends leaves the visit's cost agreeing with its ledger (see settleCost).
  await reconcileCost(visit.id);
  const written = await applyVisitEvent(visit.id, step.endEvent(visitError(step.stage, code)), {
    now: p.now(),
    guard: { statuses: [step.status], ...(lease ? { lease } : {}), ...recordingOf(visit) },
    fields: { lease: null },
  });
  if (written.applied) logs.stageEnded(visit.id, step.stage, written.visit.status, code);
  await announceIfEnded(p, written);
  return reportWrite(visit.id, step.stage, lease?.attempt ?? 0, written, "ended");
}

function reportWrite(visitId: string, stage: LeaseStage, attempt: number, written: GuardedWrite, outcome: StepOutcome): StepOutcome {
  if (written.applied) return outcome;
  logs.staleWriteRejected(visitId, stage, attempt, written.reason);
  return "superseded";
}

/** Fences a write to the recording the attempt works on (attempt numbers restart with a new upload). */
function recordingOf(visit: Visit): { generation?: string } {
  return visit.audio ? { generation: visit.audio.generation } : {};
}

function lastErrorCode(visit: Visit): ErrorCode {
  return visit.error?.code ?? "attempts_exhausted";
}
