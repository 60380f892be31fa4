// The data lifecycle through the real handlers (storage trigger, checker, task handler, the Auth
// trigger) and the stage functions the HTTP API calls: a new recording replacing a failed one,
// retries after a re-upload, deleting a visit in every status and while work is in flight,
// account deletion, export, audio and provider retention, TTL fields, and uploads the pipeline
// throws away. Everything is counted where it lives: Firestore, the fake Cloud Storage, the fake
// AssemblyAI and what reached the fake OpenAI. Time moves with the runtime clock hook.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import functionsTest from "firebase-functions-test";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pipeline } from "../../functions/src/pipeline.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { FailpointName } from "../../functions/src/runtime-hooks.js";
import { SWEEP_DELAY_SECONDS, deleteUserData, deleteVisit } from "../../functions/src/stages/delete-visit.js";
import type { DeleteVisitOutcome } from "../../functions/src/stages/delete-visit.js";
import { exportUserData } from "../../functions/src/stages/export-user-data.js";
import { deleteExpiredRecordings } from "../../functions/src/stages/retention.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { db } from "../../functions/src/store/db.js";
import { getTombstone } from "../../functions/src/store/tombstones.js";
import type { DeletionCounts } from "../../functions/src/store/tombstones.js";
import { applyVisitEvent } from "../../functions/src/store/visits.js";
import { visitError } from "../../functions/src/visit/errors.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { ASSEMBLYAI_ERROR_MESSAGES } from "../fakes/assemblyai.js";
import {
  countDocs,
  docExists,
  docIds,
  erased,
  footprint,
  isTimestamp,
  objectsUnder,
  providerJobsOf,
  readDoc,
  userDeletionId,
  userRateLimitId,
  visitFolder,
} from "../support/lifecycle.js";
import type { VisitFootprint } from "../support/lifecycle.js";
import { supportDocumentIdCursors } from "../support/embedded-firestore-cursors.js";
import { createFailpoints } from "../support/failpoints.js";
import { BUCKET, PROJECT_ID, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readActionItems, readTranscriptArtifact, readVisit, visitExists } from "../support/visits.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MIB = 1024 * 1024;

let runtime: LocalRuntime;
let clockOffsetMs = 0;
const failpoints = createFailpoints();

/** Env keys any test may set; put back to their defaults after each test. */
const TUNED_ENV = [
  "AUDIO_RETENTION_DAYS",
  "DELETE_PROVIDER_TRANSCRIPTS",
  "SUMMARY_MAX_ATTEMPTS",
  "SUMMARY_MAX_AUDIO_SECONDS",
  "TRANSCRIPTION_MAX_ATTEMPTS",
  "PROVIDER_RETRY_MIN_DELAY_MS",
  "BREAKER_FAILURE_THRESHOLD",
  "VISIT_DEADLINE_HOURS",
  "RETRY_COOLDOWN_SECONDS",
] as const;

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
  // The export pages a user's visits by document id, which the embedded Firestore cannot do alone.
  if (runtime.firestore.embedded) supportDocumentIdCursors();
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined, failpoint: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  clockOffsetMs = 0;
  failpoints.releaseAll();
  installRuntimeHooks({ clock: () => new Date(Date.now() + clockOffsetMs), failpoint: failpoints.hook });
});

afterEach(async () => {
  // A stall a failed test left behind must not keep an invocation hanging into the next test.
  failpoints.releaseAll();
  runtime.tasks.resume();
  await runtime.setEnv(Object.fromEntries(TUNED_ENV.map((key) => [key, undefined])));
});

// ---------------------------------------------------------------------------------------------
// Helpers

function advanceClock(seconds: number): void {
  clockOffsetMs += seconds * 1000;
}

function now(): Date {
  return new Date(Date.now() + clockOffsetMs);
}

/** A generous function deadline (the stages stop taking new work near it). */
function deadline(): number {
  return Date.now() + 120_000;
}

async function settle(visitIds: string[]): Promise<void> {
  await runtime.runUntilSettled(visitIds, { advance: () => advanceClock(90) });
}

const stallAt = (point: FailpointName, skip = 0) => failpoints.stallAt(point, skip);

function deleteAs(uid: string, visitId: string): Promise<DeleteVisitOutcome> {
  return deleteVisit(pipeline(), { visitId, uid, reason: "user" }, deadline());
}

function retryAs(uid: string, visitId: string) {
  return retryVisit(pipeline(), { visitId, uid }, deadline());
}

function removedOf(outcome: DeleteVisitOutcome): DeletionCounts {
  if (outcome.kind !== "deleted") throw new Error(`expected a deletion, got ${outcome.kind}`);
  return outcome.removed;
}

/** Every prompt the fake OpenAI received, as text. */
function prompts(): string[] {
  return runtime.openai.requests.filter((request) => request.method === "POST").map((request) => JSON.stringify(request.body));
}

function turns(marker: string, count = 4): { speaker: string; text: string }[] {
  return Array.from({ length: count }, (_, index) => ({
    speaker: index % 2 === 0 ? "clinician" : "patient",
    text: `We talked about the ${marker} plan, part ${index + 1}, and agreed to follow up next week.`,
  }));
}

/** Utterances of ~90 words each: `count` of them make a transcript larger than one Firestore document. */
function longTurns(marker: string, count: number): { speaker: string; text: string }[] {
  const words = `${marker} patient reports intermittent chest tightness after climbing stairs and some shortness of breath`.split(" ");
  return Array.from({ length: count }, (_, i) => ({
    speaker: i % 2 === 0 ? "clinician" : "patient",
    text: Array.from({ length: 90 }, (_, w) => words[(i + w) % words.length]).join(" ") + ".",
  }));
}

/** Ends a transcribing visit the way an expired deadline does (the pipeline's own transition). */
async function failTranscribingVisit(visitId: string): Promise<void> {
  const written = await applyVisitEvent(
    visitId,
    { type: "transcription_failed", error: visitError("transcription", "deadline_exceeded") },
    { now: now(), guard: { statuses: ["transcribing"] }, fields: { lease: null } },
  );
  expect(written.applied).toBe(true);
}

async function claimGenerations(visitId: string): Promise<string[]> {
  const snapshot = await db().collection(`visits/${visitId}/claims`).get();
  return snapshot.docs.map((doc) => doc.get("generation") as unknown).filter((g): g is string => typeof g === "string");
}

function generationOf(visit: Visit): string {
  if (!visit.audio) throw new Error(`visit ${visit.id} has no recording`);
  return visit.audio.generation;
}

// ---------------------------------------------------------------------------------------------

describe("a new recording uploaded into a failed visit replaces the earlier one entirely", () => {
  it("after a transcription error (audio_download_failed): old object, job and claims gone; the new recording is what gets summarized", async () => {
    runtime.assemblyai.registerAudio("bad-download", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    const uid = "user-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId, fileName: "bad-download.m4a" });
    await settle([visitId]);
    const failed = await readVisit(visitId);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ stage: "transcription", code: "audio_download_failed", retryable: true });
    const oldGeneration = generationOf(failed);
    const oldJob = failed.transcriptId;
    expect(oldJob).toBeTruthy();
    expect(await claimGenerations(visitId)).toContain(oldGeneration);
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([`${visitFolder(uid, visitId)}bad-download.m4a#${oldGeneration}`]);

    await runtime.upload({ uid, visitId, fileName: "visit-en.m4a" });
    await settle([visitId]);

    const visit = await readVisit(visitId);
    const newGeneration = generationOf(visit);
    expect(visit.status).toBe("completed");
    expect(newGeneration).not.toBe(oldGeneration);
    expect(visit.error).toBeNull();
    // Only the new object is left in Storage.
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([`${visitFolder(uid, visitId)}visit-en.m4a#${newGeneration}`]);
    // The old job is deleted at AssemblyAI; the new one was submitted with the new recording's URL.
    const jobs = await providerJobsOf(runtime.assemblyai, visitId);
    expect(jobs).toHaveLength(2);
    expect(jobs.find((job) => job.id === oldJob)?.deleted).toBe(true);
    expect(jobs.find((job) => job.id === visit.transcriptId)?.objectPath).toContain(`/visits/${visitId}/visit-en.m4a`);
    // No claim of the old recording is left.
    expect(await claimGenerations(visitId)).not.toContain(oldGeneration);
    expect((await claimGenerations(visitId)).every((generation) => generation === newGeneration)).toBe(true);
    expect((await readTranscriptArtifact(visitId))?.generation).toBe(newGeneration);
    expect(prompts()).toHaveLength(1);
    expect(prompts()[0]).toContain("lisinopril");
  });

  it("after no_speech_detected: the earlier (empty) transcript artifact is replaced by the new recording's", async () => {
    runtime.assemblyai.registerAudio("silence", { kind: "empty" });
    const uid = "user-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId, fileName: "silence.m4a" });
    await settle([visitId]);
    const failed = await readVisit(visitId);
    expect(failed.error).toMatchObject({ code: "no_speech_detected" });
    const oldGeneration = generationOf(failed);
    expect(await readTranscriptArtifact(visitId)).toMatchObject({ generation: oldGeneration, text: "", utterances: [] });
    const oldJob = failed.transcriptId;

    await runtime.upload({ uid, visitId, fileName: "visit-en.m4a" });
    await settle([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const artifact = await readTranscriptArtifact(visitId);
    expect(artifact?.generation).toBe(generationOf(visit));
    expect(artifact?.text).toContain("lisinopril");
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([`${visitFolder(uid, visitId)}visit-en.m4a#${generationOf(visit)}`]);
    expect((await providerJobsOf(runtime.assemblyai, visitId)).every((job) => job.deleted)).toBe(true);
    expect((await providerJobsOf(runtime.assemblyai, visitId)).map((job) => job.id)).toContain(oldJob);
    expect(await claimGenerations(visitId)).not.toContain(oldGeneration);
    expect(prompts()).toHaveLength(1);
    expect(prompts()[0]).toContain("lisinopril");
  });

  it("after a long transcript saved in pages: a shorter new recording leaves no page, object, job or claim of the old one", async () => {
    runtime.assemblyai.registerAudio("long-take", { kind: "transcript", languageCode: "en", turns: longTurns("violetharbor", 800) });
    runtime.assemblyai.registerAudio("short-take", { kind: "transcript", languageCode: "en", turns: turns("ambermeadow") });
    const uid = "user-1";
    const visitId = newVisitId();
    runtime.tasks.pause();
    await runtime.upload({ uid, visitId, fileName: "long-take.m4a" });
    // The check that fetched the long transcript is held right before it saves it; meanwhile
    // the visit ends failed (as an expired deadline ends it); then the check saves its pages.
    const check = stallAt("after_transcript_fetch");
    const checker = runtime.runChecker();
    await check.reached;
    await failTranscribingVisit(visitId);
    check.release();
    await checker;
    const failed = await readVisit(visitId);
    expect(failed.status).toBe("failed");
    const oldGeneration = generationOf(failed);
    const oldArtifact = await readTranscriptArtifact(visitId);
    expect(oldArtifact).toMatchObject({ storage: "paged", generation: oldGeneration });
    const oldPages = await countDocs(`visits/${visitId}/artifacts/transcript/pages`);
    expect(oldPages).toBeGreaterThan(1);
    expect(oldPages).toBe(oldArtifact?.pageCount);
    const oldJob = failed.transcriptId;
    expect((await providerJobsOf(runtime.assemblyai, visitId)).find((job) => job.id === oldJob)?.deleted).toBe(false);
    runtime.tasks.resume();

    await runtime.upload({ uid, visitId, fileName: "short-take.m4a" });
    await settle([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const newGeneration = generationOf(visit);
    expect(await readTranscriptArtifact(visitId)).toMatchObject({ storage: "inline", generation: newGeneration, pageCount: 0 });
    expect(await countDocs(`visits/${visitId}/artifacts/transcript/pages`)).toBe(0);
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([`${visitFolder(uid, visitId)}short-take.m4a#${newGeneration}`]);
    const jobs = await providerJobsOf(runtime.assemblyai, visitId);
    expect(jobs.find((job) => job.id === oldJob)?.deleted).toBe(true);
    expect(await claimGenerations(visitId)).not.toContain(oldGeneration);
    // Only the new transcript reached the summary model.
    expect(prompts()).toHaveLength(1);
    expect(prompts()[0]).toContain("ambermeadow");
    expect(prompts().join("\n")).not.toContain("violetharbor");
    expect(visit.transcript?.utteranceCount).toBe(4);
  });

  it("a late check of the replaced recording, finishing after the new transcript is saved, changes nothing", async () => {
    runtime.assemblyai.registerAudio("first-take", { kind: "transcript", languageCode: "en", turns: turns("violetharbor") });
    runtime.assemblyai.registerAudio("second-take", { kind: "transcript", languageCode: "en", turns: turns("ambermeadow") });
    const uid = "user-1";
    const visitId = newVisitId();
    runtime.tasks.pause();
    await runtime.upload({ uid, visitId, fileName: "first-take.m4a" });
    const staleCheck = stallAt("after_transcript_fetch");
    const staleChecker = runtime.runChecker();
    await staleCheck.reached;
    await failTranscribingVisit(visitId);

    // The new recording is uploaded and its transcript saved while the old check still hangs.
    await runtime.upload({ uid, visitId, fileName: "second-take.m4a" });
    advanceClock(60);
    await runtime.runChecker();
    const summarizing = await readVisit(visitId);
    expect(summarizing.status).toBe("summarizing");
    const newGeneration = generationOf(summarizing);
    expect((await readTranscriptArtifact(visitId))?.generation).toBe(newGeneration);

    staleCheck.release();
    await staleChecker;
    expect((await readTranscriptArtifact(visitId))?.generation).toBe(newGeneration);
    expect(JSON.stringify(await readTranscriptArtifact(visitId))).not.toContain("violetharbor");

    runtime.tasks.resume();
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(prompts().join("\n")).toContain("ambermeadow");
    expect(prompts().join("\n")).not.toContain("violetharbor");
  });

  it.each([
    ["", false],
    [" (AssemblyAI's job list failing while the re-upload looks for its job)", true],
  ])("a late submission of the replaced recording cannot attach its job to the new recording%s", async (_, searchFails) => {
    await runtime.setEnv({ VISIT_DEADLINE_HOURS: "1", PROVIDER_RETRY_MIN_DELAY_MS: "1" });
    runtime.assemblyai.registerAudio("first-take", { kind: "transcript", languageCode: "en", turns: turns("violetharbor") });
    runtime.assemblyai.registerAudio("second-take", { kind: "transcript", languageCode: "en", turns: turns("ambermeadow") });
    const uid = "user-1";
    const visitId = newVisitId();
    // The first recording's submission pays, then its instance hangs (a zombie).
    const staleSubmit = stallAt("after_transcription_submit");
    const staleUpload = runtime.upload({ uid, visitId, fileName: "first-take.m4a" });
    await staleSubmit.reached;
    // Its lease and the visit's deadline pass: the checker ends the visit failed (deadline_exceeded).
    advanceClock(2 * 3600);
    await runtime.runChecker();
    const failed = await readVisit(visitId);
    expect(failed.status).toBe("failed");
    expect(failed.error?.code).toBe("deadline_exceeded");

    // The re-upload looks for the zombie's job (its claim has only the audio URL's hash) to
    // delete it; when that search fails, the zombie must delete its job itself once it wakes.
    if (searchFails) runtime.assemblyai.faults.enqueue("list", { kind: "status", status: 500 }, 3);
    // The new recording's first submission is in flight when the zombie wakes up.
    const freshSubmit = stallAt("after_transcription_submit");
    const freshUpload = runtime.upload({ uid, visitId, fileName: "second-take.m4a" });
    await freshSubmit.reached;
    staleSubmit.release();
    await staleUpload;
    freshSubmit.release();
    await freshUpload;

    if (searchFails) expect(runtime.assemblyai.faults.injected.map((fault) => fault.route)).toEqual(["list", "list", "list"]);
    const submitted = await readVisit(visitId);
    const jobs = await providerJobsOf(runtime.assemblyai, visitId);
    const jobOfVisit = jobs.find((job) => job.id === submitted.transcriptId);
    expect(submitted.status).toBe("transcribing");
    expect(jobOfVisit?.objectPath).toContain("second-take.m4a");
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(prompts().join("\n")).toContain("ambermeadow");
    expect(prompts().join("\n")).not.toContain("violetharbor");
    // The zombie's job, of a recording that no longer exists, is deleted at AssemblyAI.
    const firstTakeJobs = (await providerJobsOf(runtime.assemblyai, visitId)).filter((job) => job.objectPath.endsWith("/first-take.m4a"));
    expect(firstTakeJobs).toHaveLength(1);
    expect(firstTakeJobs.every((job) => job.deleted)).toBe(true);
    expect(await claimGenerations(visitId)).toEqual(expect.arrayContaining([generationOf(visit)]));
    expect((await claimGenerations(visitId)).every((generation) => generation === generationOf(visit))).toBe(true);
  });
});

describe("a retry after a re-upload (the reported bug)", () => {
  async function failedWithTranscript(uid: string, visitId: string): Promise<Visit> {
    runtime.tasks.pause();
    await runtime.upload({ uid, visitId, fileName: "first-take.m4a" });
    const check = stallAt("after_transcript_fetch");
    const checker = runtime.runChecker();
    await check.reached;
    await failTranscribingVisit(visitId);
    check.release();
    await checker;
    runtime.tasks.resume();
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.error?.retryable).toBe(true);
    expect((await readTranscriptArtifact(visitId))?.generation).toBe(generationOf(visit));
    return visit;
  }

  it("never resumes from the previous recording's transcript: the new recording is submitted and summarized", async () => {
    runtime.assemblyai.registerAudio("first-take", { kind: "transcript", languageCode: "en", turns: turns("violetharbor") });
    runtime.assemblyai.registerAudio("second-take", { kind: "transcript", languageCode: "en", turns: turns("ambermeadow") });
    const uid = "user-1";
    const visitId = newVisitId();
    const first = await failedWithTranscript(uid, visitId);

    // The new recording fails retryably at transcription (AssemblyAI could not download it).
    runtime.assemblyai.faults.enqueue("submit", { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    await runtime.upload({ uid, visitId, fileName: "second-take.m4a" });
    await settle([visitId]);
    const failedAgain = await readVisit(visitId);
    expect(failedAgain.status).toBe("failed");
    expect(failedAgain.error).toMatchObject({ stage: "transcription", code: "audio_download_failed", retryable: true });
    expect(generationOf(failedAgain)).not.toBe(generationOf(first));
    expect(await readTranscriptArtifact(visitId)).toBeUndefined();
    const submitsBefore = runtime.assemblyai.submitCount();

    const retried = await retryAs(uid, visitId);
    expect(retried).toMatchObject({ kind: "accepted", resumedStage: "transcription" });
    await settle([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    // A new, paid submission of the new recording's URL.
    expect(runtime.assemblyai.submitCount()).toBe(submitsBefore + 1);
    const lastJob = runtime.assemblyai.jobRecords().at(-1);
    expect(lastJob?.id).toBe(visit.transcriptId);
    expect(decodeURIComponent(lastJob?.audioUrl ?? "")).toContain(`/visits/${visitId}/second-take.m4a`);
    expect((await readTranscriptArtifact(visitId))?.generation).toBe(generationOf(visit));
    expect(JSON.stringify(await readTranscriptArtifact(visitId))).toContain("ambermeadow");
    expect(prompts()).toHaveLength(1);
    expect(prompts()[0]).toContain("ambermeadow");
    expect(prompts()[0]).not.toContain("violetharbor");
  });

  it("also when a check of the previous recording wakes up between the re-upload and the retry", async () => {
    runtime.assemblyai.registerAudio("first-take", { kind: "transcript", languageCode: "en", turns: turns("violetharbor") });
    runtime.assemblyai.registerAudio("second-take", { kind: "transcript", languageCode: "en", turns: turns("ambermeadow") });
    const uid = "user-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId, fileName: "first-take.m4a" });
    const staleCheck = stallAt("after_transcript_fetch");
    const staleChecker = runtime.runChecker();
    await staleCheck.reached;
    await failTranscribingVisit(visitId);

    runtime.assemblyai.faults.enqueue("submit", { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    await runtime.upload({ uid, visitId, fileName: "second-take.m4a" });
    await settle([visitId]);
    expect((await readVisit(visitId)).error?.code).toBe("audio_download_failed");

    // The old check now saves what it fetched: the replaced recording's transcript must not come back.
    staleCheck.release();
    await staleChecker;
    expect(JSON.stringify((await readTranscriptArtifact(visitId)) ?? null)).not.toContain("violetharbor");

    const submitsBefore = runtime.assemblyai.submitCount();
    expect(await retryAs(uid, visitId)).toMatchObject({ kind: "accepted", resumedStage: "transcription" });
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.assemblyai.submitCount()).toBe(submitsBefore + 1);
    expect(decodeURIComponent(runtime.assemblyai.jobRecords().at(-1)?.audioUrl ?? "")).toContain("second-take.m4a");
    expect(prompts().join("\n")).toContain("ambermeadow");
    expect(prompts().join("\n")).not.toContain("violetharbor");
  });
});

// ---------------------------------------------------------------------------------------------

type DeletableStatus = "pending" | "transcribing" | "summarizing" | "completed" | "partial" | "failed";

/** Brings a new visit of `uid` into `status` through the real handlers, with as much data as that status can have. */
async function visitIn(status: DeletableStatus, uid: string, visitId: string): Promise<Visit> {
  switch (status) {
    case "pending":
      // AssemblyAI created the job but the answer was lost: the submission waits to be retried,
      // and only the claim knows a request left (its job id is unknown).
      runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 504, afterCommit: true });
      await runtime.upload({ uid, visitId });
      break;
    case "transcribing":
      runtime.assemblyai.setTiming({ queuedMs: 3_600_000 });
      await runtime.upload({ uid, visitId });
      break;
    case "summarizing":
      runtime.tasks.pause();
      await runtime.upload({ uid, visitId });
      await runtime.runChecker();
      break;
    case "completed":
      await runtime.upload({ uid, visitId });
      await settle([visitId]);
      break;
    case "partial": {
      // The model keeps refusing: partial, retried once (a retry window exists), partial again.
      runtime.openai.faults.enqueue("chat", { kind: "refusal" }, 100);
      await runtime.upload({ uid, visitId });
      await settle([visitId]);
      expect(await retryAs(uid, visitId)).toMatchObject({ kind: "accepted", resumedStage: "summarization" });
      await settle([visitId]);
      runtime.openai.faults.clear();
      break;
    }
    case "failed":
      // AssemblyAI cannot download it, before and after a retry: two failed jobs there.
      runtime.assemblyai.registerAudio("bad-download", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
      await runtime.upload({ uid, visitId, fileName: "bad-download.m4a" });
      await settle([visitId]);
      expect(await retryAs(uid, visitId)).toMatchObject({ kind: "accepted", resumedStage: "transcription" });
      await settle([visitId]);
      break;
  }
  const visit = await readVisit(visitId);
  expect(visit.status).toBe(status);
  return visit;
}

function expectedCounts(before: VisitFootprint): Partial<DeletionCounts> {
  return {
    visit: 1,
    transcriptDocuments: before.artifacts + before.pages,
    claims: before.claims,
    actionItems: before.actionItems,
    rateLimits: before.visitRateLimit ? 1 : 0,
    storageObjects: before.storageObjects,
  };
}

describe("deleting a visit", () => {
  const STATUSES: DeletableStatus[] = ["pending", "transcribing", "summarizing", "completed", "partial", "failed"];

  it.each(STATUSES)("in status %s leaves nothing of it anywhere; repeated, it answers the same; another user gets not_found", async (status) => {
    const uid = "owner-1";
    const visitId = newVisitId();
    const bystander = newVisitId();
    await runtime.upload({ uid: "bystander", visitId: bystander });
    await visitIn(status, uid, visitId);
    const before = await footprint(runtime, uid, visitId);
    expect(before).toMatchObject({ visit: true, storageObjects: 1 });
    expect(before.claims).toBeGreaterThan(0);
    expect(before.providerJobs).toBeGreaterThan(0);
    if (status === "completed") expect(before.actionItems).toBeGreaterThan(0);
    if (status === "summarizing" || status === "completed" || status === "partial") expect(before.artifacts).toBe(1);
    if (status === "partial" || status === "failed") expect(before.visitRateLimit).toBe(true);

    // Another user's request: answered like a missing visit, and nothing is touched.
    expect(await deleteAs("intruder", visitId)).toEqual({ kind: "not_found" });
    expect(await footprint(runtime, uid, visitId)).toEqual(before);
    expect(await getTombstone(visitId)).toBeNull();

    const outcome = await deleteAs(uid, visitId);
    expect(outcome).toMatchObject({ kind: "deleted", alreadyDeleted: false, pendingProviderDeletes: 0 });
    const removed = removedOf(outcome);
    expect(removed).toMatchObject(expectedCounts(before));
    expect(removed.providerTranscripts).toBeGreaterThanOrEqual(before.liveProviderJobs);
    expect(await footprint(runtime, uid, visitId)).toEqual(erased(before.providerJobs));

    // Work that was queued for it finds nothing and writes nothing.
    runtime.tasks.resume();
    await runtime.tasks.drain();
    advanceClock(SWEEP_DELAY_SECONDS + 60);
    await runtime.runChecker();
    await runtime.tasks.drain();
    expect(await footprint(runtime, uid, visitId)).toEqual(erased(before.providerJobs));

    const tombstone = await getTombstone(visitId);
    expect(tombstone).toMatchObject({ userId: uid, reason: "user", removed, pendingProviderDeletes: [] });
    expect(tombstone?.purgeAt.getTime()).toBeGreaterThan(now().getTime());
    expect(await deleteAs(uid, visitId)).toEqual({ kind: "deleted", alreadyDeleted: true, removed, pendingProviderDeletes: 0 });
    expect(await deleteAs("intruder", visitId)).toEqual({ kind: "not_found" });
    // The other user's visit is untouched.
    expect((await footprint(runtime, "bystander", bystander)).visit).toBe(true);
    expect(objectsUnder(runtime.storage, visitFolder("bystander", bystander))).toHaveLength(1);
  });

  it("5 concurrent deletions of one visit delete it once; all answer deleted with the same counts", async () => {
    const uid = "owner-1";
    const visitId = newVisitId();
    await visitIn("completed", uid, visitId);
    const before = await footprint(runtime, uid, visitId);
    const storageDeletesBefore = runtime.storage.deletedCount();
    const providerDeletesBefore = runtime.assemblyai.requests.filter((request) => request.method === "DELETE").length;

    const outcomes = await Promise.all(Array.from({ length: 5 }, () => deleteAs(uid, visitId)));

    expect(outcomes.every((outcome) => outcome.kind === "deleted")).toBe(true);
    expect(outcomes.filter((outcome) => outcome.kind === "deleted" && !outcome.alreadyDeleted)).toHaveLength(1);
    const tombstone = await getTombstone(visitId);
    for (const outcome of outcomes) expect(removedOf(outcome)).toEqual(tombstone?.removed);
    expect(tombstone?.removed).toMatchObject(expectedCounts(before));
    expect(runtime.storage.deletedCount() - storageDeletesBefore).toBe(1);
    const providerDeletes = runtime.assemblyai.requests.filter((request) => request.method === "DELETE").length - providerDeletesBefore;
    expect(providerDeletes).toBe(tombstone?.removed.providerTranscripts);
    expect(await footprint(runtime, uid, visitId)).toEqual(erased(before.providerJobs));
  });
});

describe("deleting a visit while work on it is in flight", () => {
  /** After the deletion: advance past the tombstone's sweep and run the checker; nothing may be left. */
  async function sweepAndExpectErased(uid: string, visitId: string): Promise<void> {
    const tombstone = await getTombstone(visitId);
    expect(tombstone?.sweepAt).not.toBeNull();
    advanceClock(SWEEP_DELAY_SECONDS + 60);
    await runtime.runChecker();
    await runtime.tasks.drain();
    const jobs = await providerJobsOf(runtime.assemblyai, visitId);
    expect(await footprint(runtime, uid, visitId)).toEqual(erased(jobs.length));
    expect((await getTombstone(visitId))?.sweepAt).toBeNull();
  }

  it("a submission paused right after the paid call: the visit does not come back and its new job is deleted", async () => {
    const uid = "owner-1";
    const visitId = newVisitId();
    const submission = stallAt("after_transcription_submit");
    const upload = runtime.upload({ uid, visitId });
    await submission.reached;
    expect(runtime.assemblyai.submitCount()).toBe(1);
    const job = runtime.assemblyai.jobRecords()[0];

    expect(await deleteAs(uid, visitId)).toMatchObject({ kind: "deleted", alreadyDeleted: false });
    submission.release();
    await upload;

    expect(await visitExists(visitId)).toBe(false);
    expect(await countDocs(`visits/${visitId}/claims`)).toBe(0);
    expect(await countDocs(`visits/${visitId}/artifacts`)).toBe(0);
    const jobs = await providerJobsOf(runtime.assemblyai, visitId);
    expect(jobs.map((j) => [j.id, j.deleted])).toEqual([[job?.id, true]]);
    await sweepAndExpectErased(uid, visitId);
  });

  it("a check paused after fetching a long transcript: no artifact or page of it survives", async () => {
    runtime.assemblyai.registerAudio("long-take", { kind: "transcript", languageCode: "en", turns: longTurns("violetharbor", 800) });
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId, fileName: "long-take.m4a" });
    const check = stallAt("after_transcript_fetch");
    const checker = runtime.runChecker();
    await check.reached;

    expect(await deleteAs(uid, visitId)).toMatchObject({ kind: "deleted" });
    check.release();
    await checker;

    expect(await visitExists(visitId)).toBe(false);
    expect(await countDocs(`visits/${visitId}/artifacts`)).toBe(0);
    expect(await countDocs(`visits/${visitId}/artifacts/transcript/pages`)).toBe(0);
    expect(await countDocs(`visits/${visitId}/claims`)).toBe(0);
    expect((await providerJobsOf(runtime.assemblyai, visitId)).every((job) => job.deleted)).toBe(true);
    expect(runtime.openai.requests).toHaveLength(0);
    await sweepAndExpectErased(uid, visitId);
  });

  it("a summarization paused after the model answered: no summary or action items are written, the visit does not come back", async () => {
    const uid = "owner-1";
    const visitId = newVisitId();
    runtime.tasks.pause();
    await runtime.upload({ uid, visitId });
    await runtime.runChecker();
    expect((await readVisit(visitId)).status).toBe("summarizing");
    const summary = stallAt("after_summary_call");
    const summarization = runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never) as Promise<unknown>;
    await summary.reached;
    expect(runtime.openai.completionCount()).toBe(1);

    expect(await deleteAs(uid, visitId)).toMatchObject({ kind: "deleted" });
    summary.release();
    await summarization;
    runtime.tasks.resume();
    await runtime.tasks.drain();

    expect(await visitExists(visitId)).toBe(false);
    expect(await readActionItems(visitId)).toEqual([]);
    expect(await countDocs(`visits/${visitId}/claims`)).toBe(0);
    expect(await countDocs(`visits/${visitId}/artifacts`)).toBe(0);
    // The queued task found nothing to do: no second paid call.
    expect(runtime.openai.completionCount()).toBe(1);
    await sweepAndExpectErased(uid, visitId);
  });

  it("late storage deliveries of the deleted visit's recording (5 at once) recreate nothing and delete the object", async () => {
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId });
    await settle([visitId]);
    const generation = generationOf(await readVisit(visitId));
    expect(await deleteAs(uid, visitId)).toMatchObject({ kind: "deleted" });
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([]);
    const submitsBefore = runtime.assemblyai.submitCount();

    // At-least-once delivery: the same object generation arrives again, five times at once (the
    // fake stores it again first, as if the deletion had raced its upload) — and one new upload.
    await Promise.all(Array.from({ length: 5 }, () => runtime.upload({ uid, visitId, generation })));
    await runtime.upload({ uid, visitId, fileName: "again.m4a" });

    expect(await visitExists(visitId)).toBe(false);
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([]);
    expect(runtime.assemblyai.submitCount()).toBe(submitsBefore);
    expect(await countDocs(`visits/${visitId}/claims`)).toBe(0);
  });
});

describe("account deletion", () => {
  async function userWithMixedVisits(uid: string): Promise<string[]> {
    runtime.assemblyai.registerAudio("bad-download", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    const completed = newVisitId();
    const failed = newVisitId();
    const transcribing = newVisitId();
    await runtime.upload({ uid, visitId: completed });
    await runtime.upload({ uid, visitId: failed, fileName: "bad-download.m4a" });
    await settle([completed, failed]);
    expect(await retryAs(uid, failed)).toMatchObject({ kind: "accepted" });
    await settle([failed]);
    runtime.assemblyai.setTiming({ queuedMs: 3_600_000 });
    await runtime.upload({ uid, visitId: transcribing });
    runtime.assemblyai.setTiming({ queuedMs: 0 });
    expect((await readVisit(completed)).status).toBe("completed");
    expect((await readVisit(failed)).status).toBe("failed");
    expect((await readVisit(transcribing)).status).toBe("transcribing");
    expect(await docExists(`rateLimits/${userRateLimitId(uid)}`)).toBe(true);
    return [completed, failed, transcribing];
  }

  async function otherUsersVisit(uid: string): Promise<{ visitId: string; before: VisitFootprint }> {
    const visitId = newVisitId();
    runtime.openai.faults.enqueue("chat", { kind: "refusal" }, 100);
    await runtime.upload({ uid, visitId });
    await settle([visitId]);
    expect(await retryAs(uid, visitId)).toMatchObject({ kind: "accepted" });
    await settle([visitId]);
    runtime.openai.faults.clear();
    return { visitId, before: await footprint(runtime, uid, visitId) };
  }

  async function expectUserErased(uid: string, visitIds: string[]): Promise<void> {
    for (const visitId of visitIds) {
      const jobs = await providerJobsOf(runtime.assemblyai, visitId);
      expect(await footprint(runtime, uid, visitId)).toEqual(erased(jobs.length));
      expect((await getTombstone(visitId))?.reason).toBe("account_deleted");
    }
    expect(await docExists(`rateLimits/${userRateLimitId(uid)}`)).toBe(false);
    expect(await docExists(`userDeletions/${userDeletionId(uid)}`)).toBe(false);
    expect((await db().collection("visits").where("userId", "==", uid).get()).size).toBe(0);
  }

  it("deleteUserData removes every visit of the user in any status, and the user's retry window; another user's data stays", async () => {
    const uid = "leaving-user";
    const visits = await userWithMixedVisits(uid);
    const other = await otherUsersVisit("staying-user");

    const result = await deleteUserData(pipeline(), { uid, reason: "account_deleted" }, Date.now() + 520_000);

    expect(result).toMatchObject({ visits: 3, complete: true, pendingProviderDeletes: 0 });
    expect(result.removed).toMatchObject({ visit: 3, storageObjects: 3, rateLimits: 2 });
    await expectUserErased(uid, visits);
    expect(await footprint(runtime, "staying-user", other.visitId)).toEqual(other.before);
    expect(await docExists(`rateLimits/${userRateLimitId("staying-user")}`)).toBe(true);
  });

  it("the onAccountDeleted Auth trigger (1st gen) does the same for the deleted account", async () => {
    const uid = "deleted-account";
    const visits = await userWithMixedVisits(uid);
    const other = await otherUsersVisit("staying-user");
    // Same project and bucket as the runtime's own instance: the environment it sets stays as it is.
    const fft = functionsTest({ projectId: PROJECT_ID, storageBucket: BUCKET });
    const onAccountDeleted = fft.wrap(runtime.functions.onAccountDeleted);

    await onAccountDeleted(fft.auth.makeUserRecord({ uid }));

    await expectUserErased(uid, visits);
    expect(await footprint(runtime, "staying-user", other.visitId)).toEqual(other.before);
  });

  it("an account deletion that runs out of time is kept and finished by the checker", async () => {
    const uid = "big-account";
    const visits = await userWithMixedVisits(uid);
    // A deadline already too close to start a page: nothing is deleted now, the request is kept.
    const result = await deleteUserData(pipeline(), { uid, reason: "account_deleted" }, Date.now());
    expect(result).toMatchObject({ visits: 0, complete: false });
    const kept = await readDoc(`userDeletions/${userDeletionId(uid)}`);
    expect(kept).toMatchObject({ uid, reason: "account_deleted" });
    expect(isTimestamp(kept?.purgeAt) && kept.purgeAt.toMillis() > now().getTime()).toBe(true);

    await runtime.runChecker();
    await expectUserErased(uid, visits);
  });
});

describe("exporting a user's data", () => {
  interface ExportedVisit {
    visitId: string;
    status: string;
    error: { code: string } | null;
    recording: { fileName: string; deletedAt: string | null; downloadUrl: string | null; downloadUrlExpiresInSeconds: number | null } | null;
    transcript: { languageCode: string | null; text: string; utterances: unknown[] } | null;
    summary: unknown;
    actionItems: { id: string; description: unknown }[];
  }
  interface ExportDocument {
    format: string;
    userId: string;
    visits: ExportedVisit[];
    complete: boolean;
    resumeAfter: string | null;
    requestId: string;
  }

  async function runExport(uid: string, options: { after?: string | null; deadlineMs?: number; onVisit?: (count: number) => Promise<void> } = {}) {
    const chunks: string[] = [];
    let visitsWritten = 0;
    const result = await exportUserData(
      pipeline(),
      { uid, requestId: "req-export", after: options.after ?? null },
      async (chunk) => {
        chunks.push(chunk);
        if (chunk.includes('"visitId"')) {
          visitsWritten += 1;
          await options.onVisit?.(visitsWritten);
        }
      },
      options.deadlineMs ?? deadline(),
    );
    return { result, document: JSON.parse(chunks.join("")) as ExportDocument, chunks: chunks.length };
  }

  it("streams every visit once, with transcript, summary and action items; recordings as expiring links, null once deleted", async () => {
    runtime.assemblyai.registerAudio("bad-download", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    const uid = "exporting-user";
    const completed: string[] = [];
    const failed: string[] = [];
    // The first ten recordings are kept one day only; the others the default 30 days.
    await runtime.setEnv({ AUDIO_RETENTION_DAYS: "1" });
    for (let batch = 0; batch < 6; batch++) {
      if (batch === 1) await runtime.setEnv({ AUDIO_RETENTION_DAYS: undefined });
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const visitId = newVisitId("exp");
          const fails = i % 3 === 2;
          (fails ? failed : completed).push(visitId);
          return runtime.upload({ uid, visitId, fileName: fails ? "bad-download.m4a" : "visit-en.m4a" });
        }),
      );
    }
    const others = newVisitId("exp");
    await runtime.upload({ uid: "someone-else", visitId: others });
    await settle([...completed, ...failed, others]);
    advanceClock(2 * 86_400);
    const retention = await deleteExpiredRecordings(pipeline(), deadline());
    expect(retention).toEqual({ deleted: 10, deferred: 0 });
    const audioDeleted = new Set([...completed, ...failed].sort().filter((id) => objectsUnder(runtime.storage, visitFolder(uid, id)).length === 0));
    expect(audioDeleted.size).toBe(10);
    // Back to the wall clock: the URL signer dates its signatures with it.
    clockOffsetMs = 0;

    const { result, document, chunks } = await runExport(uid);

    expect(result).toEqual({ visits: 60, complete: true });
    expect(chunks).toBeGreaterThan(60); // streamed a visit at a time
    expect(document).toMatchObject({ format: "visit-pipeline-export/1", userId: uid, complete: true, resumeAfter: null, requestId: "req-export" });
    const ids = document.visits.map((visit) => visit.visitId);
    expect(new Set(ids).size).toBe(60);
    expect([...ids].sort()).toEqual([...completed, ...failed].sort());
    expect(ids).not.toContain(others);
    expect(JSON.stringify(document)).not.toContain("someone-else");
    for (const exported of document.visits) {
      const stored = await readVisit(exported.visitId);
      if (completed.includes(exported.visitId)) {
        expect(exported.status).toBe("completed");
        expect(exported.transcript?.text).toContain("lisinopril");
        expect(exported.transcript?.utterances.length).toBe(14);
        expect(exported.summary).toEqual(JSON.parse(JSON.stringify(stored.summary)));
        const items = await readActionItems(exported.visitId);
        expect(items.length).toBeGreaterThan(0);
        expect(exported.actionItems.map((item) => [item.id, item.description])).toEqual(items.map((item) => [item.id, item.description]));
      } else {
        expect(exported).toMatchObject({ status: "failed", error: { code: "audio_download_failed" }, transcript: null, summary: null, actionItems: [] });
      }
      const recording = exported.recording;
      if (audioDeleted.has(exported.visitId)) {
        expect(recording).toMatchObject({ downloadUrl: null, downloadUrlExpiresInSeconds: null });
        expect(recording?.deletedAt).toEqual(stored.audio?.deletedAt?.toISOString());
      } else {
        expect(recording).toMatchObject({ deletedAt: null, downloadUrlExpiresInSeconds: 900 });
        const url = new URL(recording?.downloadUrl ?? "");
        expect(url.searchParams.get("X-Goog-Signature")).toMatch(/^[0-9a-f]{64,}$/);
        expect(url.searchParams.get("X-Goog-Expires")).toBe("900");
        expect(decodeURIComponent(url.pathname)).toContain(`${visitFolder(uid, exported.visitId)}${recording?.fileName}`);
      }
    }

    // Paging: an export out of time ends with complete:false and where to continue; continuing
    // with `after` brings the rest, with nothing twice.
    const tiny = await runExport(uid, { deadlineMs: Date.now() });
    expect(tiny.document).toMatchObject({ complete: false, visits: [], resumeAfter: null });
    // Enough time for one page only (the stage starts no page within 10 s of its deadline): the
    // page's last visit is written as that point passes.
    const budgetEndsAt = Date.now() + 10_000 + 1_500;
    const firstPart = await runExport(uid, {
      deadlineMs: budgetEndsAt,
      onVisit: async (count) => {
        if (count === 20) await new Promise((resolve) => setTimeout(resolve, Math.max(0, budgetEndsAt - 10_000 - Date.now() + 5)));
      },
    });
    expect(firstPart.document.complete).toBe(false);
    expect(firstPart.document.visits).toHaveLength(20);
    expect(firstPart.document.resumeAfter).toBe(firstPart.document.visits.at(-1)?.visitId);
    const rest = await runExport(uid, { after: firstPart.document.resumeAfter });
    expect(rest.document.complete).toBe(true);
    const joined = [...firstPart.document.visits, ...rest.document.visits].map((visit) => visit.visitId);
    expect(joined).toEqual(ids);
    // 61 visits through the whole pipeline: ~15 s on an idle 2-core machine, more under load.
  }, 150_000);
});

describe("audio retention (AUDIO_RETENTION_DAYS)", () => {
  it("deletes a recording past its retention from Storage; the visit keeps its transcript and summary", async () => {
    await runtime.setEnv({ AUDIO_RETENTION_DAYS: "1" });
    const uid = "owner-1";
    const visitId = newVisitId();
    const uploadedAt = now();
    await runtime.upload({ uid, visitId });
    await settle([visitId]);
    const completed = await readVisit(visitId);
    expect(completed.status).toBe("completed");
    expect(completed.audioExpiresAt?.getTime()).toBeGreaterThanOrEqual(uploadedAt.getTime() + 86_400_000 - 1000);
    expect(completed.audioExpiresAt?.getTime()).toBeLessThanOrEqual(now().getTime() + 86_400_000);
    const items = await readActionItems(visitId);

    // Not yet due: nothing happens.
    advanceClock(12 * 3600);
    expect(await deleteExpiredRecordings(pipeline(), deadline())).toEqual({ deleted: 0, deferred: 0 });
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toHaveLength(1);

    advanceClock(36 * 3600);
    expect(await deleteExpiredRecordings(pipeline(), deadline())).toEqual({ deleted: 1, deferred: 0 });
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([]);
    const visit = await readVisit(visitId);
    expect(visit.audio?.deletedAt).toBeInstanceOf(Date);
    expect(visit.audio?.generation).toBe(generationOf(completed));
    expect(visit.audioExpiresAt).toBeNull();
    expect(visit.status).toBe("completed");
    expect(visit.summary).toEqual(completed.summary);
    expect(await readActionItems(visitId)).toEqual(items);
    expect((await readTranscriptArtifact(visitId))?.text).toContain("lisinopril");
    // A later run has nothing left to do.
    expect(await deleteExpiredRecordings(pipeline(), deadline())).toEqual({ deleted: 0, deferred: 0 });
  });

  it("a recording still being transcribed waits for the next run", async () => {
    await runtime.setEnv({ AUDIO_RETENTION_DAYS: "1" });
    const uid = "owner-1";
    const visitId = newVisitId();
    runtime.assemblyai.setTiming({ queuedMs: 3_600_000 });
    await runtime.upload({ uid, visitId });
    expect((await readVisit(visitId)).status).toBe("transcribing");
    advanceClock(2 * 86_400);
    expect(await deleteExpiredRecordings(pipeline(), deadline())).toEqual({ deleted: 0, deferred: 1 });
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toHaveLength(1);
    expect((await readVisit(visitId)).audio?.deletedAt).toBeNull();
  });

  it("a failed visit whose recording was deleted answers a retry that needs it with audio_deleted, and submits nothing", async () => {
    await runtime.setEnv({ AUDIO_RETENTION_DAYS: "1" });
    runtime.assemblyai.registerAudio("bad-download", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId, fileName: "bad-download.m4a" });
    await settle([visitId]);
    expect((await readVisit(visitId)).error).toMatchObject({ code: "audio_download_failed", retryable: true });
    advanceClock(2 * 86_400);
    expect(await deleteExpiredRecordings(pipeline(), deadline())).toEqual({ deleted: 1, deferred: 0 });
    const submits = runtime.assemblyai.submitCount();

    expect(await retryAs(uid, visitId)).toEqual({ kind: "rejected", code: "audio_deleted" });

    expect(runtime.assemblyai.submitCount()).toBe(submits);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.retryCount).toBe(0);
    expect(visit.audio?.deletedAt).toBeInstanceOf(Date);
  });

  it("AUDIO_RETENTION_DAYS=0 keeps recordings: no expiry is set and nothing is deleted", async () => {
    await runtime.setEnv({ AUDIO_RETENTION_DAYS: "0" });
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId });
    await settle([visitId]);
    expect((await readVisit(visitId)).audioExpiresAt).toBeNull();
    advanceClock(400 * 86_400);
    expect(await deleteExpiredRecordings(pipeline(), deadline())).toEqual({ deleted: 0, deferred: 0 });
    expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toHaveLength(1);
    expect((await readVisit(visitId)).audio?.deletedAt).toBeNull();
  });
});

describe("provider retention (DELETE_PROVIDER_TRANSCRIPTS)", () => {
  it("once the transcript is saved, it is deleted at AssemblyAI and the visit says when", async () => {
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId });
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.providerDeletedAt).toBeInstanceOf(Date);
    expect(visit.pendingProviderDeletes).toEqual([]);
    expect(visit.providerCleanupDueAt).toBeNull();
    const jobs = await providerJobsOf(runtime.assemblyai, visitId);
    expect(jobs.map((job) => [job.id, job.deleted])).toEqual([[visit.transcriptId, true]]);
    // Our copy is what the app reads from now on.
    expect((await readTranscriptArtifact(visitId))?.text).toContain("lisinopril");
  });

  it("with DELETE_PROVIDER_TRANSCRIPTS=false the transcript is kept at AssemblyAI", async () => {
    await runtime.setEnv({ DELETE_PROVIDER_TRANSCRIPTS: "false" });
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId });
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.providerDeletedAt).toBeNull();
    expect((await providerJobsOf(runtime.assemblyai, visitId)).map((job) => job.deleted)).toEqual([false]);
    expect(runtime.assemblyai.requests.filter((request) => request.method === "DELETE")).toHaveLength(0);
  });

  it("a delete that fails does not hold the visit back: it is queued on the visit and the checker deletes it later", async () => {
    await runtime.setEnv({ PROVIDER_RETRY_MIN_DELAY_MS: "1" });
    // Right after the completed transcript is fetched, AssemblyAI starts answering 500 — the
    // next three requests, which are the delete and its two in-call retries.
    let armed = false;
    failpoints.add((name) => {
      if (name === "after_transcript_fetch" && !armed) {
        armed = true;
        runtime.assemblyai.faults.enqueue("any", { kind: "status", status: 500 }, 3);
      }
      return null;
    });
    const uid = "owner-1";
    const visitId = newVisitId();
    await runtime.upload({ uid, visitId });
    await settle([visitId]);

    const completed = await readVisit(visitId);
    expect(completed.status).toBe("completed");
    expect(runtime.assemblyai.faults.injected.map((fault) => fault.route)).toEqual(["delete", "delete", "delete"]);
    expect(completed.pendingProviderDeletes).toEqual([completed.transcriptId]);
    expect(completed.transcript?.providerDeletedAt).toBeNull();
    const dueAt = completed.providerCleanupDueAt;
    expect(dueAt).toBeInstanceOf(Date);
    expect((await providerJobsOf(runtime.assemblyai, visitId)).map((job) => job.deleted)).toEqual([false]);

    // Not due yet: the checker leaves it.
    expect(now().getTime()).toBeLessThan(dueAt?.getTime() ?? 0);
    await runtime.runChecker();
    expect((await readVisit(visitId)).pendingProviderDeletes).toEqual([completed.transcriptId]);

    clockOffsetMs = (dueAt?.getTime() ?? 0) - Date.now() + 1000;
    await runtime.runChecker();
    const visit = await readVisit(visitId);
    expect(visit.pendingProviderDeletes).toEqual([]);
    expect(visit.providerCleanupDueAt).toBeNull();
    expect(visit.transcript?.providerDeletedAt).toBeInstanceOf(Date);
    expect(visit.status).toBe("completed");
    expect((await providerJobsOf(runtime.assemblyai, visitId)).map((job) => job.deleted)).toEqual([true]);
  });
});

describe("bookkeeping documents expire (TTL)", () => {
  const TTL_GROUPS = ["claims", "probes", "openings", "rateLimits", "deletedVisits", "userDeletions"] as const;

  it("every claim, breaker probe and opening, retry window, tombstone and kept account deletion carries a future purgeAt, and firestore.indexes.json has a TTL policy on it", async () => {
    await runtime.setEnv({ BREAKER_FAILURE_THRESHOLD: "1", PROVIDER_RETRY_MIN_DELAY_MS: "1" });
    runtime.assemblyai.registerAudio("bad-download", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    const uid = "owner-1";
    // An outage opens the AssemblyAI breaker (an opening); after the cooldown one probe closes it.
    runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 503 }, 4);
    const outage = newVisitId();
    await runtime.upload({ uid, visitId: outage });
    expect((await pipeline().breaker().state("assemblyai")).state).toBe("open");
    advanceClock(150);
    await settle([outage]);
    expect((await pipeline().breaker().state("assemblyai")).state).toBe("closed");
    // A failed visit retried (retry windows, a retry claim), a completed one deleted (a tombstone),
    // and an account deletion that ran out of time (a kept request).
    const failed = newVisitId();
    const deleted = newVisitId();
    await runtime.upload({ uid, visitId: failed, fileName: "bad-download.m4a" });
    await runtime.upload({ uid, visitId: deleted });
    await settle([failed, deleted]);
    expect(await retryAs(uid, failed)).toMatchObject({ kind: "accepted" });
    await settle([failed]);
    expect(await deleteAs(uid, deleted)).toMatchObject({ kind: "deleted" });
    expect((await deleteUserData(pipeline(), { uid: "leaving-user", reason: "account_deleted" }, Date.now())).complete).toBe(false);

    const paths: Record<(typeof TTL_GROUPS)[number], string[]> = {
      claims: [`visits/${outage}/claims`, `visits/${failed}/claims`],
      probes: ["breakers/assemblyai/probes", "breakers/openai/probes"],
      openings: ["breakers/assemblyai/openings", "breakers/openai/openings"],
      rateLimits: ["rateLimits"],
      deletedVisits: ["deletedVisits"],
      userDeletions: ["userDeletions"],
    };
    const reference = now().getTime();
    for (const group of TTL_GROUPS) {
      const documents = (await Promise.all(paths[group].map((collection) => db().collection(collection).get())))
        .flatMap((snapshot) => snapshot.docs)
        // The visit's cost ledger (store/costs.ts) is kept as long as the visit, like its cost.
        .filter((document) => document.get("stage") !== "cost");
      expect(documents.length, group).toBeGreaterThan(0);
      for (const document of documents) {
        const purgeAt: unknown = document.get("purgeAt");
        expect(isTimestamp(purgeAt), `${group}/${document.id} has a purgeAt timestamp`).toBe(true);
        if (isTimestamp(purgeAt)) expect(purgeAt.toMillis(), `${group}/${document.id}`).toBeGreaterThan(reference);
      }
    }
    // The claims of every kind were looked at: work, check and retry claims.
    const claimIds = [...(await docIds(`visits/${outage}/claims`)), ...(await docIds(`visits/${failed}/claims`))];
    for (const kind of ["transcription-", "summarization-", "check-", "retry-"]) expect(claimIds.some((id) => id.startsWith(kind)), kind).toBe(true);
    expect(await docIds("rateLimits")).toEqual(expect.arrayContaining([`visit-${failed}`, userRateLimitId(uid)]));

    const indexes = JSON.parse(readFileSync(path.join(REPO_ROOT, "firestore.indexes.json"), "utf8")) as {
      fieldOverrides: { collectionGroup: string; fieldPath: string; ttl?: boolean }[];
    };
    for (const group of TTL_GROUPS) {
      const ttlFields = indexes.fieldOverrides.filter((override) => override.collectionGroup === group && override.ttl === true);
      expect(ttlFields.map((override) => override.fieldPath), group).toEqual(["purgeAt"]);
    }
  });
});

describe("uploads the pipeline will not use", () => {
  it("an oversize upload and a non-audio one end failed, and their objects are deleted", async () => {
    const uid = "owner-1";
    const oversize = newVisitId();
    const notAudio = newVisitId();
    await runtime.upload({ uid, visitId: oversize, fileName: "huge.m4a", sizeBytes: 300 * MIB });
    await runtime.upload({ uid, visitId: notAudio, fileName: "notes.txt", contentType: "text/plain" });

    for (const [visitId, code] of [
      [oversize, "audio_too_large"],
      [notAudio, "invalid_content_type"],
    ] as const) {
      const visit = await readVisit(visitId);
      expect(visit.status).toBe("failed");
      expect(visit.error).toMatchObject({ stage: "upload", code, retryable: false });
      expect(visit.audio?.deletedAt).toBeInstanceOf(Date);
      expect(objectsUnder(runtime.storage, visitFolder(uid, visitId))).toEqual([]);
    }
    expect(runtime.assemblyai.submitCount()).toBe(0);
  });

  it("an upload into another user's visit or into a busy visit is ignored and its object deleted; objects outside users/{uid}/visits/ are kept", async () => {
    const owner = "owner-1";
    const visitId = newVisitId();
    runtime.assemblyai.setTiming({ queuedMs: 3_600_000 });
    await runtime.upload({ uid: owner, visitId });
    const before = await readVisit(visitId);
    expect(before.status).toBe("transcribing");
    const ownersObject = objectsUnder(runtime.storage, visitFolder(owner, visitId));
    expect(ownersObject).toHaveLength(1);

    await runtime.upload({ uid: "intruder", visitId, fileName: "theirs.m4a" });
    await runtime.upload({ uid: owner, visitId, fileName: "second.m4a" });
    await runtime.upload({ uid: owner, visitId: "not.a.visit.id", fileName: "x.m4a" });
    await runtime.upload({ uid: owner, visitId, objectName: `users/${owner}/profile/avatar.m4a` });
    await runtime.upload({ uid: owner, visitId, objectName: "exports/monthly.m4a" });

    expect(objectsUnder(runtime.storage, visitFolder("intruder", visitId))).toEqual([]);
    expect(objectsUnder(runtime.storage, visitFolder(owner, visitId))).toEqual(ownersObject);
    expect(objectsUnder(runtime.storage, `users/${owner}/visits/not.a.visit.id/`)).toEqual([]);
    expect(objectsUnder(runtime.storage, `users/${owner}/profile/`)).toHaveLength(1);
    expect(objectsUnder(runtime.storage, "exports/")).toHaveLength(1);
    const after = await readVisit(visitId);
    expect(after).toMatchObject({ userId: owner, status: "transcribing", audio: before.audio, transcriptId: before.transcriptId });
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(await countDocs("visits")).toBe(1);
  });
});
