// Firestore access for visit documents. Every status change goes through applyVisitEvent, which
// asks the state machine (visit/status.ts) for the write; every other write is guarded by the
// status and, for work in flight, the lease attempt that owns it (fencing).

import { Timestamp } from "firebase-admin/firestore";
import type { DocumentReference, DocumentSnapshot, Transaction } from "firebase-admin/firestore";
import { z } from "zod";
import type { VisitError } from "../visit/errors.js";
import { sameAudio } from "../visit/model.js";
import type { AudioRef, LeaseStage, Visit } from "../visit/model.js";
import { VISIT_STATUSES, appendHistory, planTransition } from "../visit/status.js";
import type { VisitEvent, VisitStatus } from "../visit/status.js";
import { COLLECTIONS, db, isAlreadyExists } from "./db.js";

export function visitRef(visitId: string): DocumentReference {
  return db().collection(COLLECTIONS.visits).doc(visitId);
}

const DateField = z.custom<Timestamp | Date>((v) => v instanceof Timestamp || v instanceof Date).transform((v) =>
  v instanceof Timestamp ? v.toDate() : v,
);

// Lenient where the app or older versions may have left gaps; strict where the pipeline relies
// on a value. A document that does not parse is reported, never half-used.
const VisitDocSchema = z.object({
  userId: z.string(),
  audio: z
    .object({
      bucket: z.string(),
      path: z.string(),
      fileName: z.string(),
      contentType: z.string(),
      sizeBytes: z.number(),
      generation: z.string(),
    })
    .nullish()
    .transform((v) => v ?? null),
  status: z.enum(VISIT_STATUSES),
  transcriptId: z.string().nullish().transform((v) => v ?? null),
  transcript: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? null),
  summary: z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? null),
  actionItemCount: z.number().default(0),
  error: z
    .object({ stage: z.string(), code: z.string(), message: z.string(), retryable: z.boolean() })
    .nullish()
    .transform((v) => v ?? null),
  retryCount: z.number().default(0),
  attempts: z.object({ transcription: z.number().default(0), summarization: z.number().default(0) }).default({
    transcription: 0,
    summarization: 0,
  }),
  checks: z.number().default(0),
  summaryDispatches: z.number().default(0),
  lease: z
    .object({
      stage: z.enum(["transcription", "summarization"]),
      attempt: z.number(),
      owner: z.string(),
      expiresAt: DateField,
    })
    .nullish()
    .transform((v) => v ?? null),
  nextCheckAt: DateField.nullish().transform((v) => v ?? null),
  deadlineAt: DateField.nullish().transform((v) => v ?? null),
  createdAt: DateField,
  updatedAt: DateField,
  history: z
    .array(z.object({ status: z.enum(VISIT_STATUSES), event: z.string(), at: DateField, code: z.string().nullable() }))
    .default([]),
});

export class VisitDocumentInvalidError extends Error {
  readonly code = "visit_document_invalid";
  constructor(visitId: string, path: string) {
    super(`visit ${visitId} does not match the data model at ${path}`);
    this.name = "VisitDocumentInvalidError";
  }
}

export function toVisit(snapshot: DocumentSnapshot): Visit | null {
  if (!snapshot.exists) return null;
  const parsed = VisitDocSchema.safeParse(snapshot.data());
  if (!parsed.success) {
    throw new VisitDocumentInvalidError(snapshot.id, parsed.error.issues[0]?.path.join(".") ?? "?");
  }
  // The summary and transcript info were validated when written; the error code likewise.
  return { id: snapshot.id, ...parsed.data } as Visit;
}

export async function getVisit(visitId: string): Promise<Visit | null> {
  return toVisit(await visitRef(visitId).get());
}

/** Conditions a write depends on. A write whose guard fails is skipped and reported. */
export interface VisitGuard {
  statuses?: readonly VisitStatus[];
  /** The caller's lease: the write happens only while the visit still names this attempt. */
  lease?: { stage: LeaseStage; attempt: number };
  transcriptId?: string;
}

export type GuardFailure = "missing" | "status" | "lease" | "transcript";

export function checkGuard(visit: Visit | null, guard: VisitGuard): GuardFailure | null {
  if (!visit) return "missing";
  if (guard.statuses && !guard.statuses.includes(visit.status)) return "status";
  if (guard.lease && (visit.lease?.stage !== guard.lease.stage || visit.lease.attempt !== guard.lease.attempt)) {
    return "lease";
  }
  if (guard.transcriptId !== undefined && visit.transcriptId !== guard.transcriptId) return "transcript";
  return null;
}

export type GuardedWrite = { applied: true; visit: Visit } | { applied: false; reason: GuardFailure; visit: Visit | null };

/** Extra writes that must land in the same commit as the visit update (e.g. action items). */
export type SameCommitWrites = (tx: Transaction, visit: Visit) => void;

/**
 * Applies a pipeline event: the state machine plans the status write, the guard fences it,
 * and `fields` (non-status data such as the summary) land in the same update.
 */
export async function applyVisitEvent(
  visitId: string,
  event: VisitEvent,
  options: { now: Date; guard?: VisitGuard; fields?: Record<string, unknown>; alsoWrite?: SameCommitWrites },
): Promise<GuardedWrite> {
  const ref = visitRef(visitId);
  return db().runTransaction(async (tx) => {
    const visit = toVisit(await tx.get(ref));
    const failure = checkGuard(visit, options.guard ?? {});
    if (failure || !visit) return { applied: false, reason: failure ?? "missing", visit };
    const plan = planTransition(visit.status, event, options.now);
    const update = clampToDeadline(
      { ...plan.fields, ...options.fields, history: appendHistory(visit.history, plan.historyEntry) },
      visit,
    );
    options.alsoWrite?.(tx, visit);
    tx.update(ref, update);
    return { applied: true, visit: { ...visit, ...(update as Partial<Visit>) } };
  });
}

/**
 * An unfinished visit is always looked at again by its deadline, so the checker can end it:
 * no due time is set beyond `deadlineAt` (unless the same write moves the deadline).
 */
function clampToDeadline(update: Record<string, unknown>, visit: Visit): Record<string, unknown> {
  const deadline = update.deadlineAt instanceof Date ? update.deadlineAt : visit.deadlineAt;
  const next = update.nextCheckAt;
  if (!(next instanceof Date) || !deadline || next.getTime() <= deadline.getTime()) return update;
  return { ...update, nextCheckAt: deadline };
}

/** A guarded write that does not change the status (leases, check times, attempt counters). */
export async function updateVisit(
  visitId: string,
  fields: Record<string, unknown>,
  options: { now: Date; guard: VisitGuard },
): Promise<GuardedWrite> {
  const ref = visitRef(visitId);
  return db().runTransaction(async (tx) => {
    const visit = toVisit(await tx.get(ref));
    const failure = checkGuard(visit, options.guard);
    if (failure || !visit) return { applied: false, reason: failure ?? "missing", visit };
    const update = clampToDeadline({ ...fields, updatedAt: options.now }, visit);
    tx.update(ref, update);
    return { applied: true, visit: { ...visit, ...(update as Partial<Visit>) } };
  });
}

export type UploadOutcome =
  | { kind: "started"; visit: Visit }
  | { kind: "rejected"; visit: Visit }
  | { kind: "duplicate"; visit: Visit }
  | { kind: "owner_mismatch" }
  | { kind: "busy"; status: VisitStatus };

/**
 * Records an upload on its visit: a new visit, or a fresh start of a failed one. A second
 * delivery of the same object generation is reported as a duplicate; a visit owned by someone
 * else, or one whose recording is being processed or is done, is left untouched.
 */
export async function recordUpload(input: {
  visitId: string;
  userId: string;
  audio: AudioRef;
  rejection: VisitError | null;
  now: Date;
  deadlineAt: Date;
}): Promise<UploadOutcome> {
  const ref = visitRef(input.visitId);
  const attempt = () =>
    db().runTransaction<UploadOutcome>(async (tx) => {
      const visit = toVisit(await tx.get(ref));
      if (visit && visit.userId !== input.userId) return { kind: "owner_mismatch" };
      if (visit && sameAudio(visit.audio, input.audio)) return { kind: "duplicate", visit };
      const event: VisitEvent = input.rejection
        ? { type: "upload_rejected", error: input.rejection }
        : { type: "upload_accepted" };
      if (visit && visit.status !== "failed") return { kind: "busy", status: visit.status };
      const plan = planTransition(visit?.status ?? null, event, input.now);
      const fields = {
        ...plan.fields,
        userId: input.userId,
        audio: input.audio,
        transcriptId: null,
        transcript: null,
        summary: null,
        attempts: { transcription: 0, summarization: 0 },
        checks: 0,
        lease: null,
        nextCheckAt: null,
        deadlineAt: input.rejection ? null : input.deadlineAt,
        history: appendHistory(visit?.history ?? [], plan.historyEntry),
      };
      if (visit) {
        tx.update(ref, fields);
      } else {
        // create(): of two first deliveries racing, exactly one makes the visit.
        tx.create(ref, { ...fields, createdAt: input.now, retryCount: 0, actionItemCount: 0, summaryDispatches: 0 });
      }
      const written = { ...(visit ?? {}), ...fields, id: input.visitId } as unknown as Visit;
      return { kind: input.rejection ? "rejected" : "started", visit: written };
    });
  try {
    return await attempt();
  } catch (error) {
    // Lost the create() race: read again, now as a duplicate or a busy visit.
    if (isAlreadyExists(error)) return attempt();
    throw error;
  }
}

export interface DueVisits {
  visits: Visit[];
  /** Due documents that do not match the data model; the checker parks them so they cannot block the queue. */
  invalidIds: string[];
}

/** Visits whose next check is due, oldest first. Single-field range: no composite index. */
export async function findDueVisits(now: Date, limit: number): Promise<DueVisits> {
  const snapshot = await db()
    .collection(COLLECTIONS.visits)
    .where("nextCheckAt", "<=", now)
    .orderBy("nextCheckAt")
    .limit(limit)
    .get();
  const due: DueVisits = { visits: [], invalidIds: [] };
  for (const doc of snapshot.docs) {
    try {
      const visit = toVisit(doc);
      if (visit) due.visits.push(visit);
    } catch (error) {
      if (!(error instanceof VisitDocumentInvalidError)) throw error;
      due.invalidIds.push(doc.id);
    }
  }
  return due;
}

/** Takes an unreadable visit out of the checker's queue (it is kept for inspection). */
export async function parkInvalidVisit(visitId: string, now: Date): Promise<void> {
  await visitRef(visitId).update({ nextCheckAt: null, parkedAt: now });
}
