// What GET /health/ready reads besides the breakers: the checker's last run (one small document,
// written once per run) and the shape of the work queue, each answered by a bounded query — a
// count() aggregation or a single document — so the endpoint costs the same with a million visits
// as with ten.

import { Timestamp } from "firebase-admin/firestore";
import { z } from "zod";
import { VISIT_STATUSES, STATUS_TIME_FIELD, isTerminal } from "../visit/status.js";
import { COLLECTIONS, db } from "./db.js";
import { typedConverter } from "./typed-documents.js";

export type CheckerRun = {
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  /** Visits found due, and handled, in the run. */
  due: number;
  handled: number;
  /** How many checks ended which way (`still_processing`, `transcript_saved`, …). */
  outcomes: Record<string, number>;
  owner: string;
};

const CheckerRunSchema = z.object({
  startedAt: z.date(),
  finishedAt: z.date(),
  durationMs: z.number(),
  due: z.number(),
  handled: z.number(),
  outcomes: z.record(z.string(), z.number()),
  owner: z.string(),
}) satisfies z.ZodType<CheckerRun, unknown>;

const checkerRunRef = () =>
  db().collection(COLLECTIONS.operations).doc("checker").withConverter(typedConverter<CheckerRun>(COLLECTIONS.operations, CheckerRunSchema));

/** Overlapping runs each write their own; the document shows whichever finished last. */
export async function recordCheckerRun(run: CheckerRun): Promise<void> {
  await checkerRunRef().set(run);
}

export async function lastCheckerRun(): Promise<CheckerRun | null> {
  return (await checkerRunRef().get()).data() ?? null;
}

/** Visits whose next check is due now (single-field range: no composite index). */
export async function countDueVisits(now: Date): Promise<number> {
  const snapshot = await db().collection(COLLECTIONS.visits).where("nextCheckAt", "<=", now).count().get();
  return snapshot.data().count;
}

/** When the longest-waiting due visit became due, or null when none is. */
export async function oldestDueAt(now: Date): Promise<Date | null> {
  const snapshot = await db().collection(COLLECTIONS.visits).where("nextCheckAt", "<=", now).orderBy("nextCheckAt").limit(1).get();
  const value: unknown = snapshot.docs[0]?.get("nextCheckAt");
  return value instanceof Timestamp ? value.toDate() : null;
}

const NON_TERMINAL = VISIT_STATUSES.filter((status) => !isTerminal(status));

/**
 * Non-terminal visits that entered their status before `cutoff`, per status. One count() per
 * status on (status, {status}At): the composite indexes are in firestore.indexes.json.
 */
export async function countStuckVisits(cutoff: Date): Promise<Record<string, number>> {
  const counts = await Promise.all(
    NON_TERMINAL.map(async (status) => {
      const snapshot = await db()
        .collection(COLLECTIONS.visits)
        .where("status", "==", status)
        .where(STATUS_TIME_FIELD[status], "<=", cutoff)
        .count()
        .get();
      return [status, snapshot.data().count] as const;
    }),
  );
  return Object.fromEntries(counts);
}
