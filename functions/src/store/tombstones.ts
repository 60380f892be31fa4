// Tombstones of deleted visits. One is written before anything of the visit is deleted, so that
// work still in flight (a late storage delivery, a checker poll, a queued summarization, a zombie)
// can tell "deleted" from "not yet created" and write nothing; the checker sweeps the visit's
// place again once such work can no longer be running, and retries provider deletes that failed.
// A tombstone keeps no PHI: ids, counts and times.

import { FieldValue } from "firebase-admin/firestore";
import { z } from "zod";
import { db, isAlreadyExists } from "./db.js";
import { typedConverter } from "./typed-documents.js";

const TOMBSTONES = "deletedVisits";

export const DELETION_REASONS = ["user", "account_deleted", "operator"] as const;
export type DeletionReason = (typeof DELETION_REASONS)[number];

/** What a deletion removed, by kind (counts only). */
export type DeletionCounts = {
  visit: number;
  transcriptDocuments: number;
  claims: number;
  actionItems: number;
  rateLimits: number;
  storageObjects: number;
  providerTranscripts: number;
};

export type Tombstone = {
  userId: string;
  /** The bucket the visit's recordings were in, for the sweep. */
  bucket: string | null;
  reason: DeletionReason;
  deletedAt: Date;
  removed: DeletionCounts;
  /** AssemblyAI transcripts not yet confirmed deleted there. */
  pendingProviderDeletes: string[];
  /** When the checker sweeps again (late writes; pending provider deletes); null when done. */
  sweepAt: Date | null;
  sweeps: number;
  /** Firestore's TTL policy may delete the tombstone after this (see firestore.indexes.json). */
  purgeAt: Date;
};

const CountsSchema = z.object({
  visit: z.number(),
  transcriptDocuments: z.number(),
  claims: z.number(),
  actionItems: z.number(),
  rateLimits: z.number(),
  storageObjects: z.number(),
  providerTranscripts: z.number(),
}) satisfies z.ZodType<DeletionCounts, unknown>;

const TombstoneSchema = z.object({
  userId: z.string(),
  bucket: z.string().nullable(),
  reason: z.enum(DELETION_REASONS),
  deletedAt: z.date(),
  removed: CountsSchema,
  pendingProviderDeletes: z.array(z.string()),
  sweepAt: z.date().nullable(),
  sweeps: z.number(),
  purgeAt: z.date(),
}) satisfies z.ZodType<Tombstone, unknown>;

const converter = typedConverter<Tombstone>(TOMBSTONES, TombstoneSchema);

export function tombstoneRef(visitId: string) {
  return db().collection(TOMBSTONES).doc(visitId).withConverter(converter);
}

export const NO_COUNTS: DeletionCounts = {
  visit: 0,
  transcriptDocuments: 0,
  claims: 0,
  actionItems: 0,
  rateLimits: 0,
  storageObjects: 0,
  providerTranscripts: 0,
};

export async function getTombstone(visitId: string): Promise<Tombstone | null> {
  return (await tombstoneRef(visitId).get()).data() ?? null;
}

/**
 * Claims a visit's deletion: creates its tombstone, or answers false when one exists already.
 * create() decides between deletions started at once (also where transactions do not isolate).
 */
export async function createTombstone(visitId: string, tombstone: Tombstone): Promise<boolean> {
  try {
    await tombstoneRef(visitId).create(tombstone);
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

/**
 * Writes the tombstone before the deletion starts. A second deletion of the same visit (a repeated
 * request, an account deletion racing a visit deletion) keeps the first one's record and adds to it.
 */
export async function writeTombstone(visitId: string, tombstone: Tombstone): Promise<Tombstone> {
  return db().runTransaction(async (tx) => {
    const existing = (await tx.get(tombstoneRef(visitId))).data();
    const next = existing ? { ...existing, sweepAt: tombstone.sweepAt, purgeAt: tombstone.purgeAt } : tombstone;
    tx.set(tombstoneRef(visitId), next);
    return next;
  });
}

export async function recordDeletion(
  visitId: string,
  update: { removed: DeletionCounts; pendingProviderDeletes: string[]; sweepAt: Date | null; sweeps?: number },
): Promise<void> {
  await tombstoneRef(visitId).update({
    removed: update.removed,
    pendingProviderDeletes: update.pendingProviderDeletes,
    sweepAt: update.sweepAt,
    ...(update.sweeps !== undefined ? { sweeps: update.sweeps } : {}),
  });
}

/** A provider job created by work that outlived the deletion: the sweep deletes it. */
export async function addPendingProviderDelete(visitId: string, transcriptId: string, sweepAt: Date): Promise<void> {
  await db().collection(TOMBSTONES).doc(visitId).update({ pendingProviderDeletes: FieldValue.arrayUnion(transcriptId), sweepAt });
}

export async function findTombstonesToSweep(now: Date, limit: number): Promise<{ visitId: string; tombstone: Tombstone }[]> {
  const snapshot = await db().collection(TOMBSTONES).withConverter(converter).where("sweepAt", "<=", now).orderBy("sweepAt").limit(limit).get();
  return snapshot.docs.map((doc) => ({ visitId: doc.id, tombstone: doc.data() }));
}

export function addCounts(a: DeletionCounts, b: DeletionCounts): DeletionCounts {
  return {
    visit: a.visit + b.visit,
    transcriptDocuments: a.transcriptDocuments + b.transcriptDocuments,
    claims: a.claims + b.claims,
    actionItems: a.actionItems + b.actionItems,
    rateLimits: a.rateLimits + b.rateLimits,
    storageObjects: a.storageObjects + b.storageObjects,
    providerTranscripts: a.providerTranscripts + b.providerTranscripts,
  };
}
