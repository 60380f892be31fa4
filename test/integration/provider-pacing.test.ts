// AssemblyAI's request budget across callers, through the real handlers (checker `.run`, upload
// trigger), the real assemblyai SDK against the fake (which counts what it receives), and block
// claims and the shared pause in the embedded Firestore. The pipeline's clock is held still inside
// one budget window (so what lands in a window is exact) and moved on explicitly; nothing here
// measures speed (that is `npm run bench`).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PACING, poolShapes, windowStartMs } from "../../functions/src/providers/request-pacing.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { readPause } from "../../functions/src/store/request-budget.js";
import { polledTranscriptIds, seedTranscribingVisits } from "../support/backlog.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";

const HOUR_MS = 3_600_000;
const TEST_START_MS = Date.now();
// Checked transcripts are not due again during a test: the fake keeps every job processing and
// the next check is an hour away.
const PACING_TUNABLES = { POLL_INITIAL_DELAY_SECONDS: "3600", POLL_MAX_DELAY_SECONDS: "3600", CHECK_TIME_BUDGET_SECONDS: "20" };

let runtime: LocalRuntime;
let clockMs: number;
const logged: LoggedEvent[] = [];

/**
 * The pipeline's clock: two seconds before the end of a budget window, `minutes` windows from the
 * first. A run spreads what is left of its share over what is left of the window, so this close to
 * its end a run spends the whole share at once; the clock standing still keeps it in the window.
 */
function setClock(minutes: number): Date {
  // Near the real time: signed audio URLs may not outlive the real clock by more than seven days.
  clockMs = windowStartMs(TEST_START_MS) + minutes * PACING.windowMs + PACING.windowMs - 2_000;
  return new Date(clockMs);
}

/** Submissions the fake received (its submitCount() also counts the seeded jobs). */
function submits(): number {
  return runtime.assemblyai.requests.filter((request) => request.method === "POST").length;
}

function checkerReports(): Record<string, unknown>[] {
  return logged.filter((entry) => entry.event === "checker_run_finished").map((entry) => entry.fields);
}

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 10 * HOUR_MS } });
  installRuntimeHooks({ clock: () => new Date(clockMs), onLog: (entry) => logged.push(entry) });
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined, onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: 10 * HOUR_MS });
  logged.length = 0;
  setClock(0);
});

describe("one budget shared by every caller", () => {
  it("two overlapping checker runs plus uploads stay within the per-minute budget, counted at the fake", async () => {
    const requestsPerMinute = 60;
    const shares = poolShapes(requestsPerMinute);
    // The runs end when the share is spent, however slow the machine: their time budget is long.
    await runtime.setEnv({
      ...PACING_TUNABLES,
      ASSEMBLYAI_REQUESTS_PER_MINUTE: String(requestsPerMinute),
      CHECK_CONCURRENCY: "8",
      CHECK_TIME_BUDGET_SECONDS: "90",
    });
    const now = setClock(0);
    // More due work than the minute allows: 100 status checks for a checker share of 54, 15 uploads for a share of 6.
    await seedTranscribingVisits(runtime, { count: 100, prefix: "due", dueAt: (i) => new Date(now.getTime() - 60_000 + i), now });
    const uploads = Array.from({ length: 15 }, (_, i) => ({ uid: `uploader-${i}`, visitId: newVisitId("upload") }));

    await Promise.all([runtime.runChecker(), runtime.runChecker(), ...uploads.map((upload) => runtime.upload(upload))]);

    const received = runtime.assemblyai.requests.length;
    const polls = polledTranscriptIds(runtime.assemblyai.requests).length;
    expect(received).toBeLessThanOrEqual(requestsPerMinute);
    expect(polls).toBeLessThanOrEqual(shares.checker.tokensPerWindow);
    expect(submits()).toBeLessThanOrEqual(shares.shared.tokensPerWindow);
    // The budget was used, not merely respected: each share was spent almost to the token.
    expect(polls).toBeGreaterThanOrEqual(shares.checker.tokensPerWindow - 8);
    expect(submits()).toBe(shares.shared.tokensPerWindow);
    // Both runs drew on the checker share (coordinated through claimed blocks, not one taking it all).
    const runs = checkerReports();
    expect(runs).toHaveLength(2);
    for (const run of runs) expect(run.requests).toBeGreaterThan(0);
    expect(runs.reduce((sum, run) => sum + Number(run.requests), 0)).toBe(polls);

    // Uploads that found the share spent wait for the next minute, pending, without a request.
    const visits = await Promise.all(uploads.map((upload) => readVisit(upload.visitId)));
    const deferred = visits.filter((visit) => visit.status === "pending");
    expect(deferred.length).toBe(uploads.length - submits());
    for (const visit of deferred) expect(visit.nextCheckAt?.getTime()).toBe(windowStartMs(now.getTime()) + PACING.windowMs);

    // The next minute brings a fresh budget, again never exceeded.
    const before = runtime.assemblyai.requests.length;
    setClock(1);
    await Promise.all([runtime.runChecker(), runtime.runChecker()]);
    const nextMinute = runtime.assemblyai.requests.length - before;
    expect(nextMinute).toBeGreaterThan(0);
    expect(nextMinute).toBeLessThanOrEqual(shares.checker.tokensPerWindow);
  });

  it("a 429 with Retry-After pauses every caller, across instances, until it has passed", async () => {
    await runtime.setEnv({ ...PACING_TUNABLES, ASSEMBLYAI_REQUESTS_PER_MINUTE: undefined, CHECK_CONCURRENCY: "1" });
    const now = setClock(0);
    await seedTranscribingVisits(runtime, { count: 20, prefix: "paused", dueAt: (i) => new Date(now.getTime() - 60_000 + i), now });
    runtime.assemblyai.faults.enqueue("get", { kind: "rateLimit", retryAfterSeconds: 120 });

    await runtime.runChecker();
    // The run stopped at the 429: one request, and the pause is shared in Firestore.
    expect(runtime.assemblyai.requests).toHaveLength(1);
    expect((await readPause("assemblyai"))?.getTime()).toBe(now.getTime() + 120_000);

    // Another instance (a fresh pipeline, which never saw the 429), another checker run and an upload: nothing is sent.
    await runtime.setEnv({});
    const upload = { uid: "paused-uploader", visitId: newVisitId("paused-upload") };
    await Promise.all([runtime.runChecker(), runtime.upload(upload)]);
    expect(runtime.assemblyai.requests).toHaveLength(1);
    const waiting = await readVisit(upload.visitId);
    expect(waiting.status).toBe("pending");
    expect(waiting.nextCheckAt?.getTime()).toBe(now.getTime() + 120_000);

    // Past the pause, work resumes (more slowly for a while: see the unit tests of the pace).
    clockMs = now.getTime() + 121_000;
    await runtime.runChecker();
    expect(runtime.assemblyai.requests.length).toBeGreaterThan(1);
    expect(submits()).toBe(1);
  });
});

describe("order and fairness", () => {
  it("checks the oldest due visits first when the budget allows only some", async () => {
    const requestsPerMinute = 20;
    await runtime.setEnv({ ...PACING_TUNABLES, ASSEMBLYAI_REQUESTS_PER_MINUTE: String(requestsPerMinute), CHECK_CONCURRENCY: "1", CHECK_BATCH_SIZE: "5" });
    const now = setClock(0);
    // Due times in a scrambled order of creation: visit i is due (i * 7 mod 30) seconds ago.
    const seeded = await seedTranscribingVisits(runtime, {
      count: 30,
      prefix: "order",
      dueAt: (i) => new Date(now.getTime() - 1_000 * (1 + ((i * 7) % 30))),
      now,
    });

    await runtime.runChecker();

    const checkerShare = poolShapes(requestsPerMinute).checker.tokensPerWindow;
    const oldestFirst = [...seeded].sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime()).map((visit) => visit.transcriptId);
    expect(polledTranscriptIds(runtime.assemblyai.requests)).toEqual(oldestFirst.slice(0, checkerShare));
  });

  it("under a constant inflow below capacity, no visit waits more than two runs past its due time", async () => {
    const requestsPerMinute = 10;
    const capacity = poolShapes(requestsPerMinute).checker.tokensPerWindow;
    await runtime.setEnv({ ...PACING_TUNABLES, ASSEMBLYAI_REQUESTS_PER_MINUTE: String(requestsPerMinute), CHECK_CONCURRENCY: "2" });
    const inflow = capacity - 3;
    const rounds = 12;
    const dueRound = new Map<string, number>();
    const checkedRound = new Map<string, number>();
    // A backlog larger than one run can take, then `inflow` new due visits before every run.
    const start = setClock(0);
    const backlog = await seedTranscribingVisits(runtime, { count: 2 * capacity, prefix: "backlog", dueAt: () => new Date(start.getTime() - 30_000), now: start });
    for (const visit of backlog) dueRound.set(visit.transcriptId, 0);
    for (let round = 0; round < rounds; round++) {
      const now = setClock(round);
      const arrivals = await seedTranscribingVisits(runtime, { count: inflow, prefix: `inflow-${round}`, dueAt: (i) => new Date(now.getTime() - 500 + i), now });
      for (const visit of arrivals) dueRound.set(visit.transcriptId, round);
      const waiting = dueRound.size - checkedRound.size;
      const before = runtime.assemblyai.requests.length;
      await runtime.runChecker();
      const polled = polledTranscriptIds(runtime.assemblyai.requests.slice(before));
      // Each run spends its whole share while work waits, and takes only what is due.
      expect(polled.length, `round ${round}`).toBe(Math.min(capacity, waiting));
      for (const id of polled) {
        expect(checkedRound.has(id), "a visit checked twice").toBe(false);
        checkedRound.set(id, round);
      }
    }

    // Nobody is left behind, and once the backlog is gone (capacity − inflow per run) nobody waits more than two runs.
    expect(checkedRound.size).toBe(dueRound.size);
    const drainRounds = Math.ceil((2 * capacity) / (capacity - inflow));
    const afterDrain = [...checkedRound.entries()].filter(([id]) => (dueRound.get(id) ?? 0) >= drainRounds);
    expect(afterDrain.length).toBeGreaterThan(0);
    for (const [id, round] of afterDrain) expect(round - (dueRound.get(id) ?? 0)).toBeLessThanOrEqual(2);
    // Oldest first across the whole run: no visit was checked in an earlier run than one due before it.
    const byDue = [...checkedRound.entries()].sort((a, b) => (dueRound.get(a[0]) ?? 0) - (dueRound.get(b[0]) ?? 0));
    for (let i = 1; i < byDue.length; i++) expect(byDue[i]![1]).toBeGreaterThanOrEqual(byDue[i - 1]![1]);
  });
});
