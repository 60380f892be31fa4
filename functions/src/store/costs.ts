// The cost ledger of a visit. Every accounted fact — a paid call sent, what it used, its result
// discarded, the audio of a transcript job — is one entry claimed with create() under a key that
// names the fact (`cost-sent-{work}`, `cost-audio-{transcriptId}`, …), so a retry or a duplicate
// delivery that reports it again adds nothing. The entry's create() and the visit's new cost share
// one commit: the cost the transaction read (the sum of every earlier entry, each added in its own
// commit) plus the entry. On Firestore that transaction is isolated; the embedded emulator does not
// isolate transactions, so each writer then re-reads the whole ledger and rewrites its sum until
// the visit's figure equals the ledger's (a stale sum written concurrently is repaired by the
// writer whose entry it missed). The ledger, not the figure, is the authority.
//
// The entries live in the visit's claims subcollection (they are create()-claimed keys like the
// others): deleted with the visit, counted with its claims, and — having no `generation` — kept
// when a new recording replaces the old one, so the cost covers every recording of the visit.

import type { Transaction } from "firebase-admin/firestore";
import { z } from "zod";
import { COST_FACTS, addToCost, sameCost, sumCost } from "../visit/cost.js";
import type { CostDelta, CostFact } from "../visit/cost.js";
import type { LeaseStage, VisitCost } from "../visit/model.js";
import { SUBCOLLECTIONS, db, isAlreadyExists, isNotFound } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { getVisit, visitRef } from "./visits.js";

/** A ledger entry as stored. `stage: "cost"` keeps it out of the work-claim queries. */
export type CostEntry = CostDelta & {
  stage: "cost";
  fact: CostFact;
  /** The stage whose paid work the entry accounts for. */
  workStage: LeaseStage;
  at: Date;
};

const CostEntrySchema = z.object({
  stage: z.literal("cost"),
  fact: z.enum(COST_FACTS),
  workStage: z.enum(["transcription", "summarization"]),
  at: z.date(),
  audioSeconds: z.number(),
  promptTokens: z.number(),
  completionTokens: z.number(),
  paidCalls: z.number(),
  discardedPaidCalls: z.number(),
  estimatedMicroUsd: z.number(),
}) satisfies z.ZodType<CostEntry, unknown>;

const costEntryConverter = typedConverter<CostEntry>("claims", CostEntrySchema);

function ledger(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.claims).withConverter(costEntryConverter);
}

/** The fact's key: what makes a repeated report of it a no-op. */
export type CostKey = { fact: CostFact; workStage: LeaseStage; of: string };

function entryId(key: CostKey): string {
  return `cost-${key.fact}-${key.of}`;
}

// Entries per visit are bounded by MAX_PAID_CALLS_PER_VISIT (a few facts per call) plus one per
// transcript job: the whole ledger is read at once.
async function readLedger(visitId: string, tx?: Transaction): Promise<CostEntry[]> {
  const query = ledger(visitId).where("stage", "==", "cost");
  const snapshot = tx ? await tx.get(query) : await query.get();
  return snapshot.docs.map((doc) => doc.data());
}

export type CostRecorded =
  /** The visit's cost with this fact in it (null: the visit is gone, nothing was recorded, or the check was deferred). */
  { recorded: boolean; cost: VisitCost | null };

/**
 * Records one fact in the visit's ledger and the visit's new cost, in one commit; `alsoWrite`
 * joins that commit (the claim's "sent" note, so a call is never paid without being counted).
 * A fact already recorded changes nothing. A deleted visit records nothing.
 */
export async function recordCost(
  visitId: string,
  key: CostKey,
  delta: CostDelta,
  options: {
    now: Date;
    alsoWrite?: (tx: Transaction) => void;
    /**
     * Leave the check against the whole ledger to the caller (reconcileCost once, when its unit of
     * work ends): an attempt that pays for many parts would otherwise read a growing ledger per call.
     */
    deferReconcile?: boolean;
  },
): Promise<CostRecorded> {
  const entry: CostEntry = { stage: "cost", fact: key.fact, workStage: key.workStage, at: options.now, ...delta };
  let recorded = false;
  try {
    recorded = await db().runTransaction(async (tx) => {
      // The visit's cost is its ledger's sum (each entry and the sum it makes share one commit), so
      // the new sum is the cost read here plus the entry: no need to read every entry again.
      const visit = (await tx.get(visitRef(visitId))).data();
      if (!visit) return false;
      // The claim first: on the embedded Firestore a commit's writes apply one by one.
      options.alsoWrite?.(tx);
      tx.create(ledger(visitId).doc(entryId(key)), entry);
      tx.update(visitRef(visitId), { cost: addToCost(visit.cost, delta) });
      return true;
    });
  } catch (error) {
    // Already recorded (a retry, a duplicate delivery), or the visit deleted meanwhile.
    if (!isAlreadyExists(error) && !isNotFound(error)) throw error;
  }
  if (options.deferReconcile) return { recorded, cost: null };
  return { recorded, cost: await reconcileCost(visitId) };
}

// Each round repairs a sum that a concurrent writer computed without the latest entries; rounds
// stop as soon as the visit agrees with its ledger (almost always the first).
const RECONCILE_ROUNDS = 5;

/** Makes `visit.cost` equal to the sum of the visit's ledger; returns it (null for a deleted visit). */
export async function reconcileCost(visitId: string): Promise<VisitCost | null> {
  for (let round = 0; round < RECONCILE_ROUNDS; round++) {
    const expected = sumCost(await readLedger(visitId));
    const agreed = await db()
      .runTransaction(async (tx) => {
        const current = (await tx.get(visitRef(visitId))).data();
        if (!current) return { cost: null };
        if (sameCost(current.cost, expected)) return { cost: expected };
        tx.update(visitRef(visitId), { cost: expected });
        return null;
      })
      // Deleted between the read and the commit: there is no cost to keep.
      .catch((error: unknown) => {
        if (isNotFound(error)) return { cost: null };
        throw error;
      });
    if (agreed) return agreed.cost;
  }
  return (await getVisit(visitId))?.cost ?? null;
}
