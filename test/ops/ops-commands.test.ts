// Every ops command on the embedded Firestore, with visits seeded through the real pipeline:
// the command functions in process (runOps), and the real entry as a child process for exit codes
// and --json output.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { resumeRefusal } from "../../functions/src/stages/retry-visit.js";
import { breakerSettingsFrom } from "../../functions/src/providers/outage-policy.js";
import { getConfig } from "../../functions/src/config.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import { createFirestoreBreaker } from "../../functions/src/store/breaker.js";
import { db } from "../../functions/src/store/db.js";
import { updateVisit } from "../../functions/src/store/visits.js";
import { percentiles, summarizeVisits } from "../../functions/src/ops/stats.js";
import { resolveActor } from "../../functions/src/ops/cli.js";
import { supportDocumentIdCursors } from "../support/embedded-firestore-cursors.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { readVisit, visitExists } from "../support/visits.js";
import {
  parseJson,
  runChild,
  runInProcess,
  seedCompleted,
  seedFailedTranscription,
  seedPartial,
  seedTranscribing,
} from "./ops-harness.js";

let runtime: LocalRuntime;
let clockOffsetMs = 0;

beforeAll(async () => {
  supportDocumentIdCursors();
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  clockOffsetMs = 0;
  installRuntimeHooks({ clock: () => new Date(Date.now() + clockOffsetMs) });
});

const HOUR_MS = 3_600_000;

describe("ops stuck", () => {
  it("lists unfinished visits past their thresholds, oldest first, with the reasons, and exits 1", async () => {
    const older = await seedTranscribing(runtime);
    const newer = await seedTranscribing(runtime);
    await seedCompleted(runtime);
    const fresh = await runInProcess(["stuck", "--json"]);
    expect(fresh.code).toBe(0);
    expect(parseJson(fresh)).toMatchObject({ scanned: 2, stuck: [] });

    clockOffsetMs = 3 * HOUR_MS;
    const run = await runInProcess(["stuck", "--json"]);
    expect(run.code).toBe(1);
    const report = parseJson(run) as { scanned: number; stuck: { visitId: string; status: string; reasons: string[]; statusAgeSeconds: number }[] };
    expect(report.scanned).toBe(2);
    expect(report.stuck.map((visit) => visit.visitId)).toEqual([older, newer]);
    expect(report.stuck[0]).toMatchObject({ status: "transcribing", reasons: ["status_age", "check_overdue"] });
    expect(report.stuck[0]?.statusAgeSeconds).toBeGreaterThanOrEqual(3 * 3600);
  });

  it("reports an expired lease and a visit with no check scheduled; thresholds come from the options", async () => {
    const visitId = await seedTranscribing(runtime);
    const now = new Date();
    await updateVisit(
      visitId,
      { nextCheckAt: null, lease: { stage: "transcription", attempt: 1, owner: "gone", expiresAt: new Date(now.getTime() - HOUR_MS) } },
      { now, guard: { statuses: ["transcribing"] } },
    );
    const run = await runInProcess(["stuck", "--older-than", "7d", "--grace", "10m", "--json"]);
    expect(run.code).toBe(1);
    expect(parseJson(run)).toMatchObject({
      thresholds: { graceSeconds: 600, statusAgeSeconds: { transcribing: 604_800 } },
      stuck: [{ visitId, reasons: ["no_check_scheduled", "lease_expired"] }],
    });
  });

  it("draws a progress bar on stderr only when stderr is a terminal, never into stdout", async () => {
    await seedTranscribing(runtime);
    const tty = await runInProcess(["stuck", "--json"], { tty: true });
    expect(tty.stderr).toMatch(/scanning unfinished visits \[#+-*\] 1\/1/);
    expect(() => parseJson(tty)).not.toThrow();
    const piped = await runInProcess(["stuck", "--json"]);
    expect(piped.stderr).toBe("");
  });
});

describe("ops stats", () => {
  it("counts by status, rates over finished visits, stage times, retries, cost (null = unknown) and top error codes", async () => {
    const completed = await seedCompleted(runtime);
    const partial = await seedPartial(runtime);
    const failed = await seedFailedTranscription(runtime);
    const transcribing = await seedTranscribing(runtime);
    // The pipeline accounts every visit's cost; fixed figures make the sums checkable, and a visit
    // from before cost accounting (cost null) counts as unknown.
    const now = new Date();
    const costs = [
      [completed, { audioSeconds: 79, promptTokens: 400, completionTokens: 300, paidCalls: 2, discardedPaidCalls: 0, estimatedUsd: 0.05 }],
      [partial, { audioSeconds: 60, promptTokens: 1000, completionTokens: 200, paidCalls: 3, discardedPaidCalls: 1, estimatedUsd: 0.25 }],
      [failed, null],
      [transcribing, { audioSeconds: 0, promptTokens: 0, completionTokens: 0, paidCalls: 1, discardedPaidCalls: 0, estimatedUsd: 0 }],
    ] as const;
    for (const [visitId, cost] of costs) await updateVisit(visitId, { cost }, { now, guard: {} });
    const run = await runInProcess(["stats", "--since", "1h", "--json"]);
    expect(run.code).toBe(0);
    const report = parseJson(run);
    expect(report).toMatchObject({
      visits: 4,
      byStatus: { pending: 0, transcribing: 1, summarizing: 0, completed: 1, partial: 1, failed: 1 },
      rates: { terminal: 3, completed: 0.3333, partial: 0.3333, failed: 0.3333 },
      retries: { visitsRetried: 0, retryRounds: 0, extraAttempts: 0 },
      cost: { visitsWithCost: 3, visitsCostUnknown: 1, totalUsd: 0.3, perVisitUsd: 0.1, paidCalls: 6, discardedPaidCalls: 1 },
    });
    expect(report.topErrorCodes).toEqual(
      expect.arrayContaining([
        { code: "summary_refused", count: 1 },
        { code: "transcription_failed", count: 1 },
      ]),
    );
    const stages = report.stageSeconds as Record<string, { count: number; p50Seconds: number | null }>;
    expect(stages.pending?.count).toBe(4);
    expect(stages.transcribing?.count).toBe(3);
    expect(stages.summarizing?.count).toBe(2);
    expect(stages.endToEnd?.count).toBe(3);
    expect(stages.endToEnd?.p50Seconds).toBeGreaterThan(0);
  });

  it("counts only visits created in the window, across pages", async () => {
    const ids = [await seedCompleted(runtime), await seedCompleted(runtime), await seedCompleted(runtime)];
    expect(ids).toHaveLength(3);
    clockOffsetMs = 2 * HOUR_MS;
    expect(parseJson(await runInProcess(["stats", "--since", "1h", "--json"]))).toMatchObject({ visits: 0 });
    expect(parseJson(await runInProcess(["stats", "--since", "3h", "--json"]))).toMatchObject({ visits: 3, byStatus: { completed: 3 } });
  });

  it("percentiles by nearest rank; an empty window has no rates", () => {
    expect(percentiles([5, 1, 4, 2, 3])).toEqual({ count: 5, p50Seconds: 3, p95Seconds: 5 });
    expect(percentiles([])).toEqual({ count: 0, p50Seconds: null, p95Seconds: null });
    const empty = summarizeVisits([], { since: new Date(0), now: new Date(1000), invalidIds: [] });
    expect(empty.rates).toEqual({ terminal: 0, completed: null, partial: null, failed: null });
    expect(empty.cost.perVisitUsd).toBeNull();
  });
});

describe("ops show", () => {
  it("shows history, attempts, lease, error and cost — never transcript or summary text, object names or URLs", async () => {
    const visitId = await seedCompleted(runtime);
    const visit = await readVisit(visitId);
    const json = await runInProcess(["show", visitId, "--json"]);
    expect(json.code).toBe(0);
    const view = parseJson(json);
    expect(view).toMatchObject({
      visitId,
      status: "completed",
      hasSummary: true,
      summaryTranslation: null,
      clinicianNote: null,
      attempts: { transcription: 1, summarization: 1 },
      recording: { contentType: "audio/mp4", generation: visit.audio?.generation },
      // One AssemblyAI job and one OpenAI call, as the pipeline accounted them.
      cost: { paidCalls: 2, discardedPaidCalls: 0, audioSeconds: visit.cost?.audioSeconds, promptTokens: visit.cost?.promptTokens },
      audit: [],
    });
    expect(visit.cost?.audioSeconds).toBeGreaterThan(0);
    expect(visit.cost?.promptTokens).toBeGreaterThan(0);
    expect((view.history as { event: string }[]).map((entry) => entry.event)).toEqual([
      "upload_accepted",
      "transcription_submitted",
      "transcript_saved",
      "summary_saved",
    ]);
    const text = await runInProcess(["show", visitId]);
    for (const output of [json.stdout, text.stdout]) {
      expect(output).not.toContain(visit.audio?.fileName ?? "visit-en.m4a");
      expect(output).not.toContain("users/");
      expect(output).not.toMatch(/https?:\/\//);
      expect(output).not.toContain(visit.summary?.overview ?? "(none)");
    }
    expect(text.stdout).toContain("summary_saved");
  });

  it("exits 3 for a visit that does not exist", async () => {
    const run = await runInProcess(["show", "no-such-visit", "--json"]);
    expect(run.code).toBe(3);
    expect(parseJson(run)).toEqual({ ok: false, error: { code: "visit_not_found", visitId: "no-such-visit" } });
  });
});

describe("ops requeue", () => {
  it("re-summarizes a partial visit through the retry stage, with an audit entry", async () => {
    const visitId = await seedPartial(runtime);
    const run = await runInProcess(["requeue", visitId, "--reason", "model refusal fixed", "--actor", "alice@example.org", "--json"]);
    expect(run.code).toBe(0);
    expect(parseJson(run)).toMatchObject({ ok: true, visitId, resumedStage: "summarization", status: "summarizing", retryCount: 1 });
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.history.map((entry) => entry.event)).toContain("operator_requeued");
    expect(visit.audit).toEqual([
      { action: "requeued", actor: "alice@example.org", at: expect.any(Date), reason: "model refusal fixed", resumedStage: "summarization" },
    ]);
  });

  it("resubmits a failed transcription (a new paid submission), without the per-user retry limits", async () => {
    await runtime.setEnv({ RETRY_QUOTA_PER_HOUR: "1", RETRY_COOLDOWN_SECONDS: "3600" });
    try {
      const visitId = await seedFailedTranscription(runtime);
      const submitsBefore = runtime.assemblyai.submitCount();
      const first = await runInProcess(["requeue", visitId, "--json"]);
      expect(parseJson(first)).toMatchObject({ resumedStage: "transcription", retryCount: 1 });
      expect(runtime.assemblyai.submitCount()).toBe(submitsBefore + 1);
      await runtime.runUntilSettled([visitId]);
      expect((await readVisit(visitId)).status).toBe("failed"); // the fake still fails this recording
      const second = await runInProcess(["requeue", visitId, "--json"]);
      expect(second.code).toBe(0);
      expect(parseJson(second)).toMatchObject({ resumedStage: "transcription", retryCount: 2 });
      expect((await readVisit(visitId)).audit.map((entry) => entry.action)).toEqual(["requeued", "requeued"]);
    } finally {
      await runtime.setEnv({ RETRY_QUOTA_PER_HOUR: undefined, RETRY_COOLDOWN_SECONDS: undefined });
    }
  });

  it("is refused (exit 4) for a completed or an unfinished visit, and changes nothing", async () => {
    const done = await seedCompleted(runtime);
    const busy = await seedTranscribing(runtime);
    for (const [visitId, code] of [
      [done, "nothing_to_retry"],
      [busy, "already_processing"],
    ] as const) {
      const before = await readVisit(visitId);
      const run = await runInProcess(["requeue", visitId, "--json"]);
      expect(run.code).toBe(4);
      expect(parseJson(run)).toMatchObject({ ok: false, error: { code, visitId } });
      expect(await readVisit(visitId)).toEqual(before);
    }
    expect(resumeRefusal(await readVisit(done))).toBe("nothing_to_retry");
  });

  it("without the AssemblyAI key leaves the resubmission to the checker: the visit is due at once", async () => {
    const visitId = await seedFailedTranscription(runtime);
    const submitsBefore = runtime.assemblyai.submitCount();
    const env = { ...process.env, ASSEMBLYAI_API_KEY: "" };
    const run = await runInProcess(["requeue", visitId, "--json"], { env });
    expect(parseJson(run)).toMatchObject({ resumedStage: "transcription", status: "pending" });
    expect(runtime.assemblyai.submitCount()).toBe(submitsBefore);
    const visit = await readVisit(visitId);
    expect(visit.nextCheckAt?.getTime()).toBeLessThanOrEqual(Date.now() + clockOffsetMs);
    await runtime.runChecker();
    expect(runtime.assemblyai.submitCount()).toBe(submitsBefore + 1);
  });
});

describe("ops fail", () => {
  it("ends an unfinished visit through the state machine, fences its lease and records who and why", async () => {
    const visitId = await seedTranscribing(runtime);
    const run = await runInProcess(["fail", visitId, "--reason", "stuck at the provider for a day", "--actor", "bob", "--json"]);
    expect(run.code).toBe(0);
    expect(parseJson(run)).toEqual({ ok: true, visitId, from: "transcribing", status: "failed", errorCode: "operator_failed" });
    const visit = await readVisit(visitId);
    expect(visit).toMatchObject({ status: "failed", lease: null, nextCheckAt: null, error: { code: "operator_failed", retryable: true } });
    expect(visit.audit).toEqual([{ action: "failed", actor: "bob", at: expect.any(Date), reason: "stuck at the provider for a day", resumedStage: null }]);
    expect(visit.history.at(-1)).toMatchObject({ event: "operator_failed", status: "failed", code: "operator_failed" });

    // The known job is checked again rather than paid for again.
    const requeue = await runInProcess(["requeue", visitId, "--json"]);
    expect(parseJson(requeue)).toMatchObject({ resumedStage: "transcript_checkpoint" });
  });

  it("ends a summarizing visit partial (its transcript is kept)", async () => {
    const visitId = await seedPartial(runtime);
    await runInProcess(["requeue", visitId]);
    expect((await readVisit(visitId)).status).toBe("summarizing");
    const run = await runInProcess(["fail", visitId, "--reason", "model outage", "--json"]);
    expect(parseJson(run)).toMatchObject({ from: "summarizing", status: "partial" });
  });

  it("needs --reason (exit 2), refuses a finished visit (exit 4) and a missing one (exit 3)", async () => {
    const done = await seedCompleted(runtime);
    const before = await readVisit(done);
    expect((await runInProcess(["fail", done])).code).toBe(2);
    const refused = await runInProcess(["fail", done, "--reason", "x", "--json"]);
    expect(refused.code).toBe(4);
    expect(parseJson(refused)).toMatchObject({ ok: false, error: { code: "illegal_transition", status: "completed" } });
    expect(await readVisit(done)).toEqual(before);
    expect((await runInProcess(["fail", "missing-visit", "--reason", "x"])).code).toBe(3);
  });
});

describe("ops breaker", () => {
  it("shows both breakers (exit 1 while one is open) and --reset closes one", async () => {
    const breaker = createFirestoreBreaker(breakerSettingsFrom(getConfig()));
    for (let i = 0; i < getConfig().breakerFailureThreshold; i++) await breaker.recordOutage("assemblyai", new Date(), false);
    const open = await runInProcess(["breaker", "--json"]);
    expect(open.code).toBe(1);
    expect(parseJson(open)).toMatchObject({ breakers: [{ provider: "assemblyai", state: "open" }, { provider: "openai", state: "closed" }] });
    const reset = await runInProcess(["breaker", "--reset", "assemblyai", "--json"]);
    expect(reset.code).toBe(0);
    expect(parseJson(reset)).toMatchObject({ provider: "assemblyai", before: { state: "open" }, after: { state: "closed", failures: 0 } });
    expect((await breaker.state("assemblyai")).state).toBe("closed");
    expect((await runInProcess(["breaker"])).code).toBe(0);
    expect((await runInProcess(["breaker", "--reset", "stripe"])).code).toBe(2);
  });
});

describe("ops delete", () => {
  it("deletes the visit and everything stored about it (deleteVisit), idempotently; needs --yes", async () => {
    const visitId = await seedCompleted(runtime);
    expect((await runInProcess(["delete", visitId])).code).toBe(2);
    expect(await visitExists(visitId)).toBe(true);
    const run = await runInProcess(["delete", visitId, "--yes", "--json"]);
    expect(run.code).toBe(0);
    expect(parseJson(run)).toMatchObject({ ok: true, visitId, alreadyDeleted: false, removed: { visit: 1, storageObjects: 1 } });
    expect(await visitExists(visitId)).toBe(false);
    const tombstone = await db().collection("deletedVisits").doc(visitId).get();
    expect(tombstone.get("reason")).toBe("operator");
    const again = await runInProcess(["delete", visitId, "--yes", "--json"]);
    expect(parseJson(again)).toMatchObject({ ok: true, alreadyDeleted: true });
    expect((await runInProcess(["delete", "never-existed", "--yes"])).code).toBe(3);
  });
});

describe("usage", () => {
  it("exits 2 with the usage for an unknown command, a missing command, a bad option or duration", async () => {
    for (const args of [["frobnicate"], [], ["stuck", "--nope"], ["stats", "--since", "yesterday"], ["show"], ["list", "--status", "lost"]]) {
      const run = await runInProcess(args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr).toContain("Usage: npm run ops");
    }
    const help = await runInProcess(["help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Exit codes: 0 ok, 1 findings");
  });

  it("the actor is --actor, else the credentials' service account, else the OS user", () => {
    expect(resolveActor("  carol ", {})).toBe("carol");
    expect(resolveActor(undefined, { GOOGLE_APPLICATION_CREDENTIALS: process.env.GOOGLE_APPLICATION_CREDENTIALS })).toMatch(/@.*\.iam\.gserviceaccount\.com$|@/);
    expect(resolveActor(undefined, {})).toMatch(/^os:.+@.+/);
  });
});

describe("ops list", () => {
  it("lists visits in a status and error code; --ids prints one id a line", async () => {
    const failed = await seedFailedTranscription(runtime);
    await seedCompleted(runtime);
    const run = await runInProcess(["list", "--status", "failed", "--code", "transcription_failed", "--json"]);
    expect(parseJson(run)).toMatchObject({ visits: [{ visitId: failed, status: "failed", errorCode: "transcription_failed" }] });
    expect((await runInProcess(["list", "--status", "failed", "--ids"])).stdout).toBe(`${failed}\n`);
    expect((await runInProcess(["list", "--status", "failed", "--code", "summary_refused", "--ids"])).stdout).toBe("");
  });
});

describe("the real entry, as a child process", () => {
  it("prints one JSON document on stdout (function logs never mixed in) and exits with the documented codes", async () => {
    const partial = await seedPartial(runtime);
    const done = await seedCompleted(runtime);
    const busy = await seedTranscribing(runtime);

    const requeue = await runChild(["requeue", partial, "--json", "--actor", "ci"]);
    expect(requeue.code, requeue.stderr).toBe(0);
    expect(parseJson(requeue)).toMatchObject({ ok: true, visitId: partial, resumedStage: "summarization" });
    await runtime.tasks.drain();
    expect((await readVisit(partial)).status).toBe("completed");

    const show = await runChild(["show", done, "--json"]);
    expect(show.code).toBe(0);
    expect(parseJson(show)).toMatchObject({ visitId: done, status: "completed" });

    const stuck = await runChild(["stuck", "--older-than", "1s", "--grace", "1s", "--json"]);
    expect(parseJson(stuck)).toMatchObject({ stuck: [{ visitId: busy }] });
    expect(stuck.code).toBe(1);

    const refused = await runChild(["fail", done, "--reason", "test", "--json"]);
    expect(refused.code).toBe(4);
    expect(parseJson(refused)).toMatchObject({ ok: false, error: { code: "illegal_transition" } });

    expect((await runChild(["show", "missing-visit"])).code).toBe(3);
    expect((await runChild(["stats", "--since", "soon"])).code).toBe(2);
  });
});
