// The checker against AssemblyAI's request budget, for `npm run bench`: the seed design (one
// sequential batch of 10 per run) and ours on the same backlog of due status checks, side by side;
// budget use and 429s counted at the fake (which enforces ASSEMBLYAI_REQUESTS_PER_MINUTE per
// minute, as AssemblyAI enforces its account limit); and the backlog drained over scheduled runs.
//
// What is real and what is simulated: every run is the real `checkPendingTranscripts` handler in
// real time, against the fake over HTTP with the given latencies and the embedded Firestore.
// Between runs the clock jumps to the start of the next minute (Cloud Scheduler's next run), so
// the idle part of each minute is not waited out.

import os from "node:os";
import { TIMEOUTS } from "../../functions/src/pipeline.js";
import { PACING, poolShapes, windowStartMs } from "../../functions/src/providers/request-pacing.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import { seedTranscribingVisits } from "../support/backlog.js";
import type { SeededVisit } from "../support/backlog.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";

export interface PacingBenchOptions {
  backlog: number;
  statusMs: number;
  submitMs: number;
  requestsPerMinute: number;
  print: (line: string) => void;
}

interface RunFigures {
  visits: number;
  requests: number;
  durationMs: number;
  peakConcurrency: number;
  /** Average time one visit's check took (provider request plus Firestore work). */
  meanVisitMs: number;
  /** Share of the run's time the process's event loop was busy (it runs the handlers, the embedded Firestore and the fakes). */
  busy: number;
  /** CPU time of the whole process per visit checked. */
  cpuMsPerVisit: number;
}

export interface PacingBenchResult {
  seed: { perRun: RunFigures; runsNeeded: number; drainMinutes: number };
  ours: {
    runs: RunFigures[];
    runsNeeded: number;
    longestRunMs: number;
    worstWaitMs: number;
    maxPerWindow: number;
    maxPerSlidingMinute: number;
    rateLimited: number;
    firstRunBudgetUse: number;
  };
  table: string;
}

// Seeded as visits polled a few times already (their next check is ten minutes out), so a drained
// visit is not due again while the rest of the backlog drains.
const SEEDED_CHECKS = 5;
const MAX_RUNS = 50;
const SEED_DESIGN = { perRun: 10, env: { CHECK_CONCURRENCY: "1", CHECK_BATCH_SIZE: "10" } };
const EMPTY_RUN: RunFigures = { visits: 0, requests: 0, durationMs: 0, peakConcurrency: 0, meanVisitMs: 0, busy: Number.NaN, cpuMsPerVisit: Number.NaN };

export async function runPacingBench(options: PacingBenchOptions): Promise<PacingBenchResult> {
  const clock = { offsetMs: 0 };
  const now = () => new Date(Date.now() + clock.offsetMs);
  const runtime = await startLocalRuntime({
    assemblyai: {
      queuedMs: 0,
      processingMs: 10 * 3_600_000,
      now: () => now().getTime(),
      latencyMs: { get: options.statusMs, submit: options.submitMs, delete: options.statusMs, list: options.submitMs },
      rateLimit: { requests: options.requestsPerMinute, windowMs: PACING.windowMs },
    },
    env: {
      // Production defaults for everything the checker reads (FAST_TUNABLES are for tests).
      POLL_INITIAL_DELAY_SECONDS: "30",
      POLL_MAX_DELAY_SECONDS: "600",
      CHECK_BATCH_SIZE: "50",
      CHECK_CONCURRENCY: "48",
      CHECK_TIME_BUDGET_SECONDS: "55",
      ASSEMBLYAI_REQUESTS_PER_MINUTE: String(options.requestsPerMinute),
    },
  });
  const reports: RunFigures[] = [];
  installRuntimeHooks({
    clock: now,
    onLog: (entry) => {
      if (entry.event !== "checker_run_finished") return;
      const fields = entry.fields;
      reports.push({
        visits: Number(fields.handled),
        requests: Number(fields.requests),
        durationMs: Number(fields.durationMs),
        peakConcurrency: Number(fields.peakConcurrency),
        meanVisitMs: Number(fields.meanVisitMs),
        busy: Number.NaN,
        cpuMsPerVisit: Number.NaN,
      });
    },
  });
  /** One scheduled run, with how busy the process was meanwhile (is the machine or the pace the limit?). */
  const runChecker = async () => {
    const loopBefore = performance.eventLoopUtilization();
    const cpuBefore = process.cpuUsage();
    await runtime.runChecker();
    const cpu = process.cpuUsage(cpuBefore);
    const report = reports.at(-1);
    if (report) {
      report.busy = performance.eventLoopUtilization(loopBefore).utilization;
      report.cpuMsPerVisit = (cpu.user + cpu.system) / 1000 / Math.max(1, report.visits);
    }
  };
  /** 0.2 s into the next minute: when the scheduler's next run starts. */
  const nextRunAt = () => windowStartMs(now().getTime()) + PACING.windowMs + 200;
  const setClock = (ms: number) => (clock.offsetMs = ms - Date.now());
  /**
   * A backlog due just before the next run; the clock is then set to that run's start (back by the
   * seeding time, if it took long: nothing but the backlog's due times depends on it).
   */
  const seedBeforeNextRun = async () => {
    const runAt = nextRunAt();
    const seeded = await seedBacklog(runtime, options.backlog, new Date(runAt));
    setClock(runAt);
    return seeded;
  };

  try {
    // 1. The seed design on the backlog: one sequential batch of 10 per run.
    await seedBeforeNextRun();
    const restoreEnv = await withEnv(runtime, { ...SEED_DESIGN.env, ASSEMBLYAI_REQUESTS_PER_MINUTE: String(seedDesignBudget()) });
    await runChecker();
    const seedRun = reports.pop() ?? EMPTY_RUN;
    await restoreEnv();
    const seedRunsNeeded = Math.ceil(options.backlog / SEED_DESIGN.perRun);

    // 2. Ours on the same backlog, fresh: scheduled runs until every visit was checked once.
    await runtime.reset();
    const seeded = await seedBeforeNextRun();
    const startedAtMs = now().getTime();
    const dueAt = new Map(seeded.map((visit) => [visit.transcriptId, visit.dueAt.getTime()]));
    const firstCheck = new Map<string, number>();
    reports.length = 0;
    let scanned = 0;
    for (let run = 0; run < MAX_RUNS && firstCheck.size < seeded.length; run++) {
      if (run > 0) setClock(nextRunAt());
      await runChecker();
      const requests = runtime.assemblyai.requests;
      for (; scanned < requests.length; scanned++) {
        const request = requests[scanned];
        const id = request?.method === "GET" ? /^\/v2\/transcript\/([^/?]+)$/.exec(request.path)?.[1] : undefined;
        if (request && id && dueAt.has(id) && !firstCheck.has(id)) firstCheck.set(id, request.at);
      }
    }
    const arrivals = runtime.assemblyai.requests.filter((request) => request.at >= startedAtMs).map((request) => request.at);
    const waits = [...firstCheck.entries()].map(([id, at]) => at - (dueAt.get(id) ?? at));
    const firstRun = reports[0];
    const ours = {
      runs: reports,
      runsNeeded: firstCheck.size === seeded.length ? reports.length : Number.NaN,
      longestRunMs: Math.max(...reports.map((run) => run.durationMs)),
      worstWaitMs: Math.max(...waits),
      maxPerWindow: Math.max(...runtime.assemblyai.requestsPerWindow(PACING.windowMs, startedAtMs).values()),
      maxPerSlidingMinute: maxInSlidingWindow(arrivals, PACING.windowMs),
      rateLimited: runtime.assemblyai.rateLimitedCount,
      firstRunBudgetUse: firstRun ? budgetUse(firstRun, options.requestsPerMinute) : 0,
    };
    const seed = { perRun: seedRun, runsNeeded: seedRunsNeeded, drainMinutes: seedRunsNeeded };
    const table = renderTable(options, seed, ours);
    options.print(table);
    return { seed, ours, table };
  } finally {
    installRuntimeHooks({ clock: undefined, onLog: undefined });
    await runtime.close();
  }
}

/** A budget whose checker share is exactly the seed design's 10 requests per run. */
function seedDesignBudget(): number {
  let requestsPerMinute = SEED_DESIGN.perRun;
  while (poolShapes(requestsPerMinute).checker.tokensPerWindow < SEED_DESIGN.perRun) requestsPerMinute += 1;
  return requestsPerMinute;
}

function seedBacklog(runtime: LocalRuntime, count: number, now: Date): Promise<SeededVisit[]> {
  // All due within the 10 s before the run, the first one oldest.
  return seedTranscribingVisits(runtime, {
    count,
    prefix: "backlog",
    dueAt: (i) => new Date(now.getTime() - 10_000 + Math.floor((i * 9_000) / count)),
    now,
    checks: SEEDED_CHECKS,
  });
}

async function withEnv(runtime: LocalRuntime, env: Record<string, string>): Promise<() => Promise<void>> {
  const before = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  await runtime.setEnv(env);
  return () => runtime.setEnv(before);
}

/** Requests per second during the run, as a share of the budget's per-second rate. */
function budgetUse(run: RunFigures, requestsPerMinute: number): number {
  return run.requests / (run.durationMs / 1000) / (requestsPerMinute / 60);
}

function maxInSlidingWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] ?? 0) - (sorted[start] ?? 0) >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

function renderTable(options: PacingBenchOptions, seed: PacingBenchResult["seed"], ours: PacingBenchResult["ours"]): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
  const first = ours.runs[0] ?? { ...EMPTY_RUN, durationMs: 1 };
  const oursPerRun = first.visits;
  const rows = [
    ["visits advanced by one run", String(seed.perRun.visits), String(oursPerRun), `${(oursPerRun / Math.max(1, seed.perRun.visits)).toFixed(0)}×`],
    [
      "visits/s during a run",
      (seed.perRun.visits / (seed.perRun.durationMs / 1000)).toFixed(1),
      (first.visits / (first.durationMs / 1000)).toFixed(1),
      `${(first.visits / (first.durationMs / 1000) / (seed.perRun.visits / (seed.perRun.durationMs / 1000))).toFixed(1)}×`,
    ],
    [
      `runs (minutes) to drain ${options.backlog} due visits`,
      String(seed.runsNeeded),
      String(ours.runsNeeded),
      `${(seed.runsNeeded / ours.runsNeeded).toFixed(0)}× sooner`,
    ],
    [
      `budget use of one run (% of ${options.requestsPerMinute}/min)`,
      pct(budgetUse(seed.perRun, options.requestsPerMinute)),
      pct(ours.firstRunBudgetUse),
      "",
    ],
    ["peak concurrency", String(seed.perRun.peakConcurrency), String(Math.max(...ours.runs.map((run) => run.peakConcurrency))), ""],
    ["mean time of one visit's check", `${seed.perRun.meanVisitMs.toFixed(0)} ms`, `${first.meanVisitMs.toFixed(0)} ms`, ""],
    ["process busy during the run (event loop)", pct(seed.perRun.busy), pct(first.busy), ""],
    ["process CPU per visit checked", `${seed.perRun.cpuMsPerVisit.toFixed(1)} ms`, `${first.cpuMsPerVisit.toFixed(1)} ms`, ""],
    ["most requests in one budget minute (fixed window)", "", `${ours.maxPerWindow} of ${options.requestsPerMinute}`, ""],
    ["most requests in any 60 s (sliding)", "", String(ours.maxPerSlidingMinute), ""],
    ["429s from the fake", "", String(ours.rateLimited), ""],
    ["longest run vs its timeout", s(seed.perRun.durationMs), `${s(ours.longestRunMs)} of ${TIMEOUTS.checker} s (${pct(ours.longestRunMs / (TIMEOUTS.checker * 1000))})`, ""],
    ["worst wait past due time", `${seed.runsNeeded - 1} min (by design)`, s(ours.worstWaitMs), ""],
  ];
  const lines = [
    `Pacing: a backlog of ${options.backlog} due status checks; AssemblyAI status ${options.statusMs} ms, submit ${options.submitMs} ms; ` +
      `ASSEMBLYAI_REQUESTS_PER_MINUTE ${options.requestsPerMinute}`,
    "",
    "| figure | seed design (sequential, 10 per run) | ours | ratio |",
    "|---|---|---|---|",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
    "",
    "Our runs: " +
      ours.runs
        .map((run, i) => `#${i + 1} ${run.visits} visits, ${run.requests} requests, ${s(run.durationMs)}, peak ${run.peakConcurrency}, ${run.meanVisitMs.toFixed(0)} ms/visit, busy ${pct(run.busy)}`)
        .join("; "),
  ];
  return lines.join("\n");
}

/** The machine, without its load (which the caller records before and after what it measured). */
export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform}/${process.arch}, Node ${process.version}`;
}
