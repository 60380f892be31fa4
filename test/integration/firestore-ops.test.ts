// The Firestore operation counter the benchmark reports per visit: it must count what Firestore
// bills, through every client path (get, getAll, queries, transactions, batches), or its figures
// mean nothing.

import { describe, expect, it } from "vitest";
import { db } from "../../functions/src/store/db.js";
import { isSharedOperation, measureVisitOps } from "../bench/firestore-ops.js";
import type { FirestoreOp } from "../support/firestore-ops.js";
import { useLocalRuntime } from "../support/use-local-runtime.js";
import { newVisitId } from "../support/visits.js";

const runtime = useLocalRuntime();

describe("the Firestore operation counter", () => {
  it("counts reads and writes as Firestore bills them, through every client path", async () => {
    await db().doc("things/a").set({ n: 1 });
    await db().doc("things/b").set({ n: 2 });
    const seen: FirestoreOp[] = [];
    const counter = runtime().firestore.countOps((op) => seen.push(op));
    try {
      await db().doc("things/a").get(); // 1 read
      await db().getAll(db().doc("things/a"), db().doc("things/b"), db().doc("things/missing")); // 3 reads
      await db().collection("things").where("n", ">", 0).get(); // 2 results: 2 reads
      await db().collection("things").where("n", ">", 5).get(); // no result: 1 read
      await db().collection("things").where("n", ">", 0).count().get(); // an aggregation over 2: 1 read
      await db().runTransaction(async (tx) => {
        await tx.get(db().doc("things/a")); // 1 read
        tx.create(db().doc("things/c"), { n: 3 }); // 1 write
        tx.update(db().doc("things/a"), { n: 4 }); // 1 write
      });
      const batch = db().batch();
      batch.set(db().doc("things/d"), { n: 5 });
      batch.delete(db().doc("things/b"));
      await batch.commit(); // 2 writes
      expect(counter.snapshot()).toEqual({ reads: 9, writes: 4, queries: 3 });
      expect(seen.filter((op) => op.kind === "write").map((op) => op.path)).toEqual(["things/c", "things/a", "things/d", "things/b"]);
      counter.reset();
      expect(counter.snapshot()).toEqual({ reads: 0, writes: 0, queries: 0 });
      counter.pause();
      await db().doc("things/a").get();
      counter.resume();
      await db().doc("things/d").get();
      expect(counter.snapshot().reads).toBe(1);
    } finally {
      counter.stop();
    }
    // Stopped: nothing is counted any more.
    const after = runtime().firestore.countOps();
    after.stop();
    await db().doc("things/a").get();
    expect(after.snapshot().reads).toBe(0);
  });

  it("counts a run's housekeeping as shared and the visit's documents as its own", () => {
    expect(isSharedOperation({ kind: "query", path: ' {"from":"visits"}', count: 1 })).toBe(true);
    expect(isSharedOperation({ kind: "write", path: "pacing/assemblyai/budgetBlocks/1-checker-0", count: 1 })).toBe(true);
    expect(isSharedOperation({ kind: "write", path: "operations/checker", count: 1 })).toBe(true);
    expect(isSharedOperation({ kind: "query", path: 'visits/v1 {"from":"claims"}', count: 1 })).toBe(false);
    expect(isSharedOperation({ kind: "read", path: "visits/v1", count: 1 })).toBe(false);
    expect(isSharedOperation({ kind: "read", path: "breakers/assemblyai", count: 1 })).toBe(false);
  });

  it("measures a happy-path visit phase by phase, the phases adding up to the total", async () => {
    const ops = await measureVisitOps(runtime(), { uid: "user-ops", visitId: newVisitId() });
    for (const phase of [ops.upload, ops.checks, ops.summarize]) {
      expect(phase.reads).toBeGreaterThan(0);
      expect(phase.writes).toBeGreaterThan(0);
    }
    expect(ops.total.reads).toBe(ops.upload.reads + ops.checks.reads + ops.summarize.reads);
    expect(ops.total.writes).toBe(ops.upload.writes + ops.checks.writes + ops.summarize.writes);
    // A run's housekeeping is counted apart from the visit's own operations.
    expect(ops.shared.queries).toBeGreaterThan(0);
    // One write per action item, among the summarization's.
    expect(ops.summarize.writes).toBeGreaterThan(ops.actionItems);
  });
});
