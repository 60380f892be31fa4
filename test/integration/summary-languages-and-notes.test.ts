// What summarization writes beside the patient summary, through the real handlers: the summary in
// the user's preferred language (users/{uid}.preferredLanguage) when it is not the recording's, and
// the clinician's SOAP note (SUMMARY_FORMATS). Both are paid work through the step runner, counted
// in the visit's cost and its paid calls, checkpointed so that a failure never pays again for what
// is done — the real openai SDK against the fake OpenAI, the embedded Firestore.

import { beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { pipeline } from "../../functions/src/pipeline.js";
import { deleteUserData, deleteVisit } from "../../functions/src/stages/delete-visit.js";
import { exportUserData } from "../../functions/src/stages/export-user-data.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { countPaidCalls } from "../../functions/src/store/claims.js";
import { db } from "../../functions/src/store/db.js";
import { deleteTranscripts } from "../../functions/src/store/transcripts.js";
import { ClinicianNoteSchema } from "../../functions/src/visit/clinician-note.js";
import { VisitSummarySchema } from "../../functions/src/visit/summary.js";
import { responseFormatName } from "../fakes/openai.js";
import type { ChatRequestBody } from "../fakes/openai.js";
import { useLocalRuntime } from "../support/use-local-runtime.js";
import { newVisitId, readActionItems, readVisit, summarizeWithConcurrentDeliveries } from "../support/visits.js";

const runtime = useLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
const UID = "user-languages";
let events: LoggedEvent[] = [];

beforeEach(async () => {
  await runtime().setEnv({ SUMMARY_FORMATS: undefined, SUMMARY_MAX_ATTEMPTS: undefined, SUMMARY_CONTEXT_TOKENS: undefined });
  events = [];
  installRuntimeHooks({ onLog: (entry) => events.push(entry) });
});

async function setPreferredLanguage(uid: string, preferredLanguage: unknown): Promise<void> {
  // What the app writes (firestore.rules admit only this field); here with the Admin SDK.
  await db().doc(`users/${uid}`).set({ preferredLanguage });
}

async function settledVisit(fileName = "visit-en.m4a", uid = UID): Promise<string> {
  const visitId = newVisitId();
  await runtime().upload({ uid, visitId, fileName });
  await runtime().runUntilSettled([visitId]);
  return visitId;
}

const requests = () => runtime().openai.requests.map((request) => request.body as ChatRequestBody);
const requestsOf = (format: string) => requests().filter((body) => responseFormatName(body) === format);
const artifact = async (visitId: string, id: string) => (await db().doc(`visits/${visitId}/artifacts/${id}`).get()).data();
const eventsNamed = (event: string) => events.filter((entry) => entry.event === event);

function listLengths(summary: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(summary).flatMap(([key, value]) => (Array.isArray(value) ? [[key, value.length]] : [])));
}

describe("the summary in the user's preferred language", () => {
  it("is written as well when it is not the recording's language; both are kept, each call paid once and counted", async () => {
    await setPreferredLanguage(UID, "fr");
    const visitId = await settledVisit("visit-en.m4a");
    const visit = await readVisit(visitId);

    expect(visit.status).toBe("completed");
    // The original, in the recording's language, stays the visit's summary (and its action items).
    expect(visit.summary?.language).toBe("en");
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    expect(visit.summaryTranslation).toEqual({ language: "fr", state: "saved", model: "gpt-4.1-mini" });
    const stored = await artifact(visitId, "summary-translation");
    expect(stored).toMatchObject({ kind: "summary_translation", generation: visit.audio!.generation, language: "fr", model: "gpt-4.1-mini" });
    const translated = VisitSummarySchema.parse(stored!.summary);
    expect(translated.language).toBe("fr");
    // Item for item: the same lists, the same roles and owners; the words are the model's.
    expect(listLengths(translated)).toEqual(listLengths(visit.summary!));
    expect(translated.speakers).toEqual(visit.summary!.speakers);
    expect(translated.actionItems.map((item) => item.owner)).toEqual(visit.summary!.actionItems.map((item) => item.owner));
    expect(translated.overview).toMatch(/^\[fr\] /);

    // One summary request, one translation request carrying the summary (not the transcript).
    expect(requestsOf("visit_summary")).toHaveLength(1);
    const [translation] = requestsOf("summary_translation");
    expect(requestsOf("summary_translation")).toHaveLength(1);
    expect(JSON.stringify(translation!.messages)).toContain("language code: fr");
    expect(requests()).toHaveLength(2);
    // The submission and both OpenAI calls are on the visit's cost and its paid-call count.
    const served = runtime().openai.servedUsage();
    expect(visit.cost).toMatchObject({
      paidCalls: 3,
      discardedPaidCalls: 0,
      promptTokens: served.reduce((sum, usage) => sum + usage.promptTokens, 0),
      completionTokens: served.reduce((sum, usage) => sum + usage.completionTokens, 0),
    });
    expect(await countPaidCalls(visitId)).toBe(3);
  });

  it("follows the recording: a Spanish visit for an English-preferring user is also written in English; one preferring Spanish gets no second copy", async () => {
    await setPreferredLanguage(UID, "en");
    const spanishForEnglish = await settledVisit("visit-es.m4a");
    const visit = await readVisit(spanishForEnglish);
    expect(visit.summary?.language).toBe("es");
    expect(visit.summaryTranslation).toMatchObject({ language: "en", state: "saved" });
    expect(VisitSummarySchema.parse((await artifact(spanishForEnglish, "summary-translation"))!.summary).language).toBe("en");

    runtime().openai.requests.length = 0;
    await setPreferredLanguage(UID, "es");
    const spanishForSpanish = await settledVisit("visit-es.m4a");
    const same = await readVisit(spanishForSpanish);
    expect(same.status).toBe("completed");
    expect(same.summaryTranslation).toBeNull();
    expect(await artifact(spanishForSpanish, "summary-translation")).toBeUndefined();
    expect(requestsOf("summary_translation")).toHaveLength(0);
  });

  it("is not written without a preference (no profile, or null), nor for a stored value that is not a language code", async () => {
    const noProfile = await settledVisit();
    await setPreferredLanguage(UID, null);
    const cleared = await settledVisit();
    // A value firestore.rules refuse, written around them (the Admin SDK): not used, and said so.
    await setPreferredLanguage(UID, "FR");
    const invalid = await settledVisit();
    for (const visitId of [noProfile, cleared, invalid]) {
      const visit = await readVisit(visitId);
      expect(visit.status).toBe("completed");
      expect(visit.summaryTranslation).toBeNull();
    }
    expect(requestsOf("summary_translation")).toHaveLength(0);
    expect(eventsNamed("preferred_language_ignored").map((entry) => entry.fields)).toEqual([{ visitId: invalid, code: "invalid_language" }]);
  });

  it("a failed translation is tried again without paying again for the summary", async () => {
    await setPreferredLanguage(UID, "de");
    let translations = 0;
    runtime().openai.respondWith((body) => (responseFormatName(body) === "summary_translation" && ++translations === 1 ? { unexpected: true } : undefined));
    const visitId = await settledVisit();
    const visit = await readVisit(visitId);

    expect(visit.status).toBe("completed");
    expect(visit.attempts.summarization).toBe(2);
    expect(requestsOf("visit_summary")).toHaveLength(1);
    expect(requestsOf("summary_translation")).toHaveLength(2);
    expect(visit.summaryTranslation).toMatchObject({ language: "de", state: "saved" });
    // The summary was saved before the translation was asked for, and its action items once.
    expect(eventsNamed("summary_saved_before_extras")).toHaveLength(1);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    expect(visit.cost?.paidCalls).toBe(1 + 1 + 2);
    expect(await countPaidCalls(visitId)).toBe(4);
  });

  it("a translation that keeps failing ends the visit partial with its code, the summary and transcript kept; the retry pays only for the translation", async () => {
    await runtime().setEnv({ SUMMARY_MAX_ATTEMPTS: "1" });
    await setPreferredLanguage(UID, "fr");
    // A translation that does not line up with the summary item for item is refused.
    runtime().openai.respondWith((body) => (responseFormatName(body) === "summary_translation" ? { ...summaryOf(body), keyPoints: [] } : undefined));
    const visitId = await settledVisit();
    const partial = await readVisit(visitId);

    expect(partial.status).toBe("partial");
    expect(partial.error).toMatchObject({ stage: "summarization", code: "summary_invalid", retryable: true });
    expect(partial.summary?.language).toBe("en");
    expect(partial.summaryTranslation).toEqual({ language: "fr", state: "requested", model: null });
    expect(partial.transcript?.utteranceCount).toBeGreaterThan(0);
    const items = await readActionItems(visitId);
    expect(items).toHaveLength(partial.summary!.actionItems.length);
    expect(await artifact(visitId, "summary-translation")).toBeUndefined();

    // The user ticks an item off, then presses retry: only the translation is asked for again.
    await db().doc(`actions/${String(items[0]!.id)}`).update({ done: true });
    runtime().openai.requests.length = 0;
    runtime().openai.respondWith(null);
    expect(await retryVisit(pipeline(), { visitId, uid: UID }, Date.now() + 30_000)).toMatchObject({ kind: "accepted", resumedStage: "summarization" });
    await runtime().runUntilSettled([visitId]);
    const retried = await readVisit(visitId);
    expect(retried.status).toBe("completed");
    expect(requests().map(responseFormatName)).toEqual(["summary_translation"]);
    expect(retried.summary).toEqual(partial.summary);
    expect(retried.summaryTranslation).toMatchObject({ language: "fr", state: "saved" });
    // The action items were not written again: the tick stays.
    expect((await readActionItems(visitId))[0]).toMatchObject({ done: true });
  });
});

/** The summary a translation request carries. */
function summaryOf(body: ChatRequestBody): Record<string, unknown> {
  const user = body.messages.find((message) => message.role === "user");
  const text = typeof user?.content === "string" ? user.content : "";
  return { ...(JSON.parse(text.slice(text.indexOf("Summary:") + "Summary:".length)) as Record<string, unknown>), language: "fr" };
}

describe("the clinician's SOAP note (SUMMARY_FORMATS=patient,soap)", () => {
  it("is written as its own validated document and artifact, counted in the visit's cost", async () => {
    await runtime().setEnv({ SUMMARY_FORMATS: "patient,soap" });
    const visitId = await settledVisit();
    const visit = await readVisit(visitId);

    expect(visit.status).toBe("completed");
    expect(visit.clinicianNote).toEqual({ format: "soap", state: "saved", model: "gpt-4.1-mini" });
    const stored = await artifact(visitId, "clinician-note");
    expect(stored).toMatchObject({ kind: "clinician_note", generation: visit.audio!.generation, format: "soap", parts: 1 });
    const note = ClinicianNoteSchema.parse(stored!.note);
    expect(note.language).toBe("en");
    for (const section of [note.subjective, note.objective, note.assessment, note.plan]) expect(section.length).toBeGreaterThan(0);
    // Its own request, from the transcript, with its own strict schema.
    const [request] = requestsOf("clinician_note");
    expect(requestsOf("clinician_note")).toHaveLength(1);
    expect(request!.response_format).toMatchObject({ type: "json_schema", json_schema: { name: "clinician_note", strict: true } });
    expect(JSON.stringify(request!.messages)).toContain("Speaker A:");
    expect(visit.cost?.paidCalls).toBe(3);
    expect(visit.summaryTranslation).toBeNull();
  });

  it("of a long visit is written in parts like the summary, merged, and its part checkpoints removed", async () => {
    await runtime().setEnv({ SUMMARY_FORMATS: "patient,soap", SUMMARY_CONTEXT_TOKENS: "1650" });
    const visitId = await settledVisit();
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const noteRequests = requestsOf("clinician_note");
    expect(noteRequests.length).toBeGreaterThan(1);
    expect(noteRequests.length).toBe(requestsOf("visit_summary").length);
    expect((await artifact(visitId, "clinician-note"))?.parts).toBe(noteRequests.length);
    expect(eventsNamed("summary_parts_planned").map((entry) => entry.fields.document)).toEqual(["summary", "clinician_note"]);
    const leftovers = (await db().collection(`visits/${visitId}/artifacts`).get()).docs.map((doc) => doc.id);
    expect(leftovers.sort()).toEqual(["clinician-note", "transcript"]);
  });

  it("that fails ends the visit partial with the summary, its translation and the transcript kept; the retry pays only for the note", async () => {
    await runtime().setEnv({ SUMMARY_FORMATS: "patient,soap", SUMMARY_MAX_ATTEMPTS: "1" });
    await setPreferredLanguage(UID, "es");
    runtime().openai.respondWith((body) => (responseFormatName(body) === "clinician_note" ? { subjective: "not a list" } : undefined));
    const visitId = await settledVisit();
    const partial = await readVisit(visitId);
    expect(partial.status).toBe("partial");
    expect(partial.error).toMatchObject({ code: "summary_invalid", retryable: true });
    expect(partial.summary).not.toBeNull();
    expect(partial.summaryTranslation).toMatchObject({ language: "es", state: "saved" });
    expect(partial.clinicianNote).toEqual({ format: "soap", state: "requested", model: null });

    runtime().openai.requests.length = 0;
    runtime().openai.respondWith(null);
    expect(await retryVisit(pipeline(), { visitId, uid: UID }, Date.now() + 30_000)).toMatchObject({ kind: "accepted" });
    await runtime().runUntilSettled([visitId]);
    const retried = await readVisit(visitId);
    expect(retried.status).toBe("completed");
    expect(requests().map(responseFormatName)).toEqual(["clinician_note"]);
    expect(retried.clinicianNote).toMatchObject({ state: "saved" });
    expect(retried.cost?.paidCalls).toBe(1 + 1 + 1 + 1 + 1);
  });
});

describe("duplicate and concurrent deliveries", () => {
  it("six concurrent deliveries of the summarization task make each paid call once", async () => {
    await runtime().setEnv({ SUMMARY_FORMATS: "patient,soap" });
    await setPreferredLanguage(UID, "it");
    const visitId = await summarizeWithConcurrentDeliveries(runtime(), async () => {
      const id = newVisitId();
      await runtime().upload({ uid: UID, visitId: id });
      return id;
    });

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(requests().map(responseFormatName).sort()).toEqual(["clinician_note", "summary_translation", "visit_summary"]);
    expect(runtime().openai.completionCount()).toBe(3);
    expect(visit.cost?.paidCalls).toBe(4);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
    expect(visit.history.filter((entry) => entry.event === "summary_saved")).toHaveLength(1);
  });
});

describe("what is stored is exported and deleted", () => {
  it("the translation, the note and the profile are in the user's export; the visit's deletion removes the artifacts, the account's the profile", async () => {
    await runtime().setEnv({ SUMMARY_FORMATS: "patient,soap" });
    await setPreferredLanguage(UID, "fr");
    const visitId = await settledVisit();
    const p = pipeline();

    const chunks: string[] = [];
    await exportUserData(p, { uid: UID, requestId: "r-1" }, (chunk) => Promise.resolve(void chunks.push(chunk)), Date.now() + 30_000);
    const exported = JSON.parse(chunks.join("")) as {
      visits: { visitId: string; summaryTranslation: { language: string; summary: unknown }; clinicianNote: { format: string; note: unknown }; transcript: { speakerRoles: unknown } }[];
      profile: unknown;
    };
    const visitExport = exported.visits.find((entry) => entry.visitId === visitId)!;
    expect(visitExport.summaryTranslation).toMatchObject({ language: "fr", summary: (await artifact(visitId, "summary-translation"))!.summary });
    expect(visitExport.clinicianNote).toMatchObject({ format: "soap", note: (await artifact(visitId, "clinician-note"))!.note });
    expect(visitExport.transcript.speakerRoles).toEqual((await readVisit(visitId)).summary!.speakers);
    expect(exported.profile).toEqual({ included: true, profile: { preferredLanguage: "fr" } });

    // A new recording's transcript replaces everything written from the earlier one.
    expect(await deleteTranscripts(visitId, (await readVisit(visitId)).audio!.generation)).toBe(0);
    const outcome = await deleteVisit(p, { visitId, uid: UID, reason: "user" }, Date.now() + 30_000);
    // The transcript, the note and the translation.
    expect(outcome).toMatchObject({ kind: "deleted", removed: { transcriptDocuments: 3 } });
    expect((await db().collection(`visits/${visitId}/artifacts`).get()).size).toBe(0);

    expect(await deleteUserData(p, { uid: UID, reason: "user" }, Date.now() + 60_000)).toMatchObject({ complete: true, profile: 1 });
    expect((await db().doc(`users/${UID}`).get()).exists).toBe(false);
    expect(await deleteUserData(p, { uid: UID, reason: "user" }, Date.now() + 60_000)).toMatchObject({ complete: true, profile: 0 });
  });

  it("a new recording removes the earlier recording's note and translation with its transcript", async () => {
    await runtime().setEnv({ SUMMARY_FORMATS: "patient,soap" });
    await setPreferredLanguage(UID, "fr");
    const visitId = await settledVisit();
    expect(await deleteTranscripts(visitId, "a-newer-generation")).toBe(3);
    expect((await db().collection(`visits/${visitId}/artifacts`).get()).size).toBe(0);
  });
});
