// The built functions under the real Functions emulator (firebase-tools) with its Auth and Cloud Tasks emulators, the embedded Firestore and the fake providers: the deployed-shape `api` over HTTP with real ID tokens, and what each call did to Firestore and the providers.

import { rmSync } from "node:fs";
import path from "node:path";
import type { TestContext } from "vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { db, resetAdminApp } from "../../functions/src/store/db.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { FakeAssemblyAI } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";
import { writeLocalServiceAccount } from "../support/credentials.js";
import { startFirestore } from "../support/embedded-firestore.js";
import type { FirestoreEndpoint } from "../support/embedded-firestore.js";
import { countDocuments, newVisitId, readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";
import { signUpTestUser } from "./auth-users.js";
import type { TestUser } from "./auth-users.js";
import { DEFAULT_BUCKET, FAKE_PROVIDER_SECRETS, PROJECT_ID } from "./emulator-env.js";
import { startEmulatorSuite } from "./emulator-suite.js";
import type { EmulatorSuite } from "./emulator-suite.js";
import { seedFailedTranscriptionVisit, seedPartialVisit } from "./seed-visits.js";
import type { RetryAcceptedBody } from "../support/api-bodies.js";

/** Tunables for a quick run; everything else keeps its deployed default (all are in .env.local). */
const TIER_TUNABLES = {
  // A new transcript job is due for its first check at once (this file runs the checker itself).
  POLL_INITIAL_DELAY_SECONDS: "0",
  POLL_MAX_DELAY_SECONDS: "1",
  ATTEMPT_BACKOFF_SECONDS: "0",
  PROVIDER_RETRY_MIN_DELAY_MS: "50",
};
const SETTLE_TIMEOUT_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface ApiAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

let firestore: FirestoreEndpoint;
let serviceAccountFile: string | undefined;
let assemblyai: FakeAssemblyAI;
let openai: FakeOpenAI;
let suite: EmulatorSuite;

beforeAll(async () => {
  const startedMs = Date.now();
  firestore = await startFirestore({ forceEmbedded: true });
  // firebase-admin in this process (seeding, assertions) and the functions use the same Firestore.
  process.env.FIRESTORE_EMULATOR_HOST = firestore.host;
  // Jobs finish as soon as they are submitted, so one checker run saves the transcript.
  assemblyai = await FakeAssemblyAI.start({ queuedMs: 0, processingMs: 0 });
  openai = await FakeOpenAI.start();
  serviceAccountFile = writeLocalServiceAccount(PROJECT_ID);
  suite = await startEmulatorSuite({
    only: ["functions", "auth", "tasks"],
    functionsEnv: {
      ASSEMBLYAI_BASE_URL: assemblyai.baseUrl,
      OPENAI_BASE_URL: openai.baseUrl,
      // Without the Storage emulator the functions sign real v4 read URLs: with a key made here
      // (locally, no IAM call), as production does with its service account.
      GOOGLE_APPLICATION_CREDENTIALS: serviceAccountFile,
      ...TIER_TUNABLES,
    },
    secrets: FAKE_PROVIDER_SECRETS,
    // No Firestore emulator here (it needs Java 21): the functions runtime inherits this from the CLI.
    cliEnv: { FIRESTORE_EMULATOR_HOST: firestore.host },
  });
  console.log(`emulators ready in ${((Date.now() - startedMs) / 1000).toFixed(1)} s: ${suite.apiBaseUrl}`);
}, 150_000);

afterAll(async () => {
  await suite?.stop();
  await resetAdminApp();
  await assemblyai?.close();
  await openai?.close();
  await firestore?.stop();
  if (serviceAccountFile) rmSync(path.dirname(serviceAccountFile), { recursive: true, force: true });
});

beforeEach(() => {
  firestore.clear();
  assemblyai.reset();
  assemblyai.setTiming({ queuedMs: 0, processingMs: 0 });
  openai.reset();
});

afterEach((context: TestContext) => {
  if (context.task.result?.state === "fail") {
    console.error(`--- Functions emulator log (last lines) ---\n${suite.logTail(100)}`);
  }
});

async function callApi(method: string, path: string, idToken?: string): Promise<ApiAnswer> {
  const headers: Record<string, string> = idToken === undefined ? {} : { authorization: `Bearer ${idToken}` };
  const response = await fetch(`${suite.apiBaseUrl}${path}`, { method, headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

function retry(visitId: string, user?: TestUser): Promise<ApiAnswer> {
  return callApi("POST", `/visits/${visitId}/retry`, user?.idToken);
}

function expectAccepted(answer: ApiAnswer, expected: Omit<RetryAcceptedBody, "requestId" | "status"> & { status?: string }): RetryAcceptedBody {
  expect(answer.status).toBe(202);
  const body = answer.body as RetryAcceptedBody;
  expect(body).toMatchObject(expected);
  expect(body.requestId).toMatch(UUID);
  expect(answer.headers.get("x-request-id")).toBe(body.requestId);
  return body;
}

function expectError(answer: ApiAnswer, status: number, code: string): void {
  expect({ status: answer.status, body: answer.body }).toMatchObject({ status, body: { error: { code } } });
  expect(answer.headers.get("x-request-id")).toMatch(UUID);
}

async function waitForVisit(visitId: string, done: (visit: Visit) => boolean, what: string): Promise<Visit> {
  const giveUpAt = Date.now() + SETTLE_TIMEOUT_MS;
  let visit = await readVisit(visitId);
  while (!done(visit)) {
    if (Date.now() > giveUpAt) {
      throw new Error(`visit ${visitId} did not become ${what} within ${SETTLE_TIMEOUT_MS} ms; it is ${visit.status} (${JSON.stringify(visit.error)})`);
    }
    await sleep(250);
    visit = await readVisit(visitId);
  }
  return visit;
}

/** The visit's history from its last `status` entry on, as `status/event` pairs. */
function historyAfter(visit: Visit, status: Visit["status"]): string[] {
  const from = visit.history.map((entry) => entry.status).lastIndexOf(status);
  return visit.history.slice(from + 1).map((entry) => `${entry.status}/${entry.event}`);
}

describe("GET /health through the Functions emulator", () => {
  it("answers 200 with both breakers closed, read from the embedded Firestore", async () => {
    const answer = await callApi("GET", "/health");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("x-request-id")).toMatch(UUID);
    expect(answer.body).toEqual({
      status: "ok",
      breakers: { assemblyai: { state: "closed", openUntil: null }, openai: { state: "closed", openUntil: null } },
    });
  });

  it("reports an open breaker written to that Firestore as degraded", async () => {
    const openUntil = new Date(Date.now() + 10 * 60_000);
    await db().collection("breakers").doc("openai").set({ state: "open", failures: 5, openedAt: new Date(), openUntil, updatedAt: new Date() });
    try {
      const answer = await callApi("GET", "/health");
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        status: "degraded",
        breakers: { assemblyai: { state: "closed", openUntil: null }, openai: { state: "open", openUntil: openUntil.toISOString() } },
      });
    } finally {
      // An open breaker would defer the other tests' OpenAI calls.
      await db().collection("breakers").doc("openai").delete();
    }
  });
});

describe("POST /visits/{visitId}/retry through the Functions and Cloud Tasks emulators", () => {
  it("resumes summarization of a partial visit via the Tasks emulator until it completes, without calling AssemblyAI", async () => {
    const owner = await signUpTestUser(suite.hosts.auth!, "partial-owner");
    const visitId = newVisitId();
    const { transcriptId } = await seedPartialVisit({ visitId, uid: owner.uid, now: new Date() });
    const transcriptBefore = await readTranscriptArtifact(visitId);

    const answer = await retry(visitId, owner);
    const accepted = expectAccepted(answer, { visitId, resumedStage: "summarization", retryCount: 1 });
    // The task may already have run when the answer was written.
    expect(["summarizing", "completed"]).toContain(accepted.status);

    const visit = await waitForVisit(visitId, (v) => v.status === "completed", "completed");
    expect(visit).toMatchObject({ status: "completed", retryCount: 1, error: null, transcriptId });
    expect(visit.summary?.overview.length).toBeGreaterThan(0);
    expect(historyAfter(visit, "partial")).toEqual(["summarizing/retry_accepted", "completed/summary_saved"]);
    const actions = await readActionItems(visitId);
    expect(actions.length).toBe(visit.summary!.actionItems.length);
    expect(visit.actionItemCount).toBe(actions.length);
    expect(actions.every((action) => action.userId === owner.uid && action.visitId === visitId && action.done === false)).toBe(true);
    expect(await readTranscriptArtifact(visitId)).toEqual(transcriptBefore);
    expect(openai.completionCount()).toBe(1);
    expect(assemblyai.submitCount()).toBe(0);
    expect(assemblyai.requests).toEqual([]);
  });

  it("resubmits a visit whose transcription failed retryably: one new AssemblyAI job, visit transcribing", async () => {
    const owner = await signUpTestUser(suite.hosts.auth!, "failed-owner");
    const visitId = newVisitId();
    await seedFailedTranscriptionVisit({ visitId, uid: owner.uid, now: new Date() });

    const answer = await retry(visitId, owner);
    expectAccepted(answer, { visitId, status: "transcribing", resumedStage: "transcription", retryCount: 1 });

    // Cloud Scheduler does not exist under the Functions emulator: the scheduled checker never
    // runs by itself, so the visit stays transcribing here (the next test runs it explicitly).
    expect(assemblyai.submitCount()).toBe(1);
    const [job] = assemblyai.jobRecords();
    const visit = await readVisit(visitId);
    expect(visit).toMatchObject({ status: "transcribing", transcriptId: job!.id, retryCount: 1, error: null });
    expect(historyAfter(visit, "failed")).toEqual(["pending/retry_accepted", "transcribing/transcription_submitted"]);
    // Submitted with a freshly signed v4 read URL of the visit's recording.
    const audioUrl = new URL(job!.audioUrl);
    expect(decodeURIComponent(audioUrl.pathname)).toBe(`/${DEFAULT_BUCKET}/users/${owner.uid}/visits/${visitId}/visit-en.m4a`);
    expect(audioUrl.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
    expect(audioUrl.searchParams.get("X-Goog-Signature")).toMatch(/^[0-9a-f]{64,}$/);
    expect(openai.completionCount()).toBe(0);
  });

  it("then completes when the scheduled checker is run through the emulator's trigger route, as Cloud Scheduler would", async () => {
    const owner = await signUpTestUser(suite.hosts.auth!, "checker-owner");
    const visitId = newVisitId();
    await seedFailedTranscriptionVisit({ visitId, uid: owner.uid, now: new Date() });
    expectAccepted(await retry(visitId, owner), { visitId, status: "transcribing", resumedStage: "transcription", retryCount: 1 });

    const run = await suite.runScheduled("checkPendingTranscripts");
    expect(run.triggerKey).toMatch(/^us-central1-checkPendingTranscripts-\d+$/);
    const visit = await waitForVisit(visitId, (v) => v.status === "completed", "completed");
    expect(historyAfter(visit, "failed")).toEqual([
      "pending/retry_accepted",
      "transcribing/transcription_submitted",
      "summarizing/transcript_saved",
      "completed/summary_saved",
    ]);
    const artifact = await readTranscriptArtifact(visitId);
    expect(artifact).toMatchObject({ provider: "assemblyai", transcriptId: visit.transcriptId, storage: "inline" });
    expect(String(artifact?.text).length).toBeGreaterThan(0);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    expect(assemblyai.submitCount()).toBe(1);
    expect(openai.completionCount()).toBe(1);
  });

  it("answers 401 without a usable ID token and 404 for another user's visit, changing nothing", async () => {
    const [owner, intruder] = await Promise.all([
      signUpTestUser(suite.hosts.auth!, "owner"),
      signUpTestUser(suite.hosts.auth!, "intruder"),
    ]);
    const visitId = newVisitId();
    await seedPartialVisit({ visitId, uid: owner.uid, now: new Date() });
    const before = await readVisit(visitId);

    expectError(await retry(visitId), 401, "unauthenticated");
    expectError(await callApi("POST", `/visits/${visitId}/retry`, "not-a-token"), 401, "unauthenticated");
    expectError(await retry(visitId, intruder), 404, "visit_not_found");
    // The same answer as for a visit that does not exist at all.
    expectError(await retry(newVisitId(), intruder), 404, "visit_not_found");

    expect(await readVisit(visitId)).toEqual(before);
    expect(await countDocuments("rateLimits")).toBe(0);
    expect(assemblyai.requests).toEqual([]);
    expect(openai.requests).toEqual([]);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
