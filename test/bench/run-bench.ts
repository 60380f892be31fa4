// `npm run bench [-- --visits 500] [-- --drain 10000]`: speed and memory of the real handlers on the
// local runtime (embedded Firestore, fake providers answering at once), then the checker paced by
// AssemblyAI's request budget with realistic latencies (pacing-bench.ts). Prints figures; asserts nothing.
// What it measures: the upload trigger's latency, how fast the checker drains a backlog of due
// transcripts (checkpoint + summarization dispatch per visit), summarization throughput, and the
// process's memory. Figures depend on the machine; compare runs on the same one.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadConfig } from "../../functions/src/config.js";
import { machineDescription, runPacingBench } from "./pacing-bench.js";
import { captureLogs } from "../support/log-capture.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import { isSettled } from "../support/visits.js";

// The default backlog drains in one run; `--drain 10000` shows the 10,000-visit drain (minutes).
const DEFAULT_DRAIN = 1000;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      visits: { type: "string", default: "300" },
      drain: { type: "string", default: String(DEFAULT_DRAIN) },
      "status-ms": { type: "string", default: "150" },
      "submit-ms": { type: "string", default: "300" },
      "pacing-only": { type: "boolean", default: false },
    },
  });
  const visits = Number(values.visits);
  const pacing = {
    backlog: Number(values.drain),
    statusMs: Number(values["status-ms"]),
    submitMs: Number(values["submit-ms"]),
  };
  const counts = [visits, pacing.backlog];
  if (!counts.every((n) => Number.isInteger(n) && n >= 1) || ![pacing.statusMs, pacing.submitMs].every((ms) => Number.isFinite(ms) && ms >= 0)) {
    console.error("usage: npm run bench -- [--visits <n ≥ 1>] [--drain <due visits ≥ 1>] [--status-ms <ms>] [--submit-ms <ms>] [--pacing-only]");
    return 2;
  }
  const capture = captureLogs();
  const print = (line: string) => capture.print(`${line}\n`);
  if (values["pacing-only"]) {
    try {
      return await pacingSection(pacing, print);
    } finally {
      capture.stop();
    }
  }
  let closed = false;
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
    await runtime.close();
    closed = true;
    const pacingCode = await pacingSection(pacing, print);
    return settled ? pacingCode : 1;
  } finally {
    capture.stop();
    if (!closed) await runtime.close();
  }
}

/** The pacing figures (test/bench/pacing-bench.ts), printed and written to docs/performance.md. */
async function pacingSection(input: { backlog: number; statusMs: number; submitMs: number }, print: (line: string) => void): Promise<number> {
  print("");
  const requestsPerMinute = loadConfig({}).assemblyAiRequestsPerMinute;
  const result = await runPacingBench({ ...input, requestsPerMinute, print });
  const command = `npm run bench${process.argv.slice(2).length > 0 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  writePerformanceSection(input.backlog, `Command: \`${command}\`  \nMachine: ${machineDescription()}  \nRun: ${new Date().toISOString()}\n\n${result.table}\n`);
  print(`  (written to docs/performance.md)`);
  return Number.isNaN(result.ours.runsNeeded) ? 1 : 0;
}

const PERFORMANCE_DOC = fileURLToPath(new URL("../../docs/performance.md", import.meta.url));

/**
 * Replaces the figures of this backlog size between their markers in docs/performance.md (adding
 * the section at the end the first time), leaving the rest of the file as it is.
 */
function writePerformanceSection(backlog: number, body: string): void {
  const start = `<!-- bench:pacing-${backlog}:start -->`;
  const end = `<!-- bench:pacing-${backlog}:end -->`;
  const text = readFileSync(PERFORMANCE_DOC, "utf8");
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const section = `${start}\n${body}${end}`;
  const updated = from >= 0 && to > from ? `${text.slice(0, from)}${section}${text.slice(to + end.length)}` : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(PERFORMANCE_DOC, updated);
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
