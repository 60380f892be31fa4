// Resumable upload of a visit recording into the caller's folder, with progress and cancel, checked before it starts.

import { checkAudioFile } from "./audio-file.js";
import type { AudioFileProblem } from "./audio-file.js";
import { isValidVisitId, visitAudioPath } from "./contract.js";
import { errorCode } from "./error-code.js";

/** A recording as an app holds it: a picked File/Blob (web, React Native) or bytes. */
export interface VisitAudioFile {
  /** The file name, with its extension; it becomes the object name. */
  name: string;
  data: Blob | Uint8Array | ArrayBuffer;
}

export interface UploadProgress {
  bytesTransferred: number;
  totalBytes: number;
  /** 0..1 */
  fraction: number;
}

export interface UploadOptions {
  /** Upload into this visit (e.g. after a failure that needs a new recording); a new id otherwise. */
  visitId?: string;
  onProgress?: (progress: UploadProgress) => void;
  /** Aborting cancels the upload; the promise then rejects with code `cancelled`. */
  signal?: AbortSignal;
}

export interface UploadedVisit {
  visitId: string;
  /** The object path, `users/{uid}/visits/{visitId}/{fileName}`. */
  path: string;
}

/** An upload in flight, as the storage SDK runs it. */
export interface RunningUpload {
  done: Promise<void>;
  cancel(): void;
}

/** The slice of Cloud Storage the upload needs; firebase-ports.ts implements it with the SDK. */
export interface StorageUploader {
  start(
    path: string,
    data: VisitAudioFile["data"],
    contentType: string,
    onProgress: (bytesTransferred: number, totalBytes: number) => void,
  ): RunningUpload;
}

export interface UploadDeps {
  uploader: StorageUploader;
  /** The signed-in user's uid, or null. */
  currentUid(): string | null;
  /** A fresh visit id (a Firestore auto-id). */
  newVisitId(): string;
}

export type UploadErrorCode = AudioFileProblem | "invalid_visit_id" | "not_signed_in" | "cancelled" | "upload_refused" | "upload_failed";

export class UploadError extends Error {
  constructor(
    readonly code: UploadErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "UploadError";
  }
}

export async function uploadVisitAudio(deps: UploadDeps, file: VisitAudioFile, options: UploadOptions = {}): Promise<UploadedVisit> {
  const check = checkAudioFile(file.name, sizeOf(file.data));
  if (!check.ok) throw new UploadError(check.problem, check.message);
  if (options.visitId !== undefined && !isValidVisitId(options.visitId)) {
    throw new UploadError("invalid_visit_id", `"${options.visitId}" is not a visit id (1–100 of A–Z a–z 0–9 - _).`);
  }
  const uid = deps.currentUid();
  if (uid === null) throw new UploadError("not_signed_in", "Sign in before uploading.");
  if (options.signal?.aborted) throw new UploadError("cancelled", "The upload was cancelled.");

  const visitId = options.visitId ?? deps.newVisitId();
  const path = visitAudioPath(uid, visitId, file.name);
  const upload = deps.uploader.start(path, file.data, check.contentType, (bytesTransferred, totalBytes) => {
    options.onProgress?.(progressOf(bytesTransferred, totalBytes));
  });
  // Settle as soon as the user cancels: in Node the SDK cannot abort a chunk in flight (up to
  // 32 MiB) and stops only once it has been sent.
  let onAbort = () => {};
  const cancelled = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      upload.cancel();
      reject(new UploadError("cancelled", "The upload was cancelled."));
    };
  });
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race([upload.done, cancelled]);
  } catch (error) {
    throw error instanceof UploadError ? error : asUploadError(error, path);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
  return { visitId, path };
}

export function progressOf(bytesTransferred: number, totalBytes: number): UploadProgress {
  const fraction = totalBytes > 0 ? Math.min(1, Math.max(0, bytesTransferred / totalBytes)) : 0;
  return { bytesTransferred, totalBytes, fraction };
}

function sizeOf(data: VisitAudioFile["data"]): number {
  return data instanceof Blob ? data.size : data.byteLength;
}

function asUploadError(error: unknown, path: string): UploadError {
  const code = errorCode(error);
  switch (code) {
    case "storage/canceled":
      return new UploadError("cancelled", "The upload was cancelled.", { cause: error });
    case "storage/unauthenticated":
      return new UploadError("not_signed_in", "Sign in again before uploading.", { cause: error });
    case "storage/unauthorized":
      // storage.rules allow create only, in the caller's own folder, for audio up to 250 MiB.
      return new UploadError(
        "upload_refused",
        `Storage refused ${path}: the visit folder belongs to another user, or a file with this name is already in this visit.`,
        { cause: error },
      );
    default: {
      const detail = error instanceof Error ? error.message : String(error);
      return new UploadError("upload_failed", `The upload failed${code ? ` (${code})` : ""}: ${detail}`, { cause: error });
    }
  }
}
