// A summary too large to be translated in one answer, translated in parts, through the real
// handlers: the embedded Firestore, the real openai SDK against the fake OpenAI server (which cuts
// off an answer past the request's max_completion_tokens, or past a tighter limit set for
// translations, with finish_reason length). Every part is a paid call counted on the visit, is
// checkpointed, is split further when cut off, and the parts are put back item for item.

import { beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { pipeline } from "../../functions/src/pipeline.js";
import { deleteVisit } from "../../functions/src/stages/delete-visit.js";
import { exportUserData } from "../../functions/src/stages/export-user-data.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { countPaidCalls } from "../../functions/src/store/claims.js";
import { db } from "../../functions/src/store/db.js";
import { deleteTranscripts } from "../../functions/src/store/transcripts.js";
import { MAX_COMPLETION_TOKENS, estimateTokens } from "../../functions/src/visit/summary-plan.js";
import { TRANSLATION_PART_TOKENS } from "../../functions/src/visit/summary-translation-parts.js";
import { VisitSummarySchema } from "../../functions/src/visit/summary.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";
import { estimateTokens as fakeTokens, responseFormatName, summaryTranslationContent } from "../fakes/openai.js";
import type { ChatRequestBody } from "../fakes/openai.js";
import { spokenTurns, userText } from "../support/long-visits.js";
import { visitSummary } from "../support/summaries.js";
import { useLocalRuntime } from "../support/use-local-runtime.js";
import { newVisitId, readActionItems, readVisit, summarizeWithConcurrentDeliveries } from "../support/visits.js";

const runtime = useLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
const UID = "user-translated";
// Small enough that an hour's transcript is summarized in about ten parts.
const CONTEXT_TOKENS = "3000";
let events: LoggedEvent[] = [];

beforeEach(async () => {
  await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: undefined, SUMMARY_MAX_ATTEMPTS: undefined, MAX_PAID_CALLS_PER_VISIT: undefined });
  events = [];
  installRuntimeHooks({ onLog: (entry) => events.push(entry) });
  await db().doc(`users/${UID}`).set({ preferredLanguage: "fr" });
});

/**
 * A part's summary with eight key points and eight action items of its own (named by the part's
 * first turn), as a long visit's parts have: merged, they make a summary far longer than one answer.
 */
function detailedPart(body: ChatRequestBody): VisitSummary {
  const first = /\bt(\d+)\b/.exec(userText(body))?.[1] ?? "?";
  const detail = (j: number) => `From turn ${first}, point ${j}: the patient will record morning and evening blood pressure readings in the diary and bring it along.`;
  return visitSummary({
    overview: `Turns from ${first}: blood pressure, sleep and the plan for tests were discussed at length.`,
    keyPoints: Array.from({ length: 8 }, (_, j) => detail(j)),
    diagnoses: [{ name: "Hypertension", certainty: "confirmed" }],
    medications: [{ name: "Lisinopril", dose: "10 mg once daily", change: "started", instructions: "in the morning" }],
    actionItems: Array.from({ length: 8 }, (_, j) => ({ description: detail(j), owner: "patient" as const, dueDate: null, timing: j === 0 ? "every day" : null })),
    followUp: { timing: "in three months", reason: "review the readings" },
    warningSigns: ["Chest pain at rest"],
  });
}

/** Long visits' summaries come from `detailedPart`; translations are the fake's own (every text marked `[fr]`). */
function answerSummaries(answer: (body: ChatRequestBody) => unknown = detailedPart): void {
  runtime().openai.respondWith((body) => (responseFormatName(body) === "visit_summary" ? answer(body) : undefined));
}

async function uploadVisit(name: string, minutes: number): Promise<string> {
  runtime().assemblyai.registerAudio(name, { kind: "transcript", languageCode: "en", turns: spokenTurns(minutes) });
  const visitId = newVisitId();
  await runtime().upload({ uid: UID, visitId, fileName: `${name}.m4a` });
  return visitId;
}

const requests = () => runtime().openai.requests.map((request) => request.body as ChatRequestBody);
const translationRequests = () => requests().filter((body) => responseFormatName(body) === "summary_translation");
/** The summary (or part of one) a translation request carries. */
const carried = (body: ChatRequestBody): VisitSummary => {
  const text = userText(body);
  return VisitSummarySchema.parse(JSON.parse(text.slice(text.indexOf("Summary:") + "Summary:".length)));
};
const eventsNamed = (event: string) => events.filter((entry) => entry.event === event);
const artifactIds = async (visitId: string) => (await db().collection(`visits/${visitId}/artifacts`).get()).docs.map((doc) => doc.id).sort();
const translationPartIds = async (visitId: string) => (await artifactIds(visitId)).filter((id) => id.startsWith("translation-part-"));

async function savedTranslation(visitId: string): Promise<{ summary: VisitSummary; parts: number }> {
  const data = (await db().doc(`visits/${visitId}/artifacts/summary-translation`).get()).data();
  return { summary: VisitSummarySchema.parse(data?.["summary"]), parts: Number(data?.["parts"]) };
}

/** Every text of the translation is the original's, marked as translated; everything else is the original's. */
function expectTranslatedItemForItem(translated: VisitSummary, original: VisitSummary): void {
  const marked = (text: string) => `[fr] ${text}`;
  expect(translated.language).toBe("fr");
  expect(translated.speakers).toEqual(original.speakers);
  expect(translated.overview).toBe(marked(original.overview));
  expect(translated.keyPoints).toEqual(original.keyPoints.map(marked));
  expect(translated.diagnoses).toEqual(original.diagnoses.map((d) => ({ ...d, name: marked(d.name) })));
  expect(translated.medications.map((m) => m.name)).toEqual(original.medications.map((m) => marked(m.name)));
  expect(translated.actionItems).toEqual(
    original.actionItems.map((item) => ({ ...item, description: marked(item.description), timing: item.timing && marked(item.timing) })),
  );
  expect(translated.followUp).toEqual(original.followUp && { timing: original.followUp.timing && marked(original.followUp.timing), reason: original.followUp.reason && marked(original.followUp.reason) });
  expect(translated.warningSigns).toEqual(original.warningSigns.map(marked));
}

describe("a long visit's summary in the preferred language", () => {
  it("is translated in parts that each fit one answer, every item translated and aligned; the visit completes and each part is paid once", async () => {
    await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: CONTEXT_TOKENS });
    answerSummaries();
    const visitId = await uploadVisit("hour-translated", 60);
    await runtime().runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const summary = visit.summary!;
    expect(visit.summaryParts).toBeGreaterThan(5);
    expect(summary.actionItems.length).toBeGreaterThan(50);
    expect(summary.keyPoints).toHaveLength(summary.actionItems.length);
    expect(visit.summaryTranslation).toEqual({ language: "fr", state: "saved", model: "gpt-4.1-mini" });

    const translation = await savedTranslation(visitId);
    expectTranslatedItemForItem(translation.summary, summary);
    // In one answer it would have been cut off: the fake stops at max_completion_tokens, as OpenAI does.
    expect(fakeTokens(JSON.stringify(translation.summary))).toBeGreaterThan(MAX_COMPLETION_TOKENS);

    const sent = translationRequests();
    expect(sent.length).toBeGreaterThan(1);
    expect(translation.parts).toBe(sent.length);
    for (const body of sent) {
      expect(body.max_completion_tokens).toBe(MAX_COMPLETION_TOKENS);
      expect(estimateTokens(JSON.stringify(carried(body)))).toBeLessThanOrEqual(TRANSLATION_PART_TOKENS);
      expect(userText(body)).toContain("one part of a longer summary");
    }
    // The parts are consecutive: together they carry every item once, in order, the overview in the first.
    expect(sent.flatMap((body) => carried(body).actionItems)).toEqual(summary.actionItems);
    expect(sent.flatMap((body) => carried(body).keyPoints)).toEqual(summary.keyPoints);
    expect(sent.map((body) => carried(body).overview !== "")).toEqual(sent.map((_, i) => i === 0));
    expect(eventsNamed("summary_parts_planned").map((entry) => entry.fields)).toContainEqual(
      expect.objectContaining({ document: "summary_translation", parts: sent.length, alreadySaved: 0 }),
    );
    expect(eventsNamed("summary_part_split")).toHaveLength(0);

    // Each part is a paid call on the visit's cost; the summary's action items are written once.
    const completions = runtime().openai.completionCount();
    expect(completions).toBe(visit.summaryParts! + sent.length);
    expect(visit.cost?.paidCalls).toBe(1 + completions);
    expect(await countPaidCalls(visitId)).toBe(1 + completions);
    const served = runtime().openai.servedUsage();
    expect(visit.cost?.completionTokens).toBe(served.reduce((sum, usage) => sum + usage.completionTokens, 0));
    expect(await readActionItems(visitId)).toHaveLength(summary.actionItems.length);
    // The checkpoints went once the translation was saved.
    expect(await artifactIds(visitId)).toEqual(["summary-translation", "transcript"]);
  });

  it("fits the paid-call budget: its planned parts are made room for once the summary is saved, in the same attempt", async () => {
    // A short recording whose one summary is as long as a long visit's: no parts of the transcript,
    // so only the translation's planned parts can make room for what they cost.
    await runtime().setEnv({ MAX_PAID_CALLS_PER_VISIT: "3" });
    const long = visitSummary({
      overview: "A long review of blood pressure readings.",
      keyPoints: Array.from({ length: 50 }, (_, i) => `Reading ${i}: the patient wrote down the morning and evening values in the diary, as agreed at the last visit.`),
      actionItems: Array.from({ length: 50 }, (_, i) => ({ description: `Step ${i}: keep recording the morning and evening values in the diary until the next visit.`, owner: "patient" as const, dueDate: null, timing: null })),
    });
    answerSummaries(() => long);
    const visitId = await uploadVisit("short-long-summary", 2);
    await runtime().runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.attempts.summarization).toBe(1);
    const sent = translationRequests();
    expect(sent.length).toBeGreaterThan(1);
    // The submission, the summary and every part: past MAX_PAID_CALLS_PER_VISIT, within its allowance.
    expect(await countPaidCalls(visitId)).toBe(2 + sent.length);
    expect(2 + sent.length).toBeGreaterThan(3);
    expectTranslatedItemForItem((await savedTranslation(visitId)).summary, visit.summary!);
  });

  it("a part that fails resumes at that part on the next attempt; the summary and finished parts are not paid for again", async () => {
    await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: CONTEXT_TOKENS });
    const askedFor = new Map<string, number>();
    runtime().openai.respondWith((body) => {
      if (responseFormatName(body) === "visit_summary") return detailedPart(body);
      const text = userText(body);
      askedFor.set(text, (askedFor.get(text) ?? 0) + 1);
      // The third part's first answer does not match the schema: the attempt fails there.
      return askedFor.size === 3 && askedFor.get(text) === 1 ? { unexpected: true } : undefined;
    });
    const visitId = await uploadVisit("hour-resumed", 60);
    await runtime().runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.attempts.summarization).toBe(2);
    const texts = [...askedFor.keys()];
    expect(texts.length).toBeGreaterThan(3);
    // Counted at the fake: the failed part twice, every other part once.
    expect(texts.map((text) => askedFor.get(text))).toEqual(texts.map((_, i) => (i === 2 ? 2 : 1)));
    expect(translationRequests()).toHaveLength(texts.length + 1);
    // The summary was saved before the translation and not asked for again.
    const summaryRequests = requests().filter((body) => responseFormatName(body) === "visit_summary");
    expect(summaryRequests).toHaveLength(visit.summaryParts!);
    expect(eventsNamed("summary_parts_planned").filter((entry) => entry.fields.document === "summary_translation").map((entry) => entry.fields.alreadySaved)).toEqual([0, 2]);
    expect(await countPaidCalls(visitId)).toBe(1 + summaryRequests.length + texts.length + 1);
    expect(visit.cost?.paidCalls).toBe(1 + summaryRequests.length + texts.length + 1);
    expectTranslatedItemForItem((await savedTranslation(visitId)).summary, visit.summary!);
    expect(await translationPartIds(visitId)).toEqual([]);
  });

  it("a part whose answer is cut off is split further and goes on, never failing or dropping an item", async () => {
    await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: CONTEXT_TOKENS });
    answerSummaries();
    // The provider's answers run shorter than the planned parts need (a language that takes more tokens).
    const limit = 2_500;
    runtime().openai.setCompletionLimit(limit, "summary_translation");
    const visitId = await uploadVisit("hour-split", 60);
    await runtime().runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.attempts.summarization).toBe(1);
    const sent = translationRequests();
    const cut = sent.filter((body) => fakeTokens(summaryTranslationContent(body)) > limit);
    const answered = sent.filter((body) => !cut.includes(body));
    expect(cut.length).toBeGreaterThan(0);
    expect(eventsNamed("summary_part_split").map((entry) => entry.fields.document)).toEqual(cut.map(() => "summary_translation"));
    // Every item went out in exactly one answered part, in order; a cut-off part's items went out again in smaller parts.
    const summary = visit.summary!;
    expect(answered.flatMap((body) => carried(body).actionItems)).toEqual(summary.actionItems);
    expect(answered.flatMap((body) => carried(body).keyPoints)).toEqual(summary.keyPoints);
    const translation = await savedTranslation(visitId);
    expect(translation.parts).toBe(answered.length);
    expectTranslatedItemForItem(translation.summary, summary);
    // Cut-off answers are billed too: each is a paid call on the visit, with the tokens OpenAI billed.
    expect(runtime().openai.completionCount()).toBe(visit.summaryParts! + sent.length);
    expect(await countPaidCalls(visitId)).toBe(1 + visit.summaryParts! + sent.length);
    const served = runtime().openai.servedUsage();
    expect(visit.cost?.promptTokens).toBe(served.reduce((sum, usage) => sum + usage.promptTokens, 0));
    expect(visit.cost?.completionTokens).toBe(served.reduce((sum, usage) => sum + usage.completionTokens, 0));
    expect(await translationPartIds(visitId)).toEqual([]);
  });
});

describe("duplicate and concurrent deliveries", () => {
  it("six concurrent deliveries of the summarization task, with parts cut off and split, make each paid call once", async () => {
    await runtime().setEnv({ SUMMARY_CONTEXT_TOKENS: CONTEXT_TOKENS });
    answerSummaries();
    runtime().openai.setCompletionLimit(2_500, "summary_translation");
    // Six at once, and a late one once the visit is done.
    const visitId = await summarizeWithConcurrentDeliveries(runtime(), () => uploadVisit("hour-concurrent", 60));

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const sent = requests();
    // No request was sent twice: not a summary part, not a translation part, not a split half.
    expect(new Set(sent.map((body) => `${String(responseFormatName(body))}|${userText(body)}`)).size).toBe(sent.length);
    expect(eventsNamed("summary_part_split").length).toBeGreaterThan(0);
    expect(runtime().openai.completionCount()).toBe(sent.length);
    expect(visit.cost?.paidCalls).toBe(1 + sent.length);
    expect(await countPaidCalls(visitId)).toBe(1 + sent.length);
    expect(visit.history.filter((entry) => entry.event === "summary_saved")).toHaveLength(1);
    expectTranslatedItemForItem((await savedTranslation(visitId)).summary, visit.summary!);
  });
});

describe("a single item that cannot be translated within one answer", () => {
  // Short items, and a last one whose translation alone is longer than the answers allowed below.
  const summary = visitSummary({
    overview: "Blood pressure review.",
    keyPoints: ["Rest."],
    actionItems: [{ description: "Walk daily.", owner: "patient", dueDate: null, timing: null }],
    warningSigns: [`Seek care at once for ${"a severe headache with blurred vision, chest pain or shortness of breath, ".repeat(8).trim()}`],
  });
  const shapeOf = (body: ChatRequestBody) => {
    const part = carried(body);
    return [part.keyPoints.length, part.actionItems.length, part.warningSigns.length];
  };

  async function partialVisit(name: string): Promise<string> {
    await runtime().setEnv({ SUMMARY_MAX_ATTEMPTS: "1" });
    answerSummaries(() => summary);
    runtime().openai.setCompletionLimit(100, "summary_translation");
    const visitId = await uploadVisit(name, 2);
    await runtime().runUntilSettled([visitId]);
    return visitId;
  }

  it("ends the visit partial with translation_item_too_long, the summary kept; the finished parts are exported, and the retry pays only for the item left", async () => {
    const visitId = await partialVisit("one-item");
    const partial = await readVisit(visitId);
    expect(partial.status).toBe("partial");
    expect(partial.error).toMatchObject({ stage: "summarization", code: "translation_item_too_long", retryable: true });
    expect(partial.summary?.warningSigns).toEqual(summary.warningSigns);
    expect(partial.summaryTranslation).toEqual({ language: "fr", state: "requested", model: null });
    // Halved until the warning sign stood alone: [0,4) cut, [0,2) done, [2,4) cut, [2,3) done, [3,4) cut.
    expect(translationRequests().map(shapeOf)).toEqual([
      [1, 1, 1],
      [1, 0, 0],
      [0, 1, 1],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    expect(eventsNamed("summary_part_split")).toHaveLength(2);

    // The translated parts are the user's data while they exist: in the export.
    const chunks: string[] = [];
    await exportUserData(pipeline(), { uid: UID, requestId: "r-1" }, (chunk) => Promise.resolve(void chunks.push(chunk)), Date.now() + 30_000);
    type Exported = { visits: { visitId: string; unmergedSummaryParts: { document: string; from: number; to: number; summary: VisitSummary }[] }[] };
    const parts = (JSON.parse(chunks.join("")) as Exported).visits.find((entry) => entry.visitId === visitId)?.unmergedSummaryParts ?? [];
    expect(parts.map(({ document, from, to }) => ({ document, from, to }))).toEqual([
      { document: "summary_translation", from: 0, to: 2 },
      { document: "summary_translation", from: 2, to: 3 },
    ]);
    expect(parts[1]?.summary.actionItems[0]?.description).toBe("[fr] Walk daily.");

    // The retry, with answers long enough: only the warning sign is asked for.
    runtime().openai.setCompletionLimit(null, "summary_translation");
    runtime().openai.requests.length = 0;
    expect(await retryVisit(pipeline(), { visitId, uid: UID }, Date.now() + 30_000)).toMatchObject({ kind: "accepted", resumedStage: "summarization" });
    await runtime().runUntilSettled([visitId]);
    const retried = await readVisit(visitId);
    expect(retried.status).toBe("completed");
    expect(requests().map(shapeOf)).toEqual([[0, 0, 1]]);
    const translation = await savedTranslation(visitId);
    expect(translation.parts).toBe(3);
    expectTranslatedItemForItem(translation.summary, retried.summary!);
    expect(await translationPartIds(visitId)).toEqual([]);
    expect(retried.cost?.paidCalls).toBe(1 + 1 + 5 + 1);
  });

  it("its parts go with a new recording's transcript and with the visit", async () => {
    const superseded = await partialVisit("one-item-superseded");
    expect(await translationPartIds(superseded)).toHaveLength(4);
    // Kept for their own recording; removed (and counted) with the transcript when another replaces it.
    expect(await deleteTranscripts(superseded, (await readVisit(superseded)).audio!.generation)).toBe(0);
    expect(await deleteTranscripts(superseded, "a-newer-generation")).toBe(1 + 4);
    expect(await artifactIds(superseded)).toEqual([]);

    const deleted = await partialVisit("one-item-deleted");
    expect(await translationPartIds(deleted)).toHaveLength(4);
    const outcome = await deleteVisit(pipeline(), { visitId: deleted, uid: UID, reason: "user" }, Date.now() + 30_000);
    expect(outcome).toMatchObject({ kind: "deleted", removed: { transcriptDocuments: 1 + 4 } });
    expect(await artifactIds(deleted)).toEqual([]);
  });
});
