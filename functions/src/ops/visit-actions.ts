// The ops commands that change things: requeue and fail a visit (through the state machine, with
// an audit entry on the visit), delete a visit (the deletion stage the API uses), and show or
// reset the provider breakers. The caller (ops/cli.ts) turns outcomes into exit codes.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { PROVIDER_NAMES } from "../providers/outage-policy.js";
import type { ProviderName } from "../providers/outage-policy.js";
import { createFirestoreBreaker, resetBreaker } from "../store/breaker.js";
import type { BreakerState } from "../store/breaker.js";
import { breakerSettingsFrom } from "../providers/outage-policy.js";
import { getTombstone } from "../store/tombstones.js";
import type { DeletionCounts } from "../store/tombstones.js";
import { applyVisitEvent, getVisit } from "../store/visits.js";
import { deleteVisit } from "../stages/delete-visit.js";
import { resumeRefusal, resumeVisit } from "../stages/retry-visit.js";
import { visitError } from "../visit/errors.js";
import { AUDIT_LIMIT, AUDIT_REASON_MAX_CHARS } from "../visit/model.js";
import type { AuditEntry, Visit } from "../visit/model.js";
import { canApply } from "../visit/status.js";
import type { ResumeStage, VisitEvent, VisitStatus } from "../visit/status.js";

export interface Operator {
  actor: string;
  reason: string | null;
}

export type ActionOutcome<T> =
  | { kind: "done"; result: T }
  | { kind: "not_found"; visitId: string }
  /** The state machine (or the resume rules) refused: `code` says why. */
  | { kind: "refused"; visitId: string; status: VisitStatus | null; code: string };

function auditEntry(operator: Operator, action: AuditEntry["action"], at: Date, resumedStage: ResumeStage | null): AuditEntry {
  return { action, actor: operator.actor, at, reason: operator.reason?.slice(0, AUDIT_REASON_MAX_CHARS) ?? null, resumedStage };
}

function withAudit(visit: Visit, entry: AuditEntry): AuditEntry[] {
  return [...visit.audit, entry].slice(-AUDIT_LIMIT);
}

/**
 * Resumes the stage of a failed or partial visit that is due, through the retry stage (without
 * the per-user limits). `inProcess: false` (no provider key here) leaves a resubmission to the
 * deployed checker: the visit is due at once.
 */
export async function requeueVisit(
  p: Pipeline,
  visitId: string,
  operator: Operator,
  options: { deadlineMs: number; inProcess: boolean },
): Promise<ActionOutcome<{ visitId: string; status: VisitStatus; resumedStage: ResumeStage; retryCount: number }>> {
  const visit = await getVisit(visitId);
  if (!visit) return { kind: "not_found", visitId };
  const refusal = resumeRefusal(visit);
  if (refusal) return { kind: "refused", visitId, status: visit.status, code: refusal };
  const outcome = await resumeVisit(p, visit, {
    event: "operator_requeued",
    deadlineMs: options.deadlineMs,
    inProcess: options.inProcess,
    audit: (stage) => auditEntry(operator, "requeued", p.now(), stage),
  });
  if (outcome.kind === "rejected") return { kind: "refused", visitId, status: visit.status, code: outcome.code };
  const { kind: _kind, ...result } = outcome;
  return { kind: "done", result };
}

/** Ends an unfinished visit: `failed`, or `partial` when its transcript is saved (summarizing). */
export async function failVisit(
  p: Pipeline,
  visitId: string,
  operator: Operator,
): Promise<ActionOutcome<{ visitId: string; from: VisitStatus; status: VisitStatus; errorCode: string }>> {
  const visit = await getVisit(visitId);
  if (!visit) return { kind: "not_found", visitId };
  const now = p.now();
  const event: VisitEvent = {
    type: "operator_failed",
    error: visitError(visit.status === "summarizing" ? "summarization" : "transcription", "operator_failed"),
  };
  if (!canApply(visit.status, event)) return { kind: "refused", visitId, status: visit.status, code: "illegal_transition" };
  const written = await applyVisitEvent(visitId, event, {
    now,
    guard: { statuses: [visit.status] },
    fields: { audit: withAudit(visit, auditEntry(operator, "failed", now, null)) },
  });
  if (!written.applied) {
    if (written.reason === "missing") return { kind: "not_found", visitId };
    return { kind: "refused", visitId, status: written.visit?.status ?? null, code: "status_changed" };
  }
  logs.operatorFailed(visitId, visit.status);
  return { kind: "done", result: { visitId, from: visit.status, status: written.visit.status, errorCode: "operator_failed" } };
}

/** Deletes the visit and everything stored about it, as `DELETE /visits/{id}` does (reason `operator`). */
export async function deleteVisitAsOperator(
  p: Pipeline,
  visitId: string,
  deadlineMs: number,
): Promise<ActionOutcome<{ visitId: string; removed: DeletionCounts; pendingProviderDeletes: number; alreadyDeleted: boolean }>> {
  // The owner is whoever the visit (or, once deleted, its tombstone) names.
  const uid = (await getVisit(visitId))?.userId ?? (await getTombstone(visitId))?.userId;
  if (!uid) return { kind: "not_found", visitId };
  const outcome = await deleteVisit(p, { visitId, uid, reason: "operator" }, deadlineMs);
  if (outcome.kind === "not_found") return { kind: "not_found", visitId };
  return { kind: "done", result: { visitId, removed: outcome.removed, pendingProviderDeletes: outcome.pendingProviderDeletes, alreadyDeleted: outcome.alreadyDeleted } };
}

export function isProviderName(value: string): value is ProviderName {
  return (PROVIDER_NAMES as readonly string[]).includes(value);
}

const stateView = (state: BreakerState) => ({
  provider: state.provider,
  state: state.state,
  failures: state.failures,
  windowStartedAt: state.windowStartedAt?.toISOString() ?? null,
  openedAt: state.openedAt?.toISOString() ?? null,
  openUntil: state.openUntil?.toISOString() ?? null,
  updatedAt: state.updatedAt?.toISOString() ?? null,
});
export type BreakerView = ReturnType<typeof stateView>;

export async function breakerStates(p: Pipeline): Promise<BreakerView[]> {
  const breaker = createFirestoreBreaker(breakerSettingsFrom(p.config));
  return Promise.all(PROVIDER_NAMES.map(async (provider) => stateView(await breaker.state(provider))));
}

export async function resetProviderBreaker(p: Pipeline, provider: ProviderName): Promise<{ before: BreakerView; after: BreakerView }> {
  const { before, after } = await resetBreaker(provider, p.now());
  logs.operatorBreakerReset(provider, before.state);
  return { before: stateView(before), after: stateView(after) };
}
