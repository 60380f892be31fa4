// Completion → summary start, for `npm run bench`: how long after AssemblyAI finishes a job the
// visit's summarization starts (its `summarization_started` event), with the webhook fast path and
// with polling alone. The real handlers on the local runtime throughout.
//
// Webhook: real time. Each job ends a set time after its upload; at that moment the fake AssemblyAI
// posts the webhook to the real `api` function served over HTTP (as AssemblyAI does at a job's end;
// its own delivery delay is not modelled), which checks the visit, saves the transcript and
// enqueues the summarization, which the local Cloud Tasks dispatches at once.
//
// Polling: the production poll schedule (first check 30 s after the submission, doubling up to
// 600 s, ±10 % jitter) and a checker run at the start of every minute, on a clock that jumps from
// one scheduled run to the next (the minutes in between are not waited out; the handlers run in
// real time). Jobs take 45 s to 5 min, spread evenly: where a job ends within the poll schedule
// decides its wait.

import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import { PACING, windowStartMs } from "../../functions/src/providers/request-pacing.js";
import { serveHttpFunction } from "../support/http-function.js";
import { sleep, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";

export interface SummaryStartFigures {
  visits: number;
  webhookMs: number[];
  pollingMs: number[];
  pollingRuns: number;
}

// Webhook jobs end 0.5 to 2.4 s after their upload (real time).
const webhookJobMs = (i: number) => 500 + 100 * i;
// Polled jobs take 45 s to 5 min (simulated time).
const pollingJobMs = (i: number, count: number) => 45_000 + Math.round((i * 255_000) / Math.max(1, count - 1));
const MAX_POLLING_RUNS = 30;
const WEBHOOK_WAIT_MS = 30_000;

export async function runSummaryStartBench(visits: number): Promise<SummaryStartFigures> {
  const clock = { offsetMs: 0 };
  const now = () => new Date(Date.now() + clock.offsetMs);
  const runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, now: () => now().getTime() } });
  const api = await serveHttpFunction(runtime.functions.api);
  const started = new Map<string, number>();
  installRuntimeHooks({
    clock: now,
    onLog: ({ event, fields }) => {
      if (event === "summarization_started" && typeof fields.visitId === "string" && !started.has(fields.visitId)) started.set(fields.visitId, now().getTime());
    },
  });
  try {
    // 1. Webhook on: each job announces its end; the checker never runs.
    await runtime.setEnv({ WEBHOOK_BASE_URL: api.baseUrl });
    const announced: Promise<unknown>[] = [];
    const webhookEnds = new Map<string, number>();
    for (let i = 0; i < visits; i++) {
      const visitId = `start-webhook-${i}`;
      runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: webhookJobMs(i) });
      await runtime.upload({ uid: `${visitId}-user`, visitId });
      const finishesAt = jobEnd(runtime, visitId);
      webhookEnds.set(visitId, finishesAt);
      announced.push(sleep(Math.max(0, finishesAt - now().getTime())).then(() => runtime.assemblyai.deliverWebhooks()));
    }
    await Promise.all(announced);
    await waitFor(() => [...webhookEnds.keys()].every((id) => started.has(id)), WEBHOOK_WAIT_MS);
    const webhookMs = latencies(webhookEnds, started);

    // 2. Webhook off: the checker polls on the production schedule, one run a minute.
    await runtime.reset();
    await runtime.setEnv({ WEBHOOK_BASE_URL: undefined, POLL_INITIAL_DELAY_SECONDS: "30", POLL_MAX_DELAY_SECONDS: "600" });
    const setClock = (ms: number) => (clock.offsetMs = ms - Date.now());
    const nextRunAt = () => windowStartMs(now().getTime()) + PACING.windowMs + 200;
    setClock(nextRunAt() + 5_000);
    const pollingEnds = new Map<string, number>();
    for (let i = 0; i < visits; i++) {
      const visitId = `start-polling-${i}`;
      runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: pollingJobMs(i, visits) });
      await runtime.upload({ uid: `${visitId}-user`, visitId });
      pollingEnds.set(visitId, jobEnd(runtime, visitId));
    }
    let pollingRuns = 0;
    while (![...pollingEnds.keys()].every((id) => started.has(id)) && pollingRuns < MAX_POLLING_RUNS) {
      setClock(nextRunAt());
      await runtime.runChecker();
      await runtime.tasks.drain();
      pollingRuns++;
    }
    return { visits, webhookMs, pollingMs: latencies(pollingEnds, started), pollingRuns };
  } finally {
    installRuntimeHooks({ clock: undefined, onLog: undefined });
    await api.close();
    await runtime.close();
  }
}

/** When the fake's job for the visit's recording ends (completed). */
function jobEnd(runtime: LocalRuntime, visitId: string): number {
  const job = runtime.assemblyai.jobRecords().find((record) => record.audioUrl.includes(`/visits/${visitId}/`));
  if (!job) throw new Error(`no AssemblyAI job for ${visitId} (its upload was not submitted)`);
  return job.finishesAt;
}

/** Summary start minus job end, for every visit whose summarization started (a missing one is left out, and shows in the count). */
function latencies(ends: Map<string, number>, started: Map<string, number>): number[] {
  return [...ends].flatMap(([visitId, endedAt]) => {
    const at = started.get(visitId);
    return at === undefined ? [] : [at - endedAt];
  });
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done() && Date.now() < until) await sleep(10);
}
