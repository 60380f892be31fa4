// The pipeline's only Cloud Storage access for audio objects: deleting one exact generation, sweeping (and counting) a folder; nothing here logs, and errors never carry object names.

import { getStorage } from "firebase-admin/storage";
import { mapWithConcurrency } from "../concurrency.js";
import { PipelineError } from "../visit/errors.js";
import { adminApp } from "./db.js";

type Bucket = ReturnType<ReturnType<typeof getStorage>["bucket"]>;
type StorageFile = ReturnType<Bucket["file"]>;

export interface AudioObjectRef {
  bucket: string;
  path: string;
  /** The object generation, as a decimal string. */
  generation: string;
}

/** The JSON API's largest listing page. */
const LIST_PAGE_SIZE = 1000;
const DELETE_CONCURRENCY = 8;
/** How often a sweep re-reads an object that was replaced between listing and delete before giving up. */
const REPLACED_ATTEMPTS = 3;

type DeleteOutcome = "deleted" | "missing" | "replaced";

/**
 * Deletes exactly this generation (`ifGenerationMatch`): a newer object at the same name — a new
 * recording of the same visit — is never touched. 404 (nothing there) and 412 (another generation
 * there) both mean this generation is already gone. A first attempt whose answer was lost and that
 * the SDK retried also ends "already_gone": the retry finds nothing.
 */
export async function deleteAudioGeneration(audio: AudioObjectRef): Promise<"deleted" | "already_gone"> {
  const generation = requireGeneration(audio.generation);
  const outcome = await deleteGeneration(bucketOf(audio.bucket).file(audio.path), generation);
  return outcome === "deleted" ? "deleted" : "already_gone";
}

/**
 * Deletes every object under `prefix` (a folder: "/" is added when missing, so `…/visits/v1` never
 * reaches `…/visits/v10/…`), page by page, at most DELETE_CONCURRENCY at a time. Returns how many it
 * deleted; objects that vanish meanwhile are not an error (nor counted — which includes a delete
 * whose answer was lost and that the SDK retried), and one replaced meanwhile is deleted in its new
 * generation. Refuses an empty prefix (that would be the whole bucket).
 */
export async function deleteObjectsUnder(bucket: string, prefix: string): Promise<number> {
  const folder = folderPrefix(prefix);
  const handle = bucketOf(bucket);
  let deleted = 0;
  for await (const files of listPages(handle, folder)) {
    deleted += await deletePage(handle, files);
  }
  return deleted;
}

/**
 * After a failure the page's other deletes are skipped, and the error is thrown only once those in
 * flight have settled: no delete keeps running after the sweep has failed (a function that returned
 * may be frozen or killed mid-request).
 */
async function deletePage(bucket: Bucket, files: StorageFile[]): Promise<number> {
  let failure: { error: unknown } | undefined;
  const outcomes = await mapWithConcurrency(files, DELETE_CONCURRENCY, async (file) => {
    if (failure !== undefined) return false;
    try {
      return await deleteCurrent(bucket, file);
    } catch (error) {
      failure ??= { error };
      return false;
    }
  });
  if (failure !== undefined) throw failure.error;
  return outcomes.filter(Boolean).length;
}

/** How many objects are under `prefix` (a folder, as for deleteObjectsUnder). */
export async function countObjectsUnder(bucket: string, prefix: string): Promise<number> {
  let count = 0;
  for await (const files of listPages(bucketOf(bucket), folderPrefix(prefix))) count += files.length;
  return count;
}

function bucketOf(name: string): Bucket {
  return getStorage(adminApp()).bucket(name);
}

/** A deletion's precondition must be a real generation: without one the delete would be unconditional. */
function requireGeneration(generation: string): string {
  if (!/^[1-9]\d*$/.test(generation)) {
    throw new PipelineError("internal_error", { detail: "audio deletion needs the object generation as a decimal string" });
  }
  return generation;
}

function folderPrefix(prefix: string): string {
  const folder = prefix.endsWith("/") ? prefix : `${prefix}/`;
  if (folder.replace(/\/+/g, "") === "") {
    throw new PipelineError("internal_error", { detail: "refusing to delete under an empty prefix" });
  }
  return folder;
}

/**
 * Pages by hand: given a `maxResults`, `getFiles` returns one page (it switches auto-pagination off).
 * The page token is positional (by name), so deleting what earlier pages listed shifts nothing.
 */
async function* listPages(bucket: Bucket, prefix: string): AsyncGenerator<StorageFile[]> {
  let pageToken: string | undefined;
  do {
    let files: StorageFile[];
    let nextQuery: { pageToken?: string } | null;
    try {
      [files, nextQuery] = await bucket.getFiles({ prefix, maxResults: LIST_PAGE_SIZE, autoPaginate: false, ...(pageToken === undefined ? {} : { pageToken }) });
    } catch (error) {
      throw storageError("list", error);
    }
    yield files;
    pageToken = nextQuery?.pageToken;
  } while (pageToken !== undefined);
}

/** Deletes the listed object in whatever generation it now has; false when it vanished. */
async function deleteCurrent(bucket: Bucket, listed: StorageFile): Promise<boolean> {
  let generation = generationOf(listed.metadata.generation);
  for (let attempt = 0; attempt < REPLACED_ATTEMPTS; attempt++) {
    const outcome = generation === undefined ? "replaced" : await deleteGeneration(listed, generation);
    if (outcome !== "replaced") return outcome === "deleted";
    generation = await currentGeneration(bucket.file(listed.name));
    if (generation === undefined) return false;
  }
  throw new PipelineError("internal_error", { detail: `an object kept being replaced during the sweep (${REPLACED_ATTEMPTS} attempts)` });
}

/**
 * Always conditional: the SDK retries a delete (408/429/5xx/connection errors, 3 times with
 * backoff) only when it carries ifGenerationMatch, and an unconditional one switches retries off on
 * the shared client while it runs (File#delete in @google-cloud/storage 7). Those retries are a
 * bonus, not relied on: after a `save()` without a precondition anywhere in the process they stay
 * off (File#save), so a transient error surfacing here may be the first attempt's — callers retry.
 */
async function deleteGeneration(file: StorageFile, generation: string): Promise<DeleteOutcome> {
  try {
    await file.delete({ ifGenerationMatch: generation });
    return "deleted";
  } catch (error) {
    const status = httpStatusOf(error);
    if (status === 404) return "missing";
    if (status === 412) return "replaced";
    throw storageError("delete", error);
  }
}

/** The live generation, or undefined when nothing is there any more. */
async function currentGeneration(file: StorageFile): Promise<string | undefined> {
  try {
    const [metadata] = await file.getMetadata();
    return generationOf(metadata.generation);
  } catch (error) {
    if (httpStatusOf(error) === 404) return undefined;
    throw storageError("read", error);
  }
}

function generationOf(value: unknown): string | undefined {
  const text = typeof value === "number" || typeof value === "string" ? String(value) : "";
  return /^[1-9]\d*$/.test(text) ? text : undefined;
}

function httpStatusOf(error: unknown): number | undefined {
  const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
  return typeof code === "number" ? code : undefined;
}

/** A Node connection error code (ECONNRESET, ETIMEDOUT, …): no HTTP answer came. */
function networkCodeOf(error: unknown): string | undefined {
  const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
  return typeof code === "string" && /^E[A-Z_]+$/.test(code) ? code : undefined;
}

/**
 * Cloud Storage is not an external provider, but it is a service reached over the network, and when
 * it answers 408/429/5xx or cannot be reached the failure is transient: "provider_unavailable" reads
 * right for that (try again later) and is what callers retry on; the SDK has already retried it.
 * Anything else (403: the runtime service account lacks a role; 400; a missing bucket) is our
 * misconfiguration or bug: "internal_error".
 * The SDK's message is left out, and the error is not attached as `cause`: Cloud Storage's messages
 * name the object ("No such object: bucket/users/…"), and object names can identify a patient.
 */
function storageError(operation: "list" | "delete" | "read", error: unknown): PipelineError {
  const status = httpStatusOf(error);
  const networkCode = status === undefined ? networkCodeOf(error) : undefined;
  const transient = status === undefined ? networkCode !== undefined : status === 408 || status === 429 || status >= 500;
  const answer = status !== undefined ? `HTTP ${status}` : (networkCode ?? (error instanceof Error ? error.name : "unknown error"));
  return new PipelineError(transient ? "provider_unavailable" : "internal_error", {
    detail: `Cloud Storage ${operation} failed: ${answer}`,
    ...(status === undefined ? {} : { httpStatus: status }),
  });
}
