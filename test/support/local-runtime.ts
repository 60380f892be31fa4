// The local runtime: the real exported functions from functions/src, run in this process against
// embedded Firestore, a fake Cloud Storage JSON API, local fake AssemblyAI/OpenAI servers and a
// local Cloud Tasks endpoint — the real firebase-admin, assemblyai and openai SDKs talk to all of
// them over the wire. Used by the integration tests, `npm run demo`, the chaos suite and the benchmark.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import functionsTest from "firebase-functions-test";
import { FakeAssemblyAI } from "../fakes/assemblyai.js";
import type { FakeAssemblyAIOptions } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";
import type { FakeOpenAIOptions } from "../fakes/openai.js";
import { FakeCloudStorage } from "../fakes/storage.js";
import { FakeFcm } from "../fakes/fcm.js";
import type { FakeCloudStorageOptions } from "../fakes/storage.js";
import { FakeCloudTasks } from "./cloud-tasks.js";
import { writeLocalServiceAccount } from "./credentials.js";
import { startFirestore } from "./embedded-firestore.js";
import type { FirestoreEndpoint } from "./embedded-firestore.js";
import type * as FunctionsIndex from "../../functions/src/index.js";

export const PROJECT_ID = "demo-visit-pipeline";
export const BUCKET = `${PROJECT_ID}.appspot.com`;
export const FIXTURES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures");

/** Tunables for a fast local run: no waiting between checks, quick retries. */
export const FAST_TUNABLES: Record<string, string> = {
  POLL_INITIAL_DELAY_SECONDS: "0",
  POLL_MAX_DELAY_SECONDS: "1",
  ATTEMPT_BACKOFF_SECONDS: "0",
  SUMMARY_WATCHDOG_SECONDS: "1",
  CHECK_TIME_BUDGET_SECONDS: "20",
  // The abuse limits get their own tests; elsewhere one test user uploads many visits, and the
  // local runtime has no Auth emulator to ask whether an account is anonymous.
  ALLOW_ANONYMOUS_UPLOADS: "true",
  UPLOAD_QUOTA_PER_DAY: "10000",
  MAX_CONCURRENT_VISITS_PER_USER: "1000",
};

export interface LocalRuntimeOptions {
  assemblyai?: FakeAssemblyAIOptions;
  openai?: FakeOpenAIOptions;
  storage?: FakeCloudStorageOptions;
  /** Extra environment (tunables) for the functions. */
  env?: Record<string, string>;
  /** Use real providers when their keys are in the environment (demo only). */
  realProviders?: { assemblyai: boolean; openai: boolean };
}

export interface UploadInput {
  uid: string;
  visitId: string;
  fileName?: string;
  contentType?: string | undefined;
  /** The size the event and the object's metadata report; the stored body stays small (see upload). */
  sizeBytes?: number | string;
  /** Store the object with this generation (a re-delivery when it is already the live one), not a new one. */
  generation?: string;
  /** A raw object name, to test paths the pipeline must ignore. */
  objectName?: string;
  bucket?: string;
}

type FunctionsModule = typeof FunctionsIndex;

export interface LocalRuntime {
  functions: FunctionsModule;
  firestore: FirestoreEndpoint;
  assemblyai: FakeAssemblyAI;
  openai: FakeOpenAI;
  /** The Cloud Storage the functions' firebase-admin reaches through STORAGE_EMULATOR_HOST. */
  storage: FakeCloudStorage;
  tasks: FakeCloudTasks;
  /** FCM's HTTP v1 send API, reached by the real Admin SDK through FCM_EMULATOR_HOST. */
  fcm: FakeFcm;
  /**
   * Stores the object in the fake Cloud Storage, then delivers its object-finalized event (with the
   * generation the fake assigned) to onAudioUploaded (firebase-functions-test wrap).
   */
  upload(input: UploadInput): Promise<void>;
  /** One run of checkPendingTranscripts, as Cloud Scheduler would trigger it. */
  runChecker(): Promise<void>;
  /** Runs the checker and drains the task queue until the visit is terminal (or gives up). */
  runUntilSettled(
    visitIds: string[],
    options?: { maxRounds?: number; pauseMs?: number; /** called before each checker run, e.g. to move the clock */ advance?: () => void },
  ): Promise<void>;
  /** Changes function environment (tunables) and makes the functions re-read it. */
  setEnv(env: Record<string, string | undefined>): Promise<void>;
  /** Deletes all Firestore data and resets the fakes (embedded Firestore only). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

let generationCounter = Date.now() * 1000;

export function nextGeneration(): string {
  generationCounter += 1;
  return String(generationCounter);
}

export async function startLocalRuntime(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const firestore = await startFirestore();
  const assemblyai = await FakeAssemblyAI.start(options.assemblyai);
  const openai = await FakeOpenAI.start(options.openai);
  const storage = await FakeCloudStorage.start(options.storage);
  const tasks = await FakeCloudTasks.start();
  const fcm = await FakeFcm.start();
  const useRealAssemblyAi = options.realProviders?.assemblyai ?? false;
  const useRealOpenAi = options.realProviders?.openai ?? false;

  // Everything set here is put back on close(), so a later runtime in this process (or the
  // caller) sees the environment it had — above all not this runtime's emulator addresses.
  const environmentBefore = { ...process.env };
  Object.assign(process.env, {
    GCLOUD_PROJECT: PROJECT_ID,
    FIREBASE_CONFIG: JSON.stringify({ projectId: PROJECT_ID, storageBucket: BUCKET }),
    METADATA_SERVER_DETECTION: "none",
    GOOGLE_APPLICATION_CREDENTIALS: writeLocalServiceAccount(PROJECT_ID),
    FIRESTORE_EMULATOR_HOST: firestore.host,
    // With the scheme: @google-cloud/storage uses the value verbatim as its JSON API base (and
    // assumes https without one). URL signing stays real and local (see signReadUrl).
    STORAGE_EMULATOR_HOST: storage.emulatorHost,
    CLOUD_TASKS_EMULATOR_HOST: tasks.host,
    FCM_EMULATOR_HOST: fcm.host,
    ...FAST_TUNABLES,
    ...options.env,
  });
  // The Firebase Storage emulator's variable would switch signReadUrl to media URLs, and
  // firebase-admin would point STORAGE_EMULATOR_HOST at that emulator: this runtime has the fake.
  delete process.env.FIREBASE_STORAGE_EMULATOR_HOST;
  if (!useRealAssemblyAi) {
    process.env.ASSEMBLYAI_BASE_URL = assemblyai.baseUrl;
    process.env.ASSEMBLYAI_API_KEY = options.assemblyai?.apiKey ?? "test-assemblyai-key";
  }
  if (!useRealOpenAi) {
    process.env.OPENAI_BASE_URL = openai.baseUrl;
    process.env.OPENAI_API_KEY = options.openai?.apiKey ?? "test-openai-key";
  }

  const functions: FunctionsModule = await import("../../functions/src/index.js");
  const { reloadConfig } = await import("../../functions/src/config.js");
  const { resetPipeline } = await import("../../functions/src/pipeline.js");
  const { resetAdminApp } = await import("../../functions/src/store/db.js");
  // Configuration read by an earlier runtime in this process must not leak into this one.
  reloadConfig();
  resetPipeline();
  const fft = functionsTest({ projectId: PROJECT_ID, storageBucket: BUCKET });
  const wrappedUpload = fft.wrap(functions.onAudioUploaded);
  const endpoint = functions.summarizeVisit.__endpoint.taskQueueTrigger;
  tasks.register("summarizeVisit", {
    run: async (request) => {
      await functions.summarizeVisit.run(request as Parameters<typeof functions.summarizeVisit.run>[0]);
    },
    retryConfig: {
      maxAttempts: numberOrUndefined(endpoint?.retryConfig?.maxAttempts),
      minBackoffSeconds: numberOrUndefined(endpoint?.retryConfig?.minBackoffSeconds),
      maxBackoffSeconds: numberOrUndefined(endpoint?.retryConfig?.maxBackoffSeconds),
    },
  });

  const runtime: LocalRuntime = {
    functions,
    firestore,
    assemblyai,
    openai,
    storage,
    tasks,
    fcm,
    async upload(input) {
      const fileName = input.fileName ?? "visit-en.m4a";
      const name = input.objectName ?? `users/${input.uid}/visits/${input.visitId}/${fileName}`;
      const bucket = input.bucket ?? BUCKET;
      const contentType = "contentType" in input ? input.contentType : "audio/mp4";
      const { body, size } = uploadBody(fileName, input.sizeBytes);
      const { generation } = storage.put(bucket, name, body, {
        contentType,
        reportedSize: size,
        ...(input.generation === undefined ? {} : { generation: input.generation }),
      });
      await wrappedUpload({
        id: `${name}#${generation}`,
        data: {
          bucket,
          name,
          contentType,
          size,
          generation,
          metageneration: "1",
        },
      });
    },
    async runChecker() {
      await functions.checkPendingTranscripts.run({ scheduleTime: new Date().toISOString(), jobName: "local-checker" });
    },
    async runUntilSettled(visitIds, settleOptions = {}) {
      const { isSettled } = await import("./visits.js");
      const maxRounds = settleOptions.maxRounds ?? 200;
      for (let round = 0; round < maxRounds; round++) {
        await tasks.drain();
        if (await isSettled(visitIds)) return;
        settleOptions.advance?.();
        await runtime.runChecker();
        await tasks.drain();
        if (await isSettled(visitIds)) return;
        await sleep(settleOptions.pauseMs ?? 25);
      }
      throw new Error(`visits did not settle after ${maxRounds} checker rounds`);
    },
    setEnv(env) {
      for (const [key, value] of Object.entries(env)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      reloadConfig();
      resetPipeline();
      return Promise.resolve();
    },
    async reset() {
      tasks.resume();
      await tasks.drain();
      firestore.clear();
      assemblyai.reset();
      openai.reset();
      storage.reset();
      fcm.reset();
    },
    async close() {
      fft.cleanup();
      // The next runtime in this process gets fresh clients, configuration and hooks.
      await resetAdminApp();
      reloadConfig();
      resetPipeline();
      await tasks.close();
      await assemblyai.close();
      await openai.close();
      await storage.close();
      await fcm.close();
      await firestore.stop();
      restoreEnvironment(environmentBefore);
    },
  };
  return runtime;
}

function restoreEnvironment(before: NodeJS.ProcessEnv): void {
  for (const key of Object.keys(process.env)) {
    if (!(key in before)) delete process.env[key];
  }
  Object.assign(process.env, before);
}

/** Bodies above this are stored as this many zero bytes; the metadata still reports the requested size. */
const MAX_STORED_BODY_BYTES = 64 * 1024;
const DEFAULT_SIZE_BYTES = 123_456;

/**
 * The fixture's bytes when there is one and no other size is asked for; otherwise zero bytes of
 * the requested size, capped (an "oversize recording" test must not allocate 300 MiB). `size` is
 * what the event and the object's metadata report, as given (it may be malformed on purpose).
 */
function uploadBody(fileName: string, sizeBytes: number | string | undefined): { body: Buffer; size: string } {
  const fixture = readFixture(fileName);
  if (fixture !== undefined && (sizeBytes === undefined || String(sizeBytes) === String(fixture.length))) {
    return { body: fixture, size: String(fixture.length) };
  }
  const size = String(sizeBytes ?? DEFAULT_SIZE_BYTES);
  const requested = Number(size);
  const length = Number.isSafeInteger(requested) && requested > 0 ? Math.min(requested, MAX_STORED_BODY_BYTES) : 0;
  return { body: Buffer.alloc(length), size };
}

const fixtureBytes = new Map<string, Buffer | undefined>();

/** Read once per process: the chaos suite and the benchmark upload hundreds of times (the fake stores the same buffer). */
function readFixture(fileName: string): Buffer | undefined {
  // Only plain file names: an odd one a test passes must not read outside the fixtures folder.
  if (fileName !== path.basename(fileName)) return undefined;
  if (!fixtureBytes.has(fileName)) {
    let bytes: Buffer | undefined;
    try {
      bytes = readFileSync(path.join(FIXTURES_DIR, fileName));
    } catch {
      bytes = undefined;
    }
    fixtureBytes.set(fileName, bytes);
  }
  return fixtureBytes.get(fileName);
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
