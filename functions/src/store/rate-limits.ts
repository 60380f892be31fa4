// Firestore side of the retry limits: read both counters and record the retry in one
// transaction (isolated on real Firestore, so concurrent clicks cannot both pass). The embedded
// emulator does not isolate transactions; the retry's own create()-claimed key is what keeps
// concurrent clicks to one provider call there.

import { createHash } from "node:crypto";
import { z } from "zod";
import { decideRetryAllowance } from "../visit/rate-limit.js";
import type { RetryAllowance, RetryLimits } from "../visit/rate-limit.js";
import { db } from "./db.js";
import { typedConverter } from "./typed-documents.js";

const RATE_LIMITS = "rateLimits";

/** `rateLimits/visit-{visitId}`: when the visit was last retried. */
type VisitRetryLimit = { lastRetryAt: Date; purgeAt: Date | null };

/** `rateLimits/user-{uid hash}`: the user's retries in (at least) the last hour. */
type UserRetryLimit = { retryTimes: Date[]; updatedAt: Date; purgeAt: Date | null };

// `purgeAt`: Firestore's TTL policy may delete the document after it (firestore.indexes.json);
// by then the window it keeps has long passed.
const purgeAt = z.date().nullish().transform((value) => value ?? null);
const VisitRetryLimitSchema = z.object({ lastRetryAt: z.date(), purgeAt });
const UserRetryLimitSchema = z.object({ retryTimes: z.array(z.date()), updatedAt: z.date(), purgeAt });

const DAY_MS = 86_400_000;

/** Compiles only when the schemas read exactly the models (not a narrower or wider type). */
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _schemasMatchModels: [
  Exactly<z.output<typeof VisitRetryLimitSchema>, VisitRetryLimit>,
  Exactly<z.output<typeof UserRetryLimitSchema>, UserRetryLimit>,
] = [true, true];

const visitLimitConverter = typedConverter(RATE_LIMITS, VisitRetryLimitSchema);
const userLimitConverter = typedConverter(RATE_LIMITS, UserRetryLimitSchema);

function visitLimitRef(visitId: string) {
  return db().collection(RATE_LIMITS).doc(`visit-${visitId}`).withConverter(visitLimitConverter);
}

// uids may hold characters a document id cannot; the hash also keeps uids out of ids.
function userLimitRef(uid: string) {
  return db()
    .collection(RATE_LIMITS)
    .doc(`user-${createHash("sha256").update(uid).digest("hex").slice(0, 40)}`)
    .withConverter(userLimitConverter);
}

export async function takeRetryAllowance(input: {
  visitId: string;
  uid: string;
  now: Date;
  limits: RetryLimits;
}): Promise<RetryAllowance> {
  const visitRef = visitLimitRef(input.visitId);
  const userRef = userLimitRef(input.uid);
  return db().runTransaction(async (tx) => {
    // Two gets rather than one getAll(): getAll() takes references of a single model type.
    const [visitDoc, userDoc] = await Promise.all([tx.get(visitRef), tx.get(userRef)]);
    const allowance = decideRetryAllowance(
      { lastVisitRetryAt: visitDoc.data()?.lastRetryAt ?? null, userRetryTimes: userDoc.data()?.retryTimes ?? [] },
      input.now,
      input.limits,
    );
    if (allowance.allowed) {
      const cooldownMs = input.limits.cooldownSeconds * 1000;
      tx.set(visitRef, { lastRetryAt: input.now, purgeAt: new Date(input.now.getTime() + cooldownMs + DAY_MS) });
      tx.set(userRef, { retryTimes: allowance.userRetryTimes, updatedAt: input.now, purgeAt: new Date(input.now.getTime() + DAY_MS) });
    }
    return allowance;
  });
}

/** Deletes a visit's retry window (visit deletion); 1 if there was one. */
export async function deleteVisitRateLimit(visitId: string): Promise<number> {
  const ref = visitLimitRef(visitId);
  if (!(await ref.get()).exists) return 0;
  await ref.delete();
  return 1;
}

/** Deletes a user's retry window (account deletion); 1 if there was one. */
export async function deleteUserRateLimit(uid: string): Promise<number> {
  const ref = userLimitRef(uid);
  if (!(await ref.get()).exists) return 0;
  await ref.delete();
  return 1;
}
