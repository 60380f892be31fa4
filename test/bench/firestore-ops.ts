// Firestore reads and writes one happy-path visit costs, counted inside the embedded Firestore
// (test/support/firestore-ops.ts): the upload trigger, the checker runs until the visit is
// summarizing (less what the same number of runs costs with nothing due: the housekeeping
// queries every run makes), and the summarization task. Used by `npm run bench`.

import type { FirestoreOps } from "../support/firestore-ops.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { readVisit } from "../support/visits.js";

export interface VisitOps {
  upload: FirestoreOps;
  checks: FirestoreOps;
  summarize: FirestoreOps;
  total: FirestoreOps;
  checkerRuns: number;
  /** What one checker run costs with nothing due (not counted in `checks`). */
  perRunOverhead: FirestoreOps;
  /** Action items the summary had: one write each, so a bigger summary costs more writes. */
  actionItems: number;
}

const MAX_CHECKER_RUNS = 20;

export async function measureVisitOps(runtime: LocalRuntime, visit: { uid: string; visitId: string }): Promise<VisitOps> {
  const counter = runtime.firestore.countOps();
  try {
    await runtime.runChecker();
    const perRunOverhead = counter.snapshot();
    counter.reset();

    runtime.tasks.pause();
    await runtime.upload({ uid: visit.uid, visitId: visit.visitId, fileName: "visit-en.m4a" });
    const upload = counter.snapshot();
    counter.reset();

    let checkerRuns = 0;
    let checks = zero();
    while (checkerRuns < MAX_CHECKER_RUNS) {
      await runtime.runChecker();
      checkerRuns++;
      checks = sum(checks, less(counter.snapshot(), perRunOverhead));
      counter.reset();
      const status = (await readVisit(visit.visitId)).status;
      counter.reset();
      if (status !== "transcribing") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    runtime.tasks.resume();
    await runtime.tasks.drain();
    const summarize = counter.snapshot();
    const settled = await readVisit(visit.visitId);
    if (settled.status !== "completed") throw new Error(`the measured visit ended ${settled.status}, not completed`);
    const total = sum(upload, checks, summarize);
    return { upload, checks, summarize, total, checkerRuns, perRunOverhead, actionItems: settled.actionItemCount };
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

function less(a: FirestoreOps, b: FirestoreOps): FirestoreOps {
  return { reads: a.reads - b.reads, writes: a.writes - b.writes, queries: a.queries - b.queries };
}
