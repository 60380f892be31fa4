// What counts as a visit recording upload: the object path contract and the validation of the
// object's metadata. Pure: no Firebase imports.

import type { ErrorCode } from "./errors.js";

/** `users/{uid}/visits/{visitId}/{fileName}` — the only layout the pipeline accepts. */
export interface VisitUploadPath {
  uid: string;
  visitId: string;
  fileName: string;
}

// Visit ids become Firestore document ids and Cloud Tasks task ids, so they must satisfy both:
// letters, digits, '-' and '_' only (Firestore auto-ids qualify).
const VISIT_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
// Firebase Auth uids are at most 128 characters (custom-token uids may hold punctuation); here
// they must also be a single, printable path segment.
const UID_PATTERN = /^[^/\s\u0000-\u001f\u007f]{1,128}$/;
// The file name is informational; reject only what could not be a plain object name.
const FILE_NAME_PATTERN = /^[^/\u0000-\u001f\u007f]{1,255}$/;

export type PathParseResult =
  | { ok: true; path: VisitUploadPath }
  | { ok: false; reason: "not_a_visit_path" | "invalid_uid" | "invalid_visit_id" | "invalid_file_name" };

export function parseVisitUploadPath(objectName: string): PathParseResult {
  const segments = objectName.split("/");
  if (segments.length !== 5 || segments[0] !== "users" || segments[2] !== "visits") {
    return { ok: false, reason: "not_a_visit_path" };
  }
  const [, uid = "", , visitId = "", fileName = ""] = segments;
  if (!UID_PATTERN.test(uid) || uid === "." || uid === "..") return { ok: false, reason: "invalid_uid" };
  if (!isValidVisitId(visitId)) return { ok: false, reason: "invalid_visit_id" };
  if (!FILE_NAME_PATTERN.test(fileName) || fileName === "." || fileName === "..") {
    return { ok: false, reason: "invalid_file_name" };
  }
  return { ok: true, path: { uid, visitId, fileName } };
}

/** Also excludes `__name__`-style ids, which Firestore reserves. */
export function isValidVisitId(visitId: string): boolean {
  return VISIT_ID_PATTERN.test(visitId) && !/^__.*__$/.test(visitId);
}

export interface UploadMetadata {
  contentType: string | undefined;
  sizeBytes: number;
}

export type UploadValidation = { ok: true; contentType: string } | { ok: false; code: ErrorCode };

/**
 * Checks the object's content type and size. The content type is the media type without
 * parameters, lower-cased (`Audio/MP4; codecs=mp4a` → `audio/mp4`); only `audio/*` is accepted.
 */
export function validateUpload(metadata: UploadMetadata, maxUploadBytes: number): UploadValidation {
  const contentType = normalizeMediaType(metadata.contentType);
  if (!contentType || !/^audio\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(contentType)) {
    return { ok: false, code: "invalid_content_type" };
  }
  if (!Number.isFinite(metadata.sizeBytes) || metadata.sizeBytes <= 0) return { ok: false, code: "empty_audio" };
  if (metadata.sizeBytes > maxUploadBytes) return { ok: false, code: "audio_too_large" };
  return { ok: true, contentType };
}

export function normalizeMediaType(contentType: string | undefined): string | undefined {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
  return mediaType ? mediaType : undefined;
}

/** Storage event sizes arrive as strings in the CloudEvent payload; be liberal in what we read. */
export function parseObjectSize(size: unknown): number {
  if (typeof size === "number") return size;
  if (typeof size === "string" && /^\d+$/.test(size.trim())) return Number(size.trim());
  return Number.NaN;
}
