// Recordings and provider answers off the happy path: silence, a transcript too big for one
// Firestore document, one that is too long to summarize, a non-English visit, and an answer
// with no speaker labels.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadTranscript, paginate } from "../../functions/src/store/transcripts.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";
import { visitSummary } from "../support/summaries.js";

let runtime: LocalRuntime;

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
});

afterAll(async () => {
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
});

function longTurns(count: number, wordsPerTurn: number): { speaker: string; text: string }[] {
  const sentence = "Patient reports intermittent chest tightness after climbing stairs and some shortness of breath";
  const words = sentence.split(" ");
  return Array.from({ length: count }, (_, i) => ({
    speaker: i % 2 === 0 ? "clinician" : "patient",
    text: Array.from({ length: wordsPerTurn }, (_, w) => words[(i + w) % words.length]).join(" ") + ".",
  }));
}

describe("a silent recording", () => {
  it("ends failed with no_speech_detected; the (empty) transcript is kept; no summary is paid for", async () => {
    runtime.assemblyai.registerAudio("silence", { kind: "empty" });
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId, fileName: "silence.m4a" });
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.error).toMatchObject({ stage: "transcription", code: "no_speech_detected", retryable: false });
    expect(await readTranscriptArtifact(visitId)).toMatchObject({ text: "", utterances: [] });
    expect(runtime.openai.requests).toHaveLength(0);
  });
});

describe("a transcript larger than a Firestore document", () => {
  it("is stored in pages and read back whole; one too long to summarize ends partial, transcript kept", async () => {
    // ~1.3 MB of utterances: over the 1 MiB document limit, so it must be paged. About 12 hours
    // of speech at the fake's pace: past SUMMARY_MAX_AUDIO_SECONDS (8 hours by default).
    runtime.assemblyai.registerAudio("long-visit", {
      kind: "transcript",
      languageCode: "en",
      turns: longTurns(1_200, 90),
    });
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId, fileName: "long-visit.m4a" });
    await runtime.runUntilSettled([visitId]);

    const artifact = await readTranscriptArtifact(visitId);
    expect(artifact).toMatchObject({ storage: "paged", utteranceCount: 1_200 });
    expect(artifact?.pageCount).toBeGreaterThan(1);
    // The utterances are in the pages, not in the artifact.
    expect(artifact?.utterances ?? null).toBeNull();
    expect(artifact?.generation).toBe((await readVisit(visitId)).audio?.generation);
    const visitAfter = await readVisit(visitId);
    const stored = await loadTranscript(visitId, visitAfter.audio!.generation);
    expect(stored?.utterances).toHaveLength(1_200);
    expect(stored?.utterances[1_199]?.text).toMatch(/\.$/);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.error).toMatchObject({ stage: "summarization", code: "transcript_too_long", retryable: false });
    expect(runtime.openai.requests).toHaveLength(0);
  });

  it("a long transcript within the summary limit is summarized from its pages", async () => {
    await runtime.setEnv({ SUMMARY_MAX_AUDIO_SECONDS: "86400" });
    try {
      runtime.assemblyai.registerAudio("long-visit", { kind: "transcript", languageCode: "en", turns: longTurns(1_200, 90) });
      const visitId = newVisitId();
      await runtime.upload({ uid: "user-1", visitId, fileName: "long-visit.m4a" });
      await runtime.runUntilSettled([visitId]);
      expect((await readVisit(visitId)).status).toBe("completed");
      const prompt = JSON.stringify(runtime.openai.requests.at(-1)?.body);
      expect(prompt).toContain("Speaker A");
      // Every page made it into the prompt: the last utterance's timestamp is there.
      const generation = (await readVisit(visitId)).audio!.generation;
      const last = (await loadTranscript(visitId, generation))?.utterances.at(-1);
      const minutes = Math.floor((last?.startMs ?? 0) / 60_000);
      expect(prompt).toContain(`[${String(minutes).padStart(2, "0")}:`);
      expect(prompt.length).toBeGreaterThan(500_000);
    } finally {
      await runtime.setEnv({ SUMMARY_MAX_AUDIO_SECONDS: undefined });
    }
  });
});

describe("paginate", () => {
  it("keeps utterances in order within the byte limit and cuts an oversized one", () => {
    const utterance = (text: string) => ({ speaker: "A", startMs: 0, endMs: 1, text, confidence: 0.9 });
    const pages = paginate([utterance("a".repeat(100)), utterance("b".repeat(100)), utterance("c".repeat(1_000))], 300);
    expect(pages.flat().map((u) => u.text[0]).join("")).toMatch(/^abc+$/);
    for (const page of pages) expect(Buffer.byteLength(JSON.stringify(page))).toBeLessThanOrEqual(300 + 120);
    expect(pages.flat().filter((u) => u.text.startsWith("c")).map((u) => u.text).join("")).toBe("c".repeat(1_000));
  });
});

describe("a Spanish visit", () => {
  it("a summary written in another language is not stored; the attempt is retried", async () => {
    const visitId = newVisitId();
    let calls = 0;
    runtime.openai.respondWith((body) => {
      calls += 1;
      const prompt = body.messages.map((m) => (typeof m.content === "string" ? m.content : "")).join("\n");
      return visitSummary({ language: calls === 1 ? "en" : "es", overview: prompt.includes("tos") ? "Tos y fiebre." : "?" });
    });
    await runtime.upload({ uid: "user-1", visitId, fileName: "visit-es.m4a" });
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.summary).toMatchObject({ language: "es", overview: "Tos y fiebre." });
    expect(calls).toBe(2);
    runtime.openai.respondWith(null);
  });

  it("is summarized in Spanish and its action items are written", async () => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId, fileName: "visit-es.m4a" });
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.summary?.language).toBe("es");
    expect((await readActionItems(visitId)).length).toBe(visit.summary?.actionItems.length);
  });
});
