// The chaos suite: many visits through the real handlers on the local runtime while the fake
// providers inject faults, failpoints crash or stall handlers between a provider call and the
// checkpoint that records it, storage deliveries are duplicated (some concurrently), checker runs
// overlap, retry clicks race, and stalled "zombie" invocations wake up after their lease was taken
// over. Time is virtual (the pipeline's clock is moved forward each round) so backoffs, leases,
// cooldowns and the breaker play out in seconds. Then the invariants are checked.

import { AsyncLocalStorage } from "node:async_hooks";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { FailpointAction, FailpointName } from "../../functions/src/runtime-hooks.js";
import { pipeline } from "../../functions/src/pipeline.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { db } from "../../functions/src/store/db.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { isTerminal } from "../../functions/src/visit/status.js";
import type { VisitStatus } from "../../functions/src/visit/status.js";
import { ASSEMBLYAI_ERROR_MESSAGES } from "../fakes/assemblyai.js";
import { seededRandom } from "../fakes/faults.js";
import type { FaultKind } from "../fakes/faults.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { readVisit } from "../support/visits.js";

export interface ChaosOptions {
  visits: number;
  faultRate: number;
  seed: number;
  /** Probability that a failpoint, when reached, crashes its invocation. */
  crashRate?: number;
  /** Probability that a failpoint stalls its invocation until after its lease is taken over. */
  stallRate?: number;
  /** Progress lines (a round summary); nothing identifying a patient. */
  onProgress?: (line: string) => void;
  maxRounds?: number;
}

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ChaosReport {
  options: Required<Omit<ChaosOptions, "onProgress">>;
  visits: number;
  terminal: number;
  byStatus: Record<string, number>;
  errorCodes: Record<string, number>;
  transcriptsLost: number;
  orphanedProviderJobs: number;
  maxSubmitsPerAttempt: number;
  submitsPerVisit: { max: number; mean: number };
  submitsWhileTranscriptExisted: number;
  openAiCallsPerVisit: { max: number; mean: number };
  summariesWrittenPerVisit: { max: number };
  duplicateActionItems: number;
  backwardsStatusMoves: number;
  deliveries: { uploads: number; duplicateUploads: number; checkerRuns: number; retryClicks: number; retriesAccepted: number };
  failpoints: { crashes: number; stalls: number; zombieWritesRejected: number };
  faultsInjected: { assemblyai: number; openai: number; byKind: Record<string, number> };
  rounds: number;
  drainSeconds: number;
  virtualMinutes: number;
  invariants: Invariant[];
  /** For visits that did not finish: where they stand (ids, statuses, keys — no content). */
  stuck: string[];
}

const STEP_SECONDS = 60;
// Long enough for every lease (the longest is summarization's) to expire before a zombie wakes.
const ZOMBIE_STALL_ROUNDS = 18;
const MAX_RETRY_CLICKS_PER_VISIT = 2;

const ASSEMBLYAI_FAULTS: FaultKind[] = [
  { kind: "rateLimit", retryAfterMs: 50 },
  { kind: "status", status: 500 },
  { kind: "status", status: 503 },
  { kind: "status", status: 504 },
  { kind: "status", status: 504, afterCommit: true },
  { kind: "hang", ms: 1_500 },
  { kind: "hang", ms: 1_500, afterCommit: true },
  { kind: "reset" },
  { kind: "reset", afterCommit: true },
  { kind: "malformed" },
  { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed },
  { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.unsupportedFormat },
  { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.noSpokenAudio },
  { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.audioTooShort },
  { kind: "transcriptError", error: "Internal server error, please try again later." },
];

const OPENAI_FAULTS: FaultKind[] = [
  { kind: "rateLimit", retryAfterMs: 50 },
  { kind: "status", status: 500 },
  { kind: "status", status: 503 },
  { kind: "hang", ms: 1_500 },
  { kind: "reset" },
  { kind: "malformed" },
  { kind: "insufficientQuota" },
  { kind: "refusal" },
  { kind: "length" },
  { kind: "contentFilter" },
];

interface InvocationControl {
  settle(how: "crashed" | "stalled"): void;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const settings = {
    visits: options.visits,
    faultRate: options.faultRate,
    seed: options.seed,
    crashRate: options.crashRate ?? 0.08,
    stallRate: options.stallRate ?? 0.05,
    maxRounds: options.maxRounds ?? 400,
  };
  const random = seededRandom(settings.seed);
  const progress = options.onProgress ?? (() => {});
  const events: { event: string; visitId: unknown; provider: unknown }[] = [];
  const runtime = await startLocalRuntime({
    assemblyai: { queuedMs: 20, processingMs: 40 },
    env: {
      POLL_INITIAL_DELAY_SECONDS: "5",
      POLL_MAX_DELAY_SECONDS: "60",
      ATTEMPT_BACKOFF_SECONDS: "30",
      SUMMARY_WATCHDOG_SECONDS: "300",
      ASSEMBLYAI_TIMEOUT_SECONDS: "1",
      OPENAI_TIMEOUT_SECONDS: "1",
      PROVIDER_RETRY_MIN_DELAY_MS: "20",
      CHECK_TIME_BUDGET_SECONDS: "60",
      CHECK_CONCURRENCY: "16",
      RETRY_COOLDOWN_SECONDS: "30",
    },
  });

  // Virtual time, failpoints and invocation tracking.
  let clockOffsetMs = 0;
  const invocations = new AsyncLocalStorage<InvocationControl>();
  const zombies: { releaseAtRound: number; release: () => void; done: Promise<unknown> }[] = [];
  const failpointCounts = { crashes: 0, stalls: 0 };
  let round = 0;
  installRuntimeHooks({
    onLog: ({ event, fields }) => events.push({ event, visitId: fields.visitId, provider: fields.provider }),
    clock: () => new Date(Date.now() + clockOffsetMs),
    failpoint: (name: FailpointName): FailpointAction => {
      const control = invocations.getStore();
      if (!control) return null;
      const roll = random();
      if (roll < settings.crashRate) {
        failpointCounts.crashes++;
        control.settle("crashed");
        return "crash";
      }
      if (roll < settings.crashRate + settings.stallRate) {
        failpointCounts.stalls++;
        let release = () => {};
        const stallUntil = new Promise<void>((resolve) => (release = resolve));
        zombies.push({ releaseAtRound: round + ZOMBIE_STALL_ROUNDS, release, done: stallUntil });
        control.settle("stalled");
        progress(`  failpoint ${name}: invocation stalled (zombie until round ${round + ZOMBIE_STALL_ROUNDS})`);
        return { stallUntil };
      }
      return null;
    },
  });

  /** Runs one handler invocation; a crashed or stalled one is abandoned, as the platform would. */
  const invoke = async (work: () => Promise<unknown>): Promise<"ok" | "error" | "crashed" | "stalled"> => {
    let settle: (how: "crashed" | "stalled") => void = () => {};
    const abandoned = new Promise<"crashed" | "stalled">((resolve) => (settle = resolve));
    const finished = invocations.run({ settle: (how) => settle(how) }, () =>
      work().then(
        () => "ok" as const,
        () => "error" as const,
      ),
    );
    return Promise.race([finished, abandoned]);
  };

  // Cloud Tasks deliveries go through the same tracking; an abandoned one counts as failed
  // (Cloud Tasks sees a timeout and redelivers later).
  runtime.tasks.register("summarizeVisit", {
    run: async (request) => {
      const outcome = await invoke(() =>
        runtime.functions.summarizeVisit.run(request as Parameters<typeof runtime.functions.summarizeVisit.run>[0]) as Promise<unknown>,
      );
      if (outcome !== "ok") throw new Error(`delivery ${outcome}`);
    },
    retryConfig: { maxAttempts: 5, minBackoffSeconds: 1, maxBackoffSeconds: 10 },
  });

  runtime.assemblyai.faults.setRandom({ rate: settings.faultRate, kinds: ASSEMBLYAI_FAULTS, seed: settings.seed + 1 });
  runtime.openai.faults.setRandom({ rate: settings.faultRate, kinds: OPENAI_FAULTS, seed: settings.seed + 2 });

  const startedMs = Date.now();
  const visits = Array.from({ length: settings.visits }, (_, i) => ({
    visitId: `chaos-${settings.seed}-${i}`,
    uid: `chaos-user-${i}`,
    fileName: i % 3 === 2 ? "visit-es.m4a" : "visit-en.m4a",
    generation: String(1_700_000_000_000_000 + i),
  }));
  const deliveries = { uploads: 0, duplicateUploads: 0, checkerRuns: 0, retryClicks: 0, retriesAccepted: 0 };
  const lateDuplicates: (typeof visits)[number][] = [];
  const retryClicks = new Map<string, number>();

  const deliverUpload = (visit: (typeof visits)[number]) => {
    deliveries.uploads++;
    return invoke(() => runtime.upload(visit));
  };

  // Uploads: every visit delivered once; some twice at the same time; some again later.
  for (let start = 0; start < visits.length; start += 25) {
    await Promise.all(
      visits.slice(start, start + 25).map(async (visit) => {
        const concurrent = random() < 0.3;
        if (random() < 0.2) lateDuplicates.push(visit);
        if (concurrent) deliveries.duplicateUploads++;
        await Promise.all(concurrent ? [deliverUpload(visit), deliverUpload(visit)] : [deliverUpload(visit)]);
      }),
    );
  }
  progress(`uploaded ${visits.length} visits (${deliveries.uploads} deliveries)`);

  const visitIds = visits.map((visit) => visit.visitId);
  for (round = 1; round <= settings.maxRounds; round++) {
    clockOffsetMs += STEP_SECONDS * 1000;
    // Overlapping checker runs, as Cloud Scheduler's at-least-once delivery allows.
    deliveries.checkerRuns += 2;
    await Promise.all([invoke(() => runtime.runChecker()), invoke(() => runtime.runChecker())]);
    await runtime.tasks.drain();

    if (round === 3) {
      deliveries.duplicateUploads += lateDuplicates.length;
      await Promise.all(lateDuplicates.map(deliverUpload));
    }
    for (const zombie of zombies.filter((z) => z.releaseAtRound <= round)) zombie.release();

    const states = await readStates(visitIds);
    await clickRetries(states);
    const open = states.filter((visit) => !isTerminal(visit.status)).length;
    const waitingZombies = zombies.filter((z) => z.releaseAtRound > round).length;
    if (round % 5 === 0 || open === 0) {
      progress(`round ${round}: ${visitIds.length - open}/${visitIds.length} terminal, ${waitingZombies} zombies waiting`);
    }
    if (open === 0 && waitingZombies === 0 && round > 3 && retriesSettled(states)) break;
  }
  // Let woken zombies finish their (rejected) writes before measuring.
  await Promise.race([Promise.all(zombies.map((z) => z.done)), sleep(2_000)]);
  await sleep(500);
  await runtime.tasks.drain();

  async function clickRetries(states: Visit[]): Promise<void> {
    const clickable = states.filter(
      (visit) =>
        (visit.status === "partial" || visit.status === "failed") &&
        visit.error?.retryable === true &&
        (retryClicks.get(visit.id) ?? 0) < MAX_RETRY_CLICKS_PER_VISIT,
    );
    await Promise.all(
      clickable.map(async (visit) => {
        retryClicks.set(visit.id, (retryClicks.get(visit.id) ?? 0) + 1);
        // Two concurrent clicks on the same button.
        deliveries.retryClicks += 2;
        const outcomes = await Promise.all(
          [0, 1].map(() => retryVisit(pipeline(), { visitId: visit.id, uid: visit.userId }, Date.now() + 50_000)),
        );
        deliveries.retriesAccepted += outcomes.filter((outcome) => outcome.kind === "accepted").length;
      }),
    );
  }

  function retriesSettled(states: Visit[]): boolean {
    return states.every(
      (visit) => !visit.error?.retryable || (retryClicks.get(visit.id) ?? 0) >= MAX_RETRY_CLICKS_PER_VISIT,
    );
  }

  const report = await measure(runtime, visitIds, {
    settings,
    deliveries,
    failpointCounts,
    rounds: Math.min(round, settings.maxRounds),
    drainSeconds: (Date.now() - startedMs) / 1000,
    virtualMinutes: clockOffsetMs / 60_000,
    zombieWritesRejected: events.filter((e) => e.event === "stale_write_rejected").length,
    openAiCallsByVisit: countOpenAiCalls(events),
    virtualNow: new Date(Date.now() + clockOffsetMs),
  });
  installRuntimeHooks({ clock: undefined, failpoint: undefined, onLog: undefined });
  await runtime.close();
  return report;
}

async function readStates(visitIds: string[]): Promise<Visit[]> {
  return Promise.all(visitIds.map((id) => readVisit(id)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function visitIdOfAudioUrl(audioUrl: string): string | undefined {
  return /\/visits\/([^/]+)\//.exec(decodeURIComponent(new URL(audioUrl).pathname))?.[1];
}

async function measure(
  runtime: LocalRuntime,
  visitIds: string[],
  context: {
    settings: ChaosReport["options"];
    deliveries: ChaosReport["deliveries"];
    failpointCounts: { crashes: number; stalls: number };
    rounds: number;
    drainSeconds: number;
    virtualMinutes: number;
    zombieWritesRejected: number;
    openAiCallsByVisit: Map<string, number>;
    virtualNow: Date;
  },
): Promise<ChaosReport> {
  const states = await readStates(visitIds);
  const byStatus: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  for (const visit of states) {
    byStatus[visit.status] = (byStatus[visit.status] ?? 0) + 1;
    if (visit.error) errorCodes[visit.error.code] = (errorCodes[visit.error.code] ?? 0) + 1;
  }

  // Provider-side truth: every job AssemblyAI created, grouped by visit and by signed URL
  // (each attempt signs its own URL; in-call retries of one attempt reuse it).
  const jobs = runtime.assemblyai.jobRecords();
  const jobsByVisit = groupBy(jobs, (job) => visitIdOfAudioUrl(job.audioUrl) ?? "?");
  const submitsPerUrl = [...groupBy(jobs, (job) => job.audioUrl).values()].map((group) => group.length);
  const artifacts = new Map(
    (await db().getAll(...visitIds.map((id) => db().doc(`visits/${id}/artifacts/transcript`)))).map((snap) => [
      snap.ref.parent.parent?.id ?? "",
      snap.data(),
    ]),
  );

  const nowMs = Date.now();
  let transcriptsLost = 0;
  let orphanedProviderJobs = 0;
  let submitsWhileTranscriptExisted = 0;
  for (const visitId of visitIds) {
    const visitJobs = (jobsByVisit.get(visitId) ?? []).sort((a, b) => a.createdAt - b.createdAt);
    const completed = visitJobs.filter((job) => job.outcome !== "error" && job.finishesAt <= nowMs);
    const savedId = artifacts.get(visitId)?.transcriptId as string | undefined;
    if (completed.length > 0 && !savedId) transcriptsLost++;
    orphanedProviderJobs += completed.filter((job) => job.id !== savedId).length;
    // A submit made after an earlier job of the same visit had already completed.
    submitsWhileTranscriptExisted += visitJobs.filter((job) =>
      completed.some((done) => done.id !== job.id && done.finishesAt <= job.createdAt),
    ).length;
  }

  const openAiCalls = visitIds.map((id) => context.openAiCallsByVisit.get(id) ?? 0);
  const summariesWritten = states.map((visit) => visit.history.filter((entry) => entry.event === "summary_saved").length);
  const duplicateActionItems = await countDuplicateActionItems(states);
  const backwardsStatusMoves = states.reduce((sum, visit) => sum + backwardsMoves(visit), 0);
  const submitsPerVisit = visitIds.map((id) => jobsByVisit.get(id)?.length ?? 0);

  const faultKinds: Record<string, number> = {};
  for (const fault of [...runtime.assemblyai.faults.injected, ...runtime.openai.faults.injected]) {
    faultKinds[fault.kind] = (faultKinds[fault.kind] ?? 0) + 1;
  }
  const terminal = states.filter((visit) => isTerminal(visit.status)).length;
  const maxSubmitsPerAttempt = Math.max(0, ...submitsPerUrl);

  const invariants: Invariant[] = [
    { name: "every visit terminal", ok: terminal === states.length, detail: `${terminal}/${states.length}` },
    { name: "no transcript lost", ok: transcriptsLost === 0, detail: `${transcriptsLost} visits with a completed job but no saved transcript` },
    {
      name: "never two submits for one (visit, generation, attempt)",
      ok: maxSubmitsPerAttempt <= 1,
      detail: `max ${maxSubmitsPerAttempt} jobs per signed URL`,
    },
    {
      name: "never a submit while a completed transcript existed",
      ok: submitsWhileTranscriptExisted === 0,
      detail: `${submitsWhileTranscriptExisted} submits`,
    },
    { name: "no duplicate action items", ok: duplicateActionItems === 0, detail: `${duplicateActionItems} duplicates` },
    {
      name: "statuses never move backwards except through an accepted retry",
      ok: backwardsStatusMoves === 0,
      detail: `${backwardsStatusMoves} backward moves`,
    },
  ];

  return {
    options: context.settings,
    visits: states.length,
    terminal,
    byStatus,
    errorCodes,
    transcriptsLost,
    orphanedProviderJobs,
    maxSubmitsPerAttempt,
    submitsPerVisit: { max: Math.max(0, ...submitsPerVisit), mean: mean(submitsPerVisit) },
    submitsWhileTranscriptExisted,
    openAiCallsPerVisit: { max: Math.max(0, ...openAiCalls), mean: mean(openAiCalls) },
    summariesWrittenPerVisit: { max: Math.max(0, ...summariesWritten) },
    duplicateActionItems,
    backwardsStatusMoves,
    deliveries: context.deliveries,
    failpoints: { ...context.failpointCounts, zombieWritesRejected: context.zombieWritesRejected },
    faultsInjected: {
      assemblyai: runtime.assemblyai.faults.injected.length,
      openai: runtime.openai.faults.injected.length,
      byKind: faultKinds,
    },
    rounds: context.rounds,
    drainSeconds: Math.round(context.drainSeconds * 10) / 10,
    virtualMinutes: context.virtualMinutes,
    invariants,
    stuck: await describeStuck(states.filter((visit) => !isTerminal(visit.status)), context.virtualNow),
  };
}

async function describeStuck(visits: Visit[], virtualNow: Date): Promise<string[]> {
  return Promise.all(
    visits.map(async (visit) => {
      const claims = await db().collection(`visits/${visit.id}/claims`).get();
      const keys = claims.docs
        .filter((doc) => !doc.id.startsWith("check-"))
        .map((doc) => `${doc.id}:${String(doc.get("outcome") ?? "open")}`)
        .join(" ");
      const due = visit.nextCheckAt ? Math.round((visit.nextCheckAt.getTime() - virtualNow.getTime()) / 1000) : null;
      return `${visit.id} ${visit.status} attempts=${JSON.stringify(visit.attempts)} lease=${visit.lease ? `${visit.lease.stage}#${visit.lease.attempt}` : "none"} dueIn=${due}s error=${visit.error?.code ?? "none"} claims=[${keys}]`;
    }),
  );
}

/** Items per visit beyond what its summary lists, plus items for visits without a summary. */
/** The order in which a visit normally progresses; used to tell a forward move from a backward one. */
const STATUS_RANK: Record<VisitStatus, number> = {
  pending: 0,
  transcribing: 1,
  summarizing: 2,
  partial: 3,
  completed: 3,
  failed: 3,
};

async function countDuplicateActionItems(states: Visit[]): Promise<number> {
  const snapshot = await db().collection("actions").get();
  const perVisit = groupBy(snapshot.docs, (doc) => String(doc.get("visitId")));
  let duplicates = 0;
  for (const visit of states) {
    const items = perVisit.get(visit.id) ?? [];
    const expected = visit.status === "completed" ? (visit.summary?.actionItems.length ?? 0) : 0;
    const descriptions = items.map((doc) => String(doc.get("description")));
    duplicates += Math.max(0, items.length - expected) + (descriptions.length - new Set(descriptions.map((d, i) => `${i}:${d}`)).size);
  }
  return duplicates;
}

/** A move to a lower rank that is not a retry or a fresh upload. */
function backwardsMoves(visit: Visit): number {
  let moves = 0;
  for (let i = 1; i < visit.history.length; i++) {
    const previous = visit.history[i - 1]!;
    const entry = visit.history[i]!;
    const allowed = entry.event === "retry_accepted" || entry.event === "upload_accepted";
    if (!allowed && STATUS_RANK[entry.status] < STATUS_RANK[previous.status]) moves++;
    // Leaving a terminal status is only possible through a retry or a new upload.
    if (!allowed && isTerminal(previous.status) && entry.status !== previous.status) moves++;
  }
  return moves;
}

/** OpenAI requests per visit: each summarization attempt makes one, plus one per in-call retry. */
function countOpenAiCalls(events: { event: string; visitId: unknown; provider: unknown }[]): Map<string, number> {
  const calls = new Map<string, number>();
  for (const e of events) {
    const isCall = e.event === "summarization_started" || (e.event === "provider_retry" && e.provider === "openai");
    if (isCall && typeof e.visitId === "string") calls.set(e.visitId, (calls.get(e.visitId) ?? 0) + 1);
  }
  return calls;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : Math.round((values.reduce((a, b) => a + b, 0) / values.length) * 100) / 100;
}
