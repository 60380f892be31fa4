// Account deletions still in progress: a user with many visits may not be deleted within one
// invocation, so the request is kept here and the checker carries it on until nothing is left.

import { createHash } from "node:crypto";
import { z } from "zod";
import { DELETION_REASONS } from "./tombstones.js";
import type { DeletionReason } from "./tombstones.js";
import { db } from "./db.js";
import { typedConverter } from "./typed-documents.js";

const USER_DELETIONS = "userDeletions";

export type UserDeletionRequest = { uid: string; reason: DeletionReason; requestedAt: Date; continueAt: Date; purgeAt: Date };

const Schema = z.object({
  uid: z.string(),
  reason: z.enum(DELETION_REASONS),
  requestedAt: z.date(),
  continueAt: z.date(),
  purgeAt: z.date(),
}) satisfies z.ZodType<UserDeletionRequest, unknown>;

const converter = typedConverter<UserDeletionRequest>(USER_DELETIONS, Schema);

function ref(uid: string) {
  return db().collection(USER_DELETIONS).doc(createHash("sha256").update(uid).digest("hex").slice(0, 40)).withConverter(converter);
}

export async function keepUserDeletion(request: UserDeletionRequest): Promise<void> {
  await ref(request.uid).set(request);
}

export async function finishUserDeletion(uid: string): Promise<void> {
  await ref(uid).delete();
}

export async function findUserDeletionsDue(now: Date, limit: number): Promise<UserDeletionRequest[]> {
  const snapshot = await db().collection(USER_DELETIONS).withConverter(converter).where("continueAt", "<=", now).limit(limit).get();
  return snapshot.docs.map((doc) => doc.data());
}
