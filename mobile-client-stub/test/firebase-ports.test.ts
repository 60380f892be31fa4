// The SDK adapters against real servers the test can run in-process: the web SDK listening to the
// embedded Firestore (written by the Admin SDK, as the functions write), and resumable uploads to a
// minimal server speaking the storage emulator's upload protocol. The Auth and Storage emulators
// and the rules need the emulator suite (Java 21); see README.md.

import { openAsBlob } from "node:fs";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { deleteApp as deleteAdminApp, initializeApp as initializeAdminApp } from "firebase-admin/app";
import { Timestamp, getFirestore as getAdminFirestore } from "firebase-admin/firestore";
import { deleteApp, initializeApp } from "firebase/app";
import type { FirebaseApp } from "firebase/app";
import { connectFirestoreEmulator, getFirestore, terminate } from "firebase/firestore";
import { connectStorageEmulator, getStorage } from "firebase/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VisitView } from "../src/describe-visit.js";
import { firestoreVisitIdFactory, storageUploader, visitDocumentSource } from "../src/firebase-ports.js";
import { systemScheduler } from "../src/scheduler.js";
import { uploadVisitAudio, UploadError } from "../src/upload.js";
import type { UploadProgress } from "../src/upload.js";
import { watchVisit } from "../src/watch-visit.js";

const PROJECT_ID = "demo-visit-pipeline";
const BUCKET = `${PROJECT_ID}.appspot.com`;
const FIXTURE = new URL("../../test/fixtures/visit-en.m4a", import.meta.url);

async function listen(server: http.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

function until<T>(predicate: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = predicate();
      if (value !== undefined) resolve(value);
      else if (Date.now() - started > timeoutMs) reject(new Error("timed out waiting"));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

describe("Firestore adapter: watching a visit through the web SDK", () => {
  // Its ESM build does not resolve under vitest; the CommonJS build does.
  const { FirestoreServer } = createRequire(import.meta.url)("@firestore-emulator/server") as {
    FirestoreServer: new () => { start(port: number): Promise<void>; stop(): void };
  };
  const server = new FirestoreServer();
  let app: FirebaseApp;
  let adminApp: ReturnType<typeof initializeAdminApp>;

  beforeAll(async () => {
    // The server does not report the port it bound, so find a free one first.
    const probe = http.createServer();
    const port = await listen(probe);
    probe.close();
    await server.start(port);
    process.env.FIRESTORE_EMULATOR_HOST = `127.0.0.1:${port}`;
    adminApp = initializeAdminApp({ projectId: PROJECT_ID }, "admin-writer");
    app = initializeApp({ projectId: PROJECT_ID, apiKey: "demo-api-key" }, "watcher");
    connectFirestoreEmulator(getFirestore(app), "127.0.0.1", port);
  });

  afterAll(async () => {
    await terminate(getFirestore(app));
    await deleteApp(app);
    await deleteAdminApp(adminApp);
    server.stop();
  });

  it("sees the visit appear and move through its statuses, with Firestore timestamps", async () => {
    const db = getFirestore(app);
    const visitId = firestoreVisitIdFactory(db)();
    expect(visitId).toMatch(/^[A-Za-z0-9]{20}$/);
    const views: VisitView[] = [];
    const stop = watchVisit({ source: visitDocumentSource(db), scheduler: systemScheduler }, visitId, (view) => views.push(view));
    try {
      await until(() => views[0]);
      expect(views[0]?.status).toBe("waiting_for_upload_processing");

      const visit = getAdminFirestore(adminApp).doc(`visits/${visitId}`);
      const longAgo = Timestamp.fromMillis(Date.now() - 61 * 60_000);
      await visit.set({ userId: "uid-1", status: "pending", pendingAt: Timestamp.now(), updatedAt: Timestamp.now(), error: null, transcript: null });
      await until(() => views.find((view) => view.status === "pending"));
      await visit.update({ status: "transcribing", transcribingAt: longAgo, updatedAt: Timestamp.now() });
      const stuck = await until(() => views.find((view) => view.status === "transcribing"));
      expect(stuck).toMatchObject({ stuck: true, progressStep: 2 });
      await visit.update({
        status: "partial",
        partialAt: Timestamp.now(),
        transcript: { utteranceCount: 4 },
        error: { stage: "summarization", code: "summary_truncated", message: "The summary was cut off.", retryable: true },
      });
      const partial = await until(() => views.find((view) => view.status === "partial"));
      expect(partial).toMatchObject({ isTerminal: true, canRetry: true, transcriptAvailable: true, error: { code: "summary_truncated" } });
    } finally {
      stop();
    }
  });
});

describe("Storage adapter: resumable upload through the web SDK", () => {
  interface Received {
    path: string | null;
    contentType: string | null;
    bytes: number;
    chunks: number;
  }
  let received: Received;
  // While set, chunk requests get no answer until released (a slow network).
  let holdChunks = false;
  const held: http.ServerResponse[] = [];
  let chunkArrived: () => void = () => undefined;
  const server = http.createServer((request, response) => {
    const body: Buffer[] = [];
    request.on("data", (chunk: Buffer) => body.push(chunk));
    request.on("end", () => {
      const command = String(request.headers["x-goog-upload-command"]);
      if (command === "start") {
        const start = JSON.parse(Buffer.concat(body).toString()) as { name: string; contentType: string };
        received = { path: start.name, contentType: start.contentType, bytes: 0, chunks: 0 };
        response.writeHead(200, { "X-Goog-Upload-Status": "active", "X-Goog-Upload-URL": `http://127.0.0.1:${port}/session` });
        response.end();
        return;
      }
      received.bytes += Buffer.concat(body).length;
      received.chunks += 1;
      chunkArrived();
      if (holdChunks) {
        held.push(response);
        return;
      }
      const final = command.includes("finalize");
      response.writeHead(200, { "X-Goog-Upload-Status": final ? "final" : "active", "Content-Type": "application/json" });
      response.end(final ? JSON.stringify({ name: received.path, bucket: BUCKET, generation: "1", size: String(received.bytes) }) : "");
    });
  });
  let port: number;
  let app: FirebaseApp;

  beforeAll(async () => {
    port = await listen(server);
    app = initializeApp({ projectId: PROJECT_ID, apiKey: "demo-api-key", storageBucket: BUCKET }, "uploader");
    connectStorageEmulator(getStorage(app), "127.0.0.1", port);
  });

  afterAll(async () => {
    await deleteApp(app);
    server.closeAllConnections();
    server.close();
  });

  const deps = () => ({ uploader: storageUploader(getStorage(app)), currentUid: () => "uid-1", newVisitId: () => "visit1" });

  it("uploads a file-backed Blob in chunks with its content type, reporting progress", async () => {
    holdChunks = false;
    const data = await openAsBlob(FIXTURE);
    const progress: UploadProgress[] = [];
    const result = await uploadVisitAudio(deps(), { name: "visit-en.m4a", data }, { onProgress: (update) => progress.push(update) });
    expect(result).toEqual({ visitId: "visit1", path: "users/uid-1/visits/visit1/visit-en.m4a" });
    expect(received).toMatchObject({ path: "users/uid-1/visits/visit1/visit-en.m4a", contentType: "audio/mp4", bytes: data.size });
    // Over 256 KiB, so resumable: more than one chunk.
    expect(received.chunks).toBeGreaterThan(1);
    expect(progress.at(0)?.fraction).toBe(0);
    expect(progress.at(-1)).toEqual({ bytesTransferred: data.size, totalBytes: data.size, fraction: 1 });
  });

  it("cancels a running upload at once; the SDK stops after the chunk in flight", async () => {
    holdChunks = true;
    const arrived = new Promise<void>((resolve) => (chunkArrived = resolve));
    const controller = new AbortController();
    const upload = uploadVisitAudio(deps(), { name: "visit-en.m4a", data: await openAsBlob(FIXTURE) }, { signal: controller.signal });
    await arrived;
    controller.abort();
    const error: unknown = await upload.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(UploadError);
    expect(error).toMatchObject({ code: "cancelled" });

    // Let the chunk in flight finish: the SDK must not send another.
    holdChunks = false;
    for (const response of held.splice(0)) {
      response.writeHead(200, { "X-Goog-Upload-Status": "active" });
      response.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received.chunks).toBe(1);
  });
});
