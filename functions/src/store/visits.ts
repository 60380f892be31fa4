// Firestore access for visit documents, through one typed converter: reads are checked against
// the data model, and every update path is checked by the compiler. Every status change goes
// through applyVisitEvent, which asks the state machine (visit/status.ts) for the write; every
// other write is guarded by the status and, for work in flight, the lease attempt that owns it
// (fencing).

import { Timestamp } from "firebase-admin/firestore";
import type { DocumentReference, QueryDocumentSnapshot, Transaction, UpdateData } from "firebase-admin/firestore";
import { z } from "zod";
import { beforeVisitCommit } from "../runtime-hooks.js";
import { PIPELINE_STAGES, isErrorCode } from "../visit/errors.js";
import type { ErrorCode, VisitError } from "../visit/errors.js";
import { AUDIT_ACTIONS, SUMMARY_EXTRA_STATES, applyPatch, sameAudio } from "../visit/model.js";
import type { AudioRef, LeaseStage, Visit, VisitFields, VisitPatch } from "../visit/model.js";
import { RESUME_STAGES, STATUS_TIME_FIELD, VISIT_STATUSES, appendHistory, canApply, isVisitEventType, planTransition } from "../visit/status.js";
import type { VisitEvent, VisitStatus } from "../visit/status.js";
import { StoredVisitSummarySchema } from "../visit/summary.js";
import { COLLECTIONS, db, isAlreadyExists, isNotFound } from "./db.js";
import { tombstoneRef } from "./tombstones.js";
import { DocumentInvalidError, typedConverter } from "./typed-documents.js";
import type { Stored } from "./typed-documents.js";

const ErrorCodeSchema = z.custom<ErrorCode>((value) => typeof value === "string" && isErrorCode(value));
const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? null);
const nullableDate = nullable(z.date());

const StatusTimesSchema = z.object(
  Object.fromEntries(Object.values(STATUS_TIME_FIELD).map((field) => [field, nullableDate])) as {
    [Field in (typeof STATUS_TIME_FIELD)[VisitStatus]]: typeof nullableDate;
  },
);

// Lenient where the app or older versions may have left gaps (defaults); strict where the
// pipeline relies on a value. A document that does not parse is reported, never half-used.
const VisitFieldsSchema = StatusTimesSchema.extend({
  userId: z.string(),
  audio: nullable(
    z.object({
      bucket: z.string(),
      path: z.string(),
      fileName: z.string(),
      contentType: z.string(),
      sizeBytes: z.number(),
      generation: z.string(),
      deletedAt: nullableDate,
    }),
  ),
  status: z.enum(VISIT_STATUSES),
  transcriptId: nullable(z.string()),
  webhookSecretSha256: nullable(z.string().regex(/^[0-9a-f]{64}$/)),
  transcript: nullable(
    z.object({
      languageCode: z.string().nullable(),
      languageConfidence: z.number().nullable(),
      audioDurationSeconds: z.number().nullable(),
      utteranceCount: z.number(),
      speakerCount: z.number(),
      characterCount: z.number(),
      settings: nullable(
        z.object({
          medicalMode: z.enum(["applied", "skipped", "off", "unknown"]),
          redactedPiiPolicies: z.array(z.string()),
          speakersExpected: z.number().nullable(),
        }),
      ),
      providerDeletedAt: nullableDate,
    }),
  ),
  summary: nullable(StoredVisitSummarySchema),
  summaryModel: nullable(z.string()),
  summaryModels: z.array(z.string()).default([]),
  summaryParts: nullable(z.number()),
  summaryTranslation: nullable(
    z.object({ language: z.string(), state: z.enum(SUMMARY_EXTRA_STATES), model: z.string().nullable() }),
  ),
  clinicianNote: nullable(z.object({ format: z.literal("soap"), state: z.enum(SUMMARY_EXTRA_STATES), model: z.string().nullable() })),
  actionItemCount: z.number().default(0),
  error: nullable(
    z.object({ stage: z.enum(PIPELINE_STAGES), code: ErrorCodeSchema, message: z.string(), retryable: z.boolean() }),
  ),
  retryCount: z.number().default(0),
  attempts: z
    .object({ transcription: z.number().default(0), summarization: z.number().default(0) })
    .default({ transcription: 0, summarization: 0 }),
  checks: z.number().default(0),
  summaryDispatches: z.number().default(0),
  lease: nullable(
    z.object({
      stage: z.enum(["transcription", "summarization"]),
      attempt: z.number(),
      owner: z.string(),
      expiresAt: z.date(),
    }),
  ),
  nextCheckAt: nullableDate,
  deadlineAt: nullableDate,
  createdAt: z.date(),
  updatedAt: z.date(),
  history: z
    .array(
      z.object({
        status: z.enum(VISIT_STATUSES),
        event: z.custom<VisitEvent["type"]>(isVisitEventType),
        at: z.date(),
        code: z.string().nullable(),
      }),
    )
    .default([]),
  parkedAt: nullableDate,
  audioExpiresAt: nullableDate,
  pendingProviderDeletes: z.array(z.string()).default([]),
  providerCleanupDueAt: nullableDate,
  cost: nullable(
    z.object({
      audioSeconds: z.number(),
      promptTokens: z.number(),
      completionTokens: z.number(),
      paidCalls: z.number(),
      discardedPaidCalls: z.number(),
      estimatedUsd: z.number(),
    }),
  ),
  audit: z
    .array(
      z.object({
        action: z.enum(AUDIT_ACTIONS),
        actor: z.string(),
        at: z.date(),
        reason: z.string().nullable(),
        resumedStage: z.enum(RESUME_STAGES).nullable(),
      }),
    )
    .default([]),
}) satisfies z.ZodType<VisitFields, unknown>;

export type StoredVisit = Stored<VisitFields>;

const visitConverter = typedConverter<VisitFields>(COLLECTIONS.visits, VisitFieldsSchema);

// Compile-time: every patch the pipeline can express is an update path of the stored document.
const patchIsUpdate = (patch: VisitPatch): UpdateData<StoredVisit> => patch;

export function visitRef(visitId: string): DocumentReference<VisitFields, StoredVisit> {
  return db().collection(COLLECTIONS.visits).doc(visitId).withConverter(visitConverter);
}

/** A visit document that does not match the data model. */
export class VisitDocumentInvalidError extends DocumentInvalidError {}

function visitOf(visitId: string, fields: VisitFields | undefined): Visit | null {
  return fields ? { id: visitId, ...fields } : null;
}

async function readVisit(visitId: string, tx?: Transaction): Promise<Visit | null> {
  const ref = visitRef(visitId);
  try {
    const snapshot = tx ? await tx.get(ref) : await ref.get();
    return visitOf(visitId, snapshot.data());
  } catch (error) {
    if (error instanceof DocumentInvalidError) throw new VisitDocumentInvalidError(error.collection, error.documentId, error.fieldPath);
    throw error;
  }
}

export function getVisit(visitId: string): Promise<Visit | null> {
  return readVisit(visitId);
}

/** Conditions a write depends on. A write whose guard fails is skipped and reported. */
export interface VisitGuard {
  statuses?: readonly VisitStatus[];
  /** The caller's lease: the write happens only while the visit still names this attempt. */
  lease?: { stage: LeaseStage; attempt: number };
  transcriptId?: string;
  /**
   * The recording (object generation) the caller works on: a new upload restarts attempt numbers,
   * so the lease alone cannot tell an attempt of the replaced recording from the new one's.
   */
  generation?: string;
}

export type GuardFailure = "missing" | "status" | "lease" | "transcript" | "recording";

function checkGuard(visit: Visit | null, guard: VisitGuard): GuardFailure | null {
  if (!visit) return "missing";
  if (guard.statuses && !guard.statuses.includes(visit.status)) return "status";
  if (guard.lease && (visit.lease?.stage !== guard.lease.stage || visit.lease.attempt !== guard.lease.attempt)) {
    return "lease";
  }
  if (guard.transcriptId !== undefined && visit.transcriptId !== guard.transcriptId) return "transcript";
  if (guard.generation !== undefined && visit.audio?.generation !== guard.generation) return "recording";
  return null;
}

/** The outcome of a guarded write; `visit` is the document as it is after the write (or was, if skipped). */
export type GuardedWrite = { applied: true; visit: Visit } | { applied: false; reason: GuardFailure; visit: Visit | null };

/** Extra writes that must land in the same commit as the visit update (e.g. action items). */
export type SameCommitWrites = (tx: Transaction, visit: Visit) => void;

/** Reads, checks the guard, and writes `patchFor(visit)` in one transaction. */
async function guardedWrite(
  visitId: string,
  guard: VisitGuard,
  patchFor: (visit: Visit) => VisitPatch,
  alsoWrite?: SameCommitWrites,
): Promise<GuardedWrite> {
  try {
    return await db().runTransaction(async (tx) => {
      const visit = await readVisit(visitId, tx);
      const failure = checkGuard(visit, guard);
      if (failure || !visit) return { applied: false, reason: failure ?? "missing", visit };
      await beforeVisitCommit(visitId);
      const patch = clampToDeadline(patchFor(visit), visit);
      alsoWrite?.(tx, visit);
      tx.update(visitRef(visitId), patchIsUpdate(patch));
      return { applied: true, visit: applyPatch(visit, patch) };
    });
  } catch (error) {
    // Deleted between the read and the commit (a deletion racing the work; Firestore retries the
    // transaction and reads it missing, the embedded emulator refuses the update): nothing written.
    // Another document of the commit missing (an artifact the same-commit writes update) is an error.
    if (isNotFound(error) && !(await visitRef(visitId).get()).exists) return { applied: false, reason: "missing", visit: null };
    throw error;
  }
}

/**
 * Applies a pipeline event: the state machine plans the status write, the guard fences it,
 * and `fields` (non-status data such as the summary) land in the same update.
 */
export function applyVisitEvent(
  visitId: string,
  event: VisitEvent,
  options: { now: Date; guard?: VisitGuard; fields?: VisitPatch; alsoWrite?: SameCommitWrites },
): Promise<GuardedWrite> {
  return guardedWrite(
    visitId,
    options.guard ?? {},
    (visit) => {
      const plan = planTransition(visit.status, event, options.now);
      return { ...plan.fields, ...options.fields, history: appendHistory(visit.history, plan.historyEntry) };
    },
    options.alsoWrite,
  );
}

/**
 * Writes of another document (a summary part) that must land only while the guard holds, in one
 * commit with a touch of the visit's `updatedAt`.
 */
export function writeGuarded(visitId: string, options: { now: Date; guard: VisitGuard }, writes: SameCommitWrites): Promise<GuardedWrite> {
  return guardedWrite(visitId, options.guard, () => ({ updatedAt: options.now }), writes);
}

/**
 * A guarded write that does not change the status (leases, check times, attempt counters, a
 * checkpoint of work in progress), with `alsoWrite` in the same commit.
 */
export function updateVisit(
  visitId: string,
  fields: VisitPatch,
  options: { now: Date; guard: VisitGuard; alsoWrite?: SameCommitWrites },
): Promise<GuardedWrite> {
  return guardedWrite(visitId, options.guard, () => ({ ...fields, updatedAt: options.now }), options.alsoWrite);
}

/**
 * An unfinished visit is always looked at again by its deadline, so the checker can end it:
 * no due time is set beyond `deadlineAt` (unless the same write moves the deadline).
 */
function clampToDeadline(patch: VisitPatch, visit: Visit): VisitPatch {
  const deadline = patch.deadlineAt !== undefined ? patch.deadlineAt : visit.deadlineAt;
  const next = patch.nextCheckAt;
  if (!next || !deadline || next.getTime() <= deadline.getTime()) return patch;
  return { ...patch, nextCheckAt: deadline };
}

export type UploadOutcome =
  /** `previous`: the visit as it was before this recording replaced an earlier (failed) one. */
  | { kind: "started"; visit: Visit; previous: Visit | null }
  | { kind: "rejected"; visit: Visit; previous: Visit | null }
  | { kind: "duplicate"; visit: Visit }
  | { kind: "owner_mismatch" }
  | { kind: "busy"; status: VisitStatus }
  /** The visit was deleted: its id is never used again. */
  | { kind: "deleted" }
  /** The visit took another recording since the caller read it: the caller must look again. */
  | { kind: "changed" };

/** What a new recording resets on its visit (the rest of a failed visit is kept). */
function freshRecording(input: { userId: string; audio: AudioRef; deadlineAt: Date | null; audioExpiresAt: Date | null }) {
  return {
    userId: input.userId,
    audio: input.audio,
    transcriptId: null,
    webhookSecretSha256: null,
    transcript: null,
    summary: null,
    summaryModel: null,
    summaryModels: [],
    summaryParts: null,
    summaryTranslation: null,
    clinicianNote: null,
    actionItemCount: 0,
    attempts: { transcription: 0, summarization: 0 },
    checks: 0,
    lease: null,
    nextCheckAt: null,
    deadlineAt: input.deadlineAt,
    audioExpiresAt: input.audioExpiresAt,
  } satisfies VisitPatch;
}

const NO_STATUS_TIMES = Object.fromEntries(Object.values(STATUS_TIME_FIELD).map((field) => [field, null])) as {
  [Field in (typeof STATUS_TIME_FIELD)[VisitStatus]]: null;
};

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
  /** When the retention job may delete the recording; null keeps it. */
  audioExpiresAt: Date | null;
  /**
   * The generation of the recording the caller replaced (and deleted), or null for a visit's first
   * recording: a visit that holds any other recording by now is not overwritten ("changed"), so
   * no recording is ever replaced without being deleted.
   */
  replacing: string | null;
}): Promise<UploadOutcome> {
  const ref = visitRef(input.visitId);
  const attempt = () =>
    db().runTransaction<UploadOutcome>(async (tx) => {
      // A late or repeated delivery for a deleted visit must not bring it back.
      if ((await tx.get(tombstoneRef(input.visitId))).exists) return { kind: "deleted" };
      const visit = await readVisit(input.visitId, tx);
      if (visit && visit.userId !== input.userId) return { kind: "owner_mismatch" };
      if (visit && sameAudio(visit.audio, input.audio)) return { kind: "duplicate", visit };
      if (visit && (visit.audio?.generation ?? null) !== input.replacing) return { kind: "changed" };
      const event: VisitEvent = input.rejection
        ? { type: "upload_rejected", error: input.rejection }
        : { type: "upload_accepted" };
      // The state machine says which visits may take a new recording (a new one, or a failed one).
      if (visit && !canApply(visit.status, event)) return { kind: "busy", status: visit.status };
      const plan = planTransition(visit?.status ?? null, event, input.now);
      const patch: VisitPatch = {
        ...plan.fields,
        ...freshRecording({
          userId: input.userId,
          audio: input.audio,
          deadlineAt: input.rejection ? null : input.deadlineAt,
          audioExpiresAt: input.audioExpiresAt,
        }),
        history: appendHistory(visit?.history ?? [], plan.historyEntry),
      };
      let written: Visit;
      if (visit) {
        tx.update(ref, patchIsUpdate(patch));
        written = applyPatch(visit, patch);
      } else {
        // create(): of two first deliveries racing, exactly one makes the visit.
        const fields: VisitFields = {
          ...NO_STATUS_TIMES,
          ...freshRecording({ userId: input.userId, audio: input.audio, deadlineAt: null, audioExpiresAt: null }),
          status: plan.status,
          summaryModel: null,
          actionItemCount: 0,
          error: null,
          retryCount: 0,
          summaryDispatches: 0,
          createdAt: input.now,
          updatedAt: input.now,
          history: [],
          parkedAt: null,
          pendingProviderDeletes: [],
          providerCleanupDueAt: null,
          cost: null,
          audit: [],
          ...patch,
        };
        tx.create(ref, fields);
        written = { id: input.visitId, ...fields };
      }
      return { kind: input.rejection ? "rejected" : "started", visit: written, previous: visit };
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
    .withConverter(visitConverter)
    .where("nextCheckAt", "<=", now)
    .orderBy("nextCheckAt")
    .limit(limit)
    .get();
  return convertEach(snapshot.docs);
}

/** Each document is converted on its own, so one unreadable document cannot fail a batch. */
function convertEach(docs: readonly QueryDocumentSnapshot<VisitFields, StoredVisit>[]): DueVisits {
  const page: DueVisits = { visits: [], invalidIds: [] };
  for (const doc of docs) {
    try {
      page.visits.push({ id: doc.id, ...doc.data() });
    } catch (error) {
      if (!(error instanceof DocumentInvalidError)) throw error;
      page.invalidIds.push(doc.id);
    }
  }
  return page;
}

/** A page of a scan: the visits, the ids of unreadable documents, and the last document read. */
export interface VisitPage extends DueVisits {
  size: number;
  lastId: string | null;
  /** The last document's `createdAt` (read raw, so an unreadable document still advances a scan). */
  lastCreatedAt: Date | null;
  /** Ids of the documents whose `createdAt` equals lastCreatedAt. */
  idsAtLastCreatedAt: string[];
}

function pageOf(docs: readonly QueryDocumentSnapshot<VisitFields, StoredVisit>[]): VisitPage {
  const createdAt = (doc: QueryDocumentSnapshot<VisitFields, StoredVisit>) => {
    const raw: unknown = doc.get("createdAt");
    return raw instanceof Timestamp ? raw.toDate() : null;
  };
  const last = docs.at(-1);
  const lastCreatedAt = last ? createdAt(last) : null;
  return {
    ...convertEach(docs),
    size: docs.length,
    lastId: last?.id ?? null,
    lastCreatedAt,
    idsAtLastCreatedAt: docs.filter((doc) => createdAt(doc)?.getTime() === lastCreatedAt?.getTime()).map((doc) => doc.id),
  };
}

/** Visits in one status, a page at a time by id (equality plus id order: no composite index). */
export async function listVisitsInStatus(status: VisitStatus, after: string | null, limit: number): Promise<VisitPage> {
  let query = db().collection(COLLECTIONS.visits).withConverter(visitConverter).where("status", "==", status).orderBy("__name__").limit(limit);
  if (after) query = query.startAfter(after);
  return pageOf((await query.get()).docs);
}

/**
 * Visits created at or after `from`, oldest first. The caller pages by moving `from` to the last
 * page's `createdAt` (a filter, not a cursor) and skipping the ids it has seen at that instant.
 */
export async function listVisitsCreatedFrom(from: Date, limit: number): Promise<VisitPage> {
  const query = db().collection(COLLECTIONS.visits).withConverter(visitConverter).where("createdAt", ">=", from).orderBy("createdAt").limit(limit);
  return pageOf((await query.get()).docs);
}

/** How many visits a scan will read (for progress). */
export async function countVisits(filter: { status: VisitStatus } | { createdFrom: Date }): Promise<number> {
  const visits = db().collection(COLLECTIONS.visits);
  const query = "status" in filter ? visits.where("status", "==", filter.status) : visits.where("createdAt", ">=", filter.createdFrom);
  return (await query.count().get()).data().count;
}

/** Takes an unreadable visit out of the checker's queue (it is kept for inspection). */
export async function parkInvalidVisit(visitId: string, now: Date): Promise<void> {
  // Untyped on purpose: the document does not match the model, so only these two fields are touched.
  try {
    await db().collection(COLLECTIONS.visits).doc(visitId).update({ nextCheckAt: null, parkedAt: now });
  } catch (error) {
    // Deleted since it was read: nothing left to park.
    if (!isNotFound(error)) throw error;
  }
}


/**
 * Settles provider deletes of a visit: `done` ones leave the pending list, `failed` ones join it
 * (the checker retries them at `retryAt`); the saved transcript is marked deleted at the provider
 * once its job is done.
 */
export function settleProviderDeletes(
  visitId: string,
  result: { done: readonly string[]; failed: readonly string[]; now: Date; retryAt: Date },
): Promise<GuardedWrite> {
  return guardedWrite(visitId, {}, (visit) => {
    const pending = [...new Set([...visit.pendingProviderDeletes, ...result.failed])].filter((id) => !result.done.includes(id));
    const transcriptDone = visit.transcript !== null && visit.transcriptId !== null && result.done.includes(visit.transcriptId);
    return {
      pendingProviderDeletes: pending,
      providerCleanupDueAt: pending.length > 0 ? result.retryAt : null,
      ...(transcriptDone ? { "transcript.providerDeletedAt": result.now } : {}),
    };
  });
}

/** Visits with provider deletes due again, oldest first. */
export async function findProviderCleanupDue(now: Date, limit: number): Promise<Visit[]> {
  const snapshot = await db()
    .collection(COLLECTIONS.visits)
    .withConverter(visitConverter)
    .where("providerCleanupDueAt", "<=", now)
    .orderBy("providerCleanupDueAt")
    .limit(limit)
    .get();
  return snapshot.docs.map((doc) => ({ id: doc.id, ...doc.data() }));
}

/** Visits whose recording is past its retention, oldest first. */
export async function findAudioPastRetention(now: Date, limit: number): Promise<Visit[]> {
  const snapshot = await db()
    .collection(COLLECTIONS.visits)
    .withConverter(visitConverter)
    .where("audioExpiresAt", "<=", now)
    .orderBy("audioExpiresAt")
    .limit(limit)
    .get();
  return snapshot.docs.map((doc) => ({ id: doc.id, ...doc.data() }));
}

/** Marks a visit's recording deleted (if it is still that recording). */
export function markAudioDeleted(visitId: string, generation: string, now: Date): Promise<GuardedWrite> {
  return guardedWrite(visitId, {}, (visit) =>
    visit.audio?.generation === generation ? { audio: { ...visit.audio, deletedAt: now }, audioExpiresAt: null } : { audioExpiresAt: null },
  );
}

/** The user's visits, a page at a time (ordered by id, so paging is stable under concurrent writes). */
export async function listUserVisits(userId: string, after: string | null, limit: number): Promise<Visit[]> {
  let query = db().collection(COLLECTIONS.visits).withConverter(visitConverter).where("userId", "==", userId).orderBy("__name__").limit(limit);
  if (after) query = query.startAfter(after);
  const snapshot = await query.get();
  return snapshot.docs.map((doc) => ({ id: doc.id, ...doc.data() }));
}

/** Deletes the visit document; 1 if it existed. */
export async function deleteVisitDocument(visitId: string): Promise<number> {
  const ref = visitRef(visitId);
  if (!(await ref.get()).exists) return 0;
  await ref.delete();
  return 1;
}
