// Summaries of transcripts of any length, and the fallback model, through the real handlers: the
// embedded Firestore, the real openai SDK against the fake OpenAI server (which answers per part,
// refuses prompts over a context limit and models that do not exist), and a multi-hour visit
// summarized with a small context budget.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { pipeline } from "../../functions/src/pipeline.js";
import { deleteVisit } from "../../functions/src/stages/delete-visit.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { exportUserData } from "../../functions/src/stages/export-user-data.js";
import { countPaidCalls } from "../../functions/src/store/claims.js";
import { db } from "../../functions/src/store/db.js";
import { deleteTranscripts } from "../../functions/src/store/transcripts.js";
import { dedupKey } from "../../functions/src/visit/summary-merge.js";
import { estimateTokens } from "../../functions/src/visit/summary-plan.js";
import { estimateTokens as fakeTokens, responseFormatName } from "../fakes/openai.js";
import type { ChatRequestBody } from "../fakes/openai.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import { visitSummary } from "../support/summaries.js";
import { spokenTurns, userText } from "../support/long-visits.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readActionItems, readVisit } from "../support/visits.js";

const CONTEXT_TOKENS = 3_000;
const PRIMARY = "gpt-4.1-mini";
const FALLBACK = "gpt-4o-mini";

let runtime: LocalRuntime;
let events: LoggedEvent[] = [];

const TUNED_ENV = [
  "SUMMARY_CONTEXT_TOKENS",
  "SUMMARY_MAX_AUDIO_SECONDS",
  "OPENAI_MODEL",
  "OPENAI_FALLBACK_MODEL",
  "SUMMARY_MAX_ATTEMPTS",
  "MAX_PAID_CALLS_PER_VISIT",
  "PROVIDER_RETRY_MIN_DELAY_MS",
  "BREAKER_FAILURE_THRESHOLD",
  "OPENAI_TIMEOUT_SECONDS",
] as const;

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
});

afterAll(async () => {
  installRuntimeHooks({ onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  events = [];
  installRuntimeHooks({ onLog: (entry) => events.push(entry) });
});

afterEach(async () => {
  await runtime.setEnv(Object.fromEntries(TUNED_ENV.map((key) => [key, undefined])));
});

async function uploadVisit(name: string, visitTurns: { speaker: string; text: string }[]): Promise<string> {
  runtime.assemblyai.registerAudio(name, { kind: "transcript", languageCode: "en", turns: visitTurns });
  const visitId = newVisitId();
  await runtime.upload({ uid: "user-1", visitId, fileName: `${name}.m4a` });
  return visitId;
}

function markersOf(body: ChatRequestBody): number[] {
  return [...userText(body).matchAll(/\bt(\d+)\b/g)].map((match) => Number(match[1]));
}

/** The prompt as this pipeline estimates it: every message's text and the response schema. */
function estimatedPromptTokens(body: ChatRequestBody): number {
  const text = body.messages.map((message) => (typeof message.content === "string" ? message.content : "")).join("\n");
  const format = body.response_format;
  return estimateTokens(text) + estimateTokens(JSON.stringify(format?.type === "json_schema" ? format.json_schema : {}));
}

/** A part summary that names the turns it saw, with one action item every part repeats. */
function partAnswer(body: ChatRequestBody) {
  const markers = markersOf(body);
  const first = markers[0] ?? -1;
  return {
    language: "en",
    speakers: [],
    overview: `Turns ${first} to ${markers.at(-1) ?? -1}.`,
    keyPoints: [`Discussed from turn ${first}`],
    diagnoses: [{ name: "Stable angina", certainty: "suspected" }],
    medications: [{ name: "Lisinopril", dose: "10 mg once daily", change: "started", instructions: null }],
    testsOrdered: [{ name: "ECG", timing: null }],
    actionItems: [
      { description: "Book a follow-up appointment.", owner: "patient", dueDate: null, timing: null },
      { description: `Review the notes from turn ${first}`, owner: "clinician", dueDate: null, timing: null },
    ],
    followUp: null,
    warningSigns: ["Chest pain at rest"],
  };
}

const completedRequests = () => runtime.openai.requests.map((request) => request.body as ChatRequestBody);

async function summaryPartDocuments(visitId: string): Promise<number> {
  const snapshot = await db().collection(`visits/${visitId}/artifacts`).get();
  return snapshot.docs.filter((doc) => doc.id.startsWith("summary-part-")).length;
}

function expectEveryTurnOnce(bodies: readonly ChatRequestBody[], turnCount: number): void {
  const seen = bodies.flatMap(markersOf).sort((a, b) => a - b);
  expect(seen).toEqual(Array.from({ length: turnCount }, (_, i) => i));
}

describe("a multi-hour visit with a small context budget", () => {
  it("is summarized in parts that each fit, covering every turn once, merged without duplicate action items", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS) });
    runtime.openai.respondWith(partAnswer);
    const visitTurns = spokenTurns(180);
    const visitId = await uploadVisit("three-hours", visitTurns);
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.audioDurationSeconds).toBeGreaterThan(3 * 3600 - 60);
    const bodies = completedRequests();
    expect(bodies.length).toBeGreaterThan(20);
    expect(visit.summaryParts).toBe(bodies.length);
    for (const body of bodies) expect(estimatedPromptTokens(body)).toBeLessThanOrEqual(CONTEXT_TOKENS);
    // Nothing truncated, nothing sent twice: every turn is in exactly one part.
    expectEveryTurnOnce(bodies, visitTurns.length);
    expect(bodies.every((body) => userText(body).includes("one consecutive part"))).toBe(true);

    const summary = visit.summary!;
    const keys = summary.actionItems.map((item) => `${item.owner}|${dedupKey(item.description)}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(summary.actionItems.filter((item) => item.description === "Book a follow-up appointment.")).toHaveLength(1);
    expect(summary.actionItems).toHaveLength(1 + bodies.length);
    expect(summary.medications).toHaveLength(1);
    expect(summary.diagnoses).toHaveLength(1);
    expect(summary.overview.split("\n\n")).toHaveLength(bodies.length);
    expect(await readActionItems(visitId)).toHaveLength(summary.actionItems.length);
    expect(visit.actionItemCount).toBe(summary.actionItems.length);
    expect(visit.summaryModel).toBe(PRIMARY);
    expect(visit.summaryModels).toEqual([PRIMARY]);
    // The paid-call budget made room for the parts; the checkpoints go once the summary is saved.
    expect(await countPaidCalls(visitId)).toBe(1 + bodies.length);
    expect(await summaryPartDocuments(visitId)).toBe(0);
    // Every part's call is on the visit's cost, with the tokens OpenAI reported for it.
    const served = runtime.openai.servedUsage();
    expect(served).toHaveLength(bodies.length);
    expect(visit.cost).toMatchObject({
      paidCalls: 1 + bodies.length,
      discardedPaidCalls: 0,
      promptTokens: served.reduce((sum, usage) => sum + usage.promptTokens, 0),
      completionTokens: served.reduce((sum, usage) => sum + usage.completionTokens, 0),
    });
    expect(visit.cost!.promptTokens).toBeGreaterThan(0);
  });

  it("a part that fails resumes at that part on the next attempt; finished parts are not paid for again", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS) });
    const seen = new Map<string, number>();
    runtime.openai.respondWith((body) => {
      const text = userText(body);
      seen.set(text, (seen.get(text) ?? 0) + 1);
      // The fifth part's first answer does not match the schema: the attempt fails there.
      return seen.size === 5 && seen.get(text) === 1 ? { unexpected: true } : partAnswer(body);
    });
    const visitTurns = spokenTurns(90);
    const visitId = await uploadVisit("ninety-minutes", visitTurns);
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.attempts.summarization).toBe(2);
    const counts = [...seen.values()];
    expect(counts.filter((count) => count === 2)).toHaveLength(1);
    expect(counts.filter((count) => count === 1)).toHaveLength(seen.size - 1);
    expect([...seen.keys()].findIndex((text) => seen.get(text) === 2)).toBe(4);
    expect(runtime.openai.completionCount()).toBe(seen.size + 1);
    expect(visit.summaryParts).toBe(seen.size);
    expect(await countPaidCalls(visitId)).toBe(seen.size + 1 + 1);
    expect(eventsNamed("summary_parts_planned").at(-1)?.fields).toMatchObject({ alreadySaved: 4 });
    const summary = visit.summary!;
    expect(summary.actionItems).toHaveLength(1 + seen.size);
  });

  it("a context-exceeded answer splits that part further and goes on, never failing or dropping text", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS) });
    runtime.openai.respondWith(partAnswer);
    // The provider counts more tightly than our estimate: the planned parts are too large for it.
    const limit = 1_400;
    runtime.openai.setContextLimit(limit);
    const visitTurns = spokenTurns(60);
    const visitId = await uploadVisit("one-hour", visitTurns);
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const bodies = completedRequests();
    const refused = bodies.filter((body) => fakeTokens(JSON.stringify(body.messages)) > limit);
    const answered = bodies.filter((body) => fakeTokens(JSON.stringify(body.messages)) <= limit);
    expect(refused.length).toBeGreaterThan(0);
    expect(eventsNamed("summary_part_split")).toHaveLength(refused.length);
    expect(visit.summaryParts).toBe(answered.length);
    expect(runtime.openai.completionCount()).toBe(answered.length);
    expectEveryTurnOnce(answered, visitTurns.length);
    // A refused part's text went out again in smaller parts.
    for (const body of refused) {
      const markers = markersOf(body);
      const parts = answered.filter((other) => markersOf(other).some((marker) => markers.includes(marker)));
      expect(parts.length).toBeGreaterThanOrEqual(2);
      for (const part of parts) expect(markersOf(part).every((marker) => markers.includes(marker))).toBe(true);
    }
    expect(visit.summary?.actionItems.filter((item) => item.description === "Book a follow-up appointment.")).toHaveLength(1);
    expect(await summaryPartDocuments(visitId)).toBe(0);
  });

  it("a short visit the provider refuses as too long in one request is summarized in parts", async () => {
    runtime.openai.respondWith(partAnswer);
    runtime.openai.setContextLimit(600);
    const visitTurns = spokenTurns(3);
    const visitId = await uploadVisit("short", visitTurns);
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.summaryParts).toBeGreaterThan(1);
    expect(userText(completedRequests()[0]!)).not.toContain("one consecutive part");
    expectEveryTurnOnce(completedRequests().slice(1).filter((body) => fakeTokens(JSON.stringify(body.messages)) <= 600), visitTurns.length);
  });

  it("splitting stops at the paid-call budget, counted per request within one attempt", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS), MAX_PAID_CALLS_PER_VISIT: "2" });
    runtime.openai.respondWith(partAnswer);
    runtime.openai.setContextLimit(50);
    const visitId = await uploadVisit("budget", spokenTurns(3));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error?.code).toBe("paid_call_budget_exhausted");
    // The submission, then one summary request: the budget of 2 was checked before each one.
    expect(runtime.openai.requests).toHaveLength(1);
    expect(visit.attempts.summarization).toBe(1);
    expect(await countPaidCalls(visitId)).toBe(2);
  });

  it("a recording past SUMMARY_MAX_AUDIO_SECONDS ends partial with transcript_too_long; nothing is paid", async () => {
    await runtime.setEnv({ SUMMARY_MAX_AUDIO_SECONDS: "3600" });
    const visitId = await uploadVisit("too-long", spokenTurns(75));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error).toMatchObject({ stage: "summarization", code: "transcript_too_long", retryable: false });
    expect(runtime.openai.requests).toHaveLength(0);
    expect(visit.transcript?.utteranceCount).toBeGreaterThan(0);
  });
});

describe("a summary answer cut off because the visit says too much for one answer", () => {
  /** One key point for every turn the request carries: a long, dense visit outgrows one answer. */
  function pointPerTurn(body: ChatRequestBody) {
    const markers = markersOf(body);
    return visitSummary({
      overview: `Turns ${markers[0] ?? -1} to ${markers.at(-1) ?? -1}.`,
      keyPoints: markers.map((marker) => `Point of turn ${marker}: the readings and the plan for tests were gone through together.`),
    });
  }

  it("splits the transcript and goes on: every turn's point is kept, nothing is truncated, every call is on the cost", async () => {
    runtime.openai.respondWith((body) => (responseFormatName(body) === "visit_summary" ? pointPerTurn(body) : undefined));
    // About 75 turns: more points than one answer holds; each half fewer than a part may list (50).
    const visitTurns = spokenTurns(20);
    const whole = fakeTokens(JSON.stringify(pointPerTurn({ messages: [{ role: "user", content: visitTurns.map((turn) => turn.text).join(" ") }] } as ChatRequestBody)));
    // The whole visit's answer does not fit one answer; a half of it does.
    runtime.openai.setCompletionLimit(Math.ceil(whole * 0.7), "visit_summary");
    const visitId = await uploadVisit("dense-twenty-minutes", visitTurns);
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.summary?.keyPoints).toHaveLength(visitTurns.length);
    expect(visit.summary?.keyPoints.map((point) => Number(/turn (\d+)/.exec(point)?.[1]))).toEqual(visitTurns.map((_, i) => i));
    const bodies = completedRequests();
    // The whole transcript once (cut off), then its parts, each turn in exactly one of them.
    expect(markersOf(bodies[0]!)).toHaveLength(visitTurns.length);
    expectEveryTurnOnce(bodies.slice(1), visitTurns.length);
    expect(visit.summaryParts).toBe(bodies.length - 1);
    expect(events.filter((entry) => entry.event === "summary_part_split").map((entry) => entry.fields.document)).toContain("summary");
    expect(events.some((entry) => entry.event === "summary_fallback_used")).toBe(false);
    // The cut-off answer was paid for, and is on the visit's cost with the others: the call and the
    // tokens OpenAI billed for it.
    expect(visit.cost?.paidCalls).toBe(1 + bodies.length);
    expect(await countPaidCalls(visitId)).toBe(1 + bodies.length);
    const served = runtime.openai.servedUsage();
    expect(served).toHaveLength(bodies.length);
    expect(visit.cost?.promptTokens).toBe(served.reduce((sum, usage) => sum + usage.promptTokens, 0));
    expect(visit.cost?.completionTokens).toBe(served.reduce((sum, usage) => sum + usage.completionTokens, 0));
    expect(served[0]!.completionTokens).toBeGreaterThan(0);
  });
});

describe("a summary in more parts than one run has time for", () => {
  it("is carried on by the next task from the parts saved, the runs not counted as failed attempts", async () => {
    // Every request may take longer than a run has left once it has made one: one part per run.
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS), SUMMARY_MAX_ATTEMPTS: "1", OPENAI_TIMEOUT_SECONDS: "1000" });
    runtime.openai.respondWith(partAnswer);
    const visitTurns = spokenTurns(30);
    const visitId = await uploadVisit("half-hour-in-runs", visitTurns);
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const bodies = completedRequests();
    expect(bodies.length).toBeGreaterThan(2);
    expectEveryTurnOnce(bodies, visitTurns.length);
    expect(visit.summaryParts).toBe(bodies.length);
    // One run per part: every run but the last ran out of time after its call and was carried on.
    expect(events.filter((entry) => entry.event === "attempt_continued")).toHaveLength(bodies.length - 1);
    expect(events.filter((entry) => entry.event === "summarization_failed")).toHaveLength(0);
    expect(await countPaidCalls(visitId)).toBe(1 + bodies.length);
  });
});

describe("the parts of an unfinished summary", () => {
  it("are exported while they exist, kept for their recording, and deleted (and counted) with the transcript and the visit", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS), SUMMARY_MAX_ATTEMPTS: "1" });
    const seen = new Set<string>();
    runtime.openai.respondWith((body) => {
      seen.add(userText(body));
      return seen.size === 3 ? { unexpected: true } : partAnswer(body);
    });
    const visitId = await uploadVisit("unfinished", spokenTurns(30));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error?.code).toBe("summary_invalid");
    expect(await summaryPartDocuments(visitId)).toBe(2);

    const p = pipeline();
    const chunks: string[] = [];
    await exportUserData(p, { uid: "user-1", requestId: "r-1" }, (chunk) => Promise.resolve(void chunks.push(chunk)), Date.now() + 30_000);
    const exported = (JSON.parse(chunks.join("")) as { visits: { visitId: string; unmergedSummaryParts: { from: number; summary: unknown }[] }[] }).visits;
    const parts = exported.find((v) => v.visitId === visitId)?.unmergedSummaryParts ?? [];
    expect(parts.map((part) => part.from)).toEqual([0, parts[1]?.from]);
    expect(parts.every((part) => part.summary !== null)).toBe(true);

    // Their own recording's transcript keeps them; another recording's (a re-upload) does not.
    expect(await deleteTranscripts(visitId, visit.audio!.generation)).toBe(0);
    expect(await summaryPartDocuments(visitId)).toBe(2);
    const outcome = await deleteVisit(p, { visitId, uid: "user-1", reason: "user" }, Date.now() + 30_000);
    expect(outcome).toMatchObject({ kind: "deleted", removed: { transcriptDocuments: 1 + 2 } });
    expect(await summaryPartDocuments(visitId)).toBe(0);
  });

  it("are taken up by the retry button's round, and never reused for a different split", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS), SUMMARY_MAX_ATTEMPTS: "1" });
    const firstRound: string[] = [];
    runtime.openai.respondWith((body) => {
      const text = userText(body);
      if (!firstRound.includes(text)) firstRound.push(text);
      return firstRound.indexOf(text) === 2 ? { unexpected: true } : partAnswer(body);
    });
    // Two visits of the same conversation: their parts have the same texts, and each stops at the third.
    const reused = await uploadVisit("retried", spokenTurns(30));
    await runtime.runUntilSettled([reused]);
    const resplit = await uploadVisit("resplit", spokenTurns(30));
    await runtime.runUntilSettled([resplit]);
    for (const visitId of [reused, resplit]) {
      expect((await readVisit(visitId)).status).toBe("partial");
      expect(await summaryPartDocuments(visitId)).toBe(2);
    }
    const saved = [...firstRound];
    expect(saved).toHaveLength(3);

    // Same budget: the next round pays only for the parts not saved.
    runtime.openai.requests.length = 0;
    runtime.openai.respondWith(partAnswer);
    expect(await retryVisit(pipeline(), { visitId: reused, uid: "user-1" }, Date.now() + 30_000)).toMatchObject({ kind: "accepted" });
    await runtime.runUntilSettled([reused]);
    const retried = await readVisit(reused);
    expect(retried.status).toBe("completed");
    const again = completedRequests().map(userText);
    expect(again.filter((text) => saved.slice(0, 2).includes(text))).toHaveLength(0);
    expect(retried.summaryParts).toBe(again.length + 2);

    // Another budget: another split, so no saved part fits it and every part is written anew.
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS + 1_500), SUMMARY_MAX_ATTEMPTS: "1" });
    runtime.openai.requests.length = 0;
    expect(await retryVisit(pipeline(), { visitId: resplit, uid: "user-1" }, Date.now() + 30_000)).toMatchObject({ kind: "accepted" });
    await runtime.runUntilSettled([resplit]);
    const redone = await readVisit(resplit);
    expect(redone.status).toBe("completed");
    const texts = completedRequests().map(userText);
    expect(redone.summaryParts).toBe(texts.length);
    expect(texts.filter((text) => saved.includes(text))).toHaveLength(0);
    expectEveryTurnOnce(completedRequests(), spokenTurns(30).length);
  });

  it("of an earlier recording are removed when a new recording replaces the transcript", async () => {
    await runtime.setEnv({ SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS), SUMMARY_MAX_ATTEMPTS: "1" });
    runtime.openai.respondWith((body) => (markersOf(body)[0] === 0 ? partAnswer(body) : { unexpected: true }));
    const visitId = await uploadVisit("replaced", spokenTurns(20));
    await runtime.runUntilSettled([visitId]);
    expect(await summaryPartDocuments(visitId)).toBe(1);
    expect(await deleteTranscripts(visitId, "a-newer-generation")).toBe(1 + 1);
    expect(await summaryPartDocuments(visitId)).toBe(0);
  });
});

function eventsNamed(event: string): LoggedEvent[] {
  return events.filter((entry) => entry.event === event);
}

describe("the fallback model", () => {
  it("writes the summary when the primary model is not found; the visit records it", async () => {
    await runtime.setEnv({ OPENAI_MODEL: "gpt-retired", OPENAI_FALLBACK_MODEL: FALLBACK });
    runtime.openai.setMissingModels(["gpt-retired"]);
    const visitId = await uploadVisit("fallback-missing", spokenTurns(2));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.summaryModel).toBe(FALLBACK);
    expect(visit.summaryModels).toEqual([FALLBACK]);
    expect(completedRequests().map((body) => body.model)).toEqual(["gpt-retired", FALLBACK]);
    expect(eventsNamed("summary_fallback_used")[0]?.fields).toMatchObject({ model: FALLBACK, reason: "summary_model_unavailable" });
  });

  it("a missing primary model is asked once per attempt, not once per part", async () => {
    await runtime.setEnv({ OPENAI_MODEL: "gpt-retired", OPENAI_FALLBACK_MODEL: FALLBACK, SUMMARY_CONTEXT_TOKENS: String(CONTEXT_TOKENS) });
    runtime.openai.setMissingModels(["gpt-retired"]);
    runtime.openai.respondWith(partAnswer);
    const visitId = await uploadVisit("fallback-parts", spokenTurns(30));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const models = completedRequests().map((body) => body.model);
    expect(models.filter((model) => model === "gpt-retired")).toHaveLength(1);
    expect(visit.summaryParts).toBe(models.length - 1);
    expect(visit.summaryParts).toBeGreaterThan(1);
    expect(visit.summaryModels).toEqual([FALLBACK]);
  });

  it("without a fallback, a missing model ends partial with summary_model_unavailable after one request", async () => {
    await runtime.setEnv({ OPENAI_MODEL: "gpt-retired" });
    runtime.openai.setMissingModels(["gpt-retired"]);
    const visitId = await uploadVisit("no-fallback", spokenTurns(2));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error).toMatchObject({ stage: "summarization", code: "summary_model_unavailable", retryable: true });
    expect(runtime.openai.requests).toHaveLength(1);
  });

  it("takes over after the primary model's output is invalid twice in a row", async () => {
    await runtime.setEnv({ OPENAI_FALLBACK_MODEL: FALLBACK });
    runtime.openai.respondWith((body) => (body.model === PRIMARY ? { overview: 42 } : partAnswer(body)));
    const visitId = await uploadVisit("fallback-invalid", spokenTurns(2));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(completedRequests().map((body) => body.model)).toEqual([PRIMARY, PRIMARY, FALLBACK]);
    expect(visit.summaryModel).toBe(FALLBACK);
    expect(visit.attempts.summarization).toBe(1);
  });

  it("one invalid answer is asked again of the primary model, which then writes the summary", async () => {
    await runtime.setEnv({ OPENAI_FALLBACK_MODEL: FALLBACK });
    let calls = 0;
    runtime.openai.respondWith((body) => (++calls === 1 ? { overview: 42 } : partAnswer(body)));
    const visitId = await uploadVisit("primary-again", spokenTurns(2));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(completedRequests().map((body) => body.model)).toEqual([PRIMARY, PRIMARY]);
    expect(visit.summaryModel).toBe(PRIMARY);
  });

  it("takes over a single line too large for the primary model's context", async () => {
    await runtime.setEnv({ OPENAI_FALLBACK_MODEL: FALLBACK });
    runtime.openai.respondWith(partAnswer);
    runtime.openai.setContextLimit(300, PRIMARY);
    const visitId = await uploadVisit("one-line", [{ speaker: "clinician", text: `t0 ${"we talk about the plan ".repeat(40)}` }]);
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(completedRequests().map((body) => body.model)).toEqual([PRIMARY, FALLBACK]);
    expect(visit.summaryModel).toBe(FALLBACK);
    expect(eventsNamed("summary_fallback_used")[0]?.fields).toMatchObject({ reason: "summary_context_exceeded" });
  });

  it("is not used for outages: 503s are retried and end partial without a request to the fallback", async () => {
    await runtime.setEnv({
      OPENAI_FALLBACK_MODEL: FALLBACK,
      SUMMARY_MAX_ATTEMPTS: "1",
      PROVIDER_RETRY_MIN_DELAY_MS: "0",
      BREAKER_FAILURE_THRESHOLD: "1000",
    });
    runtime.openai.faults.enqueue("chat", { kind: "status", status: 503 }, 3);
    const visitId = await uploadVisit("outage", spokenTurns(2));
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error?.code).toBe("provider_unavailable");
    expect(completedRequests().map((body) => body.model)).toEqual([PRIMARY, PRIMARY, PRIMARY]);
    expect(eventsNamed("summary_fallback_used")).toHaveLength(0);
  });
});
