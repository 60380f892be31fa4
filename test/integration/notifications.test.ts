// Outcome notifications through the real handlers: the real firebase-admin messaging client sends
// over HTTP to a local server speaking FCM's HTTP v1 API (test/fakes/fcm.ts; FCM has no emulator).
// Off by default; once per outcome per round whatever the duplicates; no PHI in the message; stale
// tokens removed; a failed send neither fails the pipeline nor is retried; account deletion removes
// the registrations and the export says which devices it lists.

import { createHash } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pipeline } from "../../functions/src/pipeline.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { deleteUserData } from "../../functions/src/stages/delete-visit.js";
import { exportUserData } from "../../functions/src/stages/export-user-data.js";
import { OUTCOME_MESSAGES, PARTIAL_WITH_SUMMARY_MESSAGE, announceOutcome } from "../../functions/src/stages/notify-outcome.js";
import { retryVisit } from "../../functions/src/stages/retry-visit.js";
import { db } from "../../functions/src/store/db.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";
import { responseFormatName } from "../fakes/openai.js";

let runtime: LocalRuntime;
let events: LoggedEvent[] = [];
let clockOffsetMs = 0;

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 }, env: { PROVIDER_RETRY_MIN_DELAY_MS: "1" } });
});

afterAll(async () => {
  installRuntimeHooks({ clock: undefined, onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  await runtime.setEnv({ NOTIFY_ON_OUTCOME: "true" });
  events = [];
  clockOffsetMs = 0;
  installRuntimeHooks({ clock: () => new Date(Date.now() + clockOffsetMs), onLog: (entry) => events.push(entry) });
});

afterEach(async () => {
  runtime.tasks.resume();
  await runtime.setEnv({ NOTIFY_ON_OUTCOME: undefined, SUMMARY_MAX_ATTEMPTS: undefined });
});

function tokenId(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** What the app does: one document per FCM token under its owner. */
async function registerDevice(uid: string, token: string, platform: "ios" | "android" = "ios"): Promise<void> {
  await db().collection("users").doc(uid).collection("devices").doc(tokenId(token)).set({ token, platform, updatedAt: new Date() });
}

async function deviceTokens(uid: string): Promise<string[]> {
  const snapshot = await db().collection(`users/${uid}/devices`).get();
  return snapshot.docs.map((doc) => doc.get("token") as string).sort();
}

async function settle(visitIds: string[]): Promise<void> {
  await runtime.runUntilSettled(visitIds, { advance: () => (clockOffsetMs += 90_000) });
}

function turns(marker: string): { speaker: string; text: string }[] {
  return [0, 1, 2, 3].map((index) => ({
    speaker: index % 2 === 0 ? "clinician" : "patient",
    text: `We discussed the ${marker} treatment, part ${index + 1}, and scheduled a follow-up.`,
  }));
}

function named(event: string): LoggedEvent[] {
  return events.filter((entry) => entry.event === event);
}

async function completedVisit(uid: string, marker = "quartzlake"): Promise<string> {
  runtime.assemblyai.registerAudio(marker, { kind: "transcript", languageCode: "en", turns: turns(marker) });
  const visitId = newVisitId("notify");
  await runtime.upload({ uid, visitId, fileName: `${marker}.m4a` });
  await settle([visitId]);
  expect((await readVisit(visitId)).status).toBe("completed");
  return visitId;
}

describe("off by default", () => {
  it("without NOTIFY_ON_OUTCOME nothing is claimed or sent", async () => {
    await runtime.setEnv({ NOTIFY_ON_OUTCOME: undefined });
    await registerDevice("user-off", "token-off");
    const visitId = await completedVisit("user-off");
    expect(runtime.fcm.requests).toHaveLength(0);
    const claims = await db().collection(`visits/${visitId}/claims`).where("stage", "==", "notify").get();
    expect(claims.size).toBe(0);
  });
});

describe("a completed visit", () => {
  it("sends one push to each registered device, with fixed words and ids only (no title, transcript or summary text)", async () => {
    await registerDevice("user-1", "token-phone", "ios");
    await registerDevice("user-1", "token-tablet", "android");
    await registerDevice("someone-else", "token-other");
    const visitId = await completedVisit("user-1", "saffronpeak");

    expect(runtime.fcm.sent.map((push) => push.token).sort()).toEqual(["token-phone", "token-tablet"]);
    for (const push of runtime.fcm.sent) {
      expect(push.project).toBe("demo-visit-pipeline");
      expect(push.notification).toEqual(OUTCOME_MESSAGES.completed);
      expect(push.notification?.body).toBe("Your visit summary is ready.");
      expect(push.data).toEqual({ visitId, status: "completed" });
    }
    // Nothing from the visit's content travels to FCM.
    const visit = await readVisit(visitId);
    const sentText = JSON.stringify(runtime.fcm.requests.map((request) => request.body));
    expect(sentText).not.toContain("saffronpeak");
    expect(sentText).not.toContain(visit.summary!.overview);
    expect(named("notification_sent").at(-1)?.fields).toMatchObject({ visitId, status: "completed", devices: 2, sent: 2, removed: 0, failed: 0 });
  });

  it("exactly once under duplicate deliveries: five concurrent tasks, checker runs and six concurrent announcements", async () => {
    await registerDevice("user-dup", "token-dup");
    runtime.assemblyai.registerAudio("dup", { kind: "transcript", languageCode: "en", turns: turns("dup") });
    const visitId = newVisitId("notify");
    runtime.tasks.pause();
    await Promise.all(Array.from({ length: 5 }, () => runtime.upload({ uid: "user-dup", visitId, fileName: "dup.m4a", generation: "1700000000000888" })));
    await Promise.all(Array.from({ length: 5 }, () => runtime.runChecker()));
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
      }),
    );
    runtime.tasks.resume();
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("completed");
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => announceOutcome(pipeline(), visit)));
    expect(outcomes.every((outcome) => outcome === "already_notified")).toBe(true);
    await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
    await runtime.runChecker();
    expect(runtime.fcm.sent).toHaveLength(1);
  });

  it("six concurrent first announcements of one outcome send once", async () => {
    await runtime.setEnv({ NOTIFY_ON_OUTCOME: undefined });
    await registerDevice("user-race", "token-race");
    const visitId = await completedVisit("user-race");
    await runtime.setEnv({ NOTIFY_ON_OUTCOME: "true" });
    const visit = await readVisit(visitId);
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => announceOutcome(pipeline(), visit)));
    expect(outcomes.filter((outcome) => outcome === "notified")).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === "already_notified")).toHaveLength(5);
    expect(runtime.fcm.sent).toHaveLength(1);
  });
});

describe("partial and failed outcomes, and rounds", () => {
  it("a visit that ends partial is announced as such; its retry round that completes is announced again", async () => {
    await runtime.setEnv({ SUMMARY_MAX_ATTEMPTS: "1" });
    await registerDevice("user-partial", "token-partial");
    runtime.openai.faults.enqueue("chat", { kind: "status", status: 500 }, 4);
    const visitId = newVisitId("notify");
    await runtime.upload({ uid: "user-partial", visitId });
    await settle([visitId]);
    expect((await readVisit(visitId)).status).toBe("partial");
    expect(runtime.fcm.sent.map((push) => push.data)).toEqual([{ visitId, status: "partial" }]);
    expect(runtime.fcm.sent[0]?.notification).toEqual(OUTCOME_MESSAGES.partial);

    expect(await retryVisit(pipeline(), { visitId, uid: "user-partial" }, Date.now() + 60_000)).toMatchObject({ kind: "accepted" });
    await settle([visitId]);
    expect((await readVisit(visitId)).status).toBe("completed");
    expect(runtime.fcm.sent.map((push) => push.data?.status)).toEqual(["partial", "completed"]);
  });

  it("a visit that ends partial with its summary kept (its translation failed) says the summary is ready", async () => {
    await runtime.setEnv({ SUMMARY_MAX_ATTEMPTS: "1" });
    await registerDevice("user-partial-summary", "token-partial-summary");
    await db().doc("users/user-partial-summary").set({ preferredLanguage: "fr" });
    runtime.openai.respondWith((body) => (responseFormatName(body) === "summary_translation" ? { unexpected: true } : undefined));
    const visitId = newVisitId("notify");
    await runtime.upload({ uid: "user-partial-summary", visitId });
    await settle([visitId]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("partial");
    expect(visit.summary).not.toBeNull();
    expect(runtime.fcm.sent.map((push) => push.data)).toEqual([{ visitId, status: "partial" }]);
    expect(runtime.fcm.sent[0]?.notification).toEqual(PARTIAL_WITH_SUMMARY_MESSAGE);
  });

  it("a rejected upload and a failed transcription are announced as failed", async () => {
    await registerDevice("user-failed", "token-failed");
    const rejected = newVisitId("notify");
    await runtime.upload({ uid: "user-failed", visitId: rejected, contentType: "text/plain", fileName: "notes.txt", sizeBytes: 10 });
    runtime.assemblyai.registerAudio("silence", { kind: "error", error: "Transcoding failed. File does not appear to contain audio." });
    const transcriptionFailed = newVisitId("notify");
    await runtime.upload({ uid: "user-failed", visitId: transcriptionFailed, fileName: "silence.m4a" });
    await settle([rejected, transcriptionFailed]);
    expect((await readVisit(transcriptionFailed)).status).toBe("failed");
    expect(runtime.fcm.sent.map((push) => push.data).sort((a, b) => String(a?.visitId).localeCompare(String(b?.visitId)))).toEqual(
      [
        { visitId: rejected, status: "failed" },
        { visitId: transcriptionFailed, status: "failed" },
      ].sort((a, b) => a.visitId.localeCompare(b.visitId)),
    );
    expect(runtime.fcm.sent.every((push) => push.notification?.title === OUTCOME_MESSAGES.failed.title)).toBe(true);
  });
});

describe("tokens FCM no longer accepts", () => {
  it("an unregistered and an invalid token are removed; the good one gets its push and stays; no token is logged", async () => {
    await registerDevice("user-stale", "token-uninstalled");
    await registerDevice("user-stale", "token-garbled", "android");
    await registerDevice("user-stale", "token-good");
    runtime.fcm.markUnregistered("token-uninstalled");
    runtime.fcm.markInvalid("token-garbled");
    const visitId = await completedVisit("user-stale");
    expect(runtime.fcm.sent.map((push) => push.token)).toEqual(["token-good"]);
    expect(await deviceTokens("user-stale")).toEqual(["token-good"]);
    expect(named("device_token_removed")).toHaveLength(2);
    expect(named("notification_sent").at(-1)?.fields).toMatchObject({ visitId, devices: 3, sent: 1, removed: 2, failed: 0 });
    expect(JSON.stringify(events)).not.toContain("token-");
  });
});

describe("a send that fails", () => {
  it("does not fail or hold the pipeline, is logged as notification_failed, and is not retried", async () => {
    await registerDevice("user-down", "token-down");
    runtime.fcm.failNext(1000);
    const visitId = await completedVisit("user-down");
    expect((await readVisit(visitId)).status).toBe("completed");
    expect(named("notification_failed").map((entry) => entry.fields)).toContainEqual(expect.objectContaining({ visitId, status: "completed" }));
    expect(await deviceTokens("user-down")).toEqual(["token-down"]);
    const attempts = runtime.fcm.requests.length;
    expect(attempts).toBeGreaterThan(0);
    // Later runs and a duplicate task do not try again.
    runtime.fcm.failNext(0);
    await runtime.runChecker();
    await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
    expect(runtime.fcm.requests).toHaveLength(attempts);
    expect(runtime.fcm.sent).toHaveLength(0);
  });

  it("a user with no registered device: nothing is sent, the skip is logged", async () => {
    const visitId = await completedVisit("user-nodevice");
    expect(runtime.fcm.requests).toHaveLength(0);
    expect(named("notification_skipped").at(-1)?.fields).toMatchObject({ visitId, reason: "no_devices" });
  });
});

describe("account deletion and export", () => {
  it("deleting the user's data removes their device registrations (and no one else's)", async () => {
    await registerDevice("user-leaving", "token-a");
    await registerDevice("user-leaving", "token-b");
    await registerDevice("user-staying", "token-c");
    await completedVisit("user-leaving");
    const result = await deleteUserData(pipeline(), { uid: "user-leaving", reason: "user" }, Date.now() + 60_000);
    expect(result).toMatchObject({ complete: true, visits: 1, devices: 2 });
    expect(await deviceTokens("user-leaving")).toEqual([]);
    expect(await deviceTokens("user-staying")).toEqual(["token-c"]);
  });

  it("the export lists the devices (platform, registration time) without their tokens", async () => {
    await registerDevice("user-export", "token-export-1", "ios");
    await completedVisit("user-export");
    let text = "";
    await exportUserData(pipeline(), { uid: "user-export", requestId: "req-1" }, (chunk) => Promise.resolve(void (text += chunk)), Date.now() + 60_000);
    const document = JSON.parse(text) as { devices: { included: boolean; tokens: boolean; items: { platform: string; registeredAt: string }[] } };
    expect(document.devices).toMatchObject({ included: true, tokens: false });
    expect(document.devices.items).toHaveLength(1);
    expect(document.devices.items[0]?.platform).toBe("ios");
    expect(text).not.toContain("token-export-1");
  });
});
