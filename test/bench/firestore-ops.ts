// Firestore reads and writes one happy-path visit costs, counted inside the embedded Firestore
// (test/support/firestore-ops.ts): the upload trigger, the checker runs until the visit is
// summarizing, and the summarization task. Used by `npm run bench`.
//
// Every operation is attributed by the document it touched. A checker run's housekeeping — its
// queries over top-level collections (due visits, deletion sweeps, account deletions), the request
// budget's blocks and pause (`pacing/…`) and the run record (`operations/…`) — is shared by all
// the visits a run serves, so it is counted apart (`shared`); everything else a phase touched is
// the visit's own. Subtracting an empty run's cost instead does not work: a run's housekeeping
// varies with the minute (budget blocks already taken, a cached pause).

import type { FirestoreOp, FirestoreOps } from "../support/firestore-ops.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { readVisit } from "../support/visits.js";

export interface VisitOps {
  upload: FirestoreOps;
  checks: FirestoreOps;
  summarize: FirestoreOps;
  /** The visit's own operations, all phases. */
  total: FirestoreOps;
  checkerRuns: number;
  /** Housekeeping of the runs and callers in those phases, shared by every visit they serve. */
  shared: FirestoreOps;
  /** Action items the summary had: one write each, so a bigger summary costs more writes. */
  actionItems: number;
}

const MAX_CHECKER_RUNS = 20;

/** Whether an operation is housekeeping shared by every visit a run or an instance serves. */
export function isSharedOperation(op: FirestoreOp): boolean {
  if (op.kind === "query") return op.path.startsWith(" ");
  return op.path.startsWith("pacing/") || op.path.startsWith("operations/");
}

export async function measureVisitOps(runtime: LocalRuntime, visit: { uid: string; visitId: string }): Promise<VisitOps> {
  let own = zero();
  let shared = zero();
  const counter = runtime.firestore.countOps((op) => {
    const add = { reads: op.kind === "write" ? 0 : op.count, writes: op.kind === "write" ? 1 : 0, queries: op.kind === "query" ? 1 : 0 };
    if (isSharedOperation(op)) shared = sum(shared, add);
    else own = sum(own, add);
  });
  const phase = (): FirestoreOps => {
    const taken = own;
    own = zero();
    return taken;
  };
  try {
    runtime.tasks.pause();
    await runtime.upload({ uid: visit.uid, visitId: visit.visitId, fileName: "visit-en.m4a" });
    const upload = phase();

    let checkerRuns = 0;
    let checks = zero();
    while (checkerRuns < MAX_CHECKER_RUNS) {
      await runtime.runChecker();
      checkerRuns++;
      checks = sum(checks, phase());
      counter.pause();
      const status = (await readVisit(visit.visitId)).status;
      counter.resume();
      if (status !== "transcribing") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    runtime.tasks.resume();
    await runtime.tasks.drain();
    const summarize = phase();
    counter.stop();
    const settled = await readVisit(visit.visitId);
    if (settled.status !== "completed") throw new Error(`the measured visit ended ${settled.status}, not completed`);
    return { upload, checks, summarize, total: sum(upload, checks, summarize), checkerRuns, shared, actionItems: settled.actionItemCount };
  } finally {
    counter.stop();
    runtime.tasks.resume();
  }
}

function zero(): FirestoreOps {
  return { reads: 0, writes: 0, queries: 0 };
}

function sum(...all: FirestoreOps[]): FirestoreOps {
  return all.reduce((a, b) => ({ reads: a.reads + b.reads, writes: a.writes + b.writes, queries: a.queries + b.queries }), zero());
}
