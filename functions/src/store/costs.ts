// The cost ledger of a visit. Every accounted fact — a paid call sent, what it used, its result
// discarded, the audio of a transcript job — is one entry claimed with create() under a key that
// names the fact (`cost-sent-{work}`, `cost-audio-{transcriptId}`, …), so a retry or a duplicate
// delivery that reports it again adds nothing. `visit.cost` is always rewritten as the sum of the
// entries, never incremented: the entry's create() and the new sum share one commit, and since the
// embedded Firestore does not isolate transactions, each writer then re-reads and rewrites until
// the visit's figure equals the ledger's (a stale sum written concurrently is repaired by the
// writer whose entry it missed).
//
// The entries live in the visit's claims subcollection (they are create()-claimed keys like the
// others): deleted with the visit, counted with its claims, and — having no `generation` — kept
// when a new recording replaces the old one, so the cost covers every recording of the visit.

import { AggregateField } from "firebase-admin/firestore";
import type { Transaction } from "firebase-admin/firestore";
import { z } from "zod";
import { COST_FACTS, addDelta, costOfTotal, sameCost } from "../visit/cost.js";
import type { CostDelta, CostFact } from "../visit/cost.js";
import type { LeaseStage, VisitCost } from "../visit/model.js";
import { COLLECTIONS, SUBCOLLECTIONS, db, isAlreadyExists, isNotFound } from "./db.js";
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

// The ledger's totals come from one aggregation query (Firestore bills it as one read per 1,000
// entries), not from reading every entry: a visit's ledger grows with every paid call.
const TOTALS = {
  audioSeconds: AggregateField.sum("audioSeconds"),
  promptTokens: AggregateField.sum("promptTokens"),
  completionTokens: AggregateField.sum("completionTokens"),
  paidCalls: AggregateField.sum("paidCalls"),
  discardedPaidCalls: AggregateField.sum("discardedPaidCalls"),
  estimatedMicroUsd: AggregateField.sum("estimatedMicroUsd"),
  entries: AggregateField.count(),
};

async function ledgerTotal(visitId: string, tx?: Transaction): Promise<{ total: CostDelta; entries: number }> {
  const query = ledger(visitId).where("stage", "==", "cost").aggregate(TOTALS);
  const { entries, ...total } = (tx ? await tx.get(query) : await query.get()).data();
  return { total, entries };
}

export type CostRecorded =
  /** The visit's cost with this fact in it (null: the visit is gone, nothing was recorded). */
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
  options: { now: Date; alsoWrite?: (tx: Transaction) => void },
): Promise<CostRecorded> {
  const entry: CostEntry = { stage: "cost", fact: key.fact, workStage: key.workStage, at: options.now, ...delta };
  let written: VisitCost | null = null;
  try {
    written = await db().runTransaction(async (tx) => {
      const { total, entries } = await ledgerTotal(visitId, tx);
      const visit = await tx.get(db().collection(COLLECTIONS.visits).doc(visitId));
      if (!visit.exists) return null;
      // The claim first: on the embedded Firestore a commit's writes apply one by one.
      options.alsoWrite?.(tx);
      tx.create(ledger(visitId).doc(entryId(key)), entry);
      const cost = costOfTotal(addDelta(total, delta), entries + 1);
      tx.update(visitRef(visitId), { cost });
      return cost;
    });
  } catch (error) {
    // Already recorded (a retry, a duplicate delivery), or the visit deleted meanwhile.
    if (!isAlreadyExists(error) && !isNotFound(error)) throw error;
  }
  // The sum this writer wrote is right unless the ledger holds more than it counted: a writer
  // that committed a sum missing another's entry finds that here and repairs it (the last writer
  // always checks after its own write, so the visit ends agreeing with its ledger).
  if (written !== null && sameCost(costOfLedger(await ledgerTotal(visitId)), written)) return { recorded: true, cost: written };
  return { recorded: written !== null, cost: await reconcileCost(visitId) };
}

function costOfLedger(ledgerTotals: { total: CostDelta; entries: number }): VisitCost | null {
  return costOfTotal(ledgerTotals.total, ledgerTotals.entries);
}

// Each round repairs a sum that a concurrent writer computed without the latest entries; rounds
// stop as soon as the visit agrees with its ledger (almost always the first).
const RECONCILE_ROUNDS = 5;

/** Makes `visit.cost` equal to the sum of the visit's ledger; returns it (null for a deleted visit). */
export async function reconcileCost(visitId: string): Promise<VisitCost | null> {
  for (let round = 0; round < RECONCILE_ROUNDS; round++) {
    const expected = costOfLedger(await ledgerTotal(visitId));
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
