// Failure handling, one mechanism at a time, through the real handlers: fencing of a zombie
// writer, recovery of a submission whose outcome was unknown, a crash right after the paid call,
// the outage breaker, and attempts running out. Time is moved with the runtime clock hook.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { FailpointAction, FailpointName, LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";

let runtime: LocalRuntime;
let clockOffsetMs = 0;
let events: LoggedEvent[] = [];
let failpointRule: ((name: FailpointName) => FailpointAction) | null = null;

function advanceClock(seconds: number): void {
  clockOffsetMs += seconds * 1000;
}

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined, failpoint: undefined, onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  clockOffsetMs = 0;
  events = [];
  failpointRule = null;
  installRuntimeHooks({
    clock: () => new Date(Date.now() + clockOffsetMs),
    failpoint: (name) => failpointRule?.(name) ?? null,
    onLog: (entry) => events.push(entry),
  });
});

afterEach(async () => {
  await runtime.setEnv({
    SUMMARY_MAX_ATTEMPTS: undefined,
    TRANSCRIPTION_MAX_ATTEMPTS: undefined,
    BREAKER_FAILURE_THRESHOLD: undefined,
    PROVIDER_RETRY_MIN_DELAY_MS: undefined,
  });
});

function eventsNamed(event: string): LoggedEvent[] {
  return events.filter((e) => e.event === event);
}

describe("a zombie summarization", () => {
  it("is fenced: its late write is rejected and the visit keeps the newer attempt's summary", async () => {
    const visitId = newVisitId();
    let releaseZombie = () => {};
    const stalled = new Promise<void>((resolve) => (releaseZombie = resolve));
    failpointRule = (name) => {
      if (name !== "after_summary_call") return null;
      failpointRule = null; // only the first attempt stalls
      return { stallUntil: stalled };
    };
    runtime.tasks.pause();
    await runtime.upload({ uid: "user-1", visitId });
    await runtime.runChecker();
    expect((await readVisit(visitId)).status).toBe("summarizing");

    // Attempt 1 calls OpenAI, then its instance stalls past its timeout.
    const zombie = runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never) as Promise<unknown>;
    await waitFor(async () => (await readVisit(visitId)).lease?.attempt === 1);
    await waitFor(() => Promise.resolve(runtime.openai.completionCount() === 1));

    // Its lease expires; the checker (as sweeper) dispatches attempt 2, which completes.
    advanceClock(20 * 60);
    runtime.tasks.resume();
    await runtime.runChecker();
    await runtime.tasks.drain();
    const completed = await readVisit(visitId);
    expect(completed.status).toBe("completed");
    expect(completed.attempts.summarization).toBe(2);
    const items = await readActionItems(visitId);

    // The zombie wakes up and tries to write its summary.
    releaseZombie();
    await zombie;
    expect(eventsNamed("stale_write_rejected").map((e) => e.fields)).toContainEqual(
      expect.objectContaining({ visitId, stage: "summarization", attempt: 1 }),
    );
    const after = await readVisit(visitId);
    expect(after.history.filter((entry) => entry.event === "summary_saved")).toHaveLength(1);
    expect(await readActionItems(visitId)).toEqual(items);
    expect(runtime.openai.completionCount()).toBe(2);
  });
});

describe("a submission whose outcome is unknown", () => {
  it("a 504 after AssemblyAI created the job: the next attempt adopts the job instead of paying again", async () => {
    const visitId = newVisitId();
    runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 504, afterCommit: true });
    await runtime.upload({ uid: "user-1", visitId });
    const pending = await readVisit(visitId);
    expect(pending.status).toBe("pending");
    expect(pending.error?.code).toBe("provider_timeout");
    expect(runtime.assemblyai.submitCount()).toBe(1);

    await runtime.runUntilSettled([visitId], { advance: () => advanceClock(120) });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(visit.transcriptId).toBe(runtime.assemblyai.jobRecords()[0]?.id);
    expect(eventsNamed("submission_recovery_checked").at(-1)?.fields).toMatchObject({ found: true });
  });

  it("an instance that dies right after the paid call: the sweeper finds the job, no second submit", async () => {
    const visitId = newVisitId();
    failpointRule = (name) => (name === "after_transcription_submit" ? "crash" : null);
    const upload = runtime.upload({ uid: "user-1", visitId });
    await waitFor(() => Promise.resolve(runtime.assemblyai.submitCount() === 1));
    failpointRule = null;
    void upload; // never settles: the instance is gone
    expect((await readVisit(visitId)).status).toBe("pending");

    // The lease is still live: the checker leaves the visit alone.
    await runtime.runChecker();
    expect(runtime.assemblyai.submitCount()).toBe(1);
    // After the lease, the checker takes over and recovers the job.
    await runtime.runUntilSettled([visitId], { advance: () => advanceClock(240) });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect((await readTranscriptArtifact(visitId))?.transcriptId).toBe(runtime.assemblyai.jobRecords()[0]?.id);
  });
});

describe("a provider outage", () => {
  it("opens the breaker, defers work without using attempts, and recovers through one probe", async () => {
    await runtime.setEnv({ BREAKER_FAILURE_THRESHOLD: "2" });
    runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 500 }, 2);
    const first = newVisitId();
    const second = newVisitId();
    const third = newVisitId();
    await runtime.upload({ uid: "user-1", visitId: first });
    await runtime.upload({ uid: "user-1", visitId: second });
    expect(eventsNamed("provider_breaker_opened")).toHaveLength(1);

    // While open: a new upload is deferred, with no request sent and no attempt used.
    const requestsBefore = runtime.assemblyai.requests.length;
    await runtime.upload({ uid: "user-1", visitId: third });
    const deferred = await readVisit(third);
    expect(deferred.status).toBe("pending");
    expect(deferred.attempts.transcription).toBe(0);
    expect(runtime.assemblyai.requests.length).toBe(requestsBefore);
    const { pipeline } = await import("../../functions/src/pipeline.js");
    expect((await pipeline().breaker().state("assemblyai")).state).toBe("open");

    // After the cooldown one probe goes through, closes the breaker, and everything completes.
    await runtime.runUntilSettled([first, second, third], { advance: () => advanceClock(150) });
    for (const id of [first, second, third]) expect((await readVisit(id)).status).toBe("completed");
    expect(eventsNamed("provider_breaker_closed")).toHaveLength(1);
    expect(runtime.assemblyai.submitCount()).toBe(3);
  });
});

describe("attempts running out", () => {
  it("transcription that keeps failing ends failed with its code after TRANSCRIPTION_MAX_ATTEMPTS paid submissions", async () => {
    await runtime.setEnv({ TRANSCRIPTION_MAX_ATTEMPTS: "2", PROVIDER_RETRY_MIN_DELAY_MS: "1", BREAKER_FAILURE_THRESHOLD: "1000" });
    // 503: AssemblyAI certainly created nothing, so each attempt also retries in-call (3 retries).
    runtime.assemblyai.faults.enqueue("submit", { kind: "status", status: 503 }, 100);
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId });
    await runtime.runUntilSettled([visitId], { advance: () => advanceClock(600) });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.error).toMatchObject({ stage: "transcription", code: "provider_unavailable", retryable: true });
    const posts = runtime.assemblyai.requests.filter((request) => request.method === "POST");
    expect(posts).toHaveLength(2 * 4);
    const { listWorkClaims } = await import("../../functions/src/store/claims.js");
    const paid = (await listWorkClaims(visitId, "transcription")).filter((claim) => claim.sentAt !== null);
    expect(paid.map((claim) => [claim.round, claim.attempt, claim.outcome])).toEqual([
      [0, 1, "failed"],
      [0, 2, "failed"],
    ]);
  });

  it("summarization that keeps failing transiently ends partial with the transcript kept", async () => {
    await runtime.setEnv({ SUMMARY_MAX_ATTEMPTS: "2" });
    runtime.openai.faults.enqueue("chat", { kind: "status", status: 500 }, 100);
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId });
    await runtime.runUntilSettled([visitId], { advance: () => advanceClock(120) });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error).toMatchObject({ stage: "summarization", code: "provider_unavailable", retryable: true });
    expect(visit.attempts.summarization).toBe(2);
    expect(await readTranscriptArtifact(visitId)).toBeDefined();
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
