// End to end in the full emulator suite (Auth, Functions, Firestore, Storage, Pub/Sub, Cloud Tasks; needs Java 21): the mobile client stub uploads, the storage trigger fires, the checker runs, Cloud Tasks delivers the summarization, the retry button recovers a failed summary, and the user's preferred language is set (under firestore.rules) and shown.

import { readFileSync } from "node:fs";
import path from "node:path";
import type { TestContext } from "vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resetAdminApp } from "../../functions/src/store/db.js";
import { createVisitPipelineClient } from "../../mobile-client-stub/src/client.js";
import type { VisitPipelineClient } from "../../mobile-client-stub/src/client.js";
import { loadStubConfig } from "../../mobile-client-stub/src/config.js";
import type { VisitView, VisitViewStatus } from "../../mobile-client-stub/src/describe-visit.js";
import type { SignedInUser } from "../../mobile-client-stub/src/sign-in.js";
import { FakeAssemblyAI } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";
import { readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";
import { DEFAULT_BUCKET, FAKE_PROVIDER_SECRETS, FIXTURES_DIR, PROJECT_ID } from "./emulator-env.js";
import { startEmulatorSuite } from "./emulator-suite.js";
import type { EmulatorSuite } from "./emulator-suite.js";

const FIXTURE = "visit-en.m4a";
const SETTLE_TIMEOUT_MS = 90_000;
// Cloud Scheduler runs the checker every minute; this file runs it every second while it waits.
const CHECKER_EVERY_MS = 1_000;

let assemblyai: FakeAssemblyAI;
let openai: FakeOpenAI;
let suite: EmulatorSuite;
let stub: VisitPipelineClient;
let user: SignedInUser;

beforeAll(async () => {
  assemblyai = await FakeAssemblyAI.start();
  openai = await FakeOpenAI.start();
  suite = await startEmulatorSuite({
    only: ["auth", "functions", "firestore", "storage", "pubsub", "tasks"],
    functionsEnv: {
      ASSEMBLYAI_BASE_URL: assemblyai.baseUrl,
      OPENAI_BASE_URL: openai.baseUrl,
      POLL_INITIAL_DELAY_SECONDS: "1",
      POLL_MAX_DELAY_SECONDS: "2",
      ATTEMPT_BACKOFF_SECONDS: "0",
    },
    secrets: FAKE_PROVIDER_SECRETS,
    // The first run on a machine downloads the Java emulators (~250 MB).
    startTimeoutMs: 240_000,
  });
  // firebase-admin in this process reads what the functions wrote, from the Firestore emulator.
  process.env.FIRESTORE_EMULATOR_HOST = suite.hosts.firestore;
  stub = createVisitPipelineClient(
    loadStubConfig({
      STUB_PROJECT_ID: PROJECT_ID,
      STUB_EMULATOR_HOST: "127.0.0.1",
      STUB_AUTH_EMULATOR_PORT: portOf(suite.hosts.auth),
      STUB_FIRESTORE_EMULATOR_PORT: portOf(suite.hosts.firestore),
      STUB_STORAGE_EMULATOR_PORT: portOf(suite.hosts.storage),
      STUB_FUNCTIONS_EMULATOR_PORT: portOf(suite.hosts.functions),
      STUB_EMAIL: `stub-${process.pid}@users.test`,
      STUB_PASSWORD: "stub-password-1234",
    }),
  );
  user = await stub.signIn();
}, 300_000);

afterAll(async () => {
  await stub?.close();
  await suite?.stop();
  await resetAdminApp();
  await assemblyai?.close();
  await openai?.close();
});

beforeEach(() => {
  assemblyai.reset();
  openai.reset();
});

afterEach((context: TestContext) => {
  if (context.task.result?.state === "fail") console.error(`--- emulator log (last lines) ---\n${suite.logTail(150)}`);
});

function portOf(host: string | undefined): string {
  const port = host?.split(":")[1];
  if (!port) throw new Error(`no port in ${host}`);
  return port;
}

async function uploadFixture(): Promise<string> {
  const data = new Uint8Array(readFileSync(path.join(FIXTURES_DIR, FIXTURE)));
  const uploaded = await stub.uploadVisitAudio({ name: FIXTURE, data });
  expect(uploaded.path).toBe(`users/${user.uid}/visits/${uploaded.visitId}/${FIXTURE}`);
  return uploaded.visitId;
}

/**
 * Watches the visit with the stub (the app's snapshot listener, through firestore.rules) until
 * `done`, running the scheduled checker meanwhile. Returns every view the app was shown.
 */
async function watchUntil(visitId: string, done: (view: VisitView) => boolean): Promise<VisitView[]> {
  const views: VisitView[] = [];
  let settled = false;
  let stopWatching: () => void = () => {};
  const watched = new Promise<void>((resolve, reject) => {
    stopWatching = stub.watchVisit(
      visitId,
      (view) => {
        views.push(view);
        if (done(view)) resolve();
      },
      { onError: (error) => reject(new Error(`watchVisit: ${error.code} ${error.message}`)) },
    );
  });
  const checker = (async () => {
    while (!settled) {
      await suite.runScheduled("checkPendingTranscripts");
      await sleep(CHECKER_EVERY_MS);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`visit ${visitId} not done after ${SETTLE_TIMEOUT_MS} ms; the app saw ${statusesOf(views).join(" → ")}`)),
      SETTLE_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([watched, checker, timeout]);
  } finally {
    settled = true;
    clearTimeout(timer);
    stopWatching();
  }
  await checker;
  return views;
}

function statusesOf(views: readonly VisitView[]): VisitViewStatus[] {
  return views.map((view) => view.status).filter((status, index, all) => index === 0 || all[index - 1] !== status);
}

const PROGRESSION: readonly VisitViewStatus[] = ["waiting_for_upload_processing", "pending", "transcribing", "summarizing", "completed"];

describe("a recording uploaded by the app", () => {
  it("is transcribed and summarized: storage trigger, scheduled checker, Cloud Tasks, completed", async () => {
    const visitId = await uploadFixture();
    const views = await watchUntil(visitId, (view) => view.isTerminal);

    const last = views.at(-1)!;
    expect(last).toMatchObject({ status: "completed", progressStep: 4, canRetry: false, transcriptAvailable: true, error: null });
    // What the app showed only ever moved forward.
    const ranks = statusesOf(views).map((status) => PROGRESSION.indexOf(status));
    expect(ranks.every((rank) => rank >= 0)).toBe(true);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));

    const visit = await readVisit(visitId);
    expect(visit.history.map((entry) => `${entry.status}/${entry.event}`)).toEqual([
      "pending/upload_accepted",
      "transcribing/transcription_submitted",
      "summarizing/transcript_saved",
      "completed/summary_saved",
    ]);
    expect(visit.userId).toBe(user.uid);
    expect(visit.audio).toMatchObject({
      bucket: DEFAULT_BUCKET,
      path: `users/${user.uid}/visits/${visitId}/${FIXTURE}`,
      contentType: "audio/mp4",
      sizeBytes: readFileSync(path.join(FIXTURES_DIR, FIXTURE)).length,
    });
    expect(visit.summary?.language).toBe("en");
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    expect(await readTranscriptArtifact(visitId)).toMatchObject({ transcriptId: visit.transcriptId, languageCode: "en" });

    // One paid job, given the Storage emulator's URL of the uploaded object; one completion.
    expect(assemblyai.submitCount()).toBe(1);
    const [job] = assemblyai.jobRecords();
    expect(job!.audioUrl).toBe(
      `http://${suite.hosts.storage}/v0/b/${DEFAULT_BUCKET}/o/${encodeURIComponent(visit.audio!.path)}?alt=media`,
    );
    expect(openai.completionCount()).toBe(1);
  });

  it("ends partial when the summary is refused, and the retry button completes it without a new transcription", async () => {
    openai.faults.enqueue("chat", { kind: "refusal" });
    const visitId = await uploadFixture();
    const failedViews = await watchUntil(visitId, (view) => view.isTerminal);
    expect(failedViews.at(-1)).toMatchObject({
      status: "partial",
      canRetry: true,
      transcriptAvailable: true,
      error: { code: "summary_refused" },
    });
    expect(openai.completionCount()).toBe(1);

    const outcome = await stub.retryVisit(visitId);
    expect(outcome).toMatchObject({ kind: "accepted", resumedStage: "summarization" });
    const retriedViews = await watchUntil(visitId, (view) => view.status === "completed");
    expect(retriedViews.at(-1)).toMatchObject({ status: "completed", canRetry: false, error: null });

    const visit = await readVisit(visitId);
    expect(visit.retryCount).toBe(1);
    expect(visit.history.map((entry) => `${entry.status}/${entry.event}`).slice(-3)).toEqual([
      "partial/summary_failed",
      "summarizing/retry_accepted",
      "completed/summary_saved",
    ]);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    // The refused completion and the one that worked; the transcript was never bought again.
    expect(openai.completionCount()).toBe(2);
    expect(assemblyai.submitCount()).toBe(1);
  });
});

describe("the user's preferred language, through the app", () => {
  it("is refused as a bad code and set as a good one (firestore.rules); the next visit's summary is shown in it, with roles and a switch to the original", async () => {
    expect(await stub.setPreferredLanguage("Spanish")).toMatchObject({ kind: "error", code: "invalid_language" });
    expect(await stub.setPreferredLanguage("es")).toMatchObject({ kind: "saved", language: "es" });
    const visitId = await uploadFixture();
    const views = await watchUntil(visitId, (view) => view.isTerminal);
    expect(views.at(-1)).toMatchObject({ status: "completed" });

    const shown = await stub.readVisitContent(visitId);
    expect(shown.summary?.language).toBe("es");
    expect(shown.languageSwitch).toEqual({ showing: "preferred", label: "Show the original (English)" });
    expect(shown.speakers.map((speaker) => speaker.label)).toEqual(["Clinician (likely)", "Patient (likely)"]);
    expect(shown.transcriptLines[0]?.label).toBe("Clinician (likely)");
    const original = await stub.readVisitContent(visitId, "original");
    expect(original.summary?.language).toBe("en");
    expect(await stub.setPreferredLanguage(null)).toMatchObject({ kind: "saved", language: null });
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
