// The step runner (functions/src/steps/paid-step.ts), one rule at a time, against the embedded
// Firestore and the real breaker: a test step stands in for a stage, so each test controls
// exactly what its paid call does. The stages built on the runner are proven end to end by the
// pipeline, failure and chaos suites; this file proves the runner's own decisions.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { FailpointAction, FailpointName, LoggedEvent } from "../../functions/src/runtime-hooks.js";
import type { Pipeline } from "../../functions/src/pipeline.js";
import { retryPolicy, withRetries } from "../../functions/src/providers/retry.js";
import { UNPAID_TRIES_ALLOWED, runPaidStep } from "../../functions/src/steps/paid-step.js";
import type { PaidStep } from "../../functions/src/steps/paid-step.js";
import { listWorkClaims } from "../../functions/src/store/claims.js";
import { reconcileCost } from "../../functions/src/store/costs.js";
import { db } from "../../functions/src/store/db.js";
import type { Claim } from "../../functions/src/store/claims.js";
import { applyVisitEvent, getVisit, recordUpload, updateVisit } from "../../functions/src/store/visits.js";
import { PipelineError } from "../../functions/src/visit/errors.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { nextGeneration, startLocalRuntime, BUCKET } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId } from "../support/visits.js";

let runtime: LocalRuntime;
let base: Pipeline;
let clockMs = 0;
let events: LoggedEvent[] = [];
let failpointRule: ((name: FailpointName) => FailpointAction) | null = null;

const START = Date.parse("2026-06-01T09:00:00Z");

beforeAll(async () => {
  runtime = await startLocalRuntime({ env: { PROVIDER_RETRY_MIN_DELAY_MS: "1", BREAKER_FAILURE_THRESHOLD: "3" } });
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined, failpoint: undefined, onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  // A fresh pipeline: the breaker caches what it read, and the data is gone.
  const { pipeline, resetPipeline } = await import("../../functions/src/pipeline.js");
  resetPipeline();
  base = pipeline();
  clockMs = START;
  events = [];
  failpointRule = null;
  installRuntimeHooks({
    clock: () => new Date(clockMs),
    failpoint: (name) => failpointRule?.(name) ?? null,
    onLog: (entry) => events.push(entry),
  });
});

/** The pipeline with this file's clock. */
function p(): Pipeline {
  return { ...base, now: () => new Date(clockMs) };
}

function advance(seconds: number): void {
  clockMs += seconds * 1000;
}

const farDeadline = () => Date.now() + 60_000;

/** A pending visit, as the upload trigger leaves it before submitting. */
async function pendingVisit(): Promise<string> {
  const visitId = newVisitId("step");
  const generation = nextGeneration();
  const outcome = await recordUpload({
    visitId,
    userId: "user-1",
    audio: { bucket: BUCKET, path: `users/user-1/visits/${visitId}/a.m4a`, fileName: "a.m4a", contentType: "audio/mp4", sizeBytes: 10, generation, deletedAt: null },
    rejection: null,
    now: new Date(clockMs),
    deadlineAt: new Date(clockMs + 24 * 3600_000),
    audioExpiresAt: null,
    replacing: null,
  });
  expect(outcome.kind).toBe("started");
  return visitId;
}

async function visit(visitId: string): Promise<Visit> {
  const found = await getVisit(visitId);
  if (!found) throw new Error(`no visit ${visitId}`);
  return found;
}

type Job = { transcriptId: string };

interface TestStep {
  step: PaidStep<"assemblyai", Job>;
  /** How many times the paid call was made (each in-call retry included). */
  sends: () => number;
  recovered: Claim[][];
}

/** A transcription-shaped step whose paid call runs `send` (default: a new job id each time). */
function testStep(options: { send?: (n: number) => Promise<Job>; recover?: boolean; maxPaidAttempts?: number; beforePay?: () => Promise<void> } = {}): TestStep {
  let sends = 0;
  const recovered: Claim[][] = [];
  const send = options.send ?? ((n: number) => Promise.resolve({ transcriptId: `job-${n}` }));
  const step: PaidStep<"assemblyai", Job> = {
    stage: "transcription",
    provider: "assemblyai",
    status: "pending",
    maxPaidAttempts: options.maxPaidAttempts ?? 3,
    leaseSeconds: 180,
    afterPaidCall: "after_transcription_submit",
    async perform(work) {
      await options.beforePay?.();
      return work.pay("submit", () => send(++sends), { audioUrlSha256: `hash-${work.attempt}` });
    },
    ...(options.recover
      ? {
          recover: (_work, leftovers) => {
            recovered.push([...leftovers]);
            const id = leftovers.find((claim) => claim.transcriptId)?.transcriptId ?? (leftovers[0] ? `found-${leftovers[0].attempt}` : null);
            return Promise.resolve(id ? { transcriptId: id } : null);
          },
        }
      : {}),
    resultId: (job) => job.transcriptId,
    checkpoint: ({ transcriptId }, now) => ({
      event: { type: "transcription_submitted", transcriptId },
      fields: { checks: 0, nextCheckAt: new Date(now.getTime() + 30_000) },
    }),
    endEvent: (error) => ({ type: "transcription_failed", error }),
  };
  return { step, sends: () => sends, recovered };
}

const transient = (retryAfterMs?: number) =>
  new PipelineError("provider_unavailable", { httpStatus: 503, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });

function named(event: string): LoggedEvent[] {
  return events.filter((entry) => entry.event === event);
}

describe("the happy path", () => {
  it("claims, leases, pays once, records the outcome on the claim, then checkpoints and releases the lease", async () => {
    const visitId = await pendingVisit();
    const t = testStep();
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("succeeded");
    const after = await visit(visitId);
    expect(after).toMatchObject({ status: "transcribing", transcriptId: "job-1", lease: null, attempts: { transcription: 1 } });
    const [claim] = await listWorkClaims(visitId, "transcription");
    expect(claim).toMatchObject({ attempt: 1, round: 0, outcome: "succeeded", transcriptId: "job-1", audioUrlSha256: "hash-1" });
    expect(claim?.sentAt).toBeInstanceOf(Date);
    expect(t.sends()).toBe(1);
  });

  it("leaves a visit that is not in the step's status alone", async () => {
    const visitId = await pendingVisit();
    await runPaidStep(p(), testStep().step, visitId, farDeadline());
    const t = testStep();
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("not_ready");
    expect(await runPaidStep(p(), t.step, "no-such-visit", farDeadline())).toBe("not_ready");
    expect(t.sends()).toBe(0);
  });
});

describe("the claim", () => {
  it("of 6 concurrent callers, exactly one pays; the others find the attempt taken", async () => {
    const visitId = await pendingVisit();
    const t = testStep();
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => runPaidStep(p(), t.step, visitId, farDeadline())));
    expect(outcomes.filter((outcome) => outcome === "succeeded")).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === "busy" || outcome === "superseded")).toHaveLength(5);
    expect(t.sends()).toBe(1);
    expect(await listWorkClaims(visitId, "transcription")).toHaveLength(1);
  });

  it("a live lease held elsewhere: nothing is claimed or paid", async () => {
    const visitId = await pendingVisit();
    await updateVisit(
      visitId,
      { lease: { stage: "transcription", attempt: 1, owner: "elsewhere", expiresAt: new Date(clockMs + 60_000) } },
      { now: new Date(clockMs), guard: {} },
    );
    const t = testStep();
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("busy");
    expect(t.sends()).toBe(0);
    expect(await listWorkClaims(visitId, "transcription")).toHaveLength(0);
  });
});

describe("a lease lost mid-call (a zombie)", () => {
  it("its late checkpoint is fenced off and its paid result is marked discarded; the newer attempt's result stays", async () => {
    const visitId = await pendingVisit();
    let release = () => {};
    const stalled = new Promise<void>((resolve) => (release = resolve));
    failpointRule = (name) => {
      if (name !== "after_transcription_submit") return null;
      failpointRule = null;
      return { stallUntil: stalled };
    };
    const zombieStep = testStep({ send: () => Promise.resolve({ transcriptId: "zombie-job" }) });
    const zombie = runPaidStep(p(), zombieStep.step, visitId, farDeadline());
    await waitFor(() => zombieStep.sends() === 1);

    advance(181); // the zombie's lease expires; a new attempt takes over and succeeds
    const fresh = testStep({ send: () => Promise.resolve({ transcriptId: "fresh-job" }) });
    expect(await runPaidStep(p(), fresh.step, visitId, farDeadline())).toBe("succeeded");
    release();
    expect(await zombie).toBe("superseded");

    expect((await visit(visitId)).transcriptId).toBe("fresh-job");
    const claims = await listWorkClaims(visitId, "transcription");
    expect(claims.find((claim) => claim.attempt === 1)).toMatchObject({ outcome: "discarded", transcriptId: "zombie-job" });
    expect(claims.find((claim) => claim.attempt === 2)).toMatchObject({ outcome: "succeeded", transcriptId: "fresh-job" });
    expect(named("stale_write_rejected").map((entry) => entry.fields)).toContainEqual(
      expect.objectContaining({ visitId, stage: "transcription", attempt: 1, reason: "status" }),
    );
  });
});

describe("the breaker", () => {
  it("open: the work is deferred to the end of the cooldown; no claim, no attempt used, nothing paid", async () => {
    const visitId = await pendingVisit();
    const breaker = p().breaker();
    for (let i = 0; i < 3; i++) await breaker.recordOutage("assemblyai", new Date(clockMs), false);
    const t = testStep();
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("deferred_outage");
    const after = await visit(visitId);
    expect(after.attempts.transcription).toBe(0);
    expect(after.nextCheckAt).toEqual((await breaker.state("assemblyai")).openUntil);
    expect(t.sends()).toBe(0);
    expect(await listWorkClaims(visitId, "transcription")).toHaveLength(0);
  });

  it("hears of outage-like failures only: a refused request leaves it closed", async () => {
    const visitId = await pendingVisit();
    const refused = testStep({ send: () => Promise.reject(new PipelineError("provider_bad_request", { httpStatus: 400 })) });
    for (let i = 0; i < 4; i++) {
      await runPaidStep(p(), refused.step, visitId, farDeadline());
    }
    expect((await p().breaker().state("assemblyai")).state).toBe("closed");
    const down = testStep({ send: () => Promise.reject(transient()), maxPaidAttempts: 1 });
    for (let i = 0; i < 3; i++) await runPaidStep(p(), down.step, await pendingVisit(), Date.now() + 500);
    expect((await p().breaker().state("assemblyai")).state).toBe("open");
  });
});

describe("transient failures", () => {
  it("are retried in-call after the provider's Retry-After, and the attempt then succeeds", async () => {
    const visitId = await pendingVisit();
    const t = testStep({ send: (n) => (n === 1 ? Promise.reject(transient(120)) : Promise.resolve({ transcriptId: "job-2" })) });
    const startedMs = Date.now();
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("succeeded");
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(110);
    expect(t.sends()).toBe(2);
    expect(named("provider_retry").map((entry) => entry.fields)).toEqual([
      expect.objectContaining({ visitId, provider: "assemblyai", operation: "submit", attempt: 1, waitMs: expect.any(Number) }),
    ]);
    expect(Number(named("provider_retry")[0]?.fields.waitMs)).toBeGreaterThanOrEqual(120);
    // In-call retries are one attempt.
    expect(await listWorkClaims(visitId, "transcription")).toHaveLength(1);
  });

  it("that outlast the in-call retries schedule the next attempt no sooner than Retry-After", async () => {
    const visitId = await pendingVisit();
    const t = testStep({ send: () => Promise.reject(transient(5_000)) });
    // Too little time left for even one in-call retry.
    expect(await runPaidStep(p(), t.step, visitId, Date.now() + 2_000)).toBe("retry_scheduled");
    const after = await visit(visitId);
    expect(after).toMatchObject({ status: "pending", lease: null, error: { stage: "transcription", code: "provider_unavailable" } });
    expect(after.nextCheckAt!.getTime() - clockMs).toBeGreaterThanOrEqual(5_000);
    expect((await listWorkClaims(visitId, "transcription"))[0]).toMatchObject({ outcome: "failed", code: "provider_unavailable" });
  });

  it("a retry that cannot finish before the deadline is declined before it is logged or slept", async () => {
    const visitId = await pendingVisit();
    const t = testStep({ send: () => Promise.reject(transient(60_000)) });
    const startedMs = Date.now();
    await runPaidStep(p(), t.step, visitId, Date.now() + 40_000);
    expect(t.sends()).toBe(1);
    expect(named("provider_retry")).toHaveLength(0);
    expect(Date.now() - startedMs).toBeLessThan(5_000);
  });
});

describe("in-call retries (providers/retry.ts)", () => {
  const policy = (deadlineMs: number) => retryPolicy({ retries: 3, minDelayMs: 100, deadlineMs, attemptTimeoutMs: 1_000 });

  it("decide the wait once: logged and slept exactly as planned, never less than Retry-After", async () => {
    let calls = 0;
    const slept: number[] = [];
    const logged: number[] = [];
    const result = await withRetries(
      () => (++calls < 3 ? Promise.reject(transient(calls === 1 ? 700 : undefined)) : Promise.resolve("ok")),
      policy(10_000),
      { onRetry: (_error, _attempt, waitMs) => logged.push(waitMs) },
      { now: () => 0, sleep: (ms) => (slept.push(ms), Promise.resolve()), random: () => 0.5 },
    );
    expect(result).toBe("ok");
    expect(logged).toEqual([700, 200]);
    expect(slept).toEqual(logged);
  });

  it("decline a retry whose wait plus one try would pass the deadline: not logged, not slept", async () => {
    const slept: number[] = [];
    const logged: number[] = [];
    const error = await withRetries(
      () => Promise.reject(transient(9_500)),
      policy(10_000),
      { onRetry: (_error, _attempt, waitMs) => logged.push(waitMs) },
      { now: () => 0, sleep: (ms) => (slept.push(ms), Promise.resolve()), random: () => 0.5 },
    ).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PipelineError);
    expect(logged).toEqual([]);
    expect(slept).toEqual([]);
  });

  it("never repeat an answer the provider gave, nor a request whose outcome is unknown", async () => {
    for (const failure of [new PipelineError("summary_invalid"), new PipelineError("summary_truncated"), transient().withOutcomeUnknown()]) {
      let calls = 0;
      await withRetries(() => (calls++, Promise.reject(failure)), policy(10_000), {}, { now: () => 0, sleep: () => Promise.resolve() }).catch(
        () => undefined,
      );
      expect([failure.code, calls]).toEqual([failure.code, 1]);
    }
  });
});

describe("an attempt fenced off while saving part of its work", () => {
  it("stops as superseded: no failure logged, no next attempt scheduled, the visit left to the newer work", async () => {
    const visitId = await pendingVisit();
    const fenced: PaidStep<"assemblyai", Job> = {
      ...testStep().step,
      async perform(work) {
        await work.pay("submit", () => Promise.resolve({ transcriptId: "job-1" }), { audioUrlSha256: "hash-1" });
        // What a stage throws when a part's save finds another attempt's lease on the visit.
        throw new PipelineError("lease_lost", { detail: "summary part fenced off" });
      },
    };
    expect(await runPaidStep(p(), fenced, visitId, farDeadline())).toBe("superseded");
    expect(named("stale_write_rejected").map((entry) => entry.fields)).toContainEqual(expect.objectContaining({ visitId, attempt: 1 }));
    expect(named("transcription_submit_failed")).toEqual([]);
    // No error and no next attempt written: the visit is the newer work's.
    expect(await visit(visitId)).toMatchObject({ status: "pending", error: null });
    expect((await listWorkClaims(visitId, "transcription"))[0]).toMatchObject({ outcome: "failed", code: "lease_lost", paidCalls: 1 });
  });
});

describe("an attempt out of its invocation's time", () => {
  it("stops before a further paid call it might not see finish; the next attempt carries on and is not counted as a try", async () => {
    const visitId = await pendingVisit();
    let sends = 0;
    const twoCalls: PaidStep<"assemblyai", Job> = {
      ...testStep({ maxPaidAttempts: 1 }).step,
      async perform(work) {
        await work.pay("submit", () => Promise.resolve({ transcriptId: `job-${++sends}` }), { audioUrlSha256: `first-${work.attempt}` });
        return work.pay("submit", () => Promise.resolve({ transcriptId: `job-${++sends}` }), { audioUrlSha256: `second-${work.attempt}` });
      },
    };
    const requestMs = p().config.assemblyAiTimeoutSeconds * 1000;
    // Less time left than one request may take: the first call goes all the same (an attempt always
    // makes progress), the second is left to the next attempt.
    expect(await runPaidStep(p(), twoCalls, visitId, Date.now() + requestMs / 2)).toBe("continued");
    expect(sends).toBe(1);
    const continued = await visit(visitId);
    expect(continued).toMatchObject({ status: "pending", lease: null, error: null });
    expect(continued.nextCheckAt?.getTime()).toBe(clockMs);
    expect((await listWorkClaims(visitId, "transcription"))[0]).toMatchObject({ outcome: "failed", code: "attempt_time_spent", paidCalls: 1 });
    expect(named("attempt_continued").map((entry) => entry.fields)).toEqual([{ visitId, stage: "transcription", attempt: 1 }]);
    expect(named("summarization_failed").concat(named("transcription_submit_failed"))).toEqual([]);

    // With MAX attempts 1, the next attempt still runs: the continued one was not a failed try.
    expect(await runPaidStep(p(), twoCalls, visitId, farDeadline())).toBe("succeeded");
    expect(sends).toBe(3);
    expect((await visit(visitId)).status).toBe("transcribing");
  });
});

describe("permanent failures and the end of a stage", () => {
  it("a permanent failure ends the stage at once with its code", async () => {
    const visitId = await pendingVisit();
    const t = testStep({ send: () => Promise.reject(new PipelineError("provider_auth_failed", { httpStatus: 401 })) });
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("ended");
    expect(await visit(visitId)).toMatchObject({ status: "failed", lease: null, error: { stage: "transcription", code: "provider_auth_failed" } });
    expect(t.sends()).toBe(1);
  });

  it("attempts running out end the stage with the last code; then nothing more is claimed or paid", async () => {
    const visitId = await pendingVisit();
    const t = testStep({ send: () => Promise.reject(transient()), maxPaidAttempts: 2 });
    expect(await runPaidStep(p(), t.step, visitId, Date.now() + 500)).toBe("retry_scheduled");
    expect(await runPaidStep(p(), t.step, visitId, Date.now() + 500)).toBe("ended");
    expect(await visit(visitId)).toMatchObject({ status: "failed", error: { code: "provider_unavailable" } });
    expect(t.sends()).toBe(2);
  });

  it("counts paid attempts by the claims' fields: unpaid tries do not use them up, but are bounded", async () => {
    const visitId = await pendingVisit();
    const t = testStep({ beforePay: () => Promise.reject(new PipelineError("internal_error", { detail: "cannot sign" })), maxPaidAttempts: 1 });
    const outcomes = [];
    for (let i = 0; i < 1 + UNPAID_TRIES_ALLOWED; i++) outcomes.push(await runPaidStep(p(), t.step, visitId, farDeadline()));
    expect(outcomes).toEqual([...Array<string>(UNPAID_TRIES_ALLOWED).fill("retry_scheduled"), "ended"]);
    expect(t.sends()).toBe(0);
    expect((await listWorkClaims(visitId, "transcription")).every((claim) => claim.sentAt === null)).toBe(true);
  });

  it("the visit's deadline passed: the stage ends with deadline_exceeded and nothing is paid", async () => {
    const visitId = await pendingVisit();
    advance(24 * 3600);
    const t = testStep();
    expect(await runPaidStep(p(), t.step, visitId, farDeadline())).toBe("ended");
    expect(await visit(visitId)).toMatchObject({ status: "failed", error: { code: "deadline_exceeded" } });
    expect(t.sends()).toBe(0);
  });
});

describe("the paid-call budget of a visit", () => {
  it("ends the stage with paid_call_budget_exhausted once MAX_PAID_CALLS_PER_VISIT calls were paid, whatever attempts are left", async () => {
    const visitId = await pendingVisit();
    const budgeted = (): Pipeline => ({ ...p(), config: { ...base.config, maxPaidCallsPerVisit: 2 } });
    const t = testStep({ send: () => Promise.reject(transient()), maxPaidAttempts: 10 });
    expect(await runPaidStep(budgeted(), t.step, visitId, Date.now() + 500)).toBe("retry_scheduled");
    expect(await runPaidStep(budgeted(), t.step, visitId, Date.now() + 500)).toBe("retry_scheduled");
    expect(await runPaidStep(budgeted(), t.step, visitId, Date.now() + 500)).toBe("ended");
    expect(t.sends()).toBe(2);
    expect(await visit(visitId)).toMatchObject({ status: "failed", error: { code: "paid_call_budget_exhausted", retryable: false } });
  });
});

describe("a crash after the paid call, before the checkpoint", () => {
  it("the next attempt hands the unsettled claim to the stage's recovery and checkpoints what it found, without paying", async () => {
    const visitId = await pendingVisit();
    failpointRule = (name) => (name === "after_transcription_submit" ? "crash" : null);
    const crashed = testStep({ recover: true });
    void runPaidStep(p(), crashed.step, visitId, farDeadline()); // never settles: the instance is gone
    await waitFor(() => crashed.sends() === 1);
    failpointRule = null;

    advance(181);
    const next = testStep({ recover: true });
    expect(await runPaidStep(p(), next.step, visitId, farDeadline())).toBe("recovered");
    expect(next.sends()).toBe(0);
    expect(next.recovered).toHaveLength(1);
    expect(next.recovered[0]?.map((claim) => [claim.attempt, claim.outcome])).toEqual([[1, null]]);
    expect(await visit(visitId)).toMatchObject({ status: "transcribing", transcriptId: "found-1" });
  });

  it("a result already recorded on the claim is checkpointed as it is", async () => {
    const visitId = await pendingVisit();
    const first = testStep();
    await runPaidStep(p(), first.step, visitId, farDeadline());
    // As if the checkpoint had been lost after the outcome was recorded: the visit is pending again.
    await updateVisit(visitId, { status: "pending", transcriptId: null }, { now: new Date(clockMs), guard: {} });
    const next = testStep({ recover: true });
    expect(await runPaidStep(p(), next.step, visitId, farDeadline())).toBe("recovered");
    expect(next.sends()).toBe(0);
    expect((await visit(visitId)).transcriptId).toBe("job-1");
  });

  it("a step without recovery pays again (its unsettled claims still count as paid)", async () => {
    const visitId = await pendingVisit();
    failpointRule = (name) => (name === "after_transcription_submit" ? "crash" : null);
    const crashed = testStep();
    void runPaidStep(p(), crashed.step, visitId, farDeadline());
    await waitFor(() => crashed.sends() === 1);
    failpointRule = null;
    advance(181);
    const next = testStep({ maxPaidAttempts: 2 });
    expect(await runPaidStep(p(), next.step, visitId, farDeadline())).toBe("succeeded");
    expect(next.sends()).toBe(1);
    expect((await listWorkClaims(visitId, "transcription")).filter((claim) => claim.sentAt)).toHaveLength(2);
  });
});

// Compile-time: a misspelt field or update path of a visit fails `npm run typecheck`.
export function misspeltUpdatesDoNotCompile(visitId: string): void {
  const options = { now: new Date(), guard: {} };
  // @ts-expect-error -- no such dotted path
  void updateVisit(visitId, { "attempts.transcriptoin": 1 }, options);
  // @ts-expect-error -- no such field
  void updateVisit(visitId, { nextCheckAtt: null }, options);
  // @ts-expect-error -- wrong type for a known field
  void updateVisit(visitId, { checks: "1" }, options);
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("a visit deleted while it is written to", () => {
  it("a guarded write whose visit is deleted between its read and its commit writes nothing and throws nothing", async () => {
    const visitId = await pendingVisit();
    installRuntimeHooks({ beforeVisitCommit: async (id) => void (await db().collection("visits").doc(id).delete()) });
    try {
      const written = await updateVisit(visitId, { checks: 1 }, { now: new Date(clockMs), guard: { statuses: ["pending"] } });
      expect(written).toEqual({ applied: false, reason: "missing", visit: null });
    } finally {
      installRuntimeHooks({ beforeVisitCommit: undefined });
    }
    expect(await getVisit(visitId)).toBeNull();
  });

  it("but a same-commit write to another document that is missing is an error, not a deleted visit", async () => {
    const visitId = await pendingVisit();
    const written = applyVisitEvent(visitId, { type: "transcription_submitted", transcriptId: "job-x" }, {
      now: new Date(clockMs),
      guard: { statuses: ["pending"] },
      alsoWrite: (tx) => void tx.update(db().doc(`visits/${visitId}/artifacts/not-there`), { seen: true }),
    });
    await expect(written).rejects.toThrow(/NOT_FOUND/);
    expect((await visit(visitId)).status).toBe("pending");
  });

  it("nor do concurrent writers and the cost's reconciliation racing the deletion (10 rounds, 6 writers each)", async () => {
    for (let round = 0; round < 10; round++) {
      const visitId = await pendingVisit();
      const now = new Date(clockMs);
      const settled = await Promise.allSettled([
        ...Array.from({ length: 5 }, (_, n) => updateVisit(visitId, { checks: n + 1 }, { now, guard: { statuses: ["pending"] } })),
        reconcileCost(visitId),
        db().collection("visits").doc(visitId).delete(),
      ]);
      expect(settled.filter((result) => result.status === "rejected")).toEqual([]);
      expect(await getVisit(visitId)).toBeNull();
    }
  });
});
