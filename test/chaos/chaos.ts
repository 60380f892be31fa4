// The chaos suite: many visits through the real handlers on the local runtime while the fake
// providers inject faults, failpoints crash or stall handlers between a provider call and the
// checkpoint that records it, storage deliveries are duplicated (some concurrently), checker runs
// overlap, retry clicks race, and stalled "zombie" invocations wake up after their lease was taken
// over. Users delete visits at random moments (also while a zombie holds one, sometimes with two
// concurrent requests) and upload new recordings into visits that ended `failed` (some delivered
// twice). With the webhook on (the default), the fake AssemblyAI announces ended jobs to the real
// `api` handler over HTTP while the checkers run: duplicated, late (so out of order), redelivered,
// and among them deliveries without the secret or with a wrong one. Time is virtual (the pipeline's clock is moved forward each round) so backoffs, leases,
// cooldowns, the breaker and the deletion sweeps play out in seconds. Then the invariants are
// checked against what Firestore, the fake Cloud Storage and the fake providers hold.

import { AsyncLocalStorage } from "node:async_hooks";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { FailpointAction, FailpointName } from "../../functions/src/runtime-hooks.js";
import { tunables } from "../../functions/src/config.js";
import { TIMEOUTS, pipeline } from "../../functions/src/pipeline.js";
import { deleteVisit } from "../../functions/src/stages/delete-visit.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { db } from "../../functions/src/store/db.js";
import { visitRef } from "../../functions/src/store/visits.js";
import { sameCost, sumCost } from "../../functions/src/visit/cost.js";
import { Timestamp } from "firebase-admin/firestore";
import type { DocumentSnapshot } from "firebase-admin/firestore";
import type { Visit, VisitFields } from "../../functions/src/visit/model.js";
import { PROCESSING_STATUSES, isTerminal } from "../../functions/src/visit/status.js";
import type { VisitStatus } from "../../functions/src/visit/status.js";
import { ASSEMBLYAI_ERROR_MESSAGES } from "../fakes/assemblyai.js";
import type { JobRecord, TranscriptOutcome } from "../fakes/assemblyai.js";
import { seededRandom } from "../fakes/faults.js";
import type { FaultKind } from "../fakes/faults.js";
import { loadVisitScript } from "../fakes/scripts.js";
import { serveHttpFunction } from "../support/http-function.js";
import type { ServedFunction } from "../support/http-function.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";

export interface ChaosOptions {
  visits: number;
  faultRate: number;
  seed: number;
  /** Probability that a failpoint, when reached, crashes its invocation. */
  crashRate?: number;
  /** Probability that a failpoint stalls its invocation until after its lease is taken over. */
  stallRate?: number;
  /** Share of visits the user deletes during the run, at random moments. */
  deleteRate?: number;
  /** Probability that a visit that ended `failed` gets a new recording (at most twice per visit). */
  reuploadRate?: number;
  /** Share of first recordings AssemblyAI cannot transcribe (every n-th visit; it fails, the user uploads a new one). */
  badRecordingRate?: number;
  /** Visits per user (users upload several visits at once, as a family or a busy patient does). */
  visitsPerUser?: number;
  /**
   * The per-user abuse limits (UPLOAD_QUOTA_PER_DAY, MAX_CONCURRENT_VISITS_PER_USER): their
   * production defaults unless given; false: limits too high to matter.
   */
  limits?: false | { uploadQuotaPerDay?: number; maxConcurrentVisitsPerUser?: number };
  /** AssemblyAI webhook deliveries to the `api` (WEBHOOK_BASE_URL set), with their faults; default true. */
  webhooks?: boolean;
  /** Progress lines (a round summary); nothing identifying a patient. */
  onProgress?: (line: string) => void;
  maxRounds?: number;
  /** SUMMARY_CONTEXT_TOKENS for the run (0: the model's default, one request per visit); small ones summarize in parts. */
  summaryContextTokens?: number;
  /**
   * What summarization writes beside the summary (default true): a clinician's note for every
   * visit (SUMMARY_FORMATS=patient,soap), and for every other user a preferred language (French),
   * so their visits' summaries are also written in it — paid work under the same faults.
   */
  companions?: boolean;
}

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ChaosReport {
  options: Required<Omit<ChaosOptions, "onProgress">>;
  /** What the per-user limits did (null: limits off). */
  limits: LimitsReport | null;
  visits: number;
  /** Visits that still exist at the end (the others were deleted). */
  existing: number;
  deleted: number;
  terminal: number;
  byStatus: Record<string, number>;
  errorCodes: Record<string, number>;
  /** Completed visits whose summary was written in more than one part, and the most parts of one. */
  summariesInParts: { visits: number; maxParts: number };
  /** Completed visits with their clinician's note and translated summary; what completed without one it asked for. */
  companions: { notes: number; translations: number; missing: string[] };
  transcriptsLost: number;
  orphanedProviderJobs: number;
  maxSubmitsPerAttempt: number;
  submitsPerVisit: { max: number; mean: number };
  submitsWhileTranscriptExisted: number;
  openAiCallsPerVisit: { max: number; mean: number };
  summariesWrittenPerVisit: { max: number };
  duplicateActionItems: number;
  backwardsStatusMoves: number;
  deliveries: {
    uploads: number;
    duplicateUploads: number;
    /** Upload deliveries that threw, delivered again (the trigger has retry: true). */
    redelivered: number;
    checkerRuns: number;
    retryClicks: number;
    retriesAccepted: number;
  };
  deletions: {
    /** deleteVisit calls (two concurrent ones count twice). */
    calls: number;
    visitsDeleted: number;
    concurrentPairs: number;
    alreadyDeletedAnswers: number;
    notFoundAnswers: number;
    errors: number;
    /** Deletions of visits that were pending, transcribing or summarizing. */
    ofVisitsInFlight: number;
    /** Deletions made while some stalled invocation (a zombie) was pending… */
    whileZombiesPending: number;
    /** …and of those, deletions of the very visit a pending zombie was working on. */
    ofZombieVisits: number;
    /** Deletions racing a new recording's delivery into the same visit. */
    racingReuploads: number;
    /** Deletions racing the visit's first upload delivery. */
    racingFirstUploads: number;
    /** Storage deliveries of a recording that arrived after its visit was deleted. */
    lateDeliveriesAfterDeletion: number;
  };
  reuploads: {
    /** New recordings uploaded into failed visits. */
    recordings: number;
    /** Recordings a visit was seen on after its first one (a re-upload accepted). */
    accepted: number;
    duplicateDeliveries: number;
    lateDuplicates: number;
    /** First recordings AssemblyAI could not transcribe. */
    badFirstRecordings: number;
    /** Visits that ended with a later recording than their first. */
    visitsOnLaterRecording: number;
  };
  sweeps: {
    /** Checker rounds after the main run, with virtual time moved past the tombstones' sweepAt. */
    finalRounds: number;
    tombstones: number;
    /** Sweeps the checker ran, summed over the tombstones. */
    sweepsRun: number;
    /** Tombstones still with a sweepAt (or pending provider deletes) at the end. */
    unsettled: number;
  };
  /** Existing visits whose current recording is gone from Storage although not marked deleted. */
  recordingsMissing: string[];
  /** What was found of deleted visits at the end. */
  deletedLeftovers: Record<LeftoverKind, number>;
  /** Deleted visits whose document was seen again (at a round's check or at the end). */
  reappeared: number;
  reappearanceChecks: number;
  /** What was found of recordings other than the visit's current one, at the end. */
  earlierRecordingLeftovers: Record<EarlierLeftoverKind, number>;
  summarySources: { checked: number; onLaterRecording: number; fromOtherRecording: number; mixedRequests: number };
  failpoints: { crashes: number; stalls: number; zombieWritesRejected: number };
  webhooks: ChaosWebhookFigures;
  faultsInjected: { assemblyai: number; openai: number; byKind: Record<string, number> };
  rounds: number;
  drainSeconds: number;
  virtualMinutes: number;
  invariants: Invariant[];
  /** For visits that did not finish: where they stand (ids, statuses, keys — no content). */
  stuck: string[];
  /** Where something of a deleted visit or of an earlier recording was found (ids and counts). */
  leftovers: string[];
}

export interface ChaosWebhookFigures {
  /** Deliveries the fake AssemblyAI made, by how they were authenticated (`secret`, `missing`, `wrong`). */
  byAuth: Record<string, number>;
  /** …and by the answer (`200`, `401`, `0`: none within 10 s). */
  byAnswer: Record<string, number>;
  /** What authenticated deliveries did (`webhook_handled` outcomes). */
  outcomes: Record<string, number>;
  /** Authenticated deliveries answered otherwise than 2xx, unauthenticated ones otherwise than 401. */
  misanswered: number;
  /** The slowest answer, and how long the fake waited for each delivery that got none (ms). */
  slowestAnswerMs: number;
  unansweredAfterMs: number[];
}

type LeftoverKind =
  | "visitDocuments"
  | "artifacts"
  | "pages"
  | "claims"
  | "actionItems"
  | "rateLimits"
  | "storageObjects"
  | "liveProviderJobs";
type EarlierLeftoverKind = "artifacts" | "pages" | "claims" | "storageObjects" | "liveProviderJobs";

const STEP_SECONDS = 60;
/** The preferred language of every other user: one no chaos recording is in. */
const CHAOS_PREFERRED_LANGUAGE = "fr";
/** Five visits per user: more than MAX_CONCURRENT_VISITS_PER_USER at once, and with re-uploads more than a day's quota. */
const DEFAULT_VISITS_PER_USER = 5;
/** The codes a per-user limit ends a visit with; the user retries once the answer's Retry-After has passed. */
const LIMIT_CODES = new Set(["too_many_active_visits", "upload_quota_exceeded"]);
const MAX_LIMIT_CLICKS_PER_VISIT = 6;
/** A user told to come back later than this (tomorrow's quota) gives up for this run. */
const LIMIT_PATIENCE_SECONDS = 1800;
// Long enough for every lease (the longest is summarization's) to expire before a zombie wakes.
const ZOMBIE_STALL_ROUNDS = 18;
const MAX_RETRY_CLICKS_PER_VISIT = 2;
const MAX_REUPLOADS_PER_VISIT = 2;
/** Deletions are spread over the first rounds (the run then settles). */
const DELETION_ROUNDS = 30;
/** Chance per round that a visit a pending zombie is working on is deleted (on top of the base rate). */
const ZOMBIE_VISIT_DELETE_CHANCE = 0.06;
/** Checker rounds after the main run to let the sweeps and provider-delete retries finish. */
const MAX_SWEEP_ROUNDS = 30;
/** How long the run waits for a woken zombie's remaining work before moving the clock on. */
const ZOMBIE_FINISH_WAIT_MS = 5_000;
/** The API's time budget for a request (functions/src/http/api.ts), as the DELETE route passes it. */
const API_DEADLINE_MS = TIMEOUTS.api * 1000 - 20_000;
const FIRST_GENERATION = 1_700_000_000_000_000;
/** Every transcript turn of a recording starts with its marker, so any text made from it names it. */
const MARKER_PATTERN = /chaosmark(\d+)r(\d+)/g;

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

/** How often the fake AssemblyAI's deliveries misbehave (each delivery drawn independently). */
const WEBHOOK_FAULTS = { duplicateRate: 0.3, lateRate: 0.25, redeliveryRate: 0.15, unauthenticatedRate: 0.15, wrongSecretRate: 0.1 };

interface InvocationControl {
  settle(how: "crashed" | "stalled"): void;
  /** Crashed or stalled: the platform has given up on it. A zombie runs on without new failpoints. */
  settled: boolean;
  /** The visit the invocation works on, when it is a single visit's (an upload, a summarization task). */
  visitId: string | null;
  /** The invocation's own work, which a stalled one resumes once released. */
  work: Promise<unknown> | null;
}

interface Zombie {
  releaseAtRound: number;
  release: () => void;
  released: boolean;
  control: InvocationControl;
}

/** One recording of a visit: its own object name (file name), generation and transcript. */
interface Recording {
  number: number;
  fileName: string;
  path: string;
  generation: string;
  marker: string;
  redeliveries: number;
}

interface ChaosVisit {
  index: number;
  visitId: string;
  uid: string;
  language: "en" | "es";
  recordings: Recording[];
  /** The user uploads a new recording when the visit ends failed. */
  wantsReupload: boolean;
  /** A deletion answered "deleted". */
  deleted: boolean;
  /** A deletion call failed: the user tries again next round. */
  deleteAgain: boolean;
  /** When (virtual time) the first deletion request started, to place provider jobs relative to it. */
  deletionStartedMs: number | null;
}

export interface LimitsReport {
  uploadQuotaPerDay: number;
  maxConcurrentVisitsPerUser: number;
  users: number;
  /** Status entries that ended a visit with a limit's code, by code (a visit may be refused more than once). */
  refusals: Record<string, number>;
  /** Retry clicks on visits a limit refused, made once the answer's Retry-After had passed. */
  limitRetryClicks: number;
  limitRetriesAccepted: number;
  /** The most visits one user had in flight, sampled after every round. */
  maxInFlightPerUser: number;
  /** The most distinct recordings one user had transcribed, and the quota over the run's UTC days. */
  maxPaidRecordingsPerUser: number;
  quotaOverRun: number;
  /** Visits that end refused by a limit whose recording AssemblyAI nonetheless received. */
  refusedButPaid: number;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const settings = {
    visits: options.visits,
    faultRate: options.faultRate,
    seed: options.seed,
    crashRate: options.crashRate ?? 0.08,
    stallRate: options.stallRate ?? 0.05,
    deleteRate: options.deleteRate ?? 0.12,
    reuploadRate: options.reuploadRate ?? 0.6,
    badRecordingRate: options.badRecordingRate ?? 0.06,
    maxRounds: options.maxRounds ?? 400,
    visitsPerUser: options.visitsPerUser ?? DEFAULT_VISITS_PER_USER,
    limits:
      options.limits === false
        ? (false as const)
        : {
            uploadQuotaPerDay: options.limits?.uploadQuotaPerDay ?? tunables.uploadQuotaPerDay.defaultValue,
            maxConcurrentVisitsPerUser: options.limits?.maxConcurrentVisitsPerUser ?? tunables.maxConcurrentVisitsPerUser.defaultValue,
          },
    summaryContextTokens: options.summaryContextTokens ?? 0,
    webhooks: options.webhooks ?? true,
    companions: options.companions ?? true,
  };
  const random = seededRandom(settings.seed);
  const progress = options.onProgress ?? (() => {});
  const events: { event: string; visitId: unknown; provider: unknown; outcome?: unknown }[] = [];
  // Virtual time: the pipeline's clock, and the fake AssemblyAI's (its jobs' `created` times are
  // what the pipeline's searches compare with its own clock).
  let clockOffsetMs = 0;
  const virtualNowMs = () => Date.now() + clockOffsetMs;
  const runtime = await startLocalRuntime({
    assemblyai: { queuedMs: 20, processingMs: 40, now: virtualNowMs },
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
      ...(settings.limits
        ? {
            UPLOAD_QUOTA_PER_DAY: String(settings.limits.uploadQuotaPerDay),
            MAX_CONCURRENT_VISITS_PER_USER: String(settings.limits.maxConcurrentVisitsPerUser),
          }
        : {}),
      SUMMARY_CONTEXT_TOKENS: String(settings.summaryContextTokens),
      ...(settings.companions ? { SUMMARY_FORMATS: "patient,soap" } : {}),
    },
  });

  // Failpoints and invocation tracking.
  const invocations = new AsyncLocalStorage<InvocationControl>();
  const zombies: Zombie[] = [];
  const failpointCounts = { crashes: 0, stalls: 0 };
  let round = 0;
  installRuntimeHooks({
    onLog: ({ event, fields }) => events.push({ event, visitId: fields.visitId, provider: fields.provider, outcome: fields.outcome }),
    clock: () => new Date(virtualNowMs()),
    failpoint: (name: FailpointName): FailpointAction => {
      const control = invocations.getStore();
      if (!control || control.settled) return null;
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
        zombies.push({ releaseAtRound: round + ZOMBIE_STALL_ROUNDS, release, released: false, control });
        control.settle("stalled");
        progress(`  failpoint ${name}: invocation stalled (zombie until round ${round + ZOMBIE_STALL_ROUNDS})`);
        return { stallUntil };
      }
      return null;
    },
  });
  const pendingZombies = () => zombies.filter((zombie) => !zombie.released);

  /** Runs one handler invocation; a crashed or stalled one is abandoned, as the platform would. */
  const invoke = async (
    work: () => Promise<unknown>,
    visitId: string | null = null,
  ): Promise<"ok" | "error" | "crashed" | "stalled"> => {
    let settle: (how: "crashed" | "stalled") => void = () => {};
    const abandoned = new Promise<"crashed" | "stalled">((resolve) => (settle = resolve));
    const control: InvocationControl = {
      settle: (how) => {
        control.settled = true;
        settle(how);
      },
      settled: false,
      visitId,
      work: null,
    };
    const finished = invocations.run(control, () =>
      work().then(
        () => "ok" as const,
        () => "error" as const,
      ),
    );
    control.work = finished;
    return Promise.race([finished, abandoned]);
  };

  // Cloud Tasks deliveries go through the same tracking; an abandoned one counts as failed
  // (Cloud Tasks sees a timeout and redelivers later).
  runtime.tasks.register("summarizeVisit", {
    run: async (request) => {
      const outcome = await invoke(
        () => runtime.functions.summarizeVisit.run(request as Parameters<typeof runtime.functions.summarizeVisit.run>[0]) as Promise<unknown>,
        taskVisitId(request.data),
      );
      if (outcome !== "ok") throw new Error(`delivery ${outcome}`);
    },
    retryConfig: { maxAttempts: 5, minBackoffSeconds: 1, maxBackoffSeconds: 10 },
  });

  const webhooks = settings.webhooks ? await startWebhooks(runtime, settings.seed + 3) : null;
  runtime.assemblyai.faults.setRandom({ rate: settings.faultRate, kinds: ASSEMBLYAI_FAULTS, seed: settings.seed + 1 });
  runtime.openai.faults.setRandom({ rate: settings.faultRate, kinds: OPENAI_FAULTS, seed: settings.seed + 2 });

  const startedMs = Date.now();
  const visits: ChaosVisit[] = Array.from({ length: settings.visits }, (_, i) => ({
    index: i,
    visitId: `chaos-${settings.seed}-${i}`,
    uid: `chaos-user-${Math.floor(i / settings.visitsPerUser)}`,
    language: i % 3 === 2 ? "es" : "en",
    recordings: [],
    wantsReupload: false,
    deleted: false,
    deleteAgain: false,
    deletionStartedMs: null,
  }));
  const recordingsByMarker = new Map<string, { visit: ChaosVisit; recording: Recording }>();
  // Every other user has set a preferred language the recordings are not in (what the app writes).
  const preferredLanguages = new Map<string, string>();
  if (settings.companions) {
    for (const uid of new Set(visits.map((visit) => visit.uid))) {
      if (Number(uid.slice(uid.lastIndexOf("-") + 1)) % 2 === 0) preferredLanguages.set(uid, CHAOS_PREFERRED_LANGUAGE);
    }
    await Promise.all([...preferredLanguages].map(([uid, preferredLanguage]) => db().doc(`users/${uid}`).set({ preferredLanguage })));
  }
  let badFirstRecordings = 0;
  /** A new recording of the visit, with a transcript at the fake AssemblyAI that names it. */
  const addRecording = (visit: ChaosVisit, bad: boolean): Recording => {
    const number = visit.recordings.length;
    const fileName = number === 0 ? `visit-${visit.language}.m4a` : `visit-${visit.language}-take${number + 1}.m4a`;
    const recording: Recording = {
      number,
      fileName,
      path: `users/${visit.uid}/visits/${visit.visitId}/${fileName}`,
      generation: String(FIRST_GENERATION + number * 1_000_000 + visit.index),
      marker: `chaosmark${visit.index}r${number}`,
      redeliveries: 0,
    };
    visit.recordings.push(recording);
    recordingsByMarker.set(recording.marker, { visit, recording });
    runtime.assemblyai.registerAudio(`/visits/${visit.visitId}/${fileName}`, recordingOutcome(visit.language, recording.marker, bad));
    return recording;
  };
  // Bad first recordings are spread evenly (every n-th visit), so even a small run has some.
  const badEvery = settings.badRecordingRate > 0 ? Math.max(1, Math.round(1 / settings.badRecordingRate)) : 0;
  for (const visit of visits) {
    const bad = badEvery > 0 && visit.index % badEvery === 1 % badEvery;
    if (bad) badFirstRecordings++;
    visit.wantsReupload = bad || random() < settings.reuploadRate;
    addRecording(visit, bad);
  }

  const deliveries = { uploads: 0, duplicateUploads: 0, redelivered: 0, checkerRuns: 0, retryClicks: 0, retriesAccepted: 0 };
  const deletions: ChaosReport["deletions"] = {
    calls: 0,
    visitsDeleted: 0,
    concurrentPairs: 0,
    alreadyDeletedAnswers: 0,
    notFoundAnswers: 0,
    errors: 0,
    ofVisitsInFlight: 0,
    whileZombiesPending: 0,
    ofZombieVisits: 0,
    racingReuploads: 0,
    racingFirstUploads: 0,
    lateDeliveriesAfterDeletion: 0,
  };
  const reuploads = { recordings: 0, duplicateDeliveries: 0, lateDuplicates: 0 };
  const lateDuplicates: ChaosVisit[] = [];
  const retryClicks = new Map<string, number>();
  /** Visits a limit refused: clicks made, when the user may click again (virtual ms), whether they gave up. */
  const limitRetries = new Map<string, { clicks: number; nextAtMs: number; gaveUp: boolean }>();
  const limitCounts = { clicks: 0, accepted: 0, maxInFlightPerUser: 0 };
  const runStartedMs = virtualNowMs();
  /** Actions due in a later round (late deliveries, redeliveries of deliveries that threw). */
  let scheduled: { round: number; run: () => Promise<unknown> }[] = [];
  const later = (inRounds: number, run: () => Promise<unknown>) => scheduled.push({ round: round + inRounds, run });
  const reappeared = new Set<string>();
  let reappearanceChecks = 0;

  const deliverUpload = async (visit: ChaosVisit, recording: Recording): Promise<void> => {
    deliveries.uploads++;
    if (visit.deleted) deletions.lateDeliveriesAfterDeletion++;
    const outcome = await invoke(
      () => runtime.upload({ uid: visit.uid, visitId: visit.visitId, fileName: recording.fileName, generation: recording.generation }),
      visit.visitId,
    );
    // onAudioUploaded has retry: true — a delivery that threw is delivered again.
    if (outcome === "error" && recording.redeliveries < 3) {
      recording.redeliveries++;
      deliveries.redelivered++;
      later(1, () => deliverUpload(visit, recording));
    }
  };

  const deleteOnce = async (visit: ChaosVisit): Promise<void> => {
    deletions.calls++;
    visit.deletionStartedMs ??= virtualNowMs();
    try {
      const outcome = await deleteVisit(pipeline(), { visitId: visit.visitId, uid: visit.uid, reason: "user" }, Date.now() + API_DEADLINE_MS);
      if (outcome.kind === "not_found") {
        deletions.notFoundAnswers++;
        return;
      }
      if (outcome.alreadyDeleted) deletions.alreadyDeletedAnswers++;
      visit.deleteAgain = false;
      if (!visit.deleted) {
        visit.deleted = true;
        deletions.visitsDeleted++;
      }
    } catch {
      // The app shows an error; the user tries again.
      deletions.errors++;
      visit.deleteAgain = true;
    }
  };

  /** The user deletes the visit (sometimes two requests at once); a late storage delivery may follow. */
  const deleteAction = async (visit: ChaosVisit, state: Visit | undefined): Promise<void> => {
    if (state && PROCESSING_STATUSES.has(state.status)) deletions.ofVisitsInFlight++;
    const waiting = pendingZombies();
    if (waiting.length > 0) deletions.whileZombiesPending++;
    if (waiting.some((zombie) => zombie.control.visitId === visit.visitId)) deletions.ofZombieVisits++;
    const twice = random() < 0.3;
    if (twice) deletions.concurrentPairs++;
    await Promise.all(twice ? [deleteOnce(visit), deleteOnce(visit)] : [deleteOnce(visit)]);
    const recording = visit.recordings.at(-1);
    if (visit.deleted && recording && random() < 0.3) later(1 + Math.floor(random() * 3), () => deliverUpload(visit, recording));
  };

  const deleteChance = (visit: ChaosVisit, state: Visit | undefined): number => {
    if (visit.deleted || !state) return 0;
    if (visit.deleteAgain) return 1;
    if (round > DELETION_ROUNDS) return 0;
    const zombieVisit = pendingZombies().some((zombie) => zombie.control.visitId === visit.visitId);
    return settings.deleteRate / DELETION_ROUNDS + (zombieVisit ? ZOMBIE_VISIT_DELETE_CHANCE : 0);
  };

  /** A new recording into a failed visit: sometimes delivered twice at once, or again later, or racing a deletion. */
  const reuploadAction = async (visit: ChaosVisit, state: Visit): Promise<void> => {
    const recording = addRecording(visit, false);
    reuploads.recordings++;
    const work = [deliverUpload(visit, recording)];
    if (random() < 0.3) {
      reuploads.duplicateDeliveries++;
      deliveries.duplicateUploads++;
      work.push(deliverUpload(visit, recording));
    }
    if (random() < 0.2) {
      reuploads.lateDuplicates++;
      deliveries.duplicateUploads++;
      later(1 + Math.floor(random() * 2), () => deliverUpload(visit, recording));
    }
    if (random() < 0.1) {
      deletions.racingReuploads++;
      work.push(deleteAction(visit, state));
    }
    await Promise.all(work);
  };

  const canReupload = (visit: ChaosVisit, state: Visit | undefined): state is Visit =>
    state?.status === "failed" && !visit.deleted && visit.wantsReupload && visit.recordings.length <= MAX_REUPLOADS_PER_VISIT;

  /** The recordings each visit was seen on (more than one: a re-upload was accepted). */
  const seenRecordings = new Map<string, Set<string>>();
  const readStates = async (): Promise<Map<string, Visit>> => {
    const found = await readVisits(visits.map((visit) => visit.visitId));
    for (const visit of found) {
      if (visit.audio) seenRecordings.set(visit.id, (seenRecordings.get(visit.id) ?? new Set()).add(visit.audio.generation));
    }
    return new Map(found.map((visit) => [visit.id, visit]));
  };

  /** No deleted visit may be there again, at any round. */
  const checkReappearances = async (): Promise<void> => {
    const deleted = visits.filter((visit) => visit.deleted);
    if (deleted.length === 0) return;
    reappearanceChecks++;
    const snapshots = await db().getAll(...deleted.map((visit) => db().doc(`visits/${visit.visitId}`)));
    for (const snapshot of snapshots) if (snapshot.exists) reappeared.add(snapshot.id);
  };

  // Uploads: every visit delivered once; some twice at the same time; some again later; a few
  // deleted while their first delivery runs.
  for (let start = 0; start < visits.length; start += 25) {
    await Promise.all(
      visits.slice(start, start + 25).map(async (visit) => {
        const recording = visit.recordings[0]!;
        const concurrent = random() < 0.3;
        if (random() < 0.2) lateDuplicates.push(visit);
        if (concurrent) deliveries.duplicateUploads++;
        const work = concurrent ? [deliverUpload(visit, recording), deliverUpload(visit, recording)] : [deliverUpload(visit, recording)];
        if (random() < settings.deleteRate / 4) {
          deletions.racingFirstUploads++;
          work.push(deleteAction(visit, undefined));
        }
        await Promise.all(work);
      }),
    );
  }
  progress(`uploaded ${visits.length} visits (${deliveries.uploads} deliveries)`);

  let states = await readStates();
  for (round = 1; round <= settings.maxRounds; round++) {
    clockOffsetMs += STEP_SECONDS * 1000;
    // Deletions at a random moment of the round: during the checker runs, or with the clicks,
    // new recordings and woken zombies after them.
    const toDelete = visits.filter((visit) => random() < deleteChance(visit, states.get(visit.visitId)));
    const duringChecks = toDelete.filter(() => random() < 0.5);
    const afterChecks = toDelete.filter((visit) => !duringChecks.includes(visit));
    // Overlapping checker runs, as Cloud Scheduler's at-least-once delivery allows.
    deliveries.checkerRuns += 2;
    await Promise.all([
      invoke(() => runtime.runChecker()),
      invoke(() => runtime.runChecker()),
      ...duringChecks.map((visit) => deleteAction(visit, states.get(visit.visitId))),
      // AssemblyAI announces the jobs that ended, racing the checkers.
      ...(webhooks ? [runtime.assemblyai.deliverWebhooks()] : []),
    ]);
    await runtime.tasks.drain();

    if (round === 3) {
      deliveries.duplicateUploads += lateDuplicates.length;
      await Promise.all(lateDuplicates.map((visit) => deliverUpload(visit, visit.recordings[0]!)));
    }
    const released = zombies.filter((zombie) => !zombie.released && zombie.releaseAtRound <= round);
    for (const zombie of released) {
      zombie.released = true;
      zombie.release();
    }

    states = await readStates();
    const due = scheduled.filter((action) => action.round <= round);
    scheduled = scheduled.filter((action) => action.round > round);
    const toReupload = visits.filter((visit) => canReupload(visit, states.get(visit.visitId)) && random() < 0.7);
    await Promise.all([
      clickRetries([...states.values()]),
      clickLimitRetries([...states.values()]),
      ...toReupload.map((visit) => reuploadAction(visit, states.get(visit.visitId)!)),
      ...afterChecks.map((visit) => deleteAction(visit, states.get(visit.visitId))),
      ...due.map((action) => action.run()),
    ]);
    // A woken zombie's remaining writes happen within the round it wakes in.
    await Promise.race([Promise.all(released.map(zombieWork)), sleep(ZOMBIE_FINISH_WAIT_MS)]);
    await checkReappearances();

    states = await readStates();
    limitCounts.maxInFlightPerUser = Math.max(limitCounts.maxInFlightPerUser, maxInFlightPerUser([...states.values()]));
    const open = [...states.values()].filter((visit) => !isTerminal(visit.status)).length;
    const waitingZombies = pendingZombies().length;
    if (round % 5 === 0 || open === 0) {
      const deleted = visits.filter((visit) => visit.deleted).length;
      progress(
        `round ${round}: ${states.size - open}/${states.size} terminal, ${deleted} deleted, ${reuploads.recordings} new recordings, ${waitingZombies} zombies waiting`,
      );
    }
    const settled =
      open === 0 &&
      waitingZombies === 0 &&
      round > 3 &&
      retriesSettled([...states.values()]) &&
      !visits.some((visit) => canReupload(visit, states.get(visit.visitId)) || visit.deleteAgain) &&
      scheduled.length === 0;
    if (settled) break;
  }
  const rounds = Math.min(round, settings.maxRounds);
  // Let woken zombies finish their (rejected) writes before the sweeps and the measuring (a
  // crashed invocation never finishes: it is not waited for).
  await Promise.race([Promise.all(zombies.map(zombieWork)), sleep(20_000)]);
  await sleep(500);
  await runtime.tasks.drain();

  // The checker's housekeeping: move virtual time past the tombstones' sweepAt (and past the
  // provider-delete retries of visits that still exist) and run checker rounds until none is left.
  let finalRounds = 0;
  for (; finalRounds < MAX_SWEEP_ROUNDS; finalRounds++) {
    const dueTimes = await housekeepingDue([...(await readStates()).values()]);
    if (dueTimes.length === 0) break;
    const virtualNow = virtualNowMs();
    clockOffsetMs += Math.max(STEP_SECONDS * 1000, Math.max(...dueTimes) - virtualNow + 1000);
    deliveries.checkerRuns += 2;
    await Promise.all([invoke(() => runtime.runChecker()), invoke(() => runtime.runChecker())]);
    await runtime.tasks.drain();
    await checkReappearances();
  }
  progress(`housekeeping: ${finalRounds} checker rounds after the run`);

  async function clickRetries(current: Visit[]): Promise<void> {
    const clickable = current.filter(
      (visit) =>
        (visit.status === "partial" || visit.status === "failed") &&
        visit.error?.retryable === true &&
        !refusedByLimit(visit) &&
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

  /**
   * The user of a visit a limit refused clicks retry (twice at once, as impatient users do) once
   * the last answer's Retry-After has passed, and gives up when told to come back much later.
   */
  async function clickLimitRetries(current: Visit[]): Promise<void> {
    const nowMs = virtualNowMs();
    const clickable = current.filter((visit) => {
      if (visit.status !== "failed" || !refusedByLimit(visit)) return false;
      const state = limitRetries.get(visit.id);
      return !state || (!state.gaveUp && state.clicks < MAX_LIMIT_CLICKS_PER_VISIT && state.nextAtMs <= nowMs);
    });
    await Promise.all(
      clickable.map(async (visit) => {
        const state = limitRetries.get(visit.id) ?? { clicks: 0, nextAtMs: 0, gaveUp: false };
        limitRetries.set(visit.id, state);
        state.clicks++;
        limitCounts.clicks += 2;
        const outcomes = await Promise.all(
          [0, 1].map(() => retryVisit(pipeline(), { visitId: visit.id, uid: visit.userId }, Date.now() + 50_000)),
        );
        limitCounts.accepted += outcomes.filter((outcome) => outcome.kind === "accepted").length;
        const waitSeconds = Math.max(0, ...outcomes.map((outcome) => (outcome.kind === "rejected" ? (outcome.retryAfterSeconds ?? 0) : 0)));
        state.nextAtMs = virtualNowMs() + waitSeconds * 1000;
        if (waitSeconds > LIMIT_PATIENCE_SECONDS) state.gaveUp = true;
      }),
    );
  }

  function retriesSettled(current: Visit[]): boolean {
    return current.every((visit) => {
      if (visit.status === "failed" && refusedByLimit(visit)) {
        const state = limitRetries.get(visit.id);
        return state !== undefined && (state.gaveUp || state.clicks >= MAX_LIMIT_CLICKS_PER_VISIT);
      }
      return !visit.error?.retryable || (retryClicks.get(visit.id) ?? 0) >= MAX_RETRY_CLICKS_PER_VISIT;
    });
  }

  const report = await measure(runtime, visits, recordingsByMarker, {
    settings,
    deliveries,
    deletions,
    reuploads: {
      ...reuploads,
      accepted: [...seenRecordings.values()].reduce((sum, generations) => sum + generations.size - 1, 0),
      badFirstRecordings,
    },
    finalRounds,
    reappeared,
    reappearanceChecks,
    failpointCounts,
    rounds,
    drainSeconds: (Date.now() - startedMs) / 1000,
    virtualMinutes: Math.round(clockOffsetMs / 6_000) / 10,
    zombieWritesRejected: events.filter((e) => e.event === "stale_write_rejected").length,
    openAiCallsByVisit: countOpenAiCalls(events),
    webhookOutcomes: countBy(events.filter((e) => e.event === "webhook_handled").map((e) => String(e.outcome))),
    virtualNow: new Date(virtualNowMs()),
    limits: settings.limits ? { ...settings.limits, ...limitCounts, runStartedMs } : null,
    preferredLanguages,
  });
  installRuntimeHooks({ clock: undefined, failpoint: undefined, onLog: undefined });
  await webhooks?.close();
  await runtime.close();
  return report;
}

/** The visits that exist, in one read (through the pipeline's typed converter). */
async function readVisits(visitIds: string[]): Promise<Visit[]> {
  // getAll() applies each reference's converter (its typing does not say so).
  const snapshots = (await db().getAll(...visitIds.map((id) => visitRef(id)))) as DocumentSnapshot<VisitFields>[];
  return snapshots.flatMap((snapshot) => {
    const fields = snapshot.data();
    return fields ? [{ id: snapshot.id, ...fields }] : [];
  });
}

/** What a stalled invocation still does once released. */
function zombieWork(zombie: Zombie): Promise<unknown> {
  return zombie.control.work ?? Promise.resolve();
}

function taskVisitId(data: unknown): string | null {
  const visitId = typeof data === "object" && data !== null ? (data as { visitId?: unknown }).visitId : undefined;
  return typeof visitId === "string" ? visitId : null;
}

/** The fake AssemblyAI's transcript of a recording: the visit's script, every turn marked with the recording. */
function recordingOutcome(language: "en" | "es", marker: string, bad: boolean): TranscriptOutcome {
  if (bad) return { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.unsupportedFormat };
  return {
    kind: "transcript",
    languageCode: language,
    languageConfidence: 0.97,
    turns: loadVisitScript(`visit-${language}`).map((turn) => ({ speaker: turn.speaker, text: `${marker} ${turn.text}` })),
  };
}

/** When the checker's housekeeping is next due: tombstone sweeps and provider-delete retries. */
async function housekeepingDue(existing: Visit[]): Promise<number[]> {
  const tombstones = await db().collection("deletedVisits").get();
  const sweeps = tombstones.docs.flatMap((doc) => {
    const sweepAt: unknown = doc.get("sweepAt");
    return sweepAt instanceof Timestamp ? [sweepAt.toMillis()] : [];
  });
  const providerDeletes = existing.flatMap((visit) => (visit.providerCleanupDueAt ? [visit.providerCleanupDueAt.getTime()] : []));
  return [...sweeps, ...providerDeletes];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function decodedPath(audioUrl: string): string {
  try {
    return decodeURIComponent(new URL(audioUrl).pathname);
  } catch {
    return "";
  }
}

function visitIdOfAudioUrl(audioUrl: string): string | undefined {
  return /\/visits\/([^/]+)\//.exec(decodedPath(audioUrl))?.[1];
}

/** The object name a (signed) audio URL reads: `users/…/visits/…/file`. */
function objectPathOfAudioUrl(audioUrl: string): string | undefined {
  return /\/(users\/[^/]+\/visits\/[^/]+\/[^/]+)$/.exec(decodedPath(audioUrl))?.[1];
}

function markersIn(text: string): Set<string> {
  return new Set([...text.matchAll(MARKER_PATTERN)].map((match) => match[0]));
}

/** Jobs AssemblyAI still holds (not deleted), read through its list endpoint with faults off. */
async function liveProviderJobIds(runtime: LocalRuntime): Promise<Set<string>> {
  runtime.assemblyai.faults.setRandom(null);
  const live = new Set<string>();
  let beforeId: string | undefined;
  for (;;) {
    const query = `limit=200${beforeId === undefined ? "" : `&before_id=${beforeId}`}`;
    const response = await fetch(`${runtime.assemblyai.baseUrl}/v2/transcript?${query}`, {
      headers: { authorization: process.env.ASSEMBLYAI_API_KEY ?? "" },
    });
    if (!response.ok) throw new Error(`listing AssemblyAI jobs failed: HTTP ${response.status}`);
    const page = (await response.json()) as { transcripts: { id: string; audio_url: string | null }[] };
    for (const job of page.transcripts) if (job.audio_url !== "http://deleted_by_user") live.add(job.id);
    if (page.transcripts.length < 200) return live;
    beforeId = page.transcripts.at(-1)?.id;
  }
}

interface MeasureContext {
  settings: ChaosReport["options"];
  deliveries: ChaosReport["deliveries"];
  deletions: ChaosReport["deletions"];
  reuploads: Omit<ChaosReport["reuploads"], "visitsOnLaterRecording">;
  finalRounds: number;
  reappeared: Set<string>;
  reappearanceChecks: number;
  failpointCounts: { crashes: number; stalls: number };
  rounds: number;
  drainSeconds: number;
  virtualMinutes: number;
  zombieWritesRejected: number;
  openAiCallsByVisit: Map<string, number>;
  webhookOutcomes: Record<string, number>;
  virtualNow: Date;
  /** The users who set a preferred language, and which. */
  preferredLanguages: Map<string, string>;
  limits: {
    uploadQuotaPerDay: number;
    maxConcurrentVisitsPerUser: number;
    clicks: number;
    accepted: number;
    maxInFlightPerUser: number;
    runStartedMs: number;
  } | null;
}

async function measure(
  runtime: LocalRuntime,
  visits: ChaosVisit[],
  recordingsByMarker: Map<string, { visit: ChaosVisit; recording: Recording }>,
  context: MeasureContext,
): Promise<ChaosReport> {
  const states = await readVisits(visits.map((visit) => visit.visitId));
  if (states.some((visit) => !(visit.createdAt instanceof Date))) throw new Error("visits read without the pipeline's converter");
  const existingIds = new Set(states.map((visit) => visit.id));
  const tombstones = new Map((await db().collection("deletedVisits").get()).docs.map((doc) => [doc.id, doc]));
  const deleted = visits.filter((visit) => visit.deleted || tombstones.has(visit.visitId));
  for (const visit of deleted) if (existingIds.has(visit.visitId)) context.reappeared.add(visit.visitId);

  const byStatus: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  for (const visit of states) {
    byStatus[visit.status] = (byStatus[visit.status] ?? 0) + 1;
    if (visit.error) errorCodes[visit.error.code] = (errorCodes[visit.error.code] ?? 0) + 1;
  }

  // Provider-side truth: every job AssemblyAI created, grouped by recording (object name), by
  // visit and by signed URL (each attempt signs its own URL; in-call retries of one attempt reuse it).
  const jobs = runtime.assemblyai.jobRecords();
  const liveJobs = await liveProviderJobIds(runtime);
  const jobsById = new Map(jobs.map((job) => [job.id, job]));
  const jobsByVisit = groupBy(jobs, (job) => visitIdOfAudioUrl(job.audioUrl) ?? "?");
  const jobsByRecording = groupBy(jobs, (job) => objectPathOfAudioUrl(job.audioUrl) ?? "?");
  const submitsPerUrl = [...groupBy(jobs, (job) => job.audioUrl).values()].map((group) => group.length);
  const artifacts = new Map(
    (await db().getAll(...visits.map((visit) => db().doc(`visits/${visit.visitId}/artifacts/transcript`)))).map((snap) => [
      snap.ref.parent.parent?.id ?? "",
      snap.data(),
    ]),
  );

  // The fake AssemblyAI's times are virtual too.
  const nowMs = context.virtualNow.getTime();
  const isCompleted = (job: JobRecord) => job.outcome !== "error" && job.finishesAt <= nowMs;
  let transcriptsLost = 0;
  let orphanedProviderJobs = 0;
  for (const visit of states) {
    // The visit's current recording: earlier ones were replaced on purpose (checked below).
    const completed = (visit.audio ? (jobsByRecording.get(visit.audio.path) ?? []) : []).filter(isCompleted);
    const artifact = artifacts.get(visit.id);
    const savedId = artifact?.generation === visit.audio?.generation ? (artifact?.transcriptId as string | undefined) : undefined;
    if (completed.length > 0 && !savedId) transcriptsLost++;
    orphanedProviderJobs += completed.filter((job) => job.id !== savedId).length;
  }
  // A submit made after an earlier job of the same recording had already completed.
  let submitsWhileTranscriptExisted = 0;
  for (const recordingJobs of jobsByRecording.values()) {
    const completed = recordingJobs.filter(isCompleted);
    submitsWhileTranscriptExisted += recordingJobs.filter((job) =>
      completed.some((done) => done.id !== job.id && done.finishesAt <= job.createdAt),
    ).length;
  }

  const openAiCalls = visits.map((visit) => context.openAiCallsByVisit.get(visit.visitId) ?? 0);
  const summariesWritten = states.map((visit) => visit.history.filter((entry) => entry.event === "summary_saved").length);
  const duplicateActionItems = await countDuplicateActionItems(states);
  const costProblems = await checkCosts(states);
  const backwardsStatusMoves = states.reduce((sum, visit) => sum + backwardsMoves(visit), 0);
  const submitsPerVisit = visits.map((visit) => jobsByVisit.get(visit.visitId)?.length ?? 0);

  const faultKinds: Record<string, number> = {};
  for (const fault of [...runtime.assemblyai.faults.injected, ...runtime.openai.faults.injected]) {
    faultKinds[fault.kind] = (faultKinds[fault.kind] ?? 0) + 1;
  }
  const terminal = states.filter((visit) => isTerminal(visit.status)).length;
  const maxSubmitsPerAttempt = Math.max(0, ...submitsPerUrl);

  const deletedFound = await findDeletedLeftovers(runtime, deleted, jobs, liveJobs);
  const deletedLeftovers = deletedFound.counts;
  const deletedLeftoverTotal = Object.values(deletedLeftovers).reduce((a, b) => a + b, 0);
  const unsettledTombstones = [...tombstones.values()].filter(
    (doc) => doc.get("sweepAt") !== null || (doc.get("pendingProviderDeletes") as unknown[] | undefined)?.length,
  ).length;
  const sweepsRun = [...tombstones.values()].reduce((sum, doc) => sum + Number(doc.get("sweeps") ?? 0), 0);
  const earlierFound = await findEarlierRecordingLeftovers(runtime, states, jobs, liveJobs);
  const earlierLeftovers = earlierFound.counts;
  const earlierLeftoverTotal = Object.values(earlierLeftovers).reduce((a, b) => a + b, 0);
  const summarySources = checkSummarySources(runtime, states, artifacts, jobsById, recordingsByMarker);
  const companions = await checkCompanions(states, context.settings.companions, context.preferredLanguages);
  const recordingOf = (visit: Visit) =>
    [...recordingsByMarker.values()].find(
      (entry) => entry.visit.visitId === visit.id && entry.recording.generation === visit.audio?.generation,
    )?.recording;
  const visitsOnLaterRecording = states.filter((visit) => (recordingOf(visit)?.number ?? 0) > 0).length;
  // A visit whose recording is gone from Storage although nothing marked it deleted (the fake
  // AssemblyAI does not download, so such a visit can still complete here; in production its
  // transcription would fail). Reported, not an invariant: see docs/reliability.md.
  const liveObjects = new Set(runtime.storage.objects().map((object) => `${object.name}#${object.generation}`));
  const recordingsMissing = states
    .filter((visit) => visit.audio && !visit.audio.deletedAt && !liveObjects.has(`${visit.audio.path}#${visit.audio.generation}`))
    .map((visit) => `${visit.id} (${visit.status})`);
  const accountedFor = states.length + deleted.length - context.reappeared.size === visits.length;
  const limits = context.limits ? measureLimits(visits, states, jobs, jobsByRecording, context.limits, nowMs) : null;
  const webhookFigures = webhookFiguresOf(runtime, context.webhookOutcomes);

  const invariants: Invariant[] = [
    {
      name: "every visit terminal",
      ok: terminal === states.length && accountedFor,
      detail: `${terminal}/${states.length} existing visits; ${deleted.length} deleted; ${states.length + deleted.length}/${visits.length} accounted for`,
    },
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
    {
      name: "no deleted visit reappears",
      ok: context.reappeared.size === 0,
      detail: `${context.reappeared.size} of ${deleted.length} deleted visits seen again (checked at ${context.reappearanceChecks} rounds and at the end)`,
    },
    {
      name: "nothing of a deleted visit remains",
      ok: deletedLeftoverTotal === 0 && unsettledTombstones === 0,
      detail: `${formatLeftovers(deletedLeftovers)} over ${deleted.length} deleted visits; ${unsettledTombstones} tombstones unsettled after ${sweepsRun} sweeps`,
    },
    {
      name: "no visit summarized from another recording's transcript",
      ok: summarySources.fromOtherRecording === 0 && summarySources.mixedRequests === 0,
      detail: `${summarySources.fromOtherRecording} of ${summarySources.checked} completed visits (${summarySources.onLaterRecording} on a later recording); ${summarySources.mixedRequests} OpenAI requests mixing recordings`,
    },
    {
      name: "every visit's cost is the sum of its ledger and counts every paid attempt",
      ok: costProblems.length === 0,
      detail: costProblems.length === 0 ? `${states.length} visits checked` : costProblems.slice(0, 5).join("; "),
    },
    {
      name: "nothing of an earlier recording survives a re-upload",
      ok: earlierLeftoverTotal === 0,
      detail: `${formatLeftovers(earlierLeftovers)} over ${visitsOnLaterRecording} visits on a later recording (${context.reuploads.accepted} re-uploads accepted)`,
    },
    ...(context.settings.companions
      ? [
          {
            name: "every completed visit has the clinician's note and the translated summary it asked for",
            ok: companions.missing.length === 0,
            detail:
              companions.missing.length === 0
                ? `${companions.notes} notes, ${companions.translations} translations (${CHAOS_PREFERRED_LANGUAGE}) over ${byStatus.completed ?? 0} completed visits`
                : companions.missing.slice(0, 5).join("; "),
          },
        ]
      : []),
    ...(limits ? limitInvariants(limits) : []),
    ...(context.settings.webhooks
      ? [
          {
            name: "webhook deliveries: every authenticated one answered 2xx in time, every unauthenticated one 401",
            ok: webhookFigures.misanswered === 0,
            detail: `${webhookFigures.misanswered} of ${runtime.assemblyai.webhookDeliveries.length} deliveries otherwise (${formatLeftovers(webhookFigures.byAuth)})`,
          },
        ]
      : []),
  ];

  return {
    options: context.settings,
    limits,
    visits: visits.length,
    existing: states.length,
    deleted: deleted.length,
    terminal,
    byStatus,
    errorCodes,
    summariesInParts: {
      visits: states.filter((visit) => visit.status === "completed" && (visit.summaryParts ?? 0) > 1).length,
      maxParts: Math.max(0, ...states.map((visit) => visit.summaryParts ?? 0)),
    },
    companions,
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
    deletions: context.deletions,
    reuploads: { ...context.reuploads, visitsOnLaterRecording },
    recordingsMissing,
    sweeps: { finalRounds: context.finalRounds, tombstones: tombstones.size, sweepsRun, unsettled: unsettledTombstones },
    deletedLeftovers,
    reappeared: context.reappeared.size,
    reappearanceChecks: context.reappearanceChecks,
    earlierRecordingLeftovers: earlierLeftovers,
    summarySources,
    failpoints: { ...context.failpointCounts, zombieWritesRejected: context.zombieWritesRejected },
    webhooks: webhookFigures,
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
    leftovers: [...deletedFound.where, ...earlierFound.where],
  };
}

function refusedByLimit(visit: Visit): boolean {
  return visit.error !== null && LIMIT_CODES.has(visit.error.code);
}

function maxInFlightPerUser(current: Visit[]): number {
  const inFlight = new Map<string, number>();
  for (const visit of current) {
    if (PROCESSING_STATUSES.has(visit.status)) inFlight.set(visit.userId, (inFlight.get(visit.userId) ?? 0) + 1);
  }
  return Math.max(0, ...inFlight.values());
}

const DAY_MS = 86_400_000;

/** What the per-user limits did, against the provider's truth: the jobs AssemblyAI was given. */
function measureLimits(
  visits: ChaosVisit[],
  states: Visit[],
  jobs: JobRecord[],
  jobsByRecording: Map<string, JobRecord[]>,
  counts: NonNullable<MeasureContext["limits"]>,
  nowMs: number,
): LimitsReport {
  const { uploadQuotaPerDay, maxConcurrentVisitsPerUser } = counts;
  const userOfVisit = new Map(visits.map((visit) => [visit.visitId, visit.uid]));
  // Every recording AssemblyAI received, by user (deleted visits' recordings were paid for too).
  const paidRecordings = new Map<string, Set<string>>();
  for (const job of jobs) {
    const user = userOfVisit.get(visitIdOfAudioUrl(job.audioUrl) ?? "");
    const recording = objectPathOfAudioUrl(job.audioUrl);
    if (user && recording) paidRecordings.set(user, (paidRecordings.get(user) ?? new Set()).add(recording));
  }
  const refusals: Record<string, number> = {};
  for (const visit of states) {
    for (const entry of visit.history) {
      if (entry.code && LIMIT_CODES.has(entry.code)) refusals[entry.code] = (refusals[entry.code] ?? 0) + 1;
    }
  }
  // A quota is per UTC day: the run may span more than one.
  const daysSpanned = Math.floor(nowMs / DAY_MS) - Math.floor(counts.runStartedMs / DAY_MS) + 1;
  return {
    uploadQuotaPerDay,
    maxConcurrentVisitsPerUser,
    users: new Set(visits.map((visit) => visit.uid)).size,
    refusals,
    limitRetryClicks: counts.clicks,
    limitRetriesAccepted: counts.accepted,
    maxInFlightPerUser: counts.maxInFlightPerUser,
    maxPaidRecordingsPerUser: Math.max(0, ...[...paidRecordings.values()].map((recordings) => recordings.size)),
    quotaOverRun: uploadQuotaPerDay * daysSpanned,
    refusedButPaid: states.filter(
      (visit) => visit.status === "failed" && refusedByLimit(visit) && visit.audio && (jobsByRecording.get(visit.audio.path)?.length ?? 0) > 0,
    ).length,
  };
}

function limitInvariants(limits: LimitsReport): Invariant[] {
  return [
    {
      name: "no user has more visits in flight than MAX_CONCURRENT_VISITS_PER_USER",
      ok: limits.maxInFlightPerUser <= limits.maxConcurrentVisitsPerUser,
      detail: `at most ${limits.maxInFlightPerUser} in flight for one user (limit ${limits.maxConcurrentVisitsPerUser}, sampled after every round)`,
    },
    {
      name: "no user has more recordings transcribed than UPLOAD_QUOTA_PER_DAY allows",
      ok: limits.maxPaidRecordingsPerUser <= limits.quotaOverRun,
      detail: `at most ${limits.maxPaidRecordingsPerUser} recordings sent to AssemblyAI for one user (quota ${limits.quotaOverRun} over the run's UTC days)`,
    },
    {
      name: "a recording a limit refused is never paid for",
      ok: limits.refusedButPaid === 0,
      detail: `${limits.refusedButPaid} visits refused by a limit whose recording AssemblyAI received`,
    },
  ];
}

/** Serves the real `api` handler for the fake AssemblyAI's deliveries and turns the webhook on, with its faults. */
async function startWebhooks(runtime: LocalRuntime, seed: number): Promise<ServedFunction> {
  const api = await serveHttpFunction(runtime.functions.api);
  // The safety net's cadence: 5 rounds, so lost or refused deliveries still settle within the run.
  await runtime.setEnv({ WEBHOOK_BASE_URL: api.baseUrl, WEBHOOK_SAFETY_POLL_SECONDS: String(5 * STEP_SECONDS) });
  runtime.assemblyai.setWebhookBehaviour({ ...WEBHOOK_FAULTS, random: seededRandom(seed) });
  return api;
}

function webhookFiguresOf(runtime: LocalRuntime, outcomes: Record<string, number>): ChaosWebhookFigures {
  const deliveries = runtime.assemblyai.webhookDeliveries;
  const misanswered = deliveries.filter((d) => (d.auth === "secret" ? d.answer < 200 || d.answer > 299 : d.answer !== 401)).length;
  return {
    byAuth: countBy(deliveries.map((d) => d.auth)),
    byAnswer: countBy(deliveries.map((d) => String(d.answer))),
    outcomes,
    misanswered,
    slowestAnswerMs: Math.max(0, ...deliveries.filter((d) => d.answer !== 0).map((d) => d.durationMs)),
    unansweredAfterMs: deliveries.filter((d) => d.answer === 0).map((d) => d.durationMs),
  };
}

function countBy(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

function formatLeftovers(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([kind, count]) => `${count} ${kind}`)
    .join(", ");
}

/** Counts per kind, plus where: one line per visit with something left (ids and counts, no content). */
interface Leftovers<Kind extends string> {
  counts: Record<Kind, number>;
  where: string[];
}

function tally<Kind extends string>(leftovers: Leftovers<Kind>, visitId: string, found: Record<Kind, number>, what: string): void {
  const present = Object.entries<number>(found).filter(([, count]) => count > 0);
  for (const [kind, count] of present) leftovers.counts[kind as Kind] += count;
  if (present.length > 0) leftovers.where.push(`${visitId} (${what}): ${present.map(([kind, count]) => `${count} ${kind}`).join(", ")}`);
}

/**
 * Everything of the deleted visits still stored anywhere: subcollections (queried directly — the
 * embedded Firestore has no collection groups), action items, the retry window, Storage objects
 * under the visit's folder, and jobs AssemblyAI still holds for its recordings.
 */
async function findDeletedLeftovers(
  runtime: LocalRuntime,
  deleted: ChaosVisit[],
  jobs: JobRecord[],
  liveJobs: Set<string>,
): Promise<Leftovers<LeftoverKind>> {
  const leftovers: Leftovers<LeftoverKind> = {
    counts: { visitDocuments: 0, artifacts: 0, pages: 0, claims: 0, actionItems: 0, rateLimits: 0, storageObjects: 0, liveProviderJobs: 0 },
    where: [],
  };
  const objects = runtime.storage.objects();
  await Promise.all(
    deleted.map(async (visit) => {
      const id = visit.visitId;
      const [visitDoc, artifacts, pages, claims, actions, rateLimit] = await Promise.all([
        db().doc(`visits/${id}`).get(),
        db().collection(`visits/${id}/artifacts`).get(),
        db().collection(`visits/${id}/artifacts/transcript/pages`).get(),
        db().collection(`visits/${id}/claims`).get(),
        db().collection("actions").where("visitId", "==", id).get(),
        db().doc(`rateLimits/visit-${id}`).get(),
      ]);
      const live = jobs.filter((job) => visitIdOfAudioUrl(job.audioUrl) === id && liveJobs.has(job.id));
      const jobTimes = live.map((job) => `job ${job.outcome} created ${visit.deletionStartedMs === null ? "?" : job.createdAt - visit.deletionStartedMs} ms after the deletion started`);
      tally(leftovers, id, {
        visitDocuments: visitDoc.exists ? 1 : 0,
        artifacts: artifacts.size,
        pages: pages.size,
        claims: claims.size,
        actionItems: actions.size,
        rateLimits: rateLimit.exists ? 1 : 0,
        storageObjects: objects.filter((object) => object.name.startsWith(`users/${visit.uid}/visits/${id}/`)).length,
        liveProviderJobs: live.length,
      }, `deleted; claims ${claims.docs.map((doc) => doc.id).join(" ") || "none"}${jobTimes.map((line) => `; ${line}`).join("")}`);
    }),
  );
  return leftovers;
}

/**
 * What belongs to a recording other than the visit's current one: the transcript artifact and its
 * pages, work claims (gate claims — check, retry — belong to no recording), Storage objects and
 * jobs AssemblyAI still holds.
 */
async function findEarlierRecordingLeftovers(
  runtime: LocalRuntime,
  states: Visit[],
  jobs: JobRecord[],
  liveJobs: Set<string>,
): Promise<Leftovers<EarlierLeftoverKind>> {
  const leftovers: Leftovers<EarlierLeftoverKind> = {
    counts: { artifacts: 0, pages: 0, claims: 0, storageObjects: 0, liveProviderJobs: 0 },
    where: [],
  };
  const objects = runtime.storage.objects();
  await Promise.all(
    states.map(async (visit) => {
      const generation = visit.audio?.generation;
      const currentPath = visit.audio?.path;
      const folder = `users/${visit.userId}/visits/${visit.id}/`;
      const [artifacts, pages, claims] = await Promise.all([
        db().collection(`visits/${visit.id}/artifacts`).get(),
        db().collection(`visits/${visit.id}/artifacts/transcript/pages`).get(),
        db().collection(`visits/${visit.id}/claims`).get(),
      ]);
      const earlierClaims = claims.docs.filter((doc) => {
        const claimed: unknown = doc.get("generation");
        return typeof claimed === "string" && claimed !== generation;
      });
      tally(leftovers, visit.id, {
        artifacts: artifacts.docs.filter((doc) => doc.get("generation") !== generation).length,
        pages: pages.docs.filter((doc) => doc.get("generation") !== generation || !doc.id.startsWith(`${generation}-`)).length,
        claims: earlierClaims.length,
        storageObjects: objects.filter((object) => object.name.startsWith(folder) && object.name !== currentPath).length,
        liveProviderJobs: jobs.filter((job) => {
          const path = objectPathOfAudioUrl(job.audioUrl);
          return path?.startsWith(folder) === true && path !== currentPath && liveJobs.has(job.id);
        }).length,
      }, `${visit.status} on generation ${generation ?? "none"}; earlier claims ${earlierClaims.map((doc) => doc.id).join(" ") || "none"}`);
    }),
  );
  return leftovers;
}

/**
 * For every completed visit, the transcript its summary was made from is its current recording's:
 * the artifact belongs to the visit's generation and to a job AssemblyAI ran on that recording's
 * object; the summary (the fake OpenAI builds it from the prompt's sentences) names that recording
 * and no other; and the last prompt OpenAI received for the visit carried that recording's text.
 */
function checkSummarySources(
  runtime: LocalRuntime,
  states: Visit[],
  artifacts: Map<string, Record<string, unknown> | undefined>,
  jobsById: Map<string, JobRecord>,
  recordingsByMarker: Map<string, { visit: ChaosVisit; recording: Recording }>,
): ChaosReport["summarySources"] {
  const promptsByVisit = new Map<string, Set<string>[]>();
  let mixedRequests = 0;
  for (const request of runtime.openai.requests) {
    const markers = markersIn(promptText(request.body));
    if (markers.size === 0) continue;
    if (markers.size > 1) mixedRequests++;
    for (const marker of markers) {
      const visitId = recordingsByMarker.get(marker)?.visit.visitId ?? "?";
      promptsByVisit.set(visitId, [...(promptsByVisit.get(visitId) ?? []), markers]);
    }
  }
  const result = { checked: 0, onLaterRecording: 0, fromOtherRecording: 0, mixedRequests };
  for (const visit of states.filter((v) => v.status === "completed")) {
    result.checked++;
    const recording = [...recordingsByMarker.values()].find(
      (entry) => entry.visit.visitId === visit.id && entry.recording.generation === visit.audio?.generation,
    )?.recording;
    if (recording && recording.number > 0) result.onLaterRecording++;
    const artifact = artifacts.get(visit.id);
    const transcriptId: unknown = artifact?.transcriptId;
    const job = typeof transcriptId === "string" ? jobsById.get(transcriptId) : undefined;
    const summaryMarkers = markersIn(JSON.stringify(visit.summary ?? {}));
    const lastPrompt = promptsByVisit.get(visit.id)?.at(-1);
    const onlyCurrent = (markers: Set<string> | undefined) => recording !== undefined && markers?.size === 1 && markers.has(recording.marker);
    const fromCurrent =
      recording !== undefined &&
      visit.audio !== null &&
      artifact?.generation === visit.audio.generation &&
      job !== undefined &&
      objectPathOfAudioUrl(job.audioUrl) === visit.audio.path &&
      onlyCurrent(summaryMarkers) &&
      onlyCurrent(lastPrompt);
    if (!fromCurrent) result.fromOtherRecording++;
  }
  return result;
}

/** The user messages of a chat completion request (where the transcript goes). */
function promptText(body: unknown): string {
  const messages = typeof body === "object" && body !== null ? (body as { messages?: unknown }).messages : undefined;
  if (!Array.isArray(messages)) return "";
  return messages
    .filter((message): message is { role: string; content: unknown } => typeof message === "object" && message !== null && (message as { role?: unknown }).role === "user")
    .map((message) => (typeof message.content === "string" ? message.content : JSON.stringify(message.content)))
    .join("\n");
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

/** The order in which a visit normally progresses; used to tell a forward move from a backward one. */
const STATUS_RANK: Record<VisitStatus, number> = {
  pending: 0,
  transcribing: 1,
  summarizing: 2,
  partial: 3,
  completed: 3,
  failed: 3,
};

/**
 * A completed visit has everything it asked for: with companions on, its clinician's note, and —
 * for a user with a preferred language its summary is not in — the summary in that language; each
 * marked saved on the visit and stored as an artifact of the visit's current recording (a translation
 * in the right language). A visit that asked for nothing has no mark.
 */
async function checkCompanions(states: Visit[], on: boolean, preferredLanguages: Map<string, string>): Promise<ChaosReport["companions"]> {
  const result: ChaosReport["companions"] = { notes: 0, translations: 0, missing: [] };
  if (!on) return result;
  for (const visit of states.filter((v) => v.status === "completed")) {
    const generation = visit.audio?.generation;
    const [note, translation] = await Promise.all(
      ["clinician-note", "summary-translation"].map(async (id) => (await db().doc(`visits/${visit.id}/artifacts/${id}`).get()).data()),
    );
    if (visit.clinicianNote?.state === "saved" && note?.generation === generation) result.notes++;
    else result.missing.push(`${visit.id}: no clinician's note`);
    const preferred = preferredLanguages.get(visit.userId);
    const wanted = preferred !== undefined && preferred !== visit.summary?.language ? preferred : null;
    if (wanted === null) {
      if (visit.summaryTranslation !== null) result.missing.push(`${visit.id}: a translation nobody asked for`);
    } else if (visit.summaryTranslation?.state === "saved" && visit.summaryTranslation.language === wanted && translation?.generation === generation && translation?.language === wanted) {
      result.translations++;
    } else {
      result.missing.push(`${visit.id}: no summary in ${wanted}`);
    }
  }
  return result;
}

/** Items per visit beyond what its summary lists, plus items for visits without a summary. */
/**
 * The cost on each visit against its claims: equal to the sum of its cost ledger (nothing counted
 * twice or lost under the storm), at least the sent work claims still there (a re-upload deletes the
 * replaced recording's claims, not its cost), and no more discarded calls than paid ones.
 */
async function checkCosts(states: Visit[]): Promise<string[]> {
  const problems: string[] = [];
  for (const visit of states) {
    const claims = (await db().collection(`visits/${visit.id}/claims`).get()).docs;
    const entries = claims.filter((doc) => doc.get("stage") === "cost");
    const ledger = sumCost(entries.map((doc) => ({
      audioSeconds: Number(doc.get("audioSeconds")),
      promptTokens: Number(doc.get("promptTokens")),
      completionTokens: Number(doc.get("completionTokens")),
      paidCalls: Number(doc.get("paidCalls")),
      discardedPaidCalls: Number(doc.get("discardedPaidCalls")),
      estimatedMicroUsd: Number(doc.get("estimatedMicroUsd")),
    })));
    const sentWork = claims.filter((doc) => ["transcription", "summarization"].includes(String(doc.get("stage"))) && doc.get("sentAt")).length;
    if (!sameCost(visit.cost, ledger)) problems.push(`${visit.id}: cost ${JSON.stringify(visit.cost)} ≠ ledger ${JSON.stringify(ledger)}`);
    if ((visit.cost?.paidCalls ?? 0) < sentWork) problems.push(`${visit.id}: ${visit.cost?.paidCalls ?? 0} paid calls < ${sentWork} sent claims`);
    if ((visit.cost?.discardedPaidCalls ?? 0) > (visit.cost?.paidCalls ?? 0)) problems.push(`${visit.id}: more discarded than paid calls`);
  }
  return problems;
}

async function countDuplicateActionItems(states: Visit[]): Promise<number> {
  const snapshot = await db().collection("actions").get();
  const perVisit = groupBy(snapshot.docs, (doc) => String(doc.get("visitId")));
  let duplicates = 0;
  for (const visit of states) {
    const items = perVisit.get(visit.id) ?? [];
    // A partial visit whose translation or note failed keeps its summary and action items.
    const expected = visit.summary?.actionItems.length ?? 0;
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

/**
 * OpenAI work per visit, as the logs tell it: one per summarization attempt (which may send several
 * requests: parts, a note, a translation) plus one per in-call retry.
 */
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
