// The local runtime: the real exported functions from functions/src, run in this process against
// embedded Firestore, local fake AssemblyAI/OpenAI servers and a local Cloud Tasks endpoint —
// the real firebase-admin, assemblyai and openai SDKs talk to all of them over the wire. Used by
// the integration tests, `npm run demo`, the chaos suite and the benchmark.

import { statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import functionsTest from "firebase-functions-test";
import { FakeAssemblyAI } from "../fakes/assemblyai.js";
import type { FakeAssemblyAIOptions } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";
import type { FakeOpenAIOptions } from "../fakes/openai.js";
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
};

export interface LocalRuntimeOptions {
  assemblyai?: FakeAssemblyAIOptions;
  openai?: FakeOpenAIOptions;
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
  sizeBytes?: number | string;
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
  tasks: FakeCloudTasks;
  /** Delivers a storage object-finalized event to onAudioUploaded (firebase-functions-test wrap). */
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
  const tasks = await FakeCloudTasks.start();
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
    CLOUD_TASKS_EMULATOR_HOST: tasks.host,
    ...FAST_TUNABLES,
    ...options.env,
  });
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
    tasks,
    async upload(input) {
      const fileName = input.fileName ?? "visit-en.m4a";
      const name = input.objectName ?? `users/${input.uid}/visits/${input.visitId}/${fileName}`;
      const generation = input.generation ?? nextGeneration();
      await wrappedUpload({
        id: `${name}#${generation}`,
        data: {
          bucket: input.bucket ?? BUCKET,
          name,
          contentType: "contentType" in input ? input.contentType : "audio/mp4",
          size: String(input.sizeBytes ?? fixtureSize(fileName)),
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

function fixtureSize(fileName: string): number {
  try {
    return statSync(path.join(FIXTURES_DIR, fileName)).size;
  } catch {
    return 123_456;
  }
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
