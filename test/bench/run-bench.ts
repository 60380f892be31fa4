// `npm run bench [-- --visits 500]`: speed and memory of the real handlers on the local runtime
// (embedded Firestore, fake providers answering at once). Prints figures; asserts nothing.
// What it measures: the upload trigger's latency, how fast the checker drains a backlog of due
// transcripts (checkpoint + summarization dispatch per visit), summarization throughput, and the
// process's memory. Figures depend on the machine; compare runs on the same one.

import { parseArgs } from "node:util";
import { captureLogs } from "../support/log-capture.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import { isSettled } from "../support/visits.js";

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { visits: { type: "string", default: "300" } } });
  const visits = Number(values.visits);
  if (!Number.isInteger(visits) || visits < 1) {
    console.error("usage: npm run bench -- [--visits <n ≥ 1>]");
    return 2;
  }
  const capture = captureLogs();
  const print = (line: string) => capture.print(`${line}\n`);
  const runtime = await startLocalRuntime({
    assemblyai: { queuedMs: 0, processingMs: 0 },
    env: { CHECK_BATCH_SIZE: "50", CHECK_CONCURRENCY: "8", CHECK_TIME_BUDGET_SECONDS: "45" },
  });
  try {
    const memoryBefore = process.memoryUsage();
    let peakRss = memoryBefore.rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const ids = Array.from({ length: visits }, (_, i) => `bench-${i}`);

    // 1. Upload trigger: validate, record, claim, sign, submit — one event at a time.
    runtime.tasks.pause();
    const uploadMs: number[] = [];
    for (const visitId of ids) {
      const started = performance.now();
      await runtime.upload({ uid: `bench-user-${visitId}`, visitId });
      uploadMs.push(performance.now() - started);
    }

    // 2. Checker: drain the backlog of transcripts that are all ready.
    const checkerStarted = performance.now();
    let checkerRuns = 0;
    while (!(await allSummarizing(ids)) && checkerRuns < 1_000) {
      await runtime.runChecker();
      checkerRuns++;
    }
    const checkerMs = performance.now() - checkerStarted;

    // 3. Summarization: the queued tasks, delivered as fast as they come.
    const summarizeStarted = performance.now();
    runtime.tasks.resume();
    await runtime.tasks.drain();
    const summarizeMs = performance.now() - summarizeStarted;
    clearInterval(sampler);
    const settled = await isSettled(ids);
    const memoryAfter = process.memoryUsage();

    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
    print(`Benchmark: ${visits} visits on the local runtime (Node ${process.version}, ${process.platform}/${process.arch})`);
    print(`  upload trigger latency: p50 ${pct(uploadMs, 50)} ms, p95 ${pct(uploadMs, 95)} ms, max ${pct(uploadMs, 100)} ms`);
    print(
      `  checker: ${visits} ready transcripts checkpointed and dispatched in ${(checkerMs / 1000).toFixed(1)} s ` +
        `over ${checkerRuns} run(s) — ${(visits / (checkerMs / 1000)).toFixed(0)} visits/s (batch 50, concurrency 8)`,
    );
    print(`  summarization: ${visits} tasks in ${(summarizeMs / 1000).toFixed(1)} s — ${(visits / (summarizeMs / 1000)).toFixed(0)} visits/s`);
    print(`  memory: RSS ${mb(memoryBefore.rss)} → peak ${mb(peakRss)}; heap used ${mb(memoryBefore.heapUsed)} → ${mb(memoryAfter.heapUsed)}`);
    print(`  all visits completed: ${settled ? "yes" : "NO"}`);
    return settled ? 0 : 1;
  } finally {
    capture.stop();
    await runtime.close();
  }
}

async function allSummarizing(ids: string[]): Promise<boolean> {
  const { db } = await import("../../functions/src/store/db.js");
  const snapshots = await db().getAll(...ids.map((id) => db().doc(`visits/${id}`)));
  return snapshots.every((snapshot) => snapshot.get("status") !== "transcribing" && snapshot.get("status") !== "pending");
}

function pct(values: number[], percentile: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((percentile / 100) * sorted.length) - 1);
  return (sorted[Math.max(0, index)] ?? 0).toFixed(1);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
