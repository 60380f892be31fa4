// The `api` function's retry endpoint over real HTTP with real Auth-emulator ID tokens: every status, concurrent clicks, and what each call did to Firestore and the providers.

import type { Firestore } from "firebase-admin/firestore";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import { db } from "../../functions/src/store/db.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { ASSEMBLYAI_ERROR_MESSAGES } from "../fakes/assemblyai.js";
import { startAuthEmulator } from "../support/auth-emulator.js";
import type { AuthEmulator } from "../support/auth-emulator.js";
import { sendRaw, serveHttpFunction, tokenCache } from "../support/http-function.js";
import type { ServedFunction } from "../support/http-function.js";
import { sleep, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { countDocuments, newVisitId, readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";
import type { ApiErrorBody, RetryAcceptedBody } from "../support/api-bodies.js";

interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// Whatever went wrong, a client never sees a stack frame, a source path or an exception name.
const STACK_TRACE = /\bat \S+ \(|\bat \S+:\d+:\d+|\.(?:ts|js|mjs):\d+|node_modules|\b\w*Error\b:|\n\s+at /;
const HOUR_MS = 3_600_000;
const TEST_DEFAULTS = { RETRY_COOLDOWN_SECONDS: "30", RETRY_QUOTA_PER_HOUR: "10", VISIT_DEADLINE_HOURS: undefined, ENFORCE_APP_CHECK: undefined };

let runtime: LocalRuntime;
let authEmulator: AuthEmulator;
let api: ServedFunction;

beforeAll(async () => {
  // The Auth emulator takes ~10 s to start: start the local runtime meanwhile.
  const [auth, local] = await Promise.allSettled([startAuthEmulator(), startLocalRuntime()]);
  if (auth.status === "fulfilled") authEmulator = auth.value;
  if (local.status === "fulfilled") runtime = local.value;
  if (auth.status === "rejected") throw auth.reason;
  if (local.status === "rejected") throw local.reason;
  api = await serveHttpFunction(runtime.functions.api);
}, 90_000);

afterAll(async () => {
  await api?.close();
  await runtime?.close();
  await authEmulator?.stop();
});

beforeEach(async () => {
  await runtime.reset();
  await runtime.setEnv(TEST_DEFAULTS);
  // Jobs finish at once, so fixtures settle in one checker round.
  runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: 0 });
});

afterEach(() => {
  // Back to the real clock (installRuntimeHooks merges; undefined removes a hook).
  installRuntimeHooks({ clock: undefined });
});

const tokenFor = tokenCache((uid) => authEmulator.createUserToken(uid));

async function request(
  method: string,
  path: string,
  options: { token?: string; authorization?: string; body?: string; contentType?: string } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  if (options.body !== undefined) headers["content-type"] = options.contentType ?? "application/json";
  const response = await fetch(`${api.baseUrl}${path}`, { method, headers, body: options.body });
  return readResponse(response.status, response.headers, await response.text());
}

/**
 * The path exactly as given: fetch (WHATWG URL) turns `/visits/%2E%2E/retry` into `/retry` before
 * sending, while a client with its own HTTP stack can send it as is.
 */
async function requestRawPath(method: string, path: string, token: string): Promise<ApiResponse> {
  const answer = await sendRaw(api.baseUrl, { method, path, headers: { authorization: `Bearer ${token}` } });
  return readResponse(answer.status, answer.headers, answer.text);
}

function readResponse(status: number, headers: Headers, text: string): ApiResponse {
  expect(text).not.toMatch(STACK_TRACE);
  return { status, headers, text, json: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

function retry(visitId: string, token: string): Promise<ApiResponse> {
  return request("POST", `/visits/${visitId}/retry`, { token });
}

/** Asserts the one error shape and its headers; returns the error. */
function expectApiError(response: ApiResponse, status: number, code: string): ApiErrorBody["error"] {
  expect({ status: response.status, body: response.json }).toMatchObject({ status, body: { error: { code } } });
  const requestId = response.headers.get("x-request-id");
  expect(requestId).toMatch(UUID);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  expect(response.headers.get("cache-control")).toBe("no-store");
  const body = response.json as ApiErrorBody;
  expect(Object.keys(body)).toEqual(["error"]);
  const limited = status === 429;
  expect(Object.keys(body.error).sort()).toEqual(
    limited ? ["code", "message", "requestId", "retryAfterSeconds"] : ["code", "message", "requestId"],
  );
  expect(body.error.requestId).toBe(requestId);
  expect(body.error.message).toMatch(/\S/);
  if (limited) {
    expect(Number.isInteger(body.error.retryAfterSeconds)).toBe(true);
    expect(body.error.retryAfterSeconds).toBeGreaterThan(0);
    expect(response.headers.get("retry-after")).toBe(String(body.error.retryAfterSeconds));
  } else {
    expect(response.headers.get("retry-after")).toBeNull();
  }
  return body.error;
}

function expectAccepted(response: ApiResponse, expected: Omit<RetryAcceptedBody, "requestId">): void {
  expect(response.status).toBe(202);
  const requestId = response.headers.get("x-request-id");
  expect(requestId).toMatch(UUID);
  expect(response.json as RetryAcceptedBody).toEqual({ ...expected, requestId });
}

/** Visits (one per owner) that end partial: their first summary is refused; the transcript is saved. */
async function partialVisits(owners: readonly string[], extraRefusals = 0): Promise<string[]> {
  runtime.openai.faults.enqueue("chat", { kind: "refusal" }, owners.length + extraRefusals);
  const visitIds = owners.map(() => newVisitId());
  for (const [index, uid] of owners.entries()) await runtime.upload({ uid, visitId: visitIds[index]! });
  await runtime.runUntilSettled(visitIds);
  for (const visitId of visitIds) {
    expect(await readVisit(visitId)).toMatchObject({ status: "partial", error: { code: "summary_refused", retryable: true } });
  }
  return visitIds;
}

async function partialVisit(uid: string, extraRefusals = 0): Promise<string> {
  const [visitId] = await partialVisits([uid], extraRefusals);
  return visitId!;
}

async function completedVisit(uid: string): Promise<string> {
  const visitId = newVisitId();
  await runtime.upload({ uid, visitId });
  await runtime.runUntilSettled([visitId]);
  expect((await readVisit(visitId)).status).toBe("completed");
  return visitId;
}

/** The visit's history from its first entry after `status`, as `status/event` pairs. */
function historyAfter(visit: Visit, status: Visit["status"]): string[] {
  const from = visit.history.map((entry) => entry.status).lastIndexOf(status);
  return visit.history.slice(from + 1).map((entry) => `${entry.status}/${entry.event}`);
}

function assemblyAiSubmits(): number {
  return runtime.assemblyai.requests.filter((r) => r.method === "POST" && r.path.startsWith("/v2/transcript")).length;
}

/** A rejected retry leaves the visit and the retry limits as they were. */
async function expectUntouched(visitId: string, before: Visit): Promise<void> {
  const after = await readVisit(visitId);
  expect(after).toEqual(before);
  expect(await countDocuments("rateLimits")).toBe(0);
}

describe("POST /visits/{visitId}/retry — 202 accepted", () => {
  it("resumes only summarization of a partial visit: transcript untouched, no AssemblyAI call, one more completion", async () => {
    const uid = "patient-partial";
    const visitId = await partialVisit(uid);
    const token = await tokenFor(uid);
    const transcriptBefore = await readTranscriptArtifact(visitId);
    const assemblyAiRequestsBefore = runtime.assemblyai.requests.length;
    expect(runtime.openai.completionCount()).toBe(1);

    // Held tasks keep the answer's status deterministic (the summary would otherwise race it).
    runtime.tasks.pause();
    const response = await retry(visitId, token);
    expectAccepted(response, { visitId, status: "summarizing", resumedStage: "summarization", retryCount: 1 });
    runtime.tasks.resume();
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit).toMatchObject({ status: "completed", retryCount: 1, error: null });
    expect(visit.summary?.overview.length).toBeGreaterThan(0);
    expect(historyAfter(visit, "partial")).toEqual(["summarizing/retry_accepted", "completed/summary_saved"]);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    // The transcript is the same one; the summary now written adds only who each speaker is.
    const transcriptAfter = await readTranscriptArtifact(visitId);
    expect({ ...transcriptAfter, speakerRoles: null }).toEqual(transcriptBefore);
    expect(transcriptAfter?.speakerRoles).toEqual(visit.summary?.speakers);
    expect(runtime.assemblyai.requests.length).toBe(assemblyAiRequestsBefore);
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(runtime.openai.completionCount()).toBe(2);
  });

  it("submits a visit failed by a retryable transcription error again, exactly once, as a new job", async () => {
    const uid = "patient-download";
    const visitId = newVisitId();
    // The first job fails at AssemblyAI: it could not download the recording.
    runtime.assemblyai.faults.enqueue("submit", { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    await runtime.upload({ uid, visitId });
    await runtime.runUntilSettled([visitId]);
    const failed = await readVisit(visitId);
    expect(failed).toMatchObject({
      status: "failed",
      error: { stage: "transcription", code: "audio_download_failed", retryable: true },
    });
    expect(runtime.assemblyai.submitCount()).toBe(1);

    const response = await retry(visitId, await tokenFor(uid));
    expectAccepted(response, { visitId, status: "transcribing", resumedStage: "transcription", retryCount: 1 });
    expect(runtime.assemblyai.submitCount()).toBe(2);
    expect(assemblyAiSubmits()).toBe(2);
    const resubmitted = await readVisit(visitId);
    expect(resubmitted.transcriptId).toMatch(/\S/);
    expect(resubmitted.transcriptId).not.toBe(failed.transcriptId);

    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit).toMatchObject({ status: "completed", retryCount: 1, transcriptId: resubmitted.transcriptId });
    expect(historyAfter(visit, "failed")).toEqual([
      "pending/retry_accepted",
      "transcribing/transcription_submitted",
      "summarizing/transcript_saved",
      "completed/summary_saved",
    ]);
    expect(runtime.assemblyai.submitCount()).toBe(2);
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("saves the finished transcript of a visit's known job without submitting again", async () => {
    const uid = "patient-deadline";
    const visitId = newVisitId();
    // The job is still processing when the checker runs 25 h later: the visit fails
    // deadline_exceeded. By the time the user retries, AssemblyAI has finished the job.
    runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: 1_500 });
    await runtime.upload({ uid, visitId });
    // The upload has returned: the job was submitted by now, and finishes 1.5 s after that.
    const uploadedMs = Date.now();
    installRuntimeHooks({ clock: () => new Date(Date.now() + 25 * HOUR_MS) });
    await runtime.runChecker();
    const failed = await readVisit(visitId);
    expect(failed).toMatchObject({ status: "failed", error: { stage: "transcription", code: "deadline_exceeded", retryable: true } });
    expect(failed.transcriptId).toMatch(/\S/);
    const token = await tokenFor(uid);
    await sleep(Math.max(0, uploadedMs + 1_700 - Date.now()));

    runtime.tasks.pause();
    const response = await retry(visitId, token);
    expectAccepted(response, { visitId, status: "summarizing", resumedStage: "transcript_checkpoint", retryCount: 1 });
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(assemblyAiSubmits()).toBe(1);
    const artifact = await readTranscriptArtifact(visitId);
    expect(artifact?.transcriptId).toBe(failed.transcriptId);

    runtime.tasks.resume();
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit).toMatchObject({ status: "completed", retryCount: 1, transcriptId: failed.transcriptId, error: null });
    expect(historyAfter(visit, "failed")).toEqual([
      "transcribing/retry_accepted",
      "summarizing/transcript_saved",
      "completed/summary_saved",
    ]);
    expect(visit.deadlineAt!.getTime()).toBeGreaterThan(Date.now() + 48 * HOUR_MS);
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("accepts a body of exactly 1 KiB", async () => {
    const uid = "patient-body";
    const visitId = await partialVisit(uid);
    const body = JSON.stringify({ note: "x".repeat(1024 - '{"note":""}'.length) });
    expect(Buffer.byteLength(body)).toBe(1024);
    const response = await request("POST", `/visits/${visitId}/retry`, { token: await tokenFor(uid), body });
    expect(response.status).toBe(202);
  });
});

describe("POST /visits/{visitId}/retry — rejected", () => {
  it.each([
    ["a dot", "bad.id"],
    ["a dot-dot segment, percent-encoded", "%2E%2E"],
    ["101 characters", "a".repeat(101)],
    ["a reserved __name__ id", "__visit__"],
    ["a malformed percent escape", "%ZZ"],
    ["an encoded slash", "a%2Fb"],
  ])("400 invalid_visit_id for %s", async (_label, rawVisitId) => {
    const response = await requestRawPath("POST", `/visits/${rawVisitId}/retry`, await tokenFor("patient-ids"));
    expectApiError(response, 400, "invalid_visit_id");
  });

  it("400 invalid_visit_id is answered before authentication", async () => {
    expectApiError(await request("POST", "/visits/bad.id/retry"), 400, "invalid_visit_id");
  });

  it("401 unauthenticated without a usable ID token, and the visit is untouched", async () => {
    const uid = "patient-auth";
    const visitId = await partialVisit(uid);
    const before = await readVisit(visitId);
    const validToken = await tokenFor(uid);
    const path = `/visits/${visitId}/retry`;
    const attempts: [string, string | undefined][] = [
      ["no Authorization header", undefined],
      ["another scheme", `Basic ${Buffer.from("user:password").toString("base64")}`],
      ["Bearer without a token", "Bearer"],
      ["a token in the wrong place", `Token ${validToken}`],
      ["garbage", "Bearer this-is-not-a-firebase-id-token-at-all"],
      ["a token for another project", `Bearer ${otherProjectToken(uid)}`],
      ["two tokens", `Bearer ${validToken} ${validToken}`],
    ];
    for (const [label, authorization] of attempts) {
      const response = await request("POST", path, authorization === undefined ? {} : { authorization });
      expect([label, response.status]).toEqual([label, 401]);
      expectApiError(response, 401, "unauthenticated");
    }
    await expectUntouched(visitId, before);
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("401 unauthenticated for a revoked token; a fresh sign-in works again", async () => {
    const uid = "patient-revoked";
    const visitId = await partialVisit(uid);
    const before = await readVisit(visitId);
    const revoked = await authEmulator.createUserToken(uid);
    await authEmulator.revokeTokens(uid);

    expectApiError(await retry(visitId, revoked), 401, "unauthenticated");
    await expectUntouched(visitId, before);

    const fresh = await authEmulator.createUserToken(uid);
    expect((await retry(visitId, fresh)).status).toBe(202);
  });

  it("404 visit_not_found for a missing visit and for another user's visit, answered identically", async () => {
    const owner = "patient-owner";
    const visitId = await partialVisit(owner);
    const before = await readVisit(visitId);
    const intruderToken = await tokenFor("patient-intruder");

    const missing = await retry(newVisitId("missing"), intruderToken);
    const othersVisit = await retry(visitId, intruderToken);
    const missingError = expectApiError(missing, 404, "visit_not_found");
    const othersError = expectApiError(othersVisit, 404, "visit_not_found");
    expect({ ...othersError, requestId: null }).toEqual({ ...missingError, requestId: null });
    expect(othersError.requestId).not.toBe(missingError.requestId);
    await expectUntouched(visitId, before);
  });

  it.each(["GET", "PUT", "DELETE", "PATCH"])("405 method_not_allowed with Allow: POST for %s on the retry path", async (method) => {
    const response = await request(method, "/visits/some-visit/retry", { token: await tokenFor("patient-methods") });
    expectApiError(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("POST");
  });

  it.each(["POST", "PUT", "DELETE"])("405 method_not_allowed with Allow: GET for %s /health", async (method) => {
    const response = await request(method, "/health");
    expectApiError(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("GET");
  });

  it("405 method_not_allowed with Allow: DELETE for POST on a visit (the visit path only deletes)", async () => {
    const response = await request("POST", "/visits/some-visit", { token: await tokenFor("patient-paths") });
    expectApiError(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("DELETE");
  });

  it.each([
    ["GET", "/"],
    ["POST", "/visits"],
    ["POST", "/visits/some-visit/retry/now"],
    ["POST", "/visits//retry"],
    ["POST", "/v1/visits/some-visit/retry"],
    ["GET", "/healthz"],
  ])("404 not_found for %s %s", async (method, path) => {
    expectApiError(await request(method, path, { token: await tokenFor("patient-paths") }), 404, "not_found");
  });

  describe("409 already_processing", () => {
    it("while pending (a submission waits for its next attempt)", async () => {
      const uid = "patient-pending";
      const visitId = newVisitId();
      runtime.assemblyai.faults.enqueue("submit", { kind: "reset" });
      await runtime.upload({ uid, visitId });
      const before = await readVisit(visitId);
      expect(before.status).toBe("pending");
      expectApiError(await retry(visitId, await tokenFor(uid)), 409, "already_processing");
      await expectUntouched(visitId, before);
    });

    it("while transcribing", async () => {
      const uid = "patient-transcribing";
      const visitId = newVisitId();
      runtime.assemblyai.setTiming({ queuedMs: 60_000 });
      await runtime.upload({ uid, visitId });
      const before = await readVisit(visitId);
      expect(before.status).toBe("transcribing");
      expectApiError(await retry(visitId, await tokenFor(uid)), 409, "already_processing");
      await expectUntouched(visitId, before);
      expect(runtime.assemblyai.submitCount()).toBe(1);
    });

    it("while summarizing", async () => {
      const uid = "patient-summarizing";
      const visitId = newVisitId();
      runtime.tasks.pause();
      await runtime.upload({ uid, visitId });
      await runtime.runChecker();
      const before = await readVisit(visitId);
      expect(before.status).toBe("summarizing");
      expectApiError(await retry(visitId, await tokenFor(uid)), 409, "already_processing");
      await expectUntouched(visitId, before);
      expect(runtime.openai.completionCount()).toBe(0);
    });
  });

  it("409 nothing_to_retry for a completed visit", async () => {
    const uid = "patient-done";
    const visitId = await completedVisit(uid);
    const before = await readVisit(visitId);
    expectApiError(await retry(visitId, await tokenFor(uid)), 409, "nothing_to_retry");
    await expectUntouched(visitId, before);
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("409 not_retryable for a visit failed by its recording (not audio)", async () => {
    const uid = "patient-text";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId, contentType: "text/plain", fileName: "notes.txt", sizeBytes: 1200 });
    const before = await readVisit(visitId);
    expect(before).toMatchObject({ status: "failed", error: { code: "invalid_content_type", retryable: false } });
    expectApiError(await retry(visitId, await tokenFor(uid)), 409, "not_retryable");
    await expectUntouched(visitId, before);
    expect(runtime.assemblyai.requests).toHaveLength(0);
  });

  it.each([
    ["JSON", "application/json", JSON.stringify({ padding: "x".repeat(2048) })],
    ["text", "text/plain", "x".repeat(2048)],
    ["binary", "application/octet-stream", "\u0001".repeat(2048)],
  ])("413 payload_too_large for a 2 KB %s body, before anything is read or written", async (_label, contentType, body) => {
    const uid = "patient-large";
    const visitId = await partialVisit(uid);
    const before = await readVisit(visitId);
    const response = await request("POST", `/visits/${visitId}/retry`, { token: await tokenFor(uid), body, contentType });
    expectApiError(response, 413, "payload_too_large");
    await expectUntouched(visitId, before);
  });

  it("429 retry_too_soon within the cooldown, with Retry-After; allowed again once it has passed", async () => {
    await runtime.setEnv({ RETRY_COOLDOWN_SECONDS: "300" });
    const uid = "patient-eager";
    // The retried summary is refused too, so the visit is retryable again right away.
    const visitId = await partialVisit(uid, 1);
    const token = await tokenFor(uid);
    expect((await retry(visitId, token)).status).toBe(202);
    await runtime.runUntilSettled([visitId]);
    const before = await readVisit(visitId);
    expect(before).toMatchObject({ status: "partial", retryCount: 1 });
    expect(runtime.openai.completionCount()).toBe(2);

    const error = expectApiError(await retry(visitId, token), 429, "retry_too_soon");
    expect(error.retryAfterSeconds).toBeGreaterThan(290);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(300);
    await runtime.tasks.drain();
    expect(await readVisit(visitId)).toEqual(before);
    expect(runtime.openai.completionCount()).toBe(2);

    installRuntimeHooks({ clock: () => new Date(Date.now() + 301_000) });
    expect((await retry(visitId, token)).status).toBe(202);
    await runtime.runUntilSettled([visitId]);
    expect(await readVisit(visitId)).toMatchObject({ status: "completed", retryCount: 2 });
    expect(runtime.openai.completionCount()).toBe(3);
  });

  it("429 retry_quota_exceeded past the per-user hourly quota; other users are not affected", async () => {
    await runtime.setEnv({ RETRY_QUOTA_PER_HOUR: "2", RETRY_COOLDOWN_SECONDS: "0" });
    const [first, second, third, othersVisit] = await partialVisits(["patient-busy", "patient-busy", "patient-busy", "patient-calm"]);
    const token = await tokenFor("patient-busy");
    expect((await retry(first!, token)).status).toBe(202);
    expect((await retry(second!, token)).status).toBe(202);
    const before = await readVisit(third!);

    const error = expectApiError(await retry(third!, token), 429, "retry_quota_exceeded");
    expect(error.retryAfterSeconds).toBeGreaterThan(3_500);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(3_600);
    expect(await readVisit(third!)).toEqual(before);

    expect((await retry(othersVisit!, await tokenFor("patient-calm"))).status).toBe(202);
  });

  it("500 internal for a visit document the pipeline cannot read, with no detail of the failure", async () => {
    const uid = "patient-corrupt";
    const visitId = newVisitId();
    await db().collection("visits").doc(visitId).set({ userId: uid, status: "exploded" });
    const response = await retry(visitId, await tokenFor(uid));
    const error = expectApiError(response, 500, "internal");
    expect(error.message).toBe("Something went wrong; try again later.");
    expect(response.text).not.toMatch(/visit_document_invalid|exploded|status/);
  });
});

describe("concurrent clicks", () => {
  it.each([2, 5])("%i simultaneous retries of one partial visit: one 202, one more OpenAI completion, completed once", async (clicks) => {
    const uid = `patient-clicks-${clicks}`;
    const visitId = await partialVisit(uid);
    const token = await tokenFor(uid);
    const enqueuedBefore = runtime.tasks.enqueued.length;

    const responses = await Promise.all(Array.from({ length: clicks }, () => retry(visitId, token)));
    const accepted = responses.filter((response) => response.status === 202);
    expect(accepted).toHaveLength(1);
    // The summary task may already have finished by the time the answer is written.
    const acceptedStatus = (accepted[0]!.json as RetryAcceptedBody).status;
    expect(["summarizing", "completed"]).toContain(acceptedStatus);
    expectAccepted(accepted[0]!, { visitId, status: acceptedStatus, resumedStage: "summarization", retryCount: 1 });
    for (const response of responses.filter((r) => r.status !== 202)) {
      // Real Firestore isolates the limit transaction (→ retry_too_soon); the embedded emulator
      // does not, and the retry's claim key turns the loser away (→ already_processing).
      const error = expectApiError(response, response.status, (response.json as ApiErrorBody).error.code);
      expect([[409, "already_processing"], [429, "retry_too_soon"]]).toContainEqual([response.status, error.code]);
    }

    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit).toMatchObject({ status: "completed", retryCount: 1 });
    expect(historyAfter(visit, "partial")).toEqual(["summarizing/retry_accepted", "completed/summary_saved"]);
    expect(runtime.openai.completionCount()).toBe(2);
    expect(runtime.tasks.enqueued.length - enqueuedBefore).toBe(1);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
  });
});

describe("GET /health and /health/ready", () => {
  it("/health: 200 status ok for anyone, without reading Firestore (a burst of 50 costs no reads)", async () => {
    const { db } = await import("../../functions/src/store/db.js");
    const reads = countFirestoreGets(db());
    const responses = await Promise.all(Array.from({ length: 50 }, () => request("GET", "/health")));
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.headers.get("x-request-id")).toMatch(UUID);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.json).toEqual({ status: "ok" });
    }
    expect(reads.stop()).toBe(0);
  });

  it("/health/ready: breakers for an operator; 403 for another signed-in user; 401 without a token", async () => {
    expectApiError(await request("GET", "/health/ready"), 401, "unauthenticated");
    expectApiError(await request("GET", "/health/ready", { token: await tokenFor("patient-not-operator") }), 403, "forbidden");
    const { getAuth } = await import("firebase-admin/auth");
    await authEmulator.createUserToken("operator-1");
    await getAuth().setCustomUserClaims("operator-1", { operator: true });
    const operatorToken = await authEmulator.createUserToken("operator-1");
    const response = await request("GET", "/health/ready", { token: operatorToken });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({
      status: "ok",
      breakers: { assemblyai: { state: "closed", openUntil: null }, openai: { state: "closed", openUntil: null } },
      queue: { due: 0, oldestDueAgeSeconds: null, stuck: 0, stuckByStatus: { pending: 0, transcribing: 0, summarizing: 0 }, stuckAfterMinutes: 120 },
      checker: { lastRun: null, stale: false },
    });
  });

  it("/health/ready: the due backlog and its oldest wait, the checker's last run, then stuck visits and a stale checker (degraded)", async () => {
    const { getAuth } = await import("firebase-admin/auth");
    await authEmulator.createUserToken("operator-2");
    await getAuth().setCustomUserClaims("operator-2", { operator: true });
    const operatorToken = await authEmulator.createUserToken("operator-2");
    const ready = async () => {
      const response = await request("GET", "/health/ready", { token: operatorToken });
      expect(response.status).toBe(200);
      return response.json as {
        status: string;
        queue: { due: number; oldestDueAgeSeconds: number | null; stuck: number; stuckByStatus: Record<string, number> };
        checker: { lastRun: { startedAt: string; finishedAt: string; durationMs: number; due: number; handled: number; outcomes: Record<string, number> } | null; stale: boolean };
      };
    };
    let offsetMs = 0;
    installRuntimeHooks({ clock: () => new Date(Date.now() + offsetMs) });
    // Three transcribing visits whose jobs stay queued at AssemblyAI, due for a check at once; a completed one.
    runtime.assemblyai.setTiming({ queuedMs: 3_600_000, processingMs: 0 });
    const visitIds = [newVisitId(), newVisitId(), newVisitId()];
    for (const visitId of visitIds) await runtime.upload({ uid: "ready-user", visitId });
    offsetMs = 40_000;
    const backlog = await ready();
    expect(backlog.status).toBe("ok");
    expect(backlog.queue).toMatchObject({ due: 3, stuck: 0 });
    expect(backlog.queue.oldestDueAgeSeconds).toBeGreaterThanOrEqual(40);
    expect(backlog.queue.oldestDueAgeSeconds).toBeLessThan(100);
    expect(backlog.checker.lastRun).toBeNull();

    // One checker run checks all three (still queued) and records itself.
    await runtime.runChecker();
    const checked = await ready();
    expect(checked.checker.lastRun).toMatchObject({ due: 3, handled: 3, outcomes: { still_processing: 3 } });
    expect(Date.parse(checked.checker.lastRun!.finishedAt) - Date.parse(checked.checker.lastRun!.startedAt)).toBe(checked.checker.lastRun!.durationMs);
    expect(Math.abs(Date.parse(checked.checker.lastRun!.finishedAt) - (Date.now() + offsetMs))).toBeLessThan(30_000);
    expect(checked.checker.stale).toBe(false);
    expect(checked.status).toBe("ok");

    // Three hours on, with no checker run since: the visits are stuck in transcribing, the checker stale.
    offsetMs = 3 * HOUR_MS;
    const late = await ready();
    expect(late.queue.stuck).toBe(3);
    expect(late.queue.stuckByStatus).toEqual({ pending: 0, transcribing: 3, summarizing: 0 });
    expect(late.queue.due).toBe(3);
    expect(late.checker.stale).toBe(true);
    expect(late.status).toBe("degraded");
  });
});

/** Counts document reads made through this Firestore client until stop(). */
function countFirestoreGets(firestore: Firestore): { stop(): number } {
  const proto = Object.getPrototypeOf(firestore.doc("x/y")) as { get: (...args: unknown[]) => Promise<unknown> };
  const original = proto.get;
  let count = 0;
  proto.get = function (this: unknown, ...args: unknown[]) {
    count += 1;
    return original.apply(this, args);
  };
  return {
    stop() {
      proto.get = original;
      return count;
    },
  };
}

/** A well-formed JWT for `uid`, issued for another Firebase project. */
function otherProjectToken(uid: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return [
    part({ alg: "RS256", kid: "forged", typ: "JWT" }),
    part({ iss: "https://securetoken.google.com/another-project", aud: "another-project", sub: uid, user_id: uid, iat: now, exp: now + 3600, auth_time: now }),
    part({ signature: "none" }),
  ].join(".");
}

describe("App Check (ENFORCE_APP_CHECK)", () => {
  // A token that verifies needs Google's App Check service (no emulator exists): what is proven
  // here is everything up to that call — the header is required and checked by the Admin SDK.
  it.each([
    ["no X-Firebase-AppCheck header", undefined],
    ["a garbled token", "not-a-jwt-but-long-enough-to-pass-the-shape-check"],
    ["a token of the wrong shape", "short"],
  ])("401 app_check_failed for %s, with a valid ID token, and the visit is untouched", async (_what, appCheckToken) => {
    await runtime.setEnv({ ENFORCE_APP_CHECK: "true" });
    const uid = "patient-appcheck";
    const visitId = newVisitId();
    runtime.openai.faults.enqueue("chat", { kind: "refusal" });
    await runtime.upload({ uid, visitId });
    await runtime.runUntilSettled([visitId]);
    const before = await readVisit(visitId);
    const headers: Record<string, string> = { authorization: `Bearer ${await tokenFor(uid)}` };
    if (appCheckToken !== undefined) headers["x-firebase-appcheck"] = appCheckToken;
    const response = await fetch(`${api.baseUrl}/visits/${visitId}/retry`, { method: "POST", headers });
    expectApiError(readResponse(response.status, response.headers, await response.text()), 401, "app_check_failed");
    await expectUntouched(visitId, before);
  });

  it("is not asked for while ENFORCE_APP_CHECK is off", async () => {
    const uid = "patient-no-appcheck";
    const visitId = newVisitId();
    runtime.openai.faults.enqueue("chat", { kind: "refusal" });
    await runtime.upload({ uid, visitId });
    await runtime.runUntilSettled([visitId]);
    expect((await retry(visitId, await tokenFor(uid))).status).toBe(202);
  });
});

