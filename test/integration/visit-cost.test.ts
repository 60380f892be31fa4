// The cost on the visit (`visit.cost`), through the real handlers and the real fake providers:
// audio seconds from AssemblyAI's `audio_duration`, tokens from OpenAI's `usage`, paid calls as the
// claims count them, discarded calls apart, and the estimate from the unit-price params — exact
// across retries, a fenced zombie, a re-upload and duplicate deliveries.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pipeline } from "../../functions/src/pipeline.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { countPaidCalls } from "../../functions/src/store/claims.js";
import { recordCost } from "../../functions/src/store/costs.js";
import { db } from "../../functions/src/store/db.js";
import { applyVisitEvent } from "../../functions/src/store/visits.js";
import { audioDelta } from "../../functions/src/visit/cost.js";
import { visitError } from "../../functions/src/visit/errors.js";
import type { VisitCost } from "../../functions/src/visit/model.js";
import { ASSEMBLYAI_ERROR_MESSAGES } from "../fakes/assemblyai.js";
import { createFailpoints } from "../support/failpoints.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";

let runtime: LocalRuntime;
let clockOffsetMs = 0;
let events: LoggedEvent[] = [];
const failpoints = createFailpoints();

// Prices chosen so every figure is easy to check by hand (micro-dollars per unit).
const PRICES = {
  ASSEMBLYAI_USD_PER_AUDIO_HOUR: "0.36",
  OPENAI_USD_PER_MILLION_INPUT_TOKENS: "2.5",
  OPENAI_USD_PER_MILLION_OUTPUT_TOKENS: "10",
};
const MICRO = { audioHour: 360_000, millionInput: 2_500_000, millionOutput: 10_000_000 };

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 }, env: { ...PRICES, PROVIDER_RETRY_MIN_DELAY_MS: "1" } });
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined, failpoint: undefined, onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  clockOffsetMs = 0;
  events = [];
  failpoints.releaseAll();
  installRuntimeHooks({ clock: () => new Date(Date.now() + clockOffsetMs), failpoint: failpoints.hook, onLog: (entry) => events.push(entry) });
});

afterEach(async () => {
  failpoints.releaseAll();
  runtime.tasks.resume();
  await runtime.setEnv({ SUMMARY_MAX_ATTEMPTS: undefined });
});

function advanceClock(seconds: number): void {
  clockOffsetMs += seconds * 1000;
}

async function settle(visitIds: string[]): Promise<void> {
  await runtime.runUntilSettled(visitIds, { advance: () => advanceClock(90) });
}

function turns(marker: string): { speaker: string; text: string }[] {
  return [0, 1, 2, 3].map((index) => ({
    speaker: index % 2 === 0 ? "clinician" : "patient",
    text: `We went over the ${marker} plan, part ${index + 1}, and will follow up next month.`,
  }));
}

/** What the fake OpenAI billed for, summed. */
function servedTokens(): { promptTokens: number; completionTokens: number } {
  return runtime.openai.servedUsage().reduce(
    (sum, usage) => ({ promptTokens: sum.promptTokens + usage.promptTokens, completionTokens: sum.completionTokens + usage.completionTokens }),
    { promptTokens: 0, completionTokens: 0 },
  );
}

/** The cost as computed by hand: each call's amount rounded to whole micro-dollars, as the ledger does. */
function expectedCost(input: { audioSeconds: number[]; paidCalls: number; discardedPaidCalls: number }): VisitCost {
  const audioMicro = input.audioSeconds.reduce((sum, seconds) => sum + Math.round((seconds * MICRO.audioHour) / 3600), 0);
  const tokenMicro = runtime.openai
    .servedUsage()
    .reduce((sum, usage) => sum + Math.round((usage.promptTokens * MICRO.millionInput + usage.completionTokens * MICRO.millionOutput) / 1e6), 0);
  return {
    audioSeconds: input.audioSeconds.reduce((a, b) => a + b, 0),
    ...servedTokens(),
    paidCalls: input.paidCalls,
    discardedPaidCalls: input.discardedPaidCalls,
    estimatedUsd: (audioMicro + tokenMicro) / 1e6,
  };
}

function named(event: string): LoggedEvent[] {
  return events.filter((entry) => entry.event === event);
}

describe("a visit that completes at the first try", () => {
  it("costs one submission and one summary: its audio seconds, the tokens OpenAI reported, and the estimate at the params' prices", async () => {
    runtime.assemblyai.registerAudio("half-hour", { kind: "transcript", languageCode: "en", turns: turns("cedar"), audioDurationSeconds: 1800 });
    const visitId = newVisitId("cost");
    await runtime.upload({ uid: "user-1", visitId, fileName: "half-hour.m4a" });
    expect((await readVisit(visitId)).cost).toEqual({ audioSeconds: 0, promptTokens: 0, completionTokens: 0, paidCalls: 1, discardedPaidCalls: 0, estimatedUsd: 0 });
    await settle([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.openai.servedUsage()).toHaveLength(1);
    expect(servedTokens().promptTokens).toBeGreaterThan(0);
    expect(visit.cost).toEqual(expectedCost({ audioSeconds: [1800], paidCalls: 2, discardedPaidCalls: 0 }));
    // Half an hour at $0.36/h is $0.18, plus the tokens.
    expect(visit.cost!.estimatedUsd).toBeGreaterThan(0.18);
    expect(await countPaidCalls(visitId)).toBe(visit.cost!.paidCalls);

    // The completion events carry the cost so far, numbers only.
    expect(named("transcript_saved").at(-1)?.fields.cost).toMatchObject({ audioSeconds: 1800, paidCalls: 1 });
    expect(named("summarization_completed").at(-1)?.fields.cost).toEqual(visit.cost);
  });

  it("a failed upload costs nothing: no paid call, the cost stays null", async () => {
    const visitId = newVisitId("cost");
    await runtime.upload({ uid: "user-1", visitId, contentType: "text/plain", fileName: "notes.txt", sizeBytes: 10 });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.cost).toBeNull();
  });
});

describe("retries", () => {
  it("every attempt that was sent counts, failed ones included; only answered calls add tokens; a retry round adds its own", async () => {
    await runtime.setEnv({ SUMMARY_MAX_ATTEMPTS: "2" });
    runtime.assemblyai.registerAudio("retried", { kind: "transcript", languageCode: "en", turns: turns("maple"), audioDurationSeconds: 600 });
    // Both automatic summary attempts fail (each with its in-call retries): the visit ends partial.
    runtime.openai.faults.enqueue("chat", { kind: "status", status: 500 }, 8);
    const visitId = newVisitId("cost");
    await runtime.upload({ uid: "user-1", visitId, fileName: "retried.m4a" });
    await settle([visitId]);
    const partial = await readVisit(visitId);
    expect(partial.status).toBe("partial");
    expect(runtime.openai.servedUsage()).toHaveLength(0);
    expect(partial.cost).toEqual(expectedCost({ audioSeconds: [600], paidCalls: 3, discardedPaidCalls: 0 }));

    // The retry button: one more round, which succeeds.
    expect(await retryVisit(pipeline(), { visitId, uid: "user-1" }, Date.now() + 60_000)).toMatchObject({ kind: "accepted" });
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.openai.servedUsage()).toHaveLength(1);
    expect(visit.cost).toEqual(expectedCost({ audioSeconds: [600], paidCalls: 4, discardedPaidCalls: 0 }));
    expect(await countPaidCalls(visitId)).toBe(4);
  });
});

describe("a fenced zombie", () => {
  it("its summary call is paid and counted, tokens and all, and counted again as discarded once its write is refused", async () => {
    runtime.assemblyai.registerAudio("zombie", { kind: "transcript", languageCode: "en", turns: turns("birch"), audioDurationSeconds: 900 });
    const visitId = newVisitId("cost");
    runtime.tasks.pause();
    await runtime.upload({ uid: "user-1", visitId, fileName: "zombie.m4a" });
    await runtime.runChecker();
    expect((await readVisit(visitId)).status).toBe("summarizing");

    const stall = failpoints.stallAt("after_summary_call");
    const zombie = runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never) as Promise<unknown>;
    await stall.reached;
    // Its lease expires; the checker dispatches attempt 2, which completes.
    advanceClock(20 * 60);
    runtime.tasks.resume();
    await runtime.runChecker();
    await runtime.tasks.drain();
    const completed = await readVisit(visitId);
    expect(completed.status).toBe("completed");
    expect(completed.cost).toEqual(expectedCost({ audioSeconds: [900], paidCalls: 3, discardedPaidCalls: 0 }));

    stall.release();
    await zombie;
    expect(named("stale_write_rejected").map((entry) => entry.fields)).toContainEqual(expect.objectContaining({ visitId, stage: "summarization", attempt: 1 }));
    const after = await readVisit(visitId);
    expect(runtime.openai.servedUsage()).toHaveLength(2);
    expect(after.cost).toEqual(expectedCost({ audioSeconds: [900], paidCalls: 3, discardedPaidCalls: 1 }));
    expect(await countPaidCalls(visitId)).toBe(3);
  });
});

describe("a re-upload", () => {
  it("keeps the replaced recording's cost, adds the new one's, and counts the replaced recording's late result as discarded", async () => {
    runtime.assemblyai.registerAudio("first-take", { kind: "transcript", languageCode: "en", turns: turns("willow"), audioDurationSeconds: 300 });
    runtime.assemblyai.registerAudio("second-take", { kind: "transcript", languageCode: "en", turns: turns("aspen"), audioDurationSeconds: 420 });
    const uid = "user-1";
    const visitId = newVisitId("cost");
    runtime.tasks.pause();
    await runtime.upload({ uid, visitId, fileName: "first-take.m4a" });
    // A check of the first recording fetches its finished transcript, then stalls.
    const staleCheck = failpoints.stallAt("after_transcript_fetch");
    const staleChecker = runtime.runChecker();
    await staleCheck.reached;
    const failed = await applyVisitEvent(
      visitId,
      { type: "transcription_failed", error: visitError("transcription", "deadline_exceeded") },
      { now: new Date(Date.now() + clockOffsetMs), guard: { statuses: ["transcribing"] }, fields: { lease: null } },
    );
    expect(failed.applied).toBe(true);

    await runtime.upload({ uid, visitId, fileName: "second-take.m4a" });
    runtime.tasks.resume();
    await settle([visitId]);
    expect((await readVisit(visitId)).cost).toEqual(expectedCost({ audioSeconds: [420], paidCalls: 3, discardedPaidCalls: 0 }));

    // The stale check wakes: its transcript is not kept, its job's audio was paid for and wasted.
    staleCheck.release();
    await staleChecker;
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.cost).toEqual(expectedCost({ audioSeconds: [300, 420], paidCalls: 3, discardedPaidCalls: 1 }));
    // The claims of the replaced recording are gone; the cost still counts its submission.
    expect(await countPaidCalls(visitId)).toBe(2);
  });

  it("a re-upload after a failed transcription: both submissions stay on the cost", async () => {
    runtime.assemblyai.registerAudio("second-take", { kind: "transcript", languageCode: "en", turns: turns("alder"), audioDurationSeconds: 240 });
    const visitId = newVisitId("cost");
    runtime.assemblyai.faults.enqueue("submit", { kind: "transcriptError", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
    await runtime.upload({ uid: "user-1", visitId, fileName: "first-take.m4a" });
    await settle([visitId]);
    expect((await readVisit(visitId)).status).toBe("failed");
    await runtime.upload({ uid: "user-1", visitId, fileName: "second-take.m4a" });
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.cost).toEqual(expectedCost({ audioSeconds: [240], paidCalls: 3, discardedPaidCalls: 0 }));
  });
});

describe("duplicate deliveries", () => {
  it("five concurrent upload deliveries, checker runs and task deliveries: each paid call and each job's audio counted once", async () => {
    runtime.assemblyai.registerAudio("storm", { kind: "transcript", languageCode: "en", turns: turns("spruce"), audioDurationSeconds: 1200 });
    const visitId = newVisitId("cost");
    const upload = { uid: "user-1", visitId, fileName: "storm.m4a", generation: "1700000000000777" };
    runtime.tasks.pause();
    await Promise.all(Array.from({ length: 5 }, () => runtime.upload(upload)));
    await Promise.all(Array.from({ length: 5 }, () => runtime.runChecker()));
    expect((await readVisit(visitId)).status).toBe("summarizing");
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
      }),
    );
    runtime.tasks.resume();
    await settle([visitId]);
    // A late duplicate after completion changes nothing either.
    await runtime.upload(upload);
    await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(runtime.openai.completionCount()).toBe(1);
    expect(visit.cost).toEqual(expectedCost({ audioSeconds: [1200], paidCalls: 2, discardedPaidCalls: 0 }));
  });

  it("the same fact reported by six callers at once is recorded once, and the visit's figure equals its ledger", async () => {
    const visitId = newVisitId("cost");
    await runtime.upload({ uid: "user-1", visitId });
    const before = (await readVisit(visitId)).cost!;
    const prices = pipeline().config.unitPrices;
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        recordCost(visitId, { fact: "audio", workStage: "transcription", of: "job-storm" }, audioDelta(3600, prices), { now: new Date() }),
      ),
    );
    expect(results.filter((result) => result.recorded)).toHaveLength(1);
    // Six different facts at once: none lost, although the embedded Firestore does not isolate transactions.
    await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        recordCost(visitId, { fact: "audio", workStage: "transcription", of: `job-${index}` }, audioDelta(60, prices), { now: new Date() }),
      ),
    );
    const visit = await readVisit(visitId);
    expect(visit.cost).toMatchObject({ audioSeconds: before.audioSeconds + 3600 + 6 * 60, paidCalls: before.paidCalls });
    expect(visit.cost!.estimatedUsd).toBeCloseTo(before.estimatedUsd + 0.36 + 6 * 0.006, 9);
    const entries = await db().collection(`visits/${visitId}/claims`).where("stage", "==", "cost").get();
    expect(entries.docs.filter((doc) => doc.get("fact") === "audio")).toHaveLength(7);
  });
});
