// Fake Cloud Storage JSON API v1 on loopback, for @google-cloud/storage via STORAGE_EMULATOR_HOST: object metadata, listing with paging, conditional delete, download, media/multipart/resumable upload, faults.
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FaultKind } from "./faults.js";
import { delayUnlessClosed, recordRequest, startLoopbackServer } from "./http.js";
import type { LoopbackServer, RecordedRequest } from "./http.js";

/*
 * What @google-cloud/storage 7.22 sends when STORAGE_EMULATOR_HOST is set (read in its source and
 * seen on the wire):
 * - STORAGE_EMULATOR_HOST must carry the scheme (`http://127.0.0.1:PORT`, as firebase-admin and the
 *   Firebase emulator suite set it). Without one the SDK assumes https for uploads and signed URLs and
 *   JSON API calls fail with "Only HTTP(S) protocols are supported" — after its ~14 s of retries.
 * - The variable is used verbatim as the JSON API base: calls go to `/b/{bucket}/o…`, without the
 *   `/storage/v1` the real endpoint has; uploads go to `/upload/storage/v1/b/{bucket}/o`. This fake
 *   (like the Firebase Storage emulator) serves the JSON API with and without `/storage/v1`.
 * - Object names are one path segment, encodeURIComponent'ed (`users%2Fu%2Fvisits%2F…`).
 * - No Authorization header: the SDK skips auth for a custom endpoint.
 * - `file.save()` is a resumable upload (POST `uploadType=resumable`, then one PUT with
 *   `Content-Range: bytes 0-*\/*`); with `resumable: false` a `multipart/related` POST. Either way it
 *   compares the answer's `crc32c`/`md5Hash` with the bytes it sent, and deletes the object
 *   (unconditionally) when they differ — so this fake computes both.
 * - Listing sends `prefix`, `maxResults`, `pageToken` only. A `maxResults` switches the SDK's
 *   auto-pagination off (@google-cloud/paginator): `getFiles` then returns one page, so callers that
 *   want everything follow `nextQuery` themselves.
 */

export type StorageRoute = "get" | "download" | "list" | "delete" | "upload";
export type StorageFaultRoute = StorageRoute | "any";

/**
 * A misbehaviour: an error answer (GCS-shaped JSON error unless `body` is given), a reset
 * connection, or a hang (forever, or `ms` then a normal answer). `afterCommit` (status, reset):
 * the operation took effect, the answer is lost.
 */
export type StorageFault = Extract<FaultKind, { kind: "status" | "reset" | "hang" }>;

export interface InjectedStorageFault {
  route: StorageRoute;
  kind: StorageFault["kind"];
  at: number;
}

export interface ObjectInfo {
  bucket: string;
  name: string;
  generation: string;
  /** The size the metadata reports (may exceed the stored body, see `put`). */
  size: string;
  contentType: string | undefined;
  timeCreated: string;
}

export interface PutOptions {
  contentType?: string | undefined;
  timeCreated?: Date | string;
  /** Store with this generation instead of a new one. Putting the live generation again changes nothing. */
  generation?: string;
  /** The `size` the metadata reports, when a test wants a big object without a big buffer. */
  reportedSize?: number | string;
  /** Custom metadata (`metadata` in the object resource). */
  metadata?: Record<string, string>;
}

export interface FakeCloudStorageOptions {
  /** Most items one listing page holds, whatever `maxResults` asks (the real API: 1000). */
  listPageLimit?: number;
  now?: () => number;
}

interface StoredObject {
  bucket: string;
  name: string;
  generation: bigint;
  metageneration: number;
  contentType: string | undefined;
  bytes: Buffer;
  reportedSize: string;
  md5Hash: string;
  crc32c: string;
  timeCreated: string;
  metadata: Record<string, string> | undefined;
}

interface UploadSession {
  bucket: string;
  name: string;
  contentType: string | undefined;
  metadata: Record<string, string> | undefined;
  preconditions: URLSearchParams;
  chunks: Buffer[];
  received: number;
  finished: StoredObject | null;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** JSON for objects, raw bytes for a Buffer, nothing when undefined. */
  body?: unknown;
}

type Route =
  | { name: "bucket"; bucket: string }
  | { name: "list"; bucket: string }
  | { name: "object"; bucket: string; object: string }
  | { name: "upload"; bucket: string }
  | { name: "resumable"; uploadId: string };

const API_PAGE_LIMIT = 1000;
/** Uploads above this are refused with 413 (the fake keeps everything in memory). */
export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;

export class FakeCloudStorage {
  readonly requests: RecordedRequest[] = [];
  readonly faults: StorageFaults;
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  private readonly sessions = new Map<string, UploadSession>();
  private lastGeneration: bigint;
  private deletes = 0;
  private listPageLimit: number;
  private readonly now: () => number;

  private constructor(
    private readonly server: LoopbackServer,
    private readonly options: FakeCloudStorageOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.lastGeneration = BigInt(this.now()) * 1000n;
    this.listPageLimit = options.listPageLimit ?? API_PAGE_LIMIT;
    this.faults = new StorageFaults(this.now);
  }

  static async start(options: FakeCloudStorageOptions = {}): Promise<FakeCloudStorage> {
    let fake: FakeCloudStorage | undefined;
    const server = await startLoopbackServer((req, res) => {
      if (fake === undefined) throw new Error("request before the fake finished starting");
      return fake.handle(req, res);
    });
    fake = new FakeCloudStorage(server, options);
    return fake;
  }

  /** http://127.0.0.1:PORT */
  get origin(): string {
    return this.server.origin;
  }

  /** The value for STORAGE_EMULATOR_HOST: the origin, scheme included (see the notes above). */
  get emulatorHost(): string {
    return this.server.origin;
  }

  /** Stores an object directly (no HTTP, no faults), as a finished upload would. */
  put(bucket: string, name: string, bytes: Buffer | Uint8Array | string, options: PutOptions = {}): { generation: string } {
    const existing = this.bucket(bucket).get(name);
    if (options.generation !== undefined) {
      const generation = parseGeneration(options.generation);
      if (generation === undefined) throw new Error(`not a generation: ${options.generation}`);
      if (existing?.generation === generation) return { generation: String(generation) };
      if (generation > this.lastGeneration) this.lastGeneration = generation;
      this.store(bucket, name, toBuffer(bytes), { ...options, generation: String(generation) });
      return { generation: String(generation) };
    }
    return { generation: String(this.store(bucket, name, toBuffer(bytes), options).generation) };
  }

  /** What exists, by bucket then name (one bucket, or all). */
  objects(bucket?: string): ObjectInfo[] {
    const buckets = bucket === undefined ? [...this.buckets.keys()].sort() : [bucket];
    return buckets.flatMap((name) => sortedObjects(this.buckets.get(name)).map(info));
  }

  /** One object's metadata and stored bytes, if it exists. */
  read(bucket: string, name: string): (ObjectInfo & { bytes: Buffer }) | undefined {
    const object = this.buckets.get(bucket)?.get(name);
    return object === undefined ? undefined : { ...info(object), bytes: object.bytes };
  }

  /** DELETE requests that removed an object. */
  deletedCount(): number {
    return this.deletes;
  }

  /** Applies from the next listing request on; `reset()` restores the start value. */
  setListPageLimit(limit: number): void {
    this.listPageLimit = Math.max(1, Math.trunc(limit));
  }

  reset(): void {
    this.buckets.clear();
    this.sessions.clear();
    this.requests.length = 0;
    this.deletes = 0;
    this.listPageLimit = this.options.listPageLimit ?? API_PAGE_LIMIT;
    this.faults.clear();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private bucket(name: string): Map<string, StoredObject> {
    let objects = this.buckets.get(name);
    if (objects === undefined) {
      objects = new Map();
      this.buckets.set(name, objects);
    }
    return objects;
  }

  private nextGeneration(): bigint {
    const clock = BigInt(this.now()) * 1000n;
    this.lastGeneration = clock > this.lastGeneration ? clock : this.lastGeneration + 1n;
    return this.lastGeneration;
  }

  private store(bucket: string, name: string, bytes: Buffer, options: PutOptions): StoredObject {
    const generation = options.generation === undefined ? this.nextGeneration() : BigInt(options.generation);
    const timeCreated = options.timeCreated ?? new Date(this.now());
    const object: StoredObject = {
      bucket,
      name,
      generation,
      metageneration: 1,
      contentType: options.contentType,
      bytes,
      reportedSize: String(options.reportedSize ?? bytes.length),
      ...hashesOf(bytes),
      timeCreated: typeof timeCreated === "string" ? timeCreated : timeCreated.toISOString(),
      metadata: options.metadata,
    };
    this.bucket(bucket).set(name, object);
    return object;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readRawBody(req);
    this.requests.push(recordRequest(req, { kind: "none" }, this.now()));
    const url = new URL(req.url ?? "/", this.origin);
    const method = req.method ?? "GET";
    const route = routeOf(rawPathname(req.url ?? "/"), url.searchParams);
    if (route === undefined) return send(res, gcsError(404, "Not Found", "notFound"));
    const storageRoute = storageRouteOf(route, method, url.searchParams);
    if (storageRoute === undefined) return send(res, gcsError(405, `Method ${method} not allowed here`, "methodNotAllowed"));
    if (body === "tooLarge") return send(res, gcsError(413, "Payload Too Large", "uploadTooLarge"));

    const fault = this.faults.draw(storageRoute);
    const afterCommit = fault !== undefined && "afterCommit" in fault && fault.afterCommit === true;
    if (fault !== undefined && !afterCommit) {
      if ((await applyFault(req, res, fault)) === "finished") return;
    }
    const answer = this.answer(route, method, url.searchParams, req, body);
    if (fault !== undefined && afterCommit) {
      if ((await applyFault(req, res, fault)) === "finished") return;
    }
    send(res, answer);
  }

  private answer(route: Route, method: string, query: URLSearchParams, req: IncomingMessage, body: Buffer): Answer {
    switch (route.name) {
      case "bucket":
        return { status: 200, body: { kind: "storage#bucket", id: route.bucket, name: route.bucket, location: "US", storageClass: "STANDARD" } };
      case "list":
        return this.list(route.bucket, query);
      case "object":
        if (method === "DELETE") return this.delete(route.bucket, route.object, query);
        return this.get(route.bucket, route.object, query, req);
      case "upload":
        return this.upload(route.bucket, query, req, body);
      case "resumable":
        return this.continueResumable(route.uploadId, req, body);
    }
  }

  private get(bucket: string, name: string, query: URLSearchParams, req: IncomingMessage): Answer {
    const object = this.buckets.get(bucket)?.get(name);
    if (object === undefined) return noSuchObject(bucket, name);
    const refusal = readRefusal(object, bucket, name, query);
    if (refusal !== undefined) return refusal;
    if (query.get("alt") !== "media") return { status: 200, body: this.resource(object) };
    return download(object, req.headers.range);
  }

  private delete(bucket: string, name: string, query: URLSearchParams): Answer {
    const objects = this.buckets.get(bucket);
    const object = objects?.get(name);
    if (object === undefined) return noSuchObject(bucket, name);
    const refusal = versionRefusal(object, bucket, name, query) ?? preconditionRefusal(object, query);
    if (refusal !== undefined) return refusal;
    objects?.delete(name);
    this.deletes += 1;
    return { status: 204 };
  }

  private list(bucket: string, query: URLSearchParams): Answer {
    for (const unsupported of ["delimiter", "matchGlob"]) {
      if (query.has(unsupported)) return gcsError(400, `the fake does not support ${unsupported}`, "invalid");
    }
    const prefix = query.get("prefix") ?? "";
    const requested = query.has("maxResults") ? Number(query.get("maxResults")) : API_PAGE_LIMIT;
    if (!Number.isInteger(requested) || requested < 0) return gcsError(400, "Invalid maxResults", "invalid");
    const limit = Math.min(requested === 0 ? API_PAGE_LIMIT : requested, API_PAGE_LIMIT, this.listPageLimit);
    const after = query.has("pageToken") ? decodePageToken(query.get("pageToken") ?? "") : null;
    if (after === undefined) return gcsError(400, "Invalid page token", "invalid");
    const startOffset = query.get("startOffset");
    const endOffset = query.get("endOffset");
    const matching = sortedObjects(this.buckets.get(bucket)).filter(
      (object) =>
        object.name.startsWith(prefix) &&
        (after === null || compareNames(object.name, after) > 0) &&
        (startOffset === null || compareNames(object.name, startOffset) >= 0) &&
        (endOffset === null || compareNames(object.name, endOffset) < 0),
    );
    const page = matching.slice(0, limit);
    const last = page.at(-1);
    return {
      status: 200,
      body: {
        kind: "storage#objects",
        // The real API leaves `items` out of an empty page.
        ...(page.length > 0 ? { items: page.map((object) => this.resource(object)) } : {}),
        ...(matching.length > page.length && last !== undefined ? { nextPageToken: encodePageToken(last.name) } : {}),
      },
    };
  }

  private upload(bucket: string, query: URLSearchParams, req: IncomingMessage, body: Buffer): Answer {
    const uploadType = query.get("uploadType");
    const contentTypeHeader = headerValue(req.headers["content-type"]);
    if (uploadType === "media") {
      const name = query.get("name");
      if (!name) return gcsError(400, "Required parameter: name", "required");
      return this.finishUpload(bucket, name, body, query, { contentType: contentTypeHeader ?? "application/octet-stream" });
    }
    if (uploadType === "multipart") {
      const parts = parseMultipart(body, contentTypeHeader);
      if (parts === undefined) return gcsError(400, "Invalid multipart request", "invalid");
      const metadata = parseJsonObject(parts.metadata);
      if (metadata === undefined) return gcsError(400, "Invalid multipart metadata", "invalid");
      const name = query.get("name") ?? stringField(metadata, "name");
      if (!name) return gcsError(400, "Required parameter: name", "required");
      return this.finishUpload(bucket, name, parts.media, query, {
        contentType: stringField(metadata, "contentType") ?? parts.mediaContentType ?? "application/octet-stream",
        metadata: stringRecord(metadata["metadata"]),
      });
    }
    if (uploadType === "resumable") {
      const metadata = body.length === 0 ? {} : parseJsonObject(body);
      if (metadata === undefined) return gcsError(400, "Invalid upload metadata", "invalid");
      const name = query.get("name") ?? stringField(metadata, "name");
      if (!name) return gcsError(400, "Required parameter: name", "required");
      const uploadId = randomUUID();
      this.sessions.set(uploadId, {
        bucket,
        name,
        contentType: stringField(metadata, "contentType") ?? headerValue(req.headers["x-upload-content-type"]),
        metadata: stringRecord(metadata["metadata"]),
        preconditions: query,
        chunks: [],
        received: 0,
        finished: null,
      });
      const location = `${this.origin}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${uploadId}`;
      return { status: 200, headers: { location } };
    }
    return gcsError(400, `Unsupported uploadType: ${uploadType ?? "(none)"}`, "invalid");
  }

  /** A PUT to a resumable session: a chunk, the whole body, or a status query (`bytes *\/…`). */
  private continueResumable(uploadId: string, req: IncomingMessage, body: Buffer): Answer {
    const session = this.sessions.get(uploadId);
    if (session === undefined) return gcsError(404, "No such upload session", "notFound");
    if (session.finished !== null) return { status: 200, body: this.resource(session.finished) };
    const range = parseContentRange(headerValue(req.headers["content-range"]));
    if (range === undefined) return gcsError(400, "Invalid Content-Range", "invalid");
    if (range.kind === "data") {
      if (range.start > session.received) return gcsError(400, "Chunk starts past the bytes received", "invalid");
      const fresh = body.subarray(Math.min(body.length, session.received - range.start));
      session.chunks.push(fresh);
      session.received += fresh.length;
    }
    const complete = range.total === null ? range.kind === "data" && range.end === null : session.received >= range.total;
    if (!complete) {
      return { status: 308, headers: session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {} };
    }
    const answer = this.finishUpload(session.bucket, session.name, Buffer.concat(session.chunks), session.preconditions, {
      contentType: session.contentType ?? headerValue(req.headers["content-type"]) ?? "application/octet-stream",
      metadata: session.metadata,
    });
    // A status query after the last chunk gets the object again, as from the real API.
    if (answer.status === 200) session.finished = this.buckets.get(session.bucket)?.get(session.name) ?? null;
    else this.sessions.delete(uploadId);
    return answer;
  }

  private finishUpload(
    bucket: string,
    name: string,
    bytes: Buffer,
    query: URLSearchParams,
    options: { contentType: string; metadata?: Record<string, string> | undefined },
  ): Answer {
    const existing = this.buckets.get(bucket)?.get(name);
    const refusal = uploadPreconditionRefusal(existing, query);
    if (refusal !== undefined) return refusal;
    const object = this.store(bucket, name, bytes, { contentType: options.contentType, metadata: options.metadata });
    return { status: 200, body: this.resource(object) };
  }

  /** The object resource, as the JSON API renders it. */
  private resource(object: StoredObject): Record<string, unknown> {
    const path = `b/${encodeURIComponent(object.bucket)}/o/${encodeURIComponent(object.name)}`;
    const generation = String(object.generation);
    return {
      kind: "storage#object",
      id: `${object.bucket}/${object.name}/${generation}`,
      selfLink: `${this.origin}/storage/v1/${path}`,
      mediaLink: `${this.origin}/download/storage/v1/${path}?generation=${generation}&alt=media`,
      name: object.name,
      bucket: object.bucket,
      generation,
      metageneration: String(object.metageneration),
      ...(object.contentType === undefined ? {} : { contentType: object.contentType }),
      storageClass: "STANDARD",
      size: object.reportedSize,
      md5Hash: object.md5Hash,
      crc32c: object.crc32c,
      etag: createHash("sha1").update(`${object.bucket}/${object.name}#${generation}`).digest("base64").slice(0, 12),
      timeCreated: object.timeCreated,
      updated: object.timeCreated,
      timeStorageClassUpdated: object.timeCreated,
      ...(object.metadata === undefined ? {} : { metadata: object.metadata }),
    };
  }
}

/** FIFO faults per route, as the provider fakes' `faults.enqueue(route, fault, times)`. */
export class StorageFaults {
  readonly injected: InjectedStorageFault[] = [];
  private queue: { route: StorageFaultRoute; fault: StorageFault; remaining: number }[] = [];

  constructor(private readonly now: () => number) {}

  /** The next `times` requests on `route` get the fault. */
  enqueue(route: StorageFaultRoute, fault: StorageFault, times = 1): void {
    if (times > 0) this.queue.push({ route, fault, remaining: times });
  }

  clear(): void {
    this.queue = [];
    this.injected.length = 0;
  }

  draw(route: StorageRoute): StorageFault | undefined {
    const index = this.queue.findIndex((entry) => entry.route === "any" || entry.route === route);
    const entry = this.queue[index];
    if (entry === undefined) return undefined;
    entry.remaining -= 1;
    if (entry.remaining === 0) this.queue.splice(index, 1);
    this.injected.push({ route, kind: entry.fault.kind, at: this.now() });
    return entry.fault;
  }
}

/** Whether the fault answered (or dropped, or is holding) the request, or only delayed it. */
async function applyFault(req: IncomingMessage, res: ServerResponse, fault: StorageFault): Promise<"finished" | "delayed"> {
  switch (fault.kind) {
    case "hang":
      if (fault.ms === undefined) return "finished"; // never answer: the socket stays open until the server closes
      await delayUnlessClosed(fault.ms, req.socket);
      return "delayed";
    case "reset":
      req.socket.destroy();
      return "finished";
    case "status": {
      const answer = fault.body === undefined ? gcsError(fault.status, statusMessage(fault.status), reasonFor(fault.status)) : { status: fault.status, body: fault.body };
      send(res, { ...answer, headers: { ...answer.headers, ...fault.headers } });
      return "finished";
    }
  }
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.headersSent || res.destroyed) return;
  const headers = { ...answer.headers };
  if (answer.body === undefined) {
    res.writeHead(answer.status, headers);
    res.end();
  } else if (Buffer.isBuffer(answer.body)) {
    res.writeHead(answer.status, { "content-length": String(answer.body.length), ...headers });
    res.end(answer.body);
  } else {
    res.writeHead(answer.status, { "content-type": "application/json; charset=UTF-8", ...headers });
    res.end(JSON.stringify(answer.body));
  }
}

/** The JSON API's error body. Real 404s name the object ("No such object: bucket/name"), so this one does too. */
function gcsError(status: number, message: string, reason: string): Answer {
  return { status, body: { error: { code: status, message, errors: [{ message, domain: "global", reason }] } } };
}

function noSuchObject(bucket: string, name: string): Answer {
  return gcsError(404, `No such object: ${bucket}/${name}`, "notFound");
}

function conditionNotMet(): Answer {
  return gcsError(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet");
}

function statusMessage(status: number): string {
  if (status === 429) return "The rate of change requests to the object is too high. Please slow down.";
  if (status === 503) return "We encountered an internal error. Please try again.";
  return `HTTP ${status}`;
}

function reasonFor(status: number): string {
  if (status === 429) return "rateLimitExceeded";
  if (status >= 500) return "backendError";
  if (status === 401) return "required";
  if (status === 403) return "forbidden";
  if (status === 404) return "notFound";
  return "invalid";
}

/** Why a metadata or media read of an existing object is refused, if it is: another version asked for, or a precondition. */
function readRefusal(object: StoredObject, bucket: string, name: string, query: URLSearchParams): Answer | undefined {
  const refusal = versionRefusal(object, bucket, name, query);
  if (refusal !== undefined) return refusal;
  const notMatch = parseGeneration(query.get("ifGenerationNotMatch"));
  if (notMatch !== undefined && notMatch === object.generation) return { status: 304 };
  return preconditionRefusal(object, query, { ignoreNotMatch: true });
}

/** Only the live version exists here (no object versioning): asking for another one is a 404. */
function versionRefusal(object: StoredObject, bucket: string, name: string, query: URLSearchParams): Answer | undefined {
  if (!query.has("generation")) return undefined;
  const generation = parseGeneration(query.get("generation"));
  if (generation === undefined) return gcsError(400, "Invalid argument: generation", "invalid");
  return generation === object.generation ? undefined : noSuchObject(bucket, name);
}

/** ifGenerationMatch / ifGenerationNotMatch / ifMetagenerationMatch / ifMetagenerationNotMatch on an existing object. */
function preconditionRefusal(object: StoredObject, query: URLSearchParams, options: { ignoreNotMatch?: boolean } = {}): Answer | undefined {
  for (const key of ["ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch"]) {
    if (query.has(key) && parseGeneration(query.get(key)) === undefined) return gcsError(400, `Invalid argument: ${key}`, "invalid");
  }
  const match = parseGeneration(query.get("ifGenerationMatch"));
  if (match !== undefined && match !== object.generation) return conditionNotMet();
  const notMatch = parseGeneration(query.get("ifGenerationNotMatch"));
  if (!options.ignoreNotMatch && notMatch !== undefined && notMatch === object.generation) return conditionNotMet();
  const metaMatch = parseGeneration(query.get("ifMetagenerationMatch"));
  if (metaMatch !== undefined && metaMatch !== BigInt(object.metageneration)) return conditionNotMet();
  const metaNotMatch = parseGeneration(query.get("ifMetagenerationNotMatch"));
  if (metaNotMatch !== undefined && metaNotMatch === BigInt(object.metageneration)) return conditionNotMet();
  return undefined;
}

/** Upload preconditions: `ifGenerationMatch=0` means "only if nothing is there". */
function uploadPreconditionRefusal(existing: StoredObject | undefined, query: URLSearchParams): Answer | undefined {
  if (query.has("ifGenerationMatch") && parseGeneration(query.get("ifGenerationMatch")) === undefined) {
    return gcsError(400, "Invalid argument: ifGenerationMatch", "invalid");
  }
  const match = parseGeneration(query.get("ifGenerationMatch"));
  if (match === 0n) return existing === undefined ? undefined : conditionNotMet();
  if (match !== undefined && existing?.generation !== match) return conditionNotMet();
  return existing === undefined ? undefined : preconditionRefusal(existing, query, { ignoreNotMatch: false });
}

function download(object: StoredObject, rangeHeader: string | undefined): Answer {
  const headers: Record<string, string> = {
    "content-type": object.contentType ?? "application/octet-stream",
    "x-goog-generation": String(object.generation),
    "x-goog-metageneration": String(object.metageneration),
    "x-goog-stored-content-encoding": "identity",
    "x-goog-stored-content-length": String(object.bytes.length),
    "x-goog-hash": `crc32c=${object.crc32c},md5=${object.md5Hash}`,
  };
  const range = parseRange(rangeHeader, object.bytes.length);
  if (range === undefined) return { status: 200, headers, body: object.bytes };
  if (range === "unsatisfiable") return { status: 416, headers: { "content-range": `bytes */${object.bytes.length}` } };
  return {
    status: 206,
    headers: { ...headers, "content-range": `bytes ${range.start}-${range.end}/${object.bytes.length}` },
    body: object.bytes.subarray(range.start, range.end + 1),
  };
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n`; anything else is ignored (the whole object). */
function parseRange(header: string | undefined, length: number): { start: number; end: number } | "unsatisfiable" | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? "");
  if (match === null || (match[1] === "" && match[2] === "")) return undefined;
  const [, from = "", to = ""] = match;
  if (from === "") {
    const suffix = Math.min(Number(to), length);
    return suffix === 0 ? "unsatisfiable" : { start: length - suffix, end: length - 1 };
  }
  const start = Number(from);
  if (start >= length) return "unsatisfiable";
  return { start, end: to === "" ? length - 1 : Math.min(Number(to), length - 1) };
}

type ContentRange =
  | { kind: "data"; start: number; end: number | null; total: number | null }
  | { kind: "query"; total: number | null };

/** `bytes a-b/total`, `bytes a-*\/total` (the rest of the body), `bytes *\/total` (status query); total may be `*`. No header: the whole object. */
function parseContentRange(header: string | undefined): ContentRange | undefined {
  if (header === undefined) return { kind: "data", start: 0, end: null, total: null };
  const match = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*|undefined)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, start, end, total] = match;
  const totalBytes = total === undefined || total === "*" || total === "undefined" ? null : Number(total);
  if (start === undefined) return { kind: "query", total: totalBytes };
  return { kind: "data", start: Number(start), end: end === undefined || end === "*" ? null : Number(end), total: totalBytes };
}

/** A `multipart/related` upload: JSON metadata, then the media. */
function parseMultipart(body: Buffer, contentType: string | undefined): { metadata: Buffer; media: Buffer; mediaContentType: string | undefined } | undefined {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType ?? "")?.[1];
  if (boundary === undefined) return undefined;
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: { headers: string; body: Buffer }[] = [];
  let cursor = body.indexOf(delimiter);
  while (cursor !== -1) {
    const partStart = cursor + delimiter.length;
    if (body.subarray(partStart, partStart + 2).toString() === "--") break; // closing delimiter
    const next = body.indexOf(delimiter, partStart);
    if (next === -1) return undefined;
    const part = body.subarray(partStart, next);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd === -1) return undefined;
    let content = part.subarray(headerEnd + 4);
    if (content.subarray(-2).toString() === "\r\n") content = content.subarray(0, -2);
    parts.push({ headers: part.subarray(0, headerEnd).toString("utf8"), body: content });
    cursor = next;
  }
  const [metadata, media] = parts;
  if (metadata === undefined || media === undefined) return undefined;
  const mediaContentType = /^content-type:\s*(.+)$/im.exec(media.headers)?.[1]?.trim();
  return { metadata: metadata.body, media: media.body, mediaContentType };
}

function routeOf(pathname: string, query: URLSearchParams): Route | undefined {
  const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(pathname);
  if (upload?.[1] !== undefined) {
    const uploadId = query.get("upload_id");
    return uploadId === null ? { name: "upload", bucket: decodeSegment(upload[1]) } : { name: "resumable", uploadId };
  }
  // The JSON API with (real endpoint) or without (the SDK under STORAGE_EMULATOR_HOST) its /storage/v1 prefix; mediaLink's /download/storage/v1.
  const json = /^(?:\/storage\/v1|\/download\/storage\/v1)?\/b\/([^/]+)(\/o(?:\/(.+))?)?$/.exec(pathname);
  if (json?.[1] === undefined) return undefined;
  const bucket = decodeSegment(json[1]);
  if (json[2] === undefined) return { name: "bucket", bucket };
  // A client that sends raw slashes in the object name gets the same object as one that encodes them.
  return json[3] === undefined ? { name: "list", bucket } : { name: "object", bucket, object: decodeSegment(json[3]) };
}

function storageRouteOf(route: Route, method: string, query: URLSearchParams): StorageRoute | undefined {
  switch (route.name) {
    case "bucket":
      return method === "GET" ? "get" : undefined;
    case "list":
      return method === "GET" ? "list" : undefined;
    case "object":
      if (method === "DELETE") return "delete";
      if (method === "GET") return query.get("alt") === "media" ? "download" : "get";
      return undefined;
    case "upload":
      return method === "POST" ? "upload" : undefined;
    case "resumable":
      return method === "PUT" || method === "POST" ? "upload" : undefined;
  }
}

/** The path as sent, before URL parsing could decode %2F. */
function rawPathname(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Reads the whole body; past MAX_UPLOAD_BYTES it keeps draining (so the client reads our 413) but stops buffering. */
async function readRawBody(req: IncomingMessage): Promise<Buffer | "tooLarge"> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= MAX_UPLOAD_BYTES) chunks.push(chunk);
  }
  return bytes > MAX_UPLOAD_BYTES ? "tooLarge" : Buffer.concat(chunks);
}

function parseGeneration(value: string | null | undefined): bigint | undefined {
  return value !== null && value !== undefined && /^\d+$/.test(value) ? BigInt(value) : undefined;
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(bytes.toString("utf8")) as unknown;
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function stringField(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, String(entry)]));
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function toBuffer(bytes: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes; // kept, not copied: the local runtime stores one fixture buffer many times
  return typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes);
}

/** Object names sort by their UTF-8 bytes, as the JSON API lists them. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function sortedObjects(objects: Map<string, StoredObject> | undefined): StoredObject[] {
  return [...(objects?.values() ?? [])].sort((a, b) => compareNames(a.name, b.name));
}

function info(object: StoredObject): ObjectInfo {
  return {
    bucket: object.bucket,
    name: object.name,
    generation: String(object.generation),
    size: object.reportedSize,
    contentType: object.contentType,
    timeCreated: object.timeCreated,
  };
}

/** Opaque to clients; here the last name listed, so deleting listed objects never shifts the next page. */
function encodePageToken(lastName: string): string {
  return Buffer.from(lastName, "utf8").toString("base64url");
}

function decodePageToken(token: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  return Buffer.from(token, "base64url").toString("utf8");
}

const hashCache = new WeakMap<Buffer, { md5Hash: string; crc32c: string }>();

/** Cached per buffer: the local runtime stores the same fixture buffer for every upload. */
function hashesOf(bytes: Buffer): { md5Hash: string; crc32c: string } {
  let hashes = hashCache.get(bytes);
  if (hashes === undefined) {
    hashes = { md5Hash: createHash("md5").update(bytes).digest("base64"), crc32c: crc32cBase64(bytes) };
    hashCache.set(bytes, hashes);
  }
  return hashes;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli) as the JSON API reports it: base64 of the big-endian 32-bit value. */
export function crc32cBase64(bytes: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}
