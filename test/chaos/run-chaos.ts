// `npm run chaos -- --visits 200 --fault-rate 0.25 [--seed 7] [--json]`: runs the chaos suite and
// prints its figures and invariants. Exit code 0 only if every invariant holds.

import { parseArgs } from "node:util";
import { captureLogs } from "../support/log-capture.js";
import { runChaos } from "./chaos.js";
import type { ChaosReport } from "./chaos.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      visits: { type: "string", default: "200" },
      "fault-rate": { type: "string", default: "0.25" },
      seed: { type: "string", default: "7" },
      json: { type: "boolean", default: false },
    },
  });
  const visits = Number(values.visits);
  const faultRate = Number(values["fault-rate"]);
  const seed = Number(values.seed);
  if (!Number.isInteger(visits) || visits < 1 || !(faultRate >= 0 && faultRate <= 1) || !Number.isInteger(seed)) {
    console.error("usage: npm run chaos -- --visits <n ≥ 1> --fault-rate <0..1> [--seed <int>] [--json]");
    return 2;
  }
  // The functions log every step as JSON; keep the terminal to progress and figures.
  const capture = captureLogs();
  let report: ChaosReport;
  try {
    report = await runChaos({
      visits,
      faultRate,
      seed,
      onProgress: values.json ? undefined : (line) => capture.print(`${line}\n`),
    });
  } finally {
    capture.stop();
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else printReport(report);
  return report.invariants.every((invariant) => invariant.ok) ? 0 : 1;
}

function printReport(report: ChaosReport): void {
  const o = report.options;
  const lines = [
    "",
    `Chaos run: ${report.visits} visits, fault rate ${o.faultRate}, seed ${o.seed}, crash ${o.crashRate}, stall ${o.stallRate}`,
    `  drained in ${report.drainSeconds} s (${report.rounds} checker rounds, ${report.virtualMinutes} virtual minutes)`,
    `  terminal: ${report.terminal}/${report.visits} — ${formatCounts(report.byStatus)}`,
    `  final error codes: ${formatCounts(report.errorCodes) || "none"}`,
    `  transcripts lost: ${report.transcriptsLost}; completed provider jobs not used: ${report.orphanedProviderJobs}`,
    `  AssemblyAI jobs: max per (visit, generation, attempt) ${report.maxSubmitsPerAttempt}; per visit max ${report.submitsPerVisit.max}, mean ${report.submitsPerVisit.mean}`,
    `  submits while a completed transcript existed: ${report.submitsWhileTranscriptExisted}`,
    `  OpenAI calls per visit: max ${report.openAiCallsPerVisit.max}, mean ${report.openAiCallsPerVisit.mean}; summaries written per visit: max ${report.summariesWrittenPerVisit.max}`,
    `  duplicate action items: ${report.duplicateActionItems}; backwards status moves: ${report.backwardsStatusMoves}`,
    `  deliveries: ${report.deliveries.uploads} uploads (${report.deliveries.duplicateUploads} duplicates), ${report.deliveries.checkerRuns} checker runs (overlapping pairs), ${report.deliveries.retryClicks} retry clicks (${report.deliveries.retriesAccepted} accepted)`,
    `  failpoints: ${report.failpoints.crashes} crashes, ${report.failpoints.stalls} stalls (zombies); stale writes rejected: ${report.failpoints.zombieWritesRejected}`,
    `  faults injected: AssemblyAI ${report.faultsInjected.assemblyai}, OpenAI ${report.faultsInjected.openai} — ${formatCounts(report.faultsInjected.byKind)}`,
    "",
    "Invariants:",
    ...report.invariants.map((i) => `  ${i.ok ? "PASS" : "FAIL"}  ${i.name} (${i.detail})`),
    ...(report.stuck.length > 0 ? ["", "Not finished:", ...report.stuck.map((line) => `  ${line}`)] : []),
  ];
  console.log(lines.join("\n"));
}

function formatCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([key, count]) => `${key} ${count}`)
    .join(", ");
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`chaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
