import { describe, expect, it } from "vitest";
import { MAX_UPLOAD_BYTES } from "../src/contract.js";
import { uploadVisitAudio, UploadError } from "../src/upload.js";
import type { RunningUpload, StorageUploader, UploadDeps, UploadProgress, VisitAudioFile } from "../src/upload.js";

interface StartedUpload {
  path: string;
  data: VisitAudioFile["data"];
  contentType: string;
  progress: (bytesTransferred: number, totalBytes: number) => void;
  resolve: () => void;
  reject: (error: unknown) => void;
  cancelled: boolean;
}

/** Records what the SDK would be asked to upload; the test decides how it ends. */
class FakeUploader implements StorageUploader {
  readonly started: StartedUpload[] = [];

  start(path: string, data: VisitAudioFile["data"], contentType: string, progress: StartedUpload["progress"]): RunningUpload {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    const upload: StartedUpload = { path, data, contentType, progress, resolve, reject, cancelled: false };
    this.started.push(upload);
    return {
      done,
      cancel: () => {
        upload.cancelled = true;
        // What the SDK does on cancel().
        reject(Object.assign(new Error("User canceled the upload/download."), { code: "storage/canceled" }));
      },
    };
  }

  get last(): StartedUpload {
    const upload = this.started.at(-1);
    if (upload === undefined) throw new Error("nothing was uploaded");
    return upload;
  }
}

function setup(uid: string | null = "uid-1") {
  const uploader = new FakeUploader();
  const deps: UploadDeps = { uploader, currentUid: () => uid, newVisitId: () => "autoId123" };
  return { uploader, deps };
}

/** A picked file is a Blob; faking its size spares allocating 250 MiB. */
function blobOfSize(size: number): Blob {
  const blob = new Blob([new Uint8Array(1)]);
  Object.defineProperty(blob, "size", { value: size });
  return blob;
}

const recording = (name = "visit-en.m4a", size = 1000): VisitAudioFile => ({ name, data: new Uint8Array(size) });

async function rejection(promise: Promise<unknown>): Promise<UploadError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof UploadError)) throw new Error(`expected an UploadError, got ${String(error)}`);
  return error;
}

describe("uploadVisitAudio", () => {
  it("uploads into a new visit in the user's folder with the content type of the extension", async () => {
    const { uploader, deps } = setup();
    const file = recording();
    const result = uploadVisitAudio(deps, file);
    expect(uploader.last).toMatchObject({ path: "users/uid-1/visits/autoId123/visit-en.m4a", contentType: "audio/mp4", data: file.data });
    uploader.last.resolve();
    await expect(result).resolves.toEqual({ visitId: "autoId123", path: "users/uid-1/visits/autoId123/visit-en.m4a" });
  });

  it("uploads into the given visit", async () => {
    const { uploader, deps } = setup();
    const result = uploadVisitAudio(deps, recording("again.mp3"), { visitId: "existingVisit" });
    expect(uploader.last).toMatchObject({ path: "users/uid-1/visits/existingVisit/again.mp3", contentType: "audio/mpeg" });
    uploader.last.resolve();
    await expect(result).resolves.toEqual({ visitId: "existingVisit", path: "users/uid-1/visits/existingVisit/again.mp3" });
  });

  it("reports progress as bytes and a fraction", async () => {
    const { uploader, deps } = setup();
    const progress: UploadProgress[] = [];
    const result = uploadVisitAudio(deps, recording(), { onProgress: (update) => progress.push(update) });
    uploader.last.progress(0, 1000);
    uploader.last.progress(256, 1000);
    uploader.last.progress(1000, 1000);
    uploader.last.resolve();
    await result;
    expect(progress).toEqual([
      { bytesTransferred: 0, totalBytes: 1000, fraction: 0 },
      { bytesTransferred: 256, totalBytes: 1000, fraction: 0.256 },
      { bytesTransferred: 1000, totalBytes: 1000, fraction: 1 },
    ]);
  });

  it("measures a Blob by its size", async () => {
    const { uploader, deps } = setup();
    const result = uploadVisitAudio(deps, { name: "visit.wav", data: blobOfSize(MAX_UPLOAD_BYTES) });
    uploader.last.resolve();
    await expect(result).resolves.toMatchObject({ visitId: "autoId123" });
  });

  it.each([
    ["unsupported_file_type", recording("notes.txt")],
    ["empty_file", recording("visit.m4a", 0)],
    ["file_too_large", { name: "visit.m4a", data: blobOfSize(MAX_UPLOAD_BYTES + 1) }],
    ["empty_file", { name: "visit.m4a", data: new ArrayBuffer(0) }],
  ] as const)("refuses %s before uploading anything", async (code, file) => {
    const { uploader, deps } = setup();
    const error = await rejection(uploadVisitAudio(deps, file));
    expect(error.code).toBe(code);
    expect(uploader.started).toEqual([]);
  });

  it("refuses a visit id storage.rules would refuse", async () => {
    const { uploader, deps } = setup();
    const error = await rejection(uploadVisitAudio(deps, recording(), { visitId: "../other" }));
    expect(error).toMatchObject({ code: "invalid_visit_id", message: '"../other" is not a visit id (1–100 of A–Z a–z 0–9 - _).' });
    expect(uploader.started).toEqual([]);
  });

  it("refuses to upload when nobody is signed in", async () => {
    const { uploader, deps } = setup(null);
    expect((await rejection(uploadVisitAudio(deps, recording()))).code).toBe("not_signed_in");
    expect(uploader.started).toEqual([]);
  });

  it("cancels the running upload when the signal aborts", async () => {
    const { uploader, deps } = setup();
    const controller = new AbortController();
    const result = uploadVisitAudio(deps, recording(), { signal: controller.signal });
    controller.abort();
    expect(uploader.last.cancelled).toBe(true);
    expect(await rejection(result)).toMatchObject({ code: "cancelled", message: "The upload was cancelled." });
  });

  it("settles at once on cancel, even when the SDK stops only after its current chunk", async () => {
    const { uploader, deps } = setup();
    const slowToStop: StorageUploader = {
      start: (...args) => ({ ...uploader.start(...args), cancel: () => (uploader.last.cancelled = true) }),
    };
    const controller = new AbortController();
    const result = uploadVisitAudio({ ...deps, uploader: slowToStop }, recording(), { signal: controller.signal });
    controller.abort();
    expect(await rejection(result)).toMatchObject({ code: "cancelled" });
    expect(uploader.last.cancelled).toBe(true);
    // The SDK's own ending later is not an unhandled rejection.
    uploader.last.reject(Object.assign(new Error("canceled"), { code: "storage/canceled" }));
  });

  it("does not start when the signal has already aborted", async () => {
    const { uploader, deps } = setup();
    const controller = new AbortController();
    controller.abort();
    expect((await rejection(uploadVisitAudio(deps, recording(), { signal: controller.signal }))).code).toBe("cancelled");
    expect(uploader.started).toEqual([]);
  });

  it("stops listening to the signal once the upload is done", async () => {
    const { uploader, deps } = setup();
    const controller = new AbortController();
    const result = uploadVisitAudio(deps, recording(), { signal: controller.signal });
    uploader.last.resolve();
    await result;
    controller.abort();
    expect(uploader.last.cancelled).toBe(false);
  });

  it.each([
    ["storage/unauthorized", "upload_refused", /Storage refused users\/uid-1\/visits\/autoId123\/visit-en\.m4a/],
    ["storage/unauthenticated", "not_signed_in", /Sign in again/],
    ["storage/retry-limit-exceeded", "upload_failed", /^The upload failed \(storage\/retry-limit-exceeded\): Max retry time exceeded/],
  ] as const)("explains the SDK's %s as %s", async (sdkCode, code, message) => {
    const { uploader, deps } = setup();
    const result = uploadVisitAudio(deps, recording());
    uploader.last.reject(Object.assign(new Error("Max retry time exceeded."), { code: sdkCode }));
    const error = await rejection(result);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.cause).toMatchObject({ code: sdkCode });
  });
});
