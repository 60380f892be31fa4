// Firestore side of the retry limits: read both counters and record the retry in one
// transaction (isolated on real Firestore, so concurrent clicks cannot both pass). The embedded
// emulator does not isolate transactions; the retry's own create()-claimed key is what keeps
// concurrent clicks to one provider call there.

import { createHash } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import { decideRetryAllowance } from "../visit/rate-limit.js";
import type { RetryAllowance, RetryLimits } from "../visit/rate-limit.js";
import { db } from "./db.js";

const RATE_LIMITS = "rateLimits";

function visitLimitRef(visitId: string) {
  return db().collection(RATE_LIMITS).doc(`visit-${visitId}`);
}

// uids may hold characters a document id cannot; the hash also keeps uids out of ids.
function userLimitRef(uid: string) {
  return db().collection(RATE_LIMITS).doc(`user-${createHash("sha256").update(uid).digest("hex").slice(0, 40)}`);
}

function toDate(value: unknown): Date | null {
  return value instanceof Timestamp ? value.toDate() : null;
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
    const [visitDoc, userDoc] = await tx.getAll(visitRef, userRef);
    const userTimes = ((userDoc?.get("retryTimes") as unknown[] | undefined) ?? []).map(toDate).filter((d) => d !== null);
    const allowance = decideRetryAllowance(
      { lastVisitRetryAt: toDate(visitDoc?.get("lastRetryAt")), userRetryTimes: userTimes },
      input.now,
      input.limits,
    );
    if (allowance.allowed) {
      tx.set(visitRef, { lastRetryAt: input.now });
      tx.set(userRef, { retryTimes: allowance.userRetryTimes, updatedAt: input.now });
    }
    return allowance;
  });
}
