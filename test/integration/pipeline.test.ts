// The pipeline end to end through the real exported handlers: storage event (fft wrap) →
// AssemblyAI (fake, over HTTP) → checker (.run) → Cloud Tasks (local endpoint) → summarizeVisit
// → OpenAI (fake, over HTTP), all state in the embedded Firestore.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { countDocuments, newVisitId, readActionItems, readTranscriptArtifact, readVisit, visitExists } from "../support/visits.js";

let runtime: LocalRuntime;

beforeAll(async () => {
  runtime = await startLocalRuntime();
});

afterAll(async () => {
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
});

describe("a valid recording", () => {
  it("goes pending → transcribing → summarizing → completed with transcript, summary and action items", async () => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId, fileName: "visit-en.m4a" });

    const afterUpload = await readVisit(visitId);
    expect(afterUpload.status).toBe("transcribing");
    expect(afterUpload.transcriptId).toMatch(/\S+/);
    expect(runtime.assemblyai.submitCount()).toBe(1);

    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.history.map((entry) => entry.status)).toEqual(["pending", "transcribing", "summarizing", "completed"]);
    expect(visit.error).toBeNull();
    expect(visit.summary?.overview.length).toBeGreaterThan(0);
    expect(visit.transcript?.languageCode).toBe("en");
    expect(visit.transcript?.speakerCount).toBe(2);

    const artifact = await readTranscriptArtifact(visitId);
    expect(artifact?.storage).toBe("inline");
    expect(artifact?.text).toContain("lisinopril");
    const utterances = artifact?.utterances as { speaker: string; startMs: number; endMs: number; text: string }[];
    expect(utterances.length).toBe(14);
    expect(utterances[0]).toMatchObject({ speaker: "A", text: "Good morning. What brings you in today?" });
    expect(utterances[1]!.startMs).toBeGreaterThan(utterances[0]!.endMs - 1);

    const actions = await readActionItems(visitId);
    expect(actions.length).toBe(visit.summary?.actionItems.length);
    expect(actions.length).toBeGreaterThan(0);
    expect(actions[0]).toMatchObject({ visitId, userId: "user-1", done: false });
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("sends the recording's language to the summary and stores it", async () => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-2", visitId, fileName: "visit-es.m4a" });
    await runtime.runUntilSettled([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(visit.transcript?.languageCode).toBe("es");
    expect(visit.summary?.language).toBe("es");
    const request = runtime.openai.requests.at(-1)?.body as { messages: { content: string }[] };
    expect(request.messages.map((m) => m.content).join("\n")).toContain("language code: es");
  });
});

describe("at-least-once storage delivery", () => {
  it("submits once when the same object generation is delivered twice", async () => {
    const visitId = newVisitId();
    const upload = { uid: "user-1", visitId, generation: "1700000000000001" };
    await runtime.upload(upload);
    await runtime.upload(upload);
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect((await readVisit(visitId)).status).toBe("transcribing");
  });

  it("submits once when five deliveries of one generation arrive concurrently", async () => {
    const visitId = newVisitId();
    const upload = { uid: "user-1", visitId, generation: "1700000000000002" };
    await Promise.all(Array.from({ length: 5 }, () => runtime.upload(upload)));
    expect(runtime.assemblyai.submitCount()).toBe(1);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("transcribing");
    expect(visit.history.filter((entry) => entry.status === "transcribing")).toHaveLength(1);
  });
});

describe("invalid uploads", () => {
  it.each([
    ["a non-audio file", { contentType: "text/plain", fileName: "notes.txt", sizeBytes: 1200 }, "invalid_content_type"],
    ["an object without a content type", { contentType: undefined, fileName: "clip", sizeBytes: 1200 }, "invalid_content_type"],
    ["an empty recording", { contentType: "audio/mp4", sizeBytes: 0 }, "empty_audio"],
    ["an oversize recording", { contentType: "audio/mp4", sizeBytes: 300 * 1024 * 1024 }, "audio_too_large"],
  ])("%s ends failed with code %s and makes no provider call", async (_label, overrides, code) => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId, ...overrides });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.error).toMatchObject({ stage: "upload", code, retryable: false });
    expect(runtime.assemblyai.requests).toHaveLength(0);
    expect(runtime.openai.requests).toHaveLength(0);
  });

  it.each([
    ["outside users/", "recordings/user-1/visit.m4a"],
    ["too deep", "users/user-1/visits/v1/extra/visit.m4a"],
    ["not under visits/", "users/user-1/photos/v1/visit.m4a"],
    ["a visit id Firestore cannot use", "users/user-1/visits/../visit.m4a"],
  ])("a path %s is ignored and writes nothing", async (_label, objectName) => {
    await runtime.upload({ uid: "user-1", visitId: "unused", objectName });
    expect(await countDocuments("visits")).toBe(0);
    expect(runtime.assemblyai.requests).toHaveLength(0);
  });

  it("an upload into another user's visit changes nothing", async () => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "owner", visitId, generation: "1700000000000003" });
    const before = await readVisit(visitId);
    await runtime.upload({ uid: "intruder", visitId, generation: "1700000000000004" });
    const after = await readVisit(visitId);
    expect(after).toEqual(before);
    expect(runtime.assemblyai.submitCount()).toBe(1);
  });
});

describe("summarization failure after the transcript was saved", () => {
  it("ends partial and leaves the transcript artifact intact", async () => {
    const visitId = newVisitId();
    runtime.openai.faults.enqueue("chat", { kind: "refusal" }, 10);
    await runtime.upload({ uid: "user-1", visitId });
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    // A refusal is not retried automatically, but the retry button may try again.
    expect(visit.error).toMatchObject({ stage: "summarization", code: "summary_refused", retryable: true });
    expect(runtime.openai.completionCount()).toBe(1);
    expect(visit.summary).toBeNull();
    const artifact = await readTranscriptArtifact(visitId);
    expect(artifact?.transcriptId).toBe(visit.transcriptId);
    expect((artifact?.utterances as unknown[]).length).toBe(14);
    expect(await readActionItems(visitId)).toHaveLength(0);
  });
});

describe("re-running summarization", () => {
  async function completedVisit(): Promise<string> {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId });
    await runtime.runUntilSettled([visitId]);
    expect((await readVisit(visitId)).status).toBe("completed");
    return visitId;
  }

  it("a duplicate task delivery after completion is acknowledged and writes nothing", async () => {
    const visitId = await completedVisit();
    const before = await readActionItems(visitId);
    await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
    expect(await readActionItems(visitId)).toEqual(before);
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("concurrent deliveries of one task make one OpenAI call and one set of action items", async () => {
    const visitId = newVisitId();
    runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: 0 });
    runtime.tasks.pause();
    await runtime.upload({ uid: "user-1", visitId });
    await runtime.runChecker();
    expect((await readVisit(visitId)).status).toBe("summarizing");
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
      }),
    );
    runtime.tasks.resume();
    await runtime.tasks.drain();
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    expect(runtime.openai.completionCount()).toBe(1);
    expect(await readActionItems(visitId)).toHaveLength(visit.summary!.actionItems.length);
  });

  it("summarizing a visit again replaces its action items instead of adding to them", async () => {
    const visitId = await completedVisit();
    const first = await readActionItems(visitId);
    expect(first.length).toBeGreaterThan(1);

    // An operator re-runs the summary (the model now returns one item fewer).
    const { visitRef } = await import("../../functions/src/store/visits.js");
    await visitRef(visitId).update({ status: "summarizing", lease: null });
    const { VisitSummarySchema } = await import("../../functions/src/visit/summary.js");
    const current = VisitSummarySchema.parse((await readVisit(visitId)).summary);
    runtime.openai.respondWith(() => ({ ...current, actionItems: current.actionItems.slice(1) }));
    await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 2 } } as never);

    const second = await readActionItems(visitId);
    expect((await readVisit(visitId)).status).toBe("completed");
    expect(second).toHaveLength(first.length - 1);
    expect(new Set(second.map((item) => item.id)).size).toBe(second.length);
    expect(second.map((item) => item.description)).toEqual(current.actionItems.slice(1).map((item) => item.description));
  });
});

describe("logs", () => {
  it("carry no transcript or summary text, no object names and no signed URLs", async () => {
    const { installRuntimeHooks } = await import("../../functions/src/runtime-hooks.js");
    const logged: string[] = [];
    installRuntimeHooks({ onLog: (entry) => logged.push(JSON.stringify(entry)) });
    try {
      const visitId = newVisitId();
      runtime.openai.faults.enqueue("chat", { kind: "status", status: 500 });
      await runtime.upload({ uid: "user-1", visitId, fileName: "visit-en.m4a" });
      await runtime.runUntilSettled([visitId]);
      const visit = await readVisit(visitId);
      expect(visit.status).toBe("completed");

      const text = logged.join("\n");
      expect(logged.length).toBeGreaterThan(5);
      const artifact = await readTranscriptArtifact(visitId);
      const utterances = (artifact?.utterances as { text: string }[]).map((u) => u.text);
      const summaryTexts = [visit.summary!.overview, ...visit.summary!.keyPoints, ...visit.summary!.actionItems.map((a) => a.description)];
      for (const fragment of [...utterances, ...summaryTexts]) {
        expect(text).not.toContain(fragment.slice(0, 40));
      }
      expect(text).not.toContain("visit-en.m4a");
      expect(text).not.toMatch(/https?:\/\/[^"]*X-Goog/);
    } finally {
      installRuntimeHooks({ onLog: undefined });
    }
  });
});

describe("provider messages in logs", () => {
  it("a download error's signed URL never reaches the logs", async () => {
    const { installRuntimeHooks } = await import("../../functions/src/runtime-hooks.js");
    const { ASSEMBLYAI_ERROR_MESSAGES } = await import("../fakes/assemblyai.js");
    const logged: string[] = [];
    installRuntimeHooks({ onLog: (entry) => logged.push(JSON.stringify(entry)) });
    try {
      const visitId = newVisitId();
      runtime.assemblyai.registerAudio("visit-en", { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.downloadFailed });
      await runtime.upload({ uid: "user-1", visitId });
      await runtime.runUntilSettled([visitId]);
      expect((await readVisit(visitId)).error?.code).toBe("audio_download_failed");
      const text = logged.join("\n");
      expect(text).toContain("transcription_failed");
      expect(text).toContain("<url>");
      expect(text).not.toMatch(/https?:\/\//);
    } finally {
      installRuntimeHooks({ onLog: undefined });
    }
  });
});

describe("visits that do not exist", () => {
  it("a task for an unknown visit is acknowledged without provider calls", async () => {
    await runtime.functions.summarizeVisit.run({ data: { visitId: "no-such-visit", dispatch: 1 } } as never);
    expect(await visitExists("no-such-visit")).toBe(false);
    expect(runtime.openai.requests).toHaveLength(0);
  });
});
