// The abuse limits through the real storage trigger and the retry stage: daily upload quota,
// visits in flight per user, anonymous accounts (asked of the real Auth emulator), and that
// concurrent and duplicate deliveries neither slip past a limit nor use it up twice.

import { getAuth } from "firebase-admin/auth";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import { claimActiveSlot } from "../../functions/src/store/upload-limits.js";
import { updateVisit } from "../../functions/src/store/visits.js";
import { startAuthEmulator } from "../support/auth-emulator.js";
import type { AuthEmulator } from "../support/auth-emulator.js";
import { FAST_TUNABLES, nextGeneration, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { objectsUnder, visitFolder } from "../support/lifecycle.js";
import { newVisitId, readVisit } from "../support/visits.js";

let runtime: LocalRuntime;
let auth: AuthEmulator;
let clockOffsetMs = 0;

beforeAll(async () => {
  const [emulator, local] = await Promise.allSettled([startAuthEmulator(), startLocalRuntime()]);
  if (emulator.status === "rejected" || local.status === "rejected") {
    if (emulator.status === "fulfilled") await emulator.value.stop();
    if (local.status === "fulfilled") await local.value.close();
    throw emulator.status === "rejected" ? emulator.reason : (local as PromiseRejectedResult).reason;
  }
  auth = emulator.value;
  runtime = local.value;
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined });
  await runtime?.close();
  await auth?.stop();
});

beforeEach(async () => {
  await runtime.reset();
  clockOffsetMs = 0;
  installRuntimeHooks({ clock: () => new Date(Date.now() + clockOffsetMs) });
});

afterEach(async () => {
  // Back to the local runtime's settings (every limit out of the way).
  const { UPLOAD_QUOTA_PER_DAY, MAX_CONCURRENT_VISITS_PER_USER, ALLOW_ANONYMOUS_UPLOADS } = FAST_TUNABLES;
  await runtime.setEnv({ UPLOAD_QUOTA_PER_DAY, MAX_CONCURRENT_VISITS_PER_USER, ALLOW_ANONYMOUS_UPLOADS });
});

async function retry(visitId: string, uid: string) {
  const { retryVisit } = await import("../../functions/src/stages/retry-visit.js");
  const { pipeline } = await import("../../functions/src/pipeline.js");
  return retryVisit(pipeline(), { visitId, uid }, Date.now() + 30_000);
}

describe("the daily upload quota", () => {
  it("refuses the recording past UPLOAD_QUOTA_PER_DAY with upload_quota_exceeded, pays nothing for it and keeps it", async () => {
    await runtime.setEnv({ UPLOAD_QUOTA_PER_DAY: "2" });
    const visits = [newVisitId(), newVisitId(), newVisitId()];
    for (const visitId of visits) await runtime.upload({ uid: "quota-user", visitId });
    const third = await readVisit(visits[2]!);
    expect(third).toMatchObject({ status: "failed", error: { stage: "upload", code: "upload_quota_exceeded", retryable: true } });
    expect(runtime.assemblyai.submitCount()).toBe(2);
    // Kept, so the retry button can process it once the quota allows.
    expect(runtime.storage.objects().filter((object) => object.name.includes(visits[2]!))).toHaveLength(1);
    // Another user is not affected.
    await runtime.upload({ uid: "other-user", visitId: newVisitId() });
    expect(runtime.assemblyai.submitCount()).toBe(3);
  });

  it("counts 5 concurrent deliveries of one recording once, and 5 concurrent different recordings against the quota exactly", async () => {
    await runtime.setEnv({ UPLOAD_QUOTA_PER_DAY: "3" });
    const first = newVisitId();
    const generation = nextGeneration();
    await Promise.all(Array.from({ length: 5 }, () => runtime.upload({ uid: "storm-user", visitId: first, generation })));
    const others = Array.from({ length: 5 }, () => newVisitId());
    await Promise.all(others.map((visitId) => runtime.upload({ uid: "storm-user", visitId })));
    const statuses = await Promise.all(others.map(async (visitId) => (await readVisit(visitId)).error?.code ?? "accepted"));
    // The first recording took one slot (not five): two of the five others fit, three are refused.
    expect(statuses.filter((code) => code === "accepted")).toHaveLength(2);
    expect(statuses.filter((code) => code === "upload_quota_exceeded")).toHaveLength(3);
    expect(runtime.assemblyai.submitCount()).toBe(3);
  });

  it("the retry button says when to try again, and processes the recording once the next day's quota allows", async () => {
    await runtime.setEnv({ UPLOAD_QUOTA_PER_DAY: "1" });
    const [allowed, refused] = [newVisitId(), newVisitId()];
    await runtime.upload({ uid: "tomorrow-user", visitId: allowed });
    await runtime.upload({ uid: "tomorrow-user", visitId: refused });
    const early = await retry(refused, "tomorrow-user");
    expect(early).toMatchObject({ kind: "rejected", code: "upload_quota_exceeded" });
    expect(early.kind === "rejected" ? early.retryAfterSeconds : 0).toBeGreaterThan(0);
    expect(runtime.assemblyai.submitCount()).toBe(1);

    clockOffsetMs = ((early.kind === "rejected" ? early.retryAfterSeconds : 0) ?? 0) * 1000 + 1000;
    await runtime.runUntilSettled([allowed]);
    expect(await retry(refused, "tomorrow-user")).toMatchObject({ kind: "accepted", resumedStage: "transcription" });
    await runtime.runUntilSettled([refused]);
    expect((await readVisit(refused)).status).toBe("completed");
    expect(runtime.assemblyai.submitCount()).toBe(2);
  });
});

describe("visits in flight per user", () => {
  it("of 6 concurrent uploads into 6 visits, exactly MAX_CONCURRENT_VISITS_PER_USER go ahead; the rest end too_many_active_visits unpaid", async () => {
    await runtime.setEnv({ MAX_CONCURRENT_VISITS_PER_USER: "2" });
    runtime.tasks.pause();
    const visits = Array.from({ length: 6 }, () => newVisitId());
    await Promise.all(visits.map((visitId) => runtime.upload({ uid: "busy-user", visitId })));
    const states = await Promise.all(visits.map((visitId) => readVisit(visitId)));
    expect(states.filter((visit) => visit.status === "transcribing")).toHaveLength(2);
    expect(states.filter((visit) => visit.error?.code === "too_many_active_visits")).toHaveLength(4);
    expect(runtime.assemblyai.submitCount()).toBe(2);
    runtime.tasks.resume();

    // Once those are done, their slots are free again: a refused one can be retried.
    await runtime.runUntilSettled(states.filter((visit) => visit.status === "transcribing").map((visit) => visit.id));
    const refused = states.find((visit) => visit.error?.code === "too_many_active_visits")!;
    expect(await retry(refused.id, "busy-user")).toMatchObject({ kind: "accepted" });
    expect(runtime.assemblyai.submitCount()).toBe(3);
  });

  it("a retry that would exceed the limit answers too_many_active_visits with Retry-After and changes nothing", async () => {
    await runtime.setEnv({ MAX_CONCURRENT_VISITS_PER_USER: "1" });
    const failed = newVisitId();
    runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 401 });
    await runtime.upload({ uid: "one-at-a-time", visitId: failed });
    expect((await readVisit(failed)).status).toBe("failed");
    const running = newVisitId();
    await runtime.upload({ uid: "one-at-a-time", visitId: running });
    expect((await readVisit(running)).status).toBe("transcribing");
    const before = await readVisit(failed);
    const answer = await retry(failed, "one-at-a-time");
    expect(answer).toMatchObject({ kind: "rejected", code: "too_many_active_visits", retryAfterSeconds: expect.any(Number) });
    expect((await readVisit(failed)).retryCount).toBe(before.retryCount);
  });
});

describe("a visit's active slot while its start is on the way", () => {
  it("is not free because the failed visit was written to (a cost, a notice) after its retry took the slot", async () => {
    await runtime.setEnv({ MAX_CONCURRENT_VISITS_PER_USER: "1" });
    runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 401 });
    const failed = newVisitId();
    await runtime.upload({ uid: "starter", visitId: failed });
    const visit = await readVisit(failed);
    expect(visit.status).toBe("failed");
    const now = new Date();
    // The retry has taken the slot for round 1 and is still on its way (e.g. asking AssemblyAI)...
    const retrying = await claimActiveSlot({ uid: "starter", visitId: failed, start: { generation: visit.audio!.generation, round: 1 }, now, maxActive: 1 });
    expect(retrying.allowed).toBe(true);
    // ...when the failed visit is written to for another reason.
    await updateVisit(failed, { cost: { audioSeconds: 0, promptTokens: 0, completionTokens: 0, paidCalls: 1, discardedPaidCalls: 0, estimatedUsd: 0 } }, { now: new Date(now.getTime() + 1000), guard: {} });
    await runtime.upload({ uid: "starter", visitId: newVisitId() });
    expect(runtime.assemblyai.submitCount()).toBe(0);
    // Its round begins, runs and ends: the slot is free for another visit again.
    expect(await retry(failed, "starter")).toMatchObject({ kind: "accepted" });
    await runtime.runUntilSettled([failed]);
    const next = newVisitId();
    await runtime.upload({ uid: "starter", visitId: next });
    expect((await readVisit(next)).status).toBe("transcribing");
  });

  it("is held for START_GRACE_MS by a start that never came, then free", async () => {
    await runtime.setEnv({ MAX_CONCURRENT_VISITS_PER_USER: "1" });
    const now = new Date();
    const ghost = await claimActiveSlot({ uid: "ghost-user", visitId: newVisitId(), start: { generation: "1", round: null }, now, maxActive: 1 });
    expect(ghost.allowed).toBe(true);
    const refused = newVisitId();
    await runtime.upload({ uid: "ghost-user", visitId: refused });
    expect((await readVisit(refused)).error?.code).toBe("too_many_active_visits");
    clockOffsetMs = 11 * 60_000;
    const later = newVisitId();
    await runtime.upload({ uid: "ghost-user", visitId: later });
    expect((await readVisit(later)).status).toBe("transcribing");
  });
});

describe("limits under concurrent retries", () => {
  it("5 concurrent retries of each of two failed visits, with MAX_CONCURRENT_VISITS_PER_USER=1: one visit goes back to work, once", async () => {
    const failed = [newVisitId(), newVisitId()];
    for (const visitId of failed) {
      runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 401 });
      await runtime.upload({ uid: "clicker", visitId });
      expect((await readVisit(visitId)).status).toBe("failed");
    }
    await runtime.setEnv({ MAX_CONCURRENT_VISITS_PER_USER: "1" });
    const submitsBefore = runtime.assemblyai.submitCount();
    const answers = await Promise.all(failed.flatMap((visitId) => Array.from({ length: 5 }, () => retry(visitId, "clicker"))));
    expect(answers.filter((answer) => answer.kind === "accepted")).toHaveLength(1);
    expect(runtime.assemblyai.submitCount() - submitsBefore).toBe(1);
    const states = await Promise.all(failed.map((visitId) => readVisit(visitId)));
    expect(states.filter((visit) => visit.status !== "failed")).toHaveLength(1);
  });

  it("the paid-call budget holds under 5 concurrent retries: a visit never pays more than MAX_PAID_CALLS_PER_VISIT", async () => {
    await runtime.setEnv({ MAX_PAID_CALLS_PER_VISIT: "2", RETRY_COOLDOWN_SECONDS: "0" });
    try {
      runtime.openai.faults.enqueue("chat", { kind: "refusal" }, 100);
      const visitId = newVisitId();
      await runtime.upload({ uid: "budget-user", visitId });
      await runtime.runUntilSettled([visitId]);
      expect((await readVisit(visitId)).status).toBe("partial");
      // One paid submission and one paid summary so far: the budget is spent.
      for (let round = 0; round < 3; round++) {
        await Promise.all(Array.from({ length: 5 }, () => retry(visitId, "budget-user")));
        await runtime.runUntilSettled([visitId]);
      }
      expect(runtime.assemblyai.submitCount() + runtime.openai.requests.length).toBe(2);
      expect((await readVisit(visitId)).error).toMatchObject({ code: "paid_call_budget_exhausted", retryable: false });
    } finally {
      await runtime.setEnv({ MAX_PAID_CALLS_PER_VISIT: undefined, RETRY_COOLDOWN_SECONDS: undefined });
    }
  });
});

describe("new recordings racing into one failed visit", () => {
  /** Delivers an upload the way Cloud Storage does with retry on: a delivery that threw comes again. */
  async function deliverUntilTaken(input: { uid: string; visitId: string; fileName: string; generation: string }): Promise<number> {
    for (let delivery = 1; ; delivery++) {
      try {
        await runtime.upload(input);
        return delivery;
      } catch (error) {
        if (delivery >= 6) throw error;
        // Cloud Storage backs off before it delivers a failed event again.
        await new Promise((resolve) => setTimeout(resolve, 100 * delivery));
      }
    }
  }

  it.each([
    ["refused by MAX_CONCURRENT_VISITS_PER_USER (each recording kept for the retry button)", true],
    ["after a transcription error (one new recording goes ahead)", false],
  ])("6 at once, %s: one object is left in the visit's folder, the visit's own", async (_, limited) => {
    const uid = limited ? "racing-limited" : "racing-free";
    const visitId = newVisitId();
    runtime.tasks.pause();
    if (limited) {
      await runtime.setEnv({ MAX_CONCURRENT_VISITS_PER_USER: "1" });
      // Another visit of the user holds the only slot (transcribing: the checker does not run).
      await runtime.upload({ uid, visitId: newVisitId() });
    } else {
      runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 401 });
    }
    await runtime.upload({ uid, visitId, fileName: "first.m4a" });
    const first = await readVisit(visitId);
    expect(first.status).toBe("failed");
    const submitsBefore = runtime.assemblyai.submitCount();

    const takes = Array.from({ length: 6 }, (_, i) => ({ uid, visitId, fileName: `take-${i}.m4a`, generation: nextGeneration() }));
    const deliveries = await Promise.all(takes.map((take) => deliverUntilTaken(take)));

    const visit = await readVisit(visitId);
    const folder = visitFolder(uid, visitId);
    // Every recording that lost was deleted: the visit's current one is all that is left.
    expect(objectsUnder(runtime.storage, folder)).toEqual([`${visit.audio?.path}#${visit.audio?.generation}`]);
    expect(takes.map((take) => take.generation)).toContain(visit.audio?.generation);
    if (limited) {
      expect(visit.error?.code).toBe("too_many_active_visits");
      expect(runtime.assemblyai.submitCount()).toBe(submitsBefore);
    } else {
      expect(visit.status).toBe("transcribing");
      expect(runtime.assemblyai.submitCount() - submitsBefore).toBe(1);
    }
    // The races were real: some deliveries had to come again.
    expect(deliveries.length).toBe(6);
    runtime.tasks.resume();
  });
});

describe("uploads the trigger throws away", () => {
  it("a recording into a deleted visit uses no daily quota and no active slot; the deleted visit's slot is free at once", async () => {
    await runtime.setEnv({ UPLOAD_QUOTA_PER_DAY: "2", MAX_CONCURRENT_VISITS_PER_USER: "1" });
    const { deleteVisit } = await import("../../functions/src/stages/delete-visit.js");
    const { pipeline } = await import("../../functions/src/pipeline.js");
    const deleted = newVisitId();
    await runtime.upload({ uid: "tidy-user", visitId: deleted });
    expect((await readVisit(deleted)).status).toBe("transcribing");
    await deleteVisit(pipeline(), { visitId: deleted, uid: "tidy-user", reason: "user" }, Date.now() + 30_000);
    // A late recording into the deleted visit is discarded…
    await runtime.upload({ uid: "tidy-user", visitId: deleted });
    // …and neither it nor the deleted visit stands in the way of the next one.
    const next = newVisitId();
    await runtime.upload({ uid: "tidy-user", visitId: next });
    expect((await readVisit(next)).status).toBe("transcribing");
    expect(runtime.assemblyai.submitCount()).toBe(2);
  });
});

describe("anonymous accounts", () => {
  it("are refused by default (asked of Firebase Auth): anonymous_upload_refused, nothing paid; a signed-in account goes ahead", async () => {
    await runtime.setEnv({ ALLOW_ANONYMOUS_UPLOADS: "false" });
    // An account with no sign-in provider is what anonymous sign-in creates.
    await getAuth().createUser({ uid: "anon-user" });
    await auth.createUserToken("email-user", "email-user@example.com");
    const anonymous = newVisitId();
    const signedIn = newVisitId();
    const unknown = newVisitId();
    await runtime.upload({ uid: "anon-user", visitId: anonymous });
    await runtime.upload({ uid: "email-user", visitId: signedIn });
    await runtime.upload({ uid: "no-such-account", visitId: unknown });
    expect(await readVisit(anonymous)).toMatchObject({ status: "failed", error: { code: "anonymous_upload_refused", retryable: false } });
    expect(await readVisit(unknown)).toMatchObject({ status: "failed", error: { code: "anonymous_upload_refused" } });
    expect((await readVisit(signedIn)).status).toBe("transcribing");
    expect(runtime.assemblyai.submitCount()).toBe(1);
  });

  it("are processed when ALLOW_ANONYMOUS_UPLOADS is on", async () => {
    await runtime.setEnv({ ALLOW_ANONYMOUS_UPLOADS: "true" });
    await getAuth().createUser({ uid: "anon-allowed" });
    const visitId = newVisitId();
    await runtime.upload({ uid: "anon-allowed", visitId });
    expect((await readVisit(visitId)).status).toBe("transcribing");
  });
});
