// Cloud Storage deletes over the wire: the real firebase-admin / @google-cloud/storage SDK against the
// fake JSON API (test/fakes/storage.ts) through STORAGE_EMULATOR_HOST — the fake's own behaviour
// first, then functions/src/store/audio-objects.ts, then the local runtime's uploads.

import { readFileSync } from "node:fs";
import path from "node:path";
import { getStorage } from "firebase-admin/storage";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { countObjectsUnder, deleteAudioGeneration, deleteObjectsUnder } from "../../functions/src/store/audio-objects.js";
import { adminApp } from "../../functions/src/store/db.js";
import { PipelineError } from "../../functions/src/visit/errors.js";
import { crc32cBase64 } from "../fakes/storage.js";
import type { FakeCloudStorage } from "../fakes/storage.js";
import { BUCKET, FIXTURES_DIR, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";

let runtime: LocalRuntime;
let storage: FakeCloudStorage;

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
  storage = runtime.storage;
});

afterAll(async () => {
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
});

function bucket() {
  return getStorage(adminApp()).bucket(BUCKET);
}

/**
 * The SDK retries 408/429/5xx itself (3 times, after ~2, 4 and 8 s plus jitter). Tests that make it
 * retry cap each wait at 1 ms; the client's retryOptions object is read live on every request.
 * They also switch retries back on: an unconditional `save()` earlier in this process switched
 * them off on the shared client (see "FakeCloudStorage … retries").
 */
async function withFastSdkRetries<T>(work: () => Promise<T>): Promise<T> {
  const options = bucket().storage.retryOptions;
  const saved = { maxRetryDelay: options.maxRetryDelay, autoRetry: options.autoRetry };
  options.maxRetryDelay = 0.001;
  options.autoRetry = true;
  try {
    return await work();
  } finally {
    Object.assign(options, saved);
  }
}

function requestsOf(method: string, pathPart = "") {
  return storage.requests.filter((request) => request.method === method && request.path.includes(pathPart));
}

async function rejectionOf(promise: Promise<unknown>): Promise<PipelineError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof PipelineError)) throw new Error(`expected a PipelineError, got ${String(error)}`);
  return error;
}

function statusOf(error: unknown): unknown {
  return typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
}

describe("FakeCloudStorage through @google-cloud/storage", () => {
  const name = "users/u 1/visits/v+1/a b.m4a";

  it("takes a resumable save (the SDK's default), serves metadata and the media, and passes the SDK's hash check", async () => {
    const bytes = readFileSync(path.join(FIXTURES_DIR, "visit-en.m4a"));
    await bucket().file(name).save(bytes, { contentType: "audio/mp4" });
    const [metadata] = await bucket().file(name).getMetadata();
    expect(metadata).toMatchObject({ name, bucket: BUCKET, contentType: "audio/mp4", size: String(bytes.length), metageneration: "1" });
    expect(metadata.generation).toMatch(/^[1-9]\d{15,}$/);
    expect(new Date(String(metadata.timeCreated)).toISOString()).toBe(metadata.timeCreated);
    const [downloaded] = await bucket().file(name).download(); // validates x-goog-hash
    expect(downloaded.equals(bytes)).toBe(true);
    // The name is one encoded path segment, on the JSON API path without /storage/v1.
    expect(requestsOf("GET").map((request) => request.path)).toContain(`/b/${BUCKET}/o/${encodeURIComponent(name)}?alt=media`);
    expect(requestsOf("POST")[0]?.path).toMatch(/^\/upload\/storage\/v1\/b\/[^/]+\/o\?.*uploadType=resumable/);
    expect(requestsOf("PUT")[0]?.headers["content-range"]).toBe("bytes 0-*/*");
    expect(storage.requests.every((request) => request.headers.authorization === undefined)).toBe(true);
  });

  it("takes a multipart save; each write gets a new, larger generation; only the live one exists", async () => {
    await bucket().file(name).save("first", { resumable: false, contentType: "text/plain" });
    const first = storage.read(BUCKET, name)!;
    await bucket().file(name).save("second", { resumable: false, contentType: "text/plain" });
    const second = storage.read(BUCKET, name)!;
    expect(requestsOf("POST").map((request) => new URL(request.path, "http://x").searchParams.get("uploadType"))).toEqual(["multipart", "multipart"]);
    expect(BigInt(second.generation)).toBeGreaterThan(BigInt(first.generation));
    expect(second.bytes.toString()).toBe("second");
    expect(storage.objects(BUCKET).map((object) => [object.name, object.generation])).toEqual([[name, second.generation]]);
  });

  it("takes a media upload and refuses an upload whose ifGenerationMatch does not hold", async () => {
    const url = `${storage.origin}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent("raw/one.m4a")}`;
    const created = await fetch(url, { method: "POST", headers: { "content-type": "audio/mp4" }, body: "abc" });
    const resource = (await created.json()) as Record<string, unknown>;
    expect(created.status).toBe(200);
    expect(resource).toMatchObject({ name: "raw/one.m4a", size: "3", contentType: "audio/mp4", crc32c: crc32cBase64(Buffer.from("abc")) });
    const refused = await fetch(`${url}&ifGenerationMatch=0`, { method: "POST", body: "again" });
    expect(refused.status).toBe(412);
    const error = await bucket()
      .file("raw/one.m4a")
      .save("again", { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })
      .catch((reason: unknown) => reason);
    expect(statusOf(error)).toBe(412);
    expect(storage.read(BUCKET, "raw/one.m4a")?.bytes.toString()).toBe("abc");
  });

  it("lists in pages with nextPageToken, by name, only under the prefix", async () => {
    storage.setListPageLimit(2);
    for (const leaf of ["e", "a", "c", "b", "d"]) storage.put(BUCKET, `p/${leaf}`, leaf, { contentType: "text/plain" });
    storage.put(BUCKET, "q/a", "x", { contentType: "text/plain" });
    const [firstPage, nextQuery] = await bucket().getFiles({ prefix: "p/", autoPaginate: false });
    expect(firstPage.map((file) => file.name)).toEqual(["p/a", "p/b"]);
    expect(nextQuery).toMatchObject({ pageToken: expect.any(String) });
    const [all] = await bucket().getFiles({ prefix: "p/" }); // the SDK follows nextPageToken itself
    expect(all.map((file) => file.name)).toEqual(["p/a", "p/b", "p/c", "p/d", "p/e"]);
    expect(requestsOf("GET", "/o?").filter((request) => request.path.includes("pageToken="))).toHaveLength(2);
  });

  it("deletes honouring ifGenerationMatch: 412 on a mismatch, 404 when missing, 204 otherwise", async () => {
    const { generation } = storage.put(BUCKET, name, "x", { contentType: "audio/mp4" });
    const file = bucket().file(name);
    expect(statusOf(await file.delete({ ifGenerationMatch: "1" }).catch((reason: unknown) => reason))).toBe(412);
    expect(storage.deletedCount()).toBe(0);
    await file.delete({ ifGenerationMatch: generation });
    expect(storage.deletedCount()).toBe(1);
    expect(statusOf(await file.delete({ ifGenerationMatch: generation }).catch((reason: unknown) => reason))).toBe(404);
    expect(storage.objects()).toEqual([]);
  });

  it("put with an explicit generation keeps it, and later generations stay above it", () => {
    const explicit = "9000000000000000";
    expect(storage.put(BUCKET, "g/one", "1", { generation: explicit }).generation).toBe(explicit);
    const before = storage.read(BUCKET, "g/one")!;
    expect(storage.put(BUCKET, "g/one", "changed", { generation: explicit }).generation).toBe(explicit);
    expect(storage.read(BUCKET, "g/one")).toEqual(before); // a re-delivery of that generation, not a write
    expect(BigInt(storage.put(BUCKET, "g/two", "2").generation)).toBeGreaterThan(BigInt(explicit));
  });

  it("retries: an unconditional save() switches the SDK's retries off on the shared client, and they stay off", async () => {
    const options = bucket().storage.retryOptions;
    const saved = options.autoRetry;
    try {
      options.autoRetry = true;
      await bucket().file("r/one").save("x", { resumable: false });
      // @google-cloud/storage 7.22 File#save: no ifGenerationMatch → autoRetry = false, never restored.
      expect(bucket().storage.retryOptions.autoRetry).toBe(false);
      // So a conditional delete is not retried either: one 503 surfaces at once.
      const { generation } = storage.put(BUCKET, "r/one", "y");
      storage.faults.enqueue("delete", { kind: "status", status: 503 });
      const error = await deleteAudioGeneration({ bucket: BUCKET, path: "r/one", generation }).catch((reason: unknown) => reason);
      expect(error).toMatchObject({ code: "provider_unavailable", httpStatus: 503 });
      expect(requestsOf("DELETE")).toHaveLength(1);
    } finally {
      options.autoRetry = saved;
    }
  });

  it("injects faults on one route: the next DELETE answers 503, the read after it does not", async () => {
    const { generation } = storage.put(BUCKET, "f/one", "x");
    storage.faults.enqueue("delete", { kind: "status", status: 503 });
    const url = `${storage.origin}/b/${BUCKET}/o/${encodeURIComponent("f/one")}`;
    expect((await fetch(url)).status).toBe(200);
    const failed = await fetch(`${url}?ifGenerationMatch=${generation}`, { method: "DELETE" });
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { errors: { reason: string }[] } }).error.errors[0]?.reason).toBe("backendError");
    expect((await fetch(`${url}?ifGenerationMatch=${generation}`, { method: "DELETE" })).status).toBe(204);
    expect(storage.faults.injected.map((fault) => [fault.route, fault.kind])).toEqual([["delete", "status"]]);
  });
});

describe("deleteAudioGeneration", () => {
  const audioPath = "users/u/visits/v1/visit-en.m4a";

  it("deletes exactly the named generation", async () => {
    const { generation } = storage.put(BUCKET, audioPath, "audio", { contentType: "audio/mp4" });
    expect(await deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation })).toBe("deleted");
    expect(storage.objects()).toEqual([]);
    expect(requestsOf("DELETE").map((request) => request.path)).toEqual([
      `/b/${BUCKET}/o/${encodeURIComponent(audioPath)}?ifGenerationMatch=${generation}`,
    ]);
  });

  it("leaves a newer generation at the same name alone: already_gone", async () => {
    const { generation: old } = storage.put(BUCKET, audioPath, "first recording");
    const { generation: newer } = storage.put(BUCKET, audioPath, "second recording");
    expect(await deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation: old })).toBe("already_gone");
    expect(storage.read(BUCKET, audioPath)).toMatchObject({ generation: newer });
    expect(storage.deletedCount()).toBe(0);
  });

  it("answers already_gone for a missing object", async () => {
    expect(await deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation: "1700000000000001" })).toBe("already_gone");
  });

  it("answers already_gone when its delete went through but the answer was lost (the SDK's retry finds nothing)", async () => {
    const { generation } = storage.put(BUCKET, audioPath, "audio");
    storage.faults.enqueue("delete", { kind: "status", status: 503, afterCommit: true });
    expect(await withFastSdkRetries(() => deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation }))).toBe("already_gone");
    expect(storage.objects()).toEqual([]);
    expect(requestsOf("DELETE")).toHaveLength(2);
  });

  it("refuses a missing or malformed generation without calling Storage (the delete would be unconditional)", async () => {
    storage.put(BUCKET, audioPath, "audio");
    for (const generation of ["", "0", "abc", "12.5"]) {
      const error = await rejectionOf(deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation }));
      expect(error.code).toBe("internal_error");
    }
    expect(storage.requests).toEqual([]);
  });

  it("surfaces a 503 the SDK's retries did not get past as a transient PipelineError that names no object", async () => {
    const { generation } = storage.put(BUCKET, audioPath, "audio");
    storage.faults.enqueue("delete", { kind: "status", status: 503 }, 4);
    const error = await withFastSdkRetries(() => rejectionOf(deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation })));
    expect(error).toMatchObject({ code: "provider_unavailable", transient: true, httpStatus: 503 });
    expect(error.message).not.toContain("users/");
    expect(error.cause).toBeUndefined();
    expect(requestsOf("DELETE")).toHaveLength(4); // the first try and the SDK's 3 retries
    expect(storage.read(BUCKET, audioPath)).toBeDefined();
  });

  it("gets past one 503: the SDK retries a conditional delete", async () => {
    const { generation } = storage.put(BUCKET, audioPath, "audio");
    storage.faults.enqueue("delete", { kind: "status", status: 503 });
    expect(await withFastSdkRetries(() => deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation }))).toBe("deleted");
    expect(requestsOf("DELETE")).toHaveLength(2);
  });

  it("maps a 403 (a missing IAM role) to internal_error, not retried by the SDK", async () => {
    const { generation } = storage.put(BUCKET, audioPath, "audio");
    storage.faults.enqueue("delete", { kind: "status", status: 403 });
    const error = await rejectionOf(deleteAudioGeneration({ bucket: BUCKET, path: audioPath, generation }));
    expect(error).toMatchObject({ code: "internal_error", httpStatus: 403 });
    expect(requestsOf("DELETE")).toHaveLength(1);
  });
});

describe("deleteObjectsUnder / countObjectsUnder", () => {
  const visitFolder = "users/u/visits/v1";
  const inside = [
    `${visitFolder}/visit-en.m4a`,
    ...Array.from({ length: 9 }, (_, i) => `${visitFolder}/part-${String(i).padStart(2, "0")}.m4a`),
    `${visitFolder}/nested/extra.m4a`,
  ];
  const siblings = ["users/u/visits/v10/visit-en.m4a", "users/u/visits/v1.m4a", "users/u/visits/v2/visit-en.m4a", "users/other/visits/v1/visit-en.m4a"];

  function putAll(): void {
    for (const name of [...inside, ...siblings]) storage.put(BUCKET, name, "audio", { contentType: "audio/mp4" });
    storage.put("another-bucket", `${visitFolder}/visit-en.m4a`, "audio");
  }

  it("deletes exactly the objects under the folder across several listing pages, and never a sibling such as v10", async () => {
    putAll();
    storage.setListPageLimit(3);
    expect(await countObjectsUnder(BUCKET, visitFolder)).toBe(inside.length);
    storage.requests.length = 0;
    expect(await deleteObjectsUnder(BUCKET, visitFolder)).toBe(inside.length); // no trailing "/": added
    expect(storage.objects(BUCKET).map((object) => object.name).sort()).toEqual([...siblings].sort());
    expect(storage.objects("another-bucket")).toHaveLength(1);
    const listings = requestsOf("GET", "/o?").map((request) => new URL(request.path, "http://x").searchParams);
    expect(listings.length).toBe(Math.ceil(inside.length / 3));
    expect(listings.every((query) => query.get("prefix") === `${visitFolder}/` && query.get("maxResults") === "1000")).toBe(true);
    expect(listings.slice(1).every((query) => query.has("pageToken"))).toBe(true);
    expect(requestsOf("DELETE").every((request) => request.path.includes("ifGenerationMatch="))).toBe(true);
    expect(await countObjectsUnder(BUCKET, `${visitFolder}/`)).toBe(0);
  });

  it("returns 0 for an empty folder, and refuses an empty prefix (the whole bucket)", async () => {
    putAll();
    expect(await deleteObjectsUnder(BUCKET, "users/nobody/")).toBe(0);
    for (const prefix of ["", "/", "//"]) {
      expect((await rejectionOf(deleteObjectsUnder(BUCKET, prefix))).code).toBe("internal_error");
    }
    expect(storage.objects(BUCKET)).toHaveLength(inside.length + siblings.length);
  });

  it("does not count or fail on an object that vanished meanwhile", async () => {
    putAll();
    storage.faults.enqueue("delete", { kind: "status", status: 503, afterCommit: true });
    expect(await withFastSdkRetries(() => deleteObjectsUnder(BUCKET, visitFolder))).toBe(inside.length - 1);
    expect(await countObjectsUnder(BUCKET, visitFolder)).toBe(0);
  });

  it("deletes an object replaced between listing and delete in its new generation", async () => {
    const name = `${visitFolder}/visit-en.m4a`;
    const { generation: first } = storage.put(BUCKET, name, "first");
    storage.faults.enqueue("delete", { kind: "hang", ms: 200 });
    const sweep = deleteObjectsUnder(BUCKET, visitFolder);
    while (storage.faults.injected.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const { generation: second } = storage.put(BUCKET, name, "second"); // lands while the listed generation's delete is held
    expect(await sweep).toBe(1);
    expect(storage.objects()).toEqual([]);
    const conditions = requestsOf("DELETE").map((request) => new URL(request.path, "http://x").searchParams.get("ifGenerationMatch"));
    expect(conditions).toEqual([first, second]);
  });

  it("stops at a failed delete, and leaves no delete running once it has failed", async () => {
    for (let i = 0; i < 40; i++) storage.put(BUCKET, `${visitFolder}/part-${String(i).padStart(2, "0")}.m4a`, "audio");
    storage.faults.enqueue("delete", { kind: "status", status: 403 });
    const error = await rejectionOf(deleteObjectsUnder(BUCKET, visitFolder));
    expect(error).toMatchObject({ code: "internal_error", httpStatus: 403 });
    const deletesAtFailure = requestsOf("DELETE").length;
    expect(deletesAtFailure).toBeLessThan(40);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(requestsOf("DELETE")).toHaveLength(deletesAtFailure);
  });

  it("surfaces a listing 503 as a transient PipelineError", async () => {
    putAll();
    storage.faults.enqueue("list", { kind: "status", status: 503 }, 4);
    const error = await withFastSdkRetries(() => rejectionOf(deleteObjectsUnder(BUCKET, visitFolder)));
    expect(error).toMatchObject({ code: "provider_unavailable", transient: true, httpStatus: 503 });
    expect(storage.deletedCount()).toBe(0);
  });
});

describe("the local runtime's uploads", () => {
  it("store the object in the fake with the generation the storage event carried", async () => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId });
    const name = `users/user-1/visits/${visitId}/visit-en.m4a`;
    const stored = storage.read(BUCKET, name);
    const fixture = readFileSync(path.join(FIXTURES_DIR, "visit-en.m4a"));
    expect(stored?.bytes.equals(fixture)).toBe(true);
    expect(stored).toMatchObject({ contentType: "audio/mp4", size: String(fixture.length) });
    expect((await readVisit(visitId)).audio).toMatchObject({ path: name, generation: stored?.generation, sizeBytes: fixture.length });
  });

  it("store with the caller's generation when one is given, and report a big size without storing it", async () => {
    const visitId = newVisitId();
    // Accepted (under the size limit): a rejected upload's object is deleted by the pipeline.
    await runtime.upload({ uid: "user-1", visitId, generation: "1700000000000042", fileName: "long-visit.m4a", sizeBytes: 5 * 1024 * 1024 });
    const stored = storage.read(BUCKET, `users/user-1/visits/${visitId}/long-visit.m4a`);
    expect(stored).toMatchObject({ generation: "1700000000000042", size: String(5 * 1024 * 1024) });
    expect(stored!.bytes.length).toBeLessThanOrEqual(64 * 1024);
  });

  it("store objects at paths the pipeline ignores too", async () => {
    await runtime.upload({ uid: "user-1", visitId: "unused", objectName: "recordings/user-1/visit.m4a" });
    expect(storage.objects(BUCKET).map((object) => object.name)).toEqual(["recordings/user-1/visit.m4a"]);
  });

  it("give AssemblyAI a v4 URL signed locally for the fake's host, whose path it recognises", async () => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-2", visitId, fileName: "visit-es.m4a" });
    const [job] = runtime.assemblyai.jobRecords();
    const url = new URL(job!.audioUrl);
    expect(url.origin).toBe(storage.origin);
    expect(decodeURIComponent(url.pathname)).toBe(`/${BUCKET}/users/user-2/visits/${visitId}/visit-es.m4a`);
    expect(url.searchParams.get("X-Goog-Algorithm")).toBe("GOOG4-RSA-SHA256");
    expect(url.searchParams.get("X-Goog-Signature")).toMatch(/^[0-9a-f]{64,}$/);
    await runtime.runUntilSettled([visitId]);
    expect((await readVisit(visitId)).transcript?.languageCode).toBe("es");
  });
});
