// `npm run bench [-- --drain 10000] [--uploads 100] [--status-ms 150] [--submit-ms 300] [--pacing-only]`:
// every figure of the performance issue (15) in one run, printed and written with the machine and
// the command to docs/performance.md. Figures only: it asserts nothing (its exit code says only
// whether every part ran to the end).
//
// 1. Pipeline figures (skipped with --pacing-only): cold import of the built functions entry
//    (cold-import.ts); the upload trigger's overhead apart from AssemblyAI's latency and its memory
//    with a 10 MiB and a 1 GiB object (upload-bench.ts); completion → summary start with the webhook
//    and with polling (summary-start-bench.ts); Firestore reads and writes per visit (firestore-ops.ts).
// 2. The checker against AssemblyAI's request budget, the seed design side by side (pacing-bench.ts):
//    a backlog of 1,000 due visits, or `--drain 10000` for the 10,000-visit drain (minutes).
// Figures depend on the machine and on what else runs on it: each section records the load average.

import os from "node:os";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../functions/src/config.js";
import { TIMEOUTS } from "../../functions/src/pipeline.js";
import { captureLogs } from "../support/log-capture.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import { measureColdImport } from "./cold-import.js";
import type { ColdImportFigures } from "./cold-import.js";
import { measureVisitOps } from "./firestore-ops.js";
import type { VisitOps } from "./firestore-ops.js";
import { machineDescription, runPacingBench } from "./pacing-bench.js";
import { spread } from "./stats.js";
import { runSummaryStartBench } from "./summary-start-bench.js";
import type { SummaryStartFigures } from "./summary-start-bench.js";
import { runUploadBench } from "./upload-bench.js";
import type { UploadFigures } from "./upload-bench.js";
import { readCommandOptions } from "../support/command-options.js";

// The default backlog drains in one run; `--drain 10000` shows the 10,000-visit drain (minutes).
const DEFAULT_DRAIN = 1000;
const COLD_IMPORT_RUNS = 11;
const SUMMARY_START_VISITS = 20;

type Print = (line: string) => void;

const USAGE = "usage: npm run bench -- [--uploads <n ≥ 1>] [--drain <due visits ≥ 1>] [--status-ms <ms>] [--submit-ms <ms>] [--pacing-only]";

const OPTIONS = {
  uploads: { type: "string", default: "100" },
  drain: { type: "string", default: String(DEFAULT_DRAIN) },
  "status-ms": { type: "string", default: "150" },
  "submit-ms": { type: "string", default: "300" },
  "pacing-only": { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} as const;

async function main(): Promise<number> {
  const values = readCommandOptions(OPTIONS, USAGE);
  if (!values) return 2;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const uploads = Number(values.uploads);
  const pacing = {
    backlog: Number(values.drain),
    statusMs: Number(values["status-ms"]),
    submitMs: Number(values["submit-ms"]),
  };
  const counts = [uploads, pacing.backlog];
  if (!counts.every((n) => Number.isInteger(n) && n >= 1) || ![pacing.statusMs, pacing.submitMs].every((ms) => Number.isFinite(ms) && ms >= 0)) {
    console.error(USAGE);
    return 2;
  }
  const capture = captureLogs();
  const print: Print = (line) => capture.print(`${line}\n`);
  try {
    const pipelineComplete = values["pacing-only"] ? true : await pipelineSection({ uploads, submitMs: pacing.submitMs }, print);
    const pacingComplete = await pacingSection(pacing, print);
    return pipelineComplete && pacingComplete ? 0 : 1;
  } finally {
    capture.stop();
  }
}

/** Section 1: the pipeline's figures, printed and written to docs/performance.md. */
async function pipelineSection(input: { uploads: number; submitMs: number }, print: Print): Promise<boolean> {
  const loadBefore = loadAverage();
  print("Pipeline figures: cold import, upload trigger, completion → summary start, Firestore operations per visit …");
  // First, while nothing else of the bench runs: fresh processes timing their own import.
  const cold = measureColdImport(COLD_IMPORT_RUNS);
  const upload = await runUploadBench(input);
  const start = await runSummaryStartBench(SUMMARY_START_VISITS);
  const ops = await visitOps();
  const table = pipelineTable({ cold, upload, start, ops });
  print("");
  print(table);
  writePerformanceSection("pipeline", `${runHeader(loadBefore)}\n\n${table}\n`);
  print("  (written to docs/performance.md)");
  return start.webhookMs.length === start.visits && start.pollingMs.length === start.visits && upload.memory.every((m) => m.submitted === m.uploads);
}

async function visitOps(): Promise<VisitOps> {
  const runtime = await startLocalRuntime();
  try {
    return await measureVisitOps(runtime, { uid: "bench-ops-user", visitId: "bench-ops-visit" });
  } finally {
    await runtime.close();
  }
}

function pipelineTable(f: { cold: ColdImportFigures; upload: UploadFigures; start: SummaryStartFigures; ops: VisitOps }): string {
  const { cold, upload, start, ops } = f;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const rw = (o: { reads: number; writes: number }) => `${o.reads} / ${o.writes}`;
  const s = (values: number[]) => spread(values.map((ms) => ms / 1000), "s");
  const firstUse = Object.entries(cold.firstUseMs);
  const rows = [
    [
      "upload trigger overhead, AssemblyAI's latency excluded (p50 / p95 / max)",
      spread(upload.overheadMs),
      `${upload.uploads} uploads one at a time; the fake answers the submission in ${upload.submitMs} ms, subtracted from each`,
    ],
    ["upload trigger, end to end (p50 / p95 / max)", spread(upload.totalMs), "the same uploads"],
    ["first upload of an instance", `${upload.firstUploadMs.toFixed(1)} ms`, "the runtime's first: also loads the AssemblyAI adapter and opens the first connections"],
    ...upload.memory.map((m) => [
      `upload trigger peak memory, ${m.label} object`,
      `RSS +${mib(m.peakRssDeltaBytes)}, heap +${mib(m.peakHeapDeltaBytes)}`,
      `a stand-in object in the fake Cloud Storage that reports ${m.label}; largest rise over ${m.uploads} uploads (sampled every 2 ms); ` +
        `${m.submitted}/${m.uploads} accepted and submitted; ${m.mediaReads} reads of the object's bytes among ${m.storageRequests} requests to Cloud Storage`,
    ]),
    [
      "completion → summary start, webhook (p50 / p95 / max)",
      spread(start.webhookMs),
      `${start.webhookMs.length} of ${start.visits} visits; the fake posts the webhook as the job ends`,
    ],
    [
      "completion → summary start, polling (p50 / p95 / max)",
      s(start.pollingMs),
      `${start.pollingMs.length} of ${start.visits} visits; jobs of 45 s to 5 min; production poll schedule; ${start.pollingRuns} checker runs, one a minute`,
    ],
    ["Firestore reads / writes per visit: upload", rw(ops.upload), "the upload trigger"],
    ["… checks until summarizing", rw(ops.checks), `${ops.checkerRuns} checker run(s)`],
    ["… summarization", rw(ops.summarize), `${ops.actionItems} action items (one write each)`],
    ["… the visit in all (target ≤ 15 each)", rw(ops.total), "its own documents"],
    ["… shared housekeeping of those runs", rw(ops.shared), `${ops.shared.queries} queries; due-visit and deletion queries, budget blocks, run records: shared by all visits a run serves`],
    [
      `cold import: functions entry vs bare firebase-functions (median of ${cold.runs})`,
      `${cold.entryMs.toFixed(0)} ms vs ${cold.bareMs.toFixed(0)} ms: ${cold.ratio.toFixed(2)}× (target ≤ 1.5×)`,
      "functions/lib/index.js built from this source, each import timed in a fresh Node process",
    ],
    [
      `first use: ${firstUse.map(([name]) => name).join(" / ")}`,
      `${firstUse.map(([, ms]) => ms.toFixed(0)).join(" / ")} ms`,
      "imported after the entry in the same fresh process: what the first call that needs each pays",
    ],
  ];
  return [
    `Pipeline (upload trigger and checker timeouts ${TIMEOUTS.upload} s and ${TIMEOUTS.checker} s)`,
    "",
    "| figure | value | how |",
    "|---|---|---|",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}

/** Section 2: the pacing figures (test/bench/pacing-bench.ts), printed and written to docs/performance.md. */
async function pacingSection(input: { backlog: number; statusMs: number; submitMs: number }, print: Print): Promise<boolean> {
  const loadBefore = loadAverage();
  print("");
  const requestsPerMinute = loadConfig({}).assemblyAiRequestsPerMinute;
  const result = await runPacingBench({ ...input, requestsPerMinute, print });
  writePerformanceSection(`pacing-${input.backlog}`, `${runHeader(loadBefore)}\n\n${result.table}\n`);
  print(`  (written to docs/performance.md)`);
  return !Number.isNaN(result.ours.runsNeeded);
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
}

function runHeader(loadBefore: string): string {
  const args = process.argv.slice(2);
  const command = `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`;
  return `Command: \`${command}\`  \nMachine: ${machineDescription()}; load average (1, 5, 15 min) ${loadBefore} before, ${loadAverage()} after  \nRun: ${new Date().toISOString()}`;
}

const PERFORMANCE_DOC = fileURLToPath(new URL("../../docs/performance.md", import.meta.url));

/**
 * Replaces the figures of one section between their markers in docs/performance.md (adding the
 * section at the end the first time), leaving the rest of the file as it is.
 */
function writePerformanceSection(name: string, body: string): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const text = readFileSync(PERFORMANCE_DOC, "utf8");
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const section = `${start}\n${body}${end}`;
  const updated = from >= 0 && to > from ? `${text.slice(0, from)}${section}${text.slice(to + end.length)}` : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(PERFORMANCE_DOC, updated);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
