// firestore.rules and storage.rules in the real Firestore and Storage emulators, through @firebase/rules-unit-testing: what an owner, another user and nobody may read and write.

import { readFileSync } from "node:fs";
import path from "node:path";
import { assertFails, assertSucceeds, initializeTestEnvironment } from "@firebase/rules-unit-testing";
import type { RulesTestContext, RulesTestEnvironment } from "@firebase/rules-unit-testing";
import { serverTimestamp } from "firebase/firestore";
import type { TestContext } from "vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from "vitest";
import { DEFAULT_BUCKET, PROJECT_ID, REPO_ROOT } from "./emulator-env.js";
import { startEmulatorSuite } from "./emulator-suite.js";
import type { EmulatorSuite } from "./emulator-suite.js";

const ALICE = "alice";
const BOB = "bob";
const VISIT = "visit-alice-1";
const ACTION = `${VISIT}-001`;
const PAGE = "1732370000000001-0000";
const CLAIM = "transcription-1-1";
/** The functions' own bookkeeping: deletion tombstones, account deletions in progress, retry windows. */
const BOOKKEEPING = [`deletedVisits/${VISIT}-gone`, "userDeletions/0123456789abcdef0123456789abcdef01234567", `rateLimits/visit-${VISIT}`, "rateLimits/user-alice"];
const MIB = 1024 * 1024;
/** storage.rules' limit, the MAX_UPLOAD_BYTES default. */
const MAX_UPLOAD_BYTES = 250 * MIB;

let suite: EmulatorSuite;
let testEnv: RulesTestEnvironment;

beforeAll(async () => {
  suite = await startEmulatorSuite({ only: ["firestore", "storage"], startTimeoutMs: 240_000 });
  const [firestoreHost, firestorePort] = hostAndPort(suite.hosts.firestore!);
  const [storageHost, storagePort] = hostAndPort(suite.hosts.storage!);
  testEnv = await initializeTestEnvironment({
    projectId: PROJECT_ID,
    firestore: { host: firestoreHost, port: firestorePort, rules: readFileSync(path.join(REPO_ROOT, "firestore.rules"), "utf8") },
    storage: { host: storageHost, port: storagePort, rules: readFileSync(path.join(REPO_ROOT, "storage.rules"), "utf8") },
  });
}, 300_000);

afterAll(async () => {
  await testEnv?.cleanup();
  await suite?.stop();
});

afterEach((context: TestContext) => {
  if (context.task.result?.state === "fail") console.error(`--- emulator log (last lines) ---\n${suite.logTail(80)}`);
});

function hostAndPort(host: string): [string, number] {
  const [name, port] = host.split(":");
  return [name!, Number(port)];
}

// rules-unit-testing hands out the compat SDK; its writes take the modular field values too.
const firestoreOf = (context: RulesTestContext) => context.firestore();
const storageOf = (context: RulesTestContext) => context.storage(`gs://${DEFAULT_BUCKET}`);

describe("firestore.rules", () => {
  beforeEach(async () => {
    await testEnv.clearFirestore();
    // What the functions write (Admin SDK, which the rules do not apply to).
    await testEnv.withSecurityRulesDisabled(async (context) => {
      const db = firestoreOf(context);
      await db.doc(`visits/${VISIT}`).set({ userId: ALICE, status: "completed", summary: { overview: "…" } });
      await db.doc(`visits/${VISIT}/artifacts/transcript`).set({ provider: "assemblyai", text: "…", storage: "inline" });
      await db.doc(`visits/${VISIT}/artifacts/transcript/pages/${PAGE}`).set({ generation: "1732370000000001", index: 0, utterances: [] });
      await db.doc(`visits/${VISIT}/claims/${CLAIM}`).set({ owner: "functions", transcriptId: "job-1" });
      await db.doc(`deletedVisits/${VISIT}-gone`).set({ userId: ALICE, reason: "user", removed: { visit: 1 }, pendingProviderDeletes: [] });
      await db.doc("userDeletions/0123456789abcdef0123456789abcdef01234567").set({ uid: ALICE, reason: "user" });
      await db.doc(`rateLimits/visit-${VISIT}`).set({ lastRetryAt: new Date() });
      await db.doc(`actions/${ACTION}`).set({ visitId: VISIT, userId: ALICE, index: 0, description: "Take the tablets", done: false });
      await db.doc("rateLimits/user-alice").set({ count: 1 });
      await db.doc("breakers/openai").set({ state: "closed" });
    });
  });

  it("lets the owner read the visit, its transcript and its action items", async () => {
    const db = firestoreOf(testEnv.authenticatedContext(ALICE));
    await assertSucceeds(db.doc(`visits/${VISIT}`).get());
    await assertSucceeds(db.collection("visits").where("userId", "==", ALICE).get());
    await assertSucceeds(db.doc(`visits/${VISIT}/artifacts/transcript`).get());
    await assertSucceeds(db.doc(`actions/${ACTION}`).get());
    await assertSucceeds(db.collection("actions").where("userId", "==", ALICE).get());
    // A visit that does not exist yet (the app listens right after uploading) is readable.
    await assertSucceeds(db.doc("visits/not-created-yet").get());
  });

  it("lets the owner tick an action item done, and change nothing else", async () => {
    const db = firestoreOf(testEnv.authenticatedContext(ALICE));
    const action = db.doc(`actions/${ACTION}`);
    await assertSucceeds(action.update({ done: true, doneAt: serverTimestamp() }));
    await assertSucceeds(action.update({ done: false, doneAt: null }));
    await assertFails(action.update({ description: "Something else" }));
    await assertFails(action.update({ done: true, description: "Something else" }));
    await assertFails(action.update({ done: "yes" }));
    await assertFails(action.update({ done: true, doneAt: new Date("2020-01-01T00:00:00Z") }));
    await assertFails(db.doc(`actions/${VISIT}-002`).set({ visitId: VISIT, userId: ALICE, done: false }));
    await assertFails(action.delete());
  });

  it("keeps every pipeline write to the functions", async () => {
    const db = firestoreOf(testEnv.authenticatedContext(ALICE));
    await assertFails(db.doc(`visits/${VISIT}`).update({ status: "pending" }));
    await assertFails(db.doc(`visits/${VISIT}`).set({ userId: ALICE, status: "completed" }));
    await assertFails(db.doc("visits/new-visit").set({ userId: ALICE, status: "pending" }));
    await assertFails(db.doc(`visits/${VISIT}`).delete());
    await assertFails(db.doc(`visits/${VISIT}/artifacts/transcript`).set({ text: "forged" }));
    await assertFails(db.doc(`visits/${VISIT}/claims/${CLAIM}`).get());
    await assertFails(db.doc(`visits/${VISIT}/claims/transcription-1-2`).set({ owner: ALICE }));
    await assertFails(db.doc("rateLimits/user-alice").get());
    await assertFails(db.doc("rateLimits/user-alice").set({ count: 0 }));
    await assertFails(db.doc("breakers/openai").get());
  });

  it("leaves every deletion to the functions: no client deletes a visit, its transcript and pages, claims or action items", async () => {
    const doomed = [`visits/${VISIT}`, `visits/${VISIT}/artifacts/transcript`, `visits/${VISIT}/artifacts/transcript/pages/${PAGE}`, `visits/${VISIT}/claims/${CLAIM}`, `actions/${ACTION}`];
    for (const context of [testEnv.authenticatedContext(ALICE), testEnv.authenticatedContext(BOB), testEnv.unauthenticatedContext()]) {
      const db = firestoreOf(context);
      for (const documentPath of doomed) await assertFails(db.doc(documentPath).delete());
    }
    // Nor may a client empty a document instead of deleting it.
    const alice = firestoreOf(testEnv.authenticatedContext(ALICE));
    await assertFails(alice.doc(`visits/${VISIT}`).set({}));
    await assertFails(alice.doc(`visits/${VISIT}/artifacts/transcript/pages/${PAGE}`).set({ utterances: [] }));
    await assertFails(alice.doc(`actions/${ACTION}`).set({ userId: ALICE, done: true }));
    // Everything is still there.
    await testEnv.withSecurityRulesDisabled(async (context) => {
      const db = firestoreOf(context);
      for (const documentPath of doomed) {
        const snapshot = await db.doc(documentPath).get();
        if (!snapshot.exists) throw new Error(`${documentPath} was deleted`);
      }
    });
  });

  it("keeps the functions' bookkeeping (deletedVisits, userDeletions, rateLimits) from every client, even its subject", async () => {
    for (const context of [testEnv.authenticatedContext(ALICE), testEnv.authenticatedContext(BOB), testEnv.unauthenticatedContext()]) {
      const db = firestoreOf(context);
      for (const documentPath of BOOKKEEPING) {
        await assertFails(db.doc(documentPath).get());
        await assertFails(db.doc(documentPath).set({ userId: ALICE }));
        await assertFails(db.doc(documentPath).update({ sweeps: 0 }));
        await assertFails(db.doc(documentPath).delete());
      }
      // New documents, and list queries, are refused too.
      await assertFails(db.doc(`deletedVisits/${VISIT}`).set({ userId: ALICE, reason: "user" }));
      await assertFails(db.doc("userDeletions/another").set({ uid: ALICE }));
      await assertFails(db.doc("rateLimits/visit-new").set({ lastRetryAt: new Date() }));
      await assertFails(db.collection("deletedVisits").where("userId", "==", ALICE).get());
      await assertFails(db.collection("deletedVisits").get());
      await assertFails(db.collection("userDeletions").get());
      await assertFails(db.collection("rateLimits").get());
    }
  });

  it("lets a user register, refresh, read and remove their own push tokens, and nothing else there", async () => {
    const alice = firestoreOf(testEnv.authenticatedContext(ALICE));
    const device = alice.doc(`users/${ALICE}/devices/${"a".repeat(64)}`);
    await assertSucceeds(device.set({ token: "fcm-token-alice", platform: "ios", updatedAt: serverTimestamp() }));
    await assertSucceeds(device.set({ token: "fcm-token-alice", platform: "ios", updatedAt: serverTimestamp() }));
    await assertSucceeds(device.get());
    await assertSucceeds(alice.collection(`users/${ALICE}/devices`).get());
    // Only the token, its platform and the request time.
    await assertFails(device.set({ token: "fcm-token-alice", platform: "ios", updatedAt: serverTimestamp(), note: "x" }));
    await assertFails(device.set({ token: "", updatedAt: serverTimestamp() }));
    await assertFails(device.set({ token: "t".repeat(4097), updatedAt: serverTimestamp() }));
    await assertFails(device.set({ token: 42, updatedAt: serverTimestamp() }));
    await assertFails(device.set({ token: "fcm-token-alice", platform: "symbian", updatedAt: serverTimestamp() }));
    await assertFails(device.set({ token: "fcm-token-alice", updatedAt: new Date("2020-01-01T00:00:00Z") }));
    // Nobody else reads, lists, writes or removes them.
    const bob = firestoreOf(testEnv.authenticatedContext(BOB));
    await assertFails(bob.doc(`users/${ALICE}/devices/${"a".repeat(64)}`).get());
    await assertFails(bob.collection(`users/${ALICE}/devices`).get());
    await assertFails(bob.doc(`users/${ALICE}/devices/${"b".repeat(64)}`).set({ token: "bobs", updatedAt: serverTimestamp() }));
    await assertFails(bob.doc(`users/${ALICE}/devices/${"a".repeat(64)}`).delete());
    const nobody = firestoreOf(testEnv.unauthenticatedContext());
    await assertFails(nobody.doc(`users/${ALICE}/devices/${"a".repeat(64)}`).get());
    await assertFails(nobody.doc(`users/${ALICE}/devices/${"c".repeat(64)}`).set({ token: "x", updatedAt: serverTimestamp() }));
    // The user document holds only the preferred language; the checker's record is the functions'.
    await assertFails(alice.doc(`users/${ALICE}`).set({ name: "Alice" }));
    await assertFails(alice.doc("operations/checker").get());
    await assertSucceeds(device.delete());
  });

  it("lets a user set, change, clear and read their own preferred language, and write nothing else on the profile", async () => {
    const alice = firestoreOf(testEnv.authenticatedContext(ALICE));
    const profile = alice.doc(`users/${ALICE}`);
    await assertSucceeds(profile.set({ preferredLanguage: "es" }));
    await assertSucceeds(profile.update({ preferredLanguage: "fr" }));
    await assertSucceeds(profile.get());
    await assertSucceeds(profile.set({ preferredLanguage: null }));
    await assertSucceeds(profile.set({}));
    await assertSucceeds(profile.set({ preferredLanguage: "zu" }));
    // One field, and only an ISO 639-1 code: nothing changes on a bad value.
    for (const bad of ["ES", "es-MX", "spa", "zz", "", 42, true, ["es"]]) {
      await assertFails(profile.set({ preferredLanguage: bad }));
      await assertFails(profile.update({ preferredLanguage: bad }));
    }
    await assertFails(profile.set({ preferredLanguage: "es", name: "Alice" }));
    await assertFails(profile.update({ plan: "premium" }));
    await assertFails(profile.delete());
    await testEnv.withSecurityRulesDisabled(async (context) => {
      const stored = (await firestoreOf(context).doc(`users/${ALICE}`).get()).data();
      if (stored?.preferredLanguage !== "zu" || Object.keys(stored).length !== 1) throw new Error(`profile changed: ${JSON.stringify(stored)}`);
    });
    // Nobody else reads, lists or writes it.
    const bob = firestoreOf(testEnv.authenticatedContext(BOB));
    await assertFails(bob.doc(`users/${ALICE}`).get());
    await assertFails(bob.doc(`users/${ALICE}`).set({ preferredLanguage: "de" }));
    await assertFails(bob.collection("users").get());
    await assertSucceeds(bob.doc(`users/${BOB}`).set({ preferredLanguage: "de" }));
    const nobody = firestoreOf(testEnv.unauthenticatedContext());
    await assertFails(nobody.doc(`users/${ALICE}`).get());
    await assertFails(nobody.doc(`users/${ALICE}`).set({ preferredLanguage: "de" }));
    await assertFails(alice.collection("users").where("preferredLanguage", "==", "zu").get());
  });

  it("lets the owner read the clinician's note and the translated summary, and nobody write them", async () => {
    await testEnv.withSecurityRulesDisabled(async (context) => {
      const db = firestoreOf(context);
      await db.doc(`visits/${VISIT}/artifacts/clinician-note`).set({ kind: "clinician_note", format: "soap", note: { plan: ["…"] } });
      await db.doc(`visits/${VISIT}/artifacts/summary-translation`).set({ kind: "summary_translation", language: "es", summary: { overview: "…" } });
    });
    const alice = firestoreOf(testEnv.authenticatedContext(ALICE));
    const bob = firestoreOf(testEnv.authenticatedContext(BOB));
    for (const id of ["clinician-note", "summary-translation"]) {
      await assertSucceeds(alice.doc(`visits/${VISIT}/artifacts/${id}`).get());
      await assertFails(alice.doc(`visits/${VISIT}/artifacts/${id}`).set({ forged: true }));
      await assertFails(alice.doc(`visits/${VISIT}/artifacts/${id}`).delete());
      await assertFails(bob.doc(`visits/${VISIT}/artifacts/${id}`).get());
    }
  });

  it("denies other users and signed-out callers", async () => {
    const bob = firestoreOf(testEnv.authenticatedContext(BOB));
    await assertFails(bob.doc(`visits/${VISIT}`).get());
    await assertFails(bob.collection("visits").where("userId", "==", ALICE).get());
    await assertFails(bob.collection("visits").get());
    await assertFails(bob.doc(`visits/${VISIT}/artifacts/transcript`).get());
    await assertFails(bob.doc(`actions/${ACTION}`).get());
    await assertFails(bob.doc(`actions/${ACTION}`).update({ done: true }));
    const nobody = firestoreOf(testEnv.unauthenticatedContext());
    await assertFails(nobody.doc(`visits/${VISIT}`).get());
    await assertFails(nobody.doc("visits/not-created-yet").get());
    await assertFails(nobody.doc(`actions/${ACTION}`).get());
  });
});

describe("storage.rules", () => {
  const audio = new Uint8Array(64 * 1024).fill(7);
  const recording = (uid: string, visitId: string, fileName = "visit.m4a") => `users/${uid}/visits/${visitId}/${fileName}`;

  beforeEach(async () => {
    await testEnv.clearStorage();
  });

  it("lets the owner create an audio recording in their own visit folder and read it back", async () => {
    const storage = storageOf(testEnv.authenticatedContext(ALICE));
    const ref = storage.ref(recording(ALICE, "visit-1"));
    await assertSucceeds(ref.put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    await assertSucceeds(ref.getMetadata());
    await assertSucceeds(storage.ref(recording(ALICE, "visit-2", "visit.wav")).put(audio, { contentType: "audio/wav" }).then(() => undefined));
  });

  it("refuses uploads from anonymous accounts, even into their own folder", async () => {
    const anonymous = storageOf(testEnv.authenticatedContext("anon-1", { firebase: { sign_in_provider: "anonymous" } }));
    await assertFails(anonymous.ref(recording("anon-1", "visit-1")).put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    const password = storageOf(testEnv.authenticatedContext("pw-1", { firebase: { sign_in_provider: "password" } }));
    await assertSucceeds(password.ref(recording("pw-1", "visit-1")).put(audio, { contentType: "audio/mp4" }).then(() => undefined));
  });

  it("refuses overwriting, other content types, oversized or empty files and bad visit ids", async () => {
    const storage = storageOf(testEnv.authenticatedContext(ALICE));
    const ref = storage.ref(recording(ALICE, "visit-1"));
    await assertSucceeds(ref.put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    // A new recording is a new object: no overwrite, no delete.
    await assertFails(ref.put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    await assertFails(ref.delete());
    await assertFails(storage.ref(recording(ALICE, "visit-2", "notes.txt")).put(audio, { contentType: "text/plain" }).then(() => undefined));
    await assertFails(storage.ref(recording(ALICE, "visit-3")).put(new Uint8Array(0), { contentType: "audio/mp4" }).then(() => undefined));
    await assertFails(storage.ref(recording(ALICE, "visit.4")).put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    // One byte over the limit (250 MiB + 1). A 250 MiB upload is not repeated here: the limit is
    // `<=`, and uploading another 250 MiB through the emulator would double this test's time.
    const oversized = new Uint8Array(MAX_UPLOAD_BYTES + 1);
    await assertFails(storage.ref(recording(ALICE, "visit-5")).put(oversized, { contentType: "audio/mp4" }).then(() => undefined));
  });

  it("lets no client delete a recording: not the owner, not another user, not a signed-out caller", async () => {
    const name = recording(ALICE, "visit-1");
    await testEnv.withSecurityRulesDisabled(async (context) => {
      await storageOf(context).ref(name).put(audio, { contentType: "audio/mp4" });
    });
    for (const context of [testEnv.authenticatedContext(ALICE), testEnv.authenticatedContext(BOB), testEnv.unauthenticatedContext()]) {
      await assertFails(storageOf(context).ref(name).delete());
    }
    // Deleting is the functions' (DELETE /visits/{id}, retention); the recording is still there.
    await assertSucceeds(storageOf(testEnv.authenticatedContext(ALICE)).ref(name).getMetadata());
    // Nor may anyone delete outside the visit folders.
    await testEnv.withSecurityRulesDisabled(async (context) => {
      await storageOf(context).ref("public/anything.m4a").put(audio, { contentType: "audio/mp4" });
    });
    await assertFails(storageOf(testEnv.authenticatedContext(ALICE)).ref("public/anything.m4a").delete());
  });

  it("denies other users' folders and signed-out callers", async () => {
    await testEnv.withSecurityRulesDisabled(async (context) => {
      await storageOf(context).ref(recording(ALICE, "visit-1")).put(audio, { contentType: "audio/mp4" });
    });
    const bob = storageOf(testEnv.authenticatedContext(BOB));
    await assertFails(bob.ref(recording(ALICE, "visit-1")).getMetadata());
    await assertFails(bob.ref(recording(ALICE, "visit-9")).put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    const nobody = storageOf(testEnv.unauthenticatedContext());
    await assertFails(nobody.ref(recording(ALICE, "visit-1")).getMetadata());
    await assertFails(nobody.ref(recording(ALICE, "visit-8")).put(audio, { contentType: "audio/mp4" }).then(() => undefined));
    await assertFails(storageOf(testEnv.authenticatedContext(ALICE)).ref("public/anything.m4a").put(audio, { contentType: "audio/mp4" }).then(() => undefined));
  });
});
