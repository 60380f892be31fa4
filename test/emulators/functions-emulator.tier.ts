// The built functions under the real Functions emulator (firebase-tools) with its Auth and Cloud Tasks emulators, the embedded Firestore, the fake Cloud Storage and the fake providers: the deployed-shape `api` over HTTP with real ID tokens, and what each call did to Firestore, Storage and the providers.

import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { TestContext } from "vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { db, resetAdminApp } from "../../functions/src/store/db.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { FakeAssemblyAI } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";
import { FakeCloudStorage } from "../fakes/storage.js";
import { writeLocalServiceAccount } from "../support/credentials.js";
import { startFirestore } from "../support/embedded-firestore.js";
import type { FirestoreEndpoint } from "../support/embedded-firestore.js";
import { countDocuments, newVisitId, readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";
import { signUpTestUser } from "./auth-users.js";
import type { TestUser } from "./auth-users.js";
import { DEFAULT_BUCKET, FAKE_PROVIDER_SECRETS, FIXTURES_DIR, PROJECT_ID } from "./emulator-env.js";
import { startEmulatorSuite } from "./emulator-suite.js";
import type { EmulatorSuite } from "./emulator-suite.js";
import { seedFailedTranscriptionVisit, seedPartialVisit } from "./seed-visits.js";
import type { ExportBody, RetryAcceptedBody, UserDataDeletedBody, VisitDeletedBody } from "../support/api-bodies.js";

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
let storage: FakeCloudStorage;
let suite: EmulatorSuite;

beforeAll(async () => {
  const startedMs = Date.now();
  firestore = await startFirestore({ forceEmbedded: true });
  // firebase-admin in this process (seeding, assertions) and the functions use the same Firestore.
  process.env.FIRESTORE_EMULATOR_HOST = firestore.host;
  // Jobs finish as soon as they are submitted, so one checker run saves the transcript.
  assemblyai = await FakeAssemblyAI.start({ queuedMs: 0, processingMs: 0 });
  openai = await FakeOpenAI.start();
  // No Storage emulator either (Java 21): the functions reach this fake Cloud Storage JSON API.
  storage = await FakeCloudStorage.start();
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
    // No Firestore or Storage emulator here (they need Java 21): the functions runtime inherits
    // these from the CLI. STORAGE_EMULATOR_HOST alone moves only the JSON API (listing, deletes):
    // read URLs stay real signed v4 URLs (FIREBASE_STORAGE_EMULATOR_HOST would switch them).
    cliEnv: { FIRESTORE_EMULATOR_HOST: firestore.host, STORAGE_EMULATOR_HOST: storage.emulatorHost },
  });
  console.log(`emulators ready in ${((Date.now() - startedMs) / 1000).toFixed(1)} s: ${suite.apiBaseUrl}`);
}, 150_000);

afterAll(async () => {
  await suite?.stop();
  await resetAdminApp();
  await assemblyai?.close();
  await openai?.close();
  await storage?.close();
  await firestore?.stop();
  if (serviceAccountFile) rmSync(path.dirname(serviceAccountFile), { recursive: true, force: true });
});

beforeEach(() => {
  firestore.clear();
  assemblyai.reset();
  assemblyai.setTiming({ queuedMs: 0, processingMs: 0 });
  openai.reset();
  storage.reset();
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

describe("GET /health and /health/ready through the Functions emulator", () => {
  it("/health answers 200 status ok to anyone (liveness only)", async () => {
    const answer = await callApi("GET", "/health");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("x-request-id")).toMatch(UUID);
    expect(answer.body).toEqual({ status: "ok" });
  });

  it("/health/ready answers an operator with both breakers closed, read from the embedded Firestore; 401 without a token, 403 for another user", async () => {
    expectError(await callApi("GET", "/health/ready"), 401, "unauthenticated");
    const user = await signUpTestUser(suite.hosts.auth!, "not-operator");
    expectError(await callApi("GET", "/health/ready", user.idToken), 403, "forbidden");
    const answer = await callApi("GET", "/health/ready", await operatorToken("operator"));
    expect(answer.status).toBe(200);
    expect(answer.headers.get("x-request-id")).toMatch(UUID);
    expect(answer.body).toEqual({
      status: "ok",
      breakers: { assemblyai: { state: "closed", openUntil: null }, openai: { state: "closed", openUntil: null } },
      queue: expect.objectContaining({ stuck: 0, stuckAfterMinutes: 120 }) as unknown,
      checker: expect.objectContaining({ stale: false }) as unknown,
    });
  });

  it("/health/ready reports an open breaker written to that Firestore as degraded", async () => {
    const token = await operatorToken("operator-degraded");
    const openUntil = new Date(Date.now() + 10 * 60_000);
    await db().collection("breakers").doc("openai").set({ state: "open", failures: 5, openedAt: new Date(), openUntil, updatedAt: new Date() });
    try {
      const answer = await callApi("GET", "/health/ready", token);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        status: "degraded",
        breakers: { assemblyai: { state: "closed", openUntil: null }, openai: { state: "open", openUntil: openUntil.toISOString() } },
        queue: expect.objectContaining({ stuckAfterMinutes: 120 }) as unknown,
        checker: expect.objectContaining({ stale: false }) as unknown,
      });
    } finally {
      // An open breaker would defer the other tests' OpenAI calls.
      await db().collection("breakers").doc("openai").delete();
    }
  });
});

/** A new user with the `operator: true` custom claim (set over the Auth emulator's admin REST API), and an ID token carrying it. */
async function operatorToken(label: string): Promise<string> {
  const authHost = suite.hosts.auth!;
  const user = await signUpTestUser(authHost, label);
  const update = await fetch(`http://${authHost}/identitytoolkit.googleapis.com/v1/projects/${PROJECT_ID}/accounts:update`, {
    method: "POST",
    // The Auth emulator takes "owner" as the project's admin credentials.
    headers: { authorization: "Bearer owner", "content-type": "application/json" },
    body: JSON.stringify({ localId: user.uid, customAttributes: JSON.stringify({ operator: true }) }),
  });
  if (!update.ok) throw new Error(`setting the operator claim failed: ${update.status} ${await update.text()}`);
  const signIn = await fetch(`http://${authHost}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=fake-api-key`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: user.email, password: "test-password-1234", returnSecureToken: true }),
  });
  const body = (await signIn.json()) as { idToken?: string };
  if (!signIn.ok || !body.idToken) throw new Error(`signing the operator in failed: ${signIn.status}`);
  return body.idToken;
}

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
    // The same transcript; the summary now written adds only who each speaker is.
    const { speakerRoles, ...transcriptAfter } = (await readTranscriptArtifact(visitId)) ?? {};
    expect(transcriptAfter).toEqual(transcriptBefore);
    expect(speakerRoles).toEqual(visit.summary?.speakers);
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

/** The seeded visit's recording, stored in the fake Cloud Storage under the generation the seed names. */
async function storeSeededRecording(visitId: string): Promise<string> {
  const audio = (await readVisit(visitId)).audio!;
  storage.put(audio.bucket, audio.path, readFileSync(path.join(FIXTURES_DIR, audio.fileName)), { contentType: audio.contentType, generation: audio.generation });
  return audio.path;
}

/** What is stored about one visit, counted where it is kept. */
async function storedOf(uid: string, visitId: string) {
  const visitDoc = db().collection("visits").doc(visitId);
  const [visit, artifacts, claims, actions, rateLimit] = await Promise.all([
    visitDoc.get(),
    visitDoc.collection("artifacts").get(),
    visitDoc.collection("claims").get(),
    db().collection("actions").where("visitId", "==", visitId).get(),
    db().collection("rateLimits").doc(`visit-${visitId}`).get(),
  ]);
  return {
    visit: visit.exists ? 1 : 0,
    artifacts: artifacts.size,
    claims: claims.size,
    actionItems: actions.size,
    rateLimits: rateLimit.exists ? 1 : 0,
    storageObjects: storage.objects(DEFAULT_BUCKET).filter((object) => object.name.startsWith(`users/${uid}/visits/${visitId}/`)).length,
  };
}

const NOTHING_STORED = { visit: 0, artifacts: 0, claims: 0, actionItems: 0, rateLimits: 0, storageObjects: 0 };

/** The fake AssemblyAI's jobs, as its own list endpoint reports them (a deleted one has the deleted marker as audio_url). */
async function assemblyAiJobs(): Promise<{ id: string; audio_url: string }[]> {
  const response = await fetch(`${assemblyai.baseUrl}/v2/transcript?limit=200`, { headers: { authorization: FAKE_PROVIDER_SECRETS.ASSEMBLYAI_API_KEY! } });
  return ((await response.json()) as { transcripts: { id: string; audio_url: string }[] }).transcripts;
}

function expectOk(answer: ApiAnswer): void {
  expect({ status: answer.status, body: answer.body }).toMatchObject({ status: 200 });
  expect(answer.headers.get("x-request-id")).toMatch(UUID);
  expect(answer.headers.get("cache-control")).toBe("no-store");
}

describe("DELETE /visits/{visitId}, DELETE /me and GET /me/export through the Functions emulator", () => {
  it("DELETE /visits/{id}: 200 for the owner of a completed visit — documents, action items, rate-limit window and the recording in Storage are gone; a repeat answers alreadyDeleted", async () => {
    const owner = await signUpTestUser(suite.hosts.auth!, "delete-owner");
    const visitId = newVisitId();
    const { transcriptId } = await seedPartialVisit({ visitId, uid: owner.uid, now: new Date() });
    await storeSeededRecording(visitId);
    expectAccepted(await retry(visitId, owner), { visitId, resumedStage: "summarization", retryCount: 1 });
    await waitForVisit(visitId, (v) => v.status === "completed", "completed");
    const before = await storedOf(owner.uid, visitId);
    expect(before).toMatchObject({ visit: 1, artifacts: 1, rateLimits: 1, storageObjects: 1 });
    expect(before.actionItems).toBeGreaterThan(0);

    const answer = await callApi("DELETE", `/visits/${visitId}`, owner.idToken);
    expectOk(answer);
    const body = answer.body as VisitDeletedBody;
    expect(body).toEqual({
      visitId,
      deleted: true,
      alreadyDeleted: false,
      removed: {
        visit: 1,
        transcriptDocuments: 1,
        claims: before.claims,
        actionItems: before.actionItems,
        rateLimits: 1,
        storageObjects: 1,
        // The seeded job is unknown to the fake AssemblyAI (404): nothing is left there, which counts as done.
        providerTranscripts: 1,
      },
      pendingProviderDeletes: 0,
      requestId: answer.headers.get("x-request-id"),
    });
    expect(await storedOf(owner.uid, visitId)).toEqual(NOTHING_STORED);
    expect(storage.objects()).toEqual([]);
    expect(assemblyai.requests.filter((r) => r.method === "DELETE").map((r) => r.path)).toEqual([`/v2/transcript/${transcriptId}`]);

    const again = await callApi("DELETE", `/visits/${visitId}`, owner.idToken);
    expectOk(again);
    expect(again.body).toEqual({ ...body, alreadyDeleted: true, requestId: again.headers.get("x-request-id") });
    expect(assemblyai.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
  });

  it("DELETE /visits/{id}: a visit transcribing after a retry — its live job is deleted at AssemblyAI", async () => {
    const owner = await signUpTestUser(suite.hosts.auth!, "delete-transcribing");
    const visitId = newVisitId();
    await seedFailedTranscriptionVisit({ visitId, uid: owner.uid, now: new Date() });
    await storeSeededRecording(visitId);
    expectAccepted(await retry(visitId, owner), { visitId, status: "transcribing", resumedStage: "transcription", retryCount: 1 });
    const [job] = assemblyai.jobRecords();
    expect((await assemblyAiJobs()).find((listed) => listed.id === job!.id)?.audio_url).toBe(job!.audioUrl);

    const answer = await callApi("DELETE", `/visits/${visitId}`, owner.idToken);
    expectOk(answer);
    expect(answer.body).toMatchObject({
      visitId,
      deleted: true,
      alreadyDeleted: false,
      removed: { visit: 1, storageObjects: 1, providerTranscripts: 1, rateLimits: 1 },
      pendingProviderDeletes: 0,
    });
    expect(await storedOf(owner.uid, visitId)).toEqual(NOTHING_STORED);
    expect((await assemblyAiJobs()).find((listed) => listed.id === job!.id)?.audio_url).toBe("http://deleted_by_user");
    expect(assemblyai.submitCount()).toBe(1);
  });

  it("DELETE /visits/{id}: 401 without a usable token, 404 for another user's visit exactly as for a missing one; nothing is deleted", async () => {
    const [owner, intruder] = await Promise.all([
      signUpTestUser(suite.hosts.auth!, "delete-owner"),
      signUpTestUser(suite.hosts.auth!, "delete-intruder"),
    ]);
    const visitId = newVisitId();
    await seedPartialVisit({ visitId, uid: owner.uid, now: new Date() });
    await storeSeededRecording(visitId);
    const before = await readVisit(visitId);
    const stored = await storedOf(owner.uid, visitId);

    expectError(await callApi("DELETE", `/visits/${visitId}`), 401, "unauthenticated");
    expectError(await callApi("DELETE", `/visits/${visitId}`, "not-a-token"), 401, "unauthenticated");
    const others = await callApi("DELETE", `/visits/${visitId}`, intruder.idToken);
    const missing = await callApi("DELETE", `/visits/${newVisitId()}`, intruder.idToken);
    expectError(others, 404, "visit_not_found");
    expectError(missing, 404, "visit_not_found");
    const withoutId = (answer: ApiAnswer) => ({ ...(answer.body as { error: object }).error, requestId: null });
    expect(withoutId(others)).toEqual(withoutId(missing));

    expect(await readVisit(visitId)).toEqual(before);
    expect(await storedOf(owner.uid, visitId)).toEqual(stored);
    expect(await countDocuments("deletedVisits")).toBe(0);
    expect(assemblyai.requests).toEqual([]);
  });

  it("DELETE /me: 200 deletes every visit of the owner and their recordings, another user's stay; 401 without a token", async () => {
    const [owner, other] = await Promise.all([
      signUpTestUser(suite.hosts.auth!, "leaving"),
      signUpTestUser(suite.hosts.auth!, "staying"),
    ]);
    const ownVisits = [newVisitId(), newVisitId()];
    await seedPartialVisit({ visitId: ownVisits[0]!, uid: owner.uid, now: new Date() });
    await seedFailedTranscriptionVisit({ visitId: ownVisits[1]!, uid: owner.uid, now: new Date() });
    const othersVisit = newVisitId();
    await seedPartialVisit({ visitId: othersVisit, uid: other.uid, now: new Date() });
    for (const visitId of [...ownVisits, othersVisit]) await storeSeededRecording(visitId);
    const othersBefore = await readVisit(othersVisit);

    expectError(await callApi("DELETE", "/me"), 401, "unauthenticated");
    expect(await countDocuments("visits")).toBe(3);

    const answer = await callApi("DELETE", "/me", owner.idToken);
    expectOk(answer);
    expect(answer.body).toMatchObject({
      visits: 2,
      removed: { visit: 2, transcriptDocuments: 1, storageObjects: 2 },
      pendingProviderDeletes: 0,
      complete: true,
      requestId: answer.headers.get("x-request-id"),
    });
    expect(Object.keys(answer.body as UserDataDeletedBody)).toEqual(["visits", "removed", "pendingProviderDeletes", "devices", "profile", "limitSlots", "complete", "requestId"]);
    for (const visitId of ownVisits) expect(await storedOf(owner.uid, visitId)).toEqual(NOTHING_STORED);
    expect(await readVisit(othersVisit)).toEqual(othersBefore);
    expect(storage.objects().map((object) => object.name)).toEqual([`users/${other.uid}/visits/${othersVisit}/visit-en.m4a`]);
  });

  it("GET /me/export: 200 streams the owner's visits, only theirs, as a JSON attachment; 401 without a token; 400 for a bad ?after=", async () => {
    const [owner, other] = await Promise.all([
      signUpTestUser(suite.hosts.auth!, "exporting"),
      signUpTestUser(suite.hosts.auth!, "bystander"),
    ]);
    const visitId = newVisitId();
    const othersVisit = newVisitId();
    await seedPartialVisit({ visitId, uid: owner.uid, now: new Date() });
    await seedPartialVisit({ visitId: othersVisit, uid: other.uid, now: new Date() });
    await storeSeededRecording(visitId);

    expectError(await callApi("GET", "/me/export"), 401, "unauthenticated");
    expectError(await callApi("GET", "/me/export?after=bad.id", owner.idToken), 400, "invalid_visit_id");

    const answer = await callApi("GET", "/me/export", owner.idToken);
    expectOk(answer);
    expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
    expect(answer.headers.get("content-disposition")).toMatch(/^attachment(;|$)/);
    const body = answer.body as ExportBody;
    expect(body).toMatchObject({ userId: owner.uid, complete: true, resumeAfter: null, requestId: answer.headers.get("x-request-id") });
    expect(body.visits.map((visit) => visit.visitId)).toEqual([visitId]);
    const [exported] = body.visits;
    expect(exported).toMatchObject({ status: "partial", error: { code: "summary_refused" }, recording: { fileName: "visit-en.m4a", downloadUrlExpiresInSeconds: 900 } });
    expect(exported!.transcript?.text.length).toBeGreaterThan(0);
    const link = new URL(exported!.recording!.downloadUrl!);
    expect(decodeURIComponent(link.pathname)).toBe(`/${DEFAULT_BUCKET}/users/${owner.uid}/visits/${visitId}/visit-en.m4a`);
    expect(link.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
    expect(JSON.stringify(body)).not.toContain(othersVisit);
    expect(JSON.stringify(body)).not.toContain(other.uid);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
