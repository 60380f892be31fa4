// Shared plumbing for the fake provider servers: loopback server, bounded JSON bodies, request log, transport faults.
import { createServer } from "node:http";
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { isAfterCommit, isTransportFault } from "./faults.js";
import type { ErrorAnswerFault, FaultKind, TransportFault } from "./faults.js";

/** Both fakes refuse bodies above this size with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface RecordedRequest {
  method: string;
  /** Path and query string, as sent. */
  path: string;
  /** Parsed JSON, the raw text when it was not JSON, undefined when empty or over the size limit. */
  body: unknown;
  headers: IncomingHttpHeaders;
  at: number;
}

export type RequestBody =
  | { kind: "none" }
  | { kind: "json"; value: unknown }
  | { kind: "invalidJson"; text: string }
  | { kind: "tooLarge"; bytes: number };

export interface JsonAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface LoopbackServer {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  close(): Promise<void>;
}

export async function startLoopbackServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<LoopbackServer> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      sendJson(res, { status: 500, body: { error: `fake server bug: ${String(error)}` } });
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return { origin: `http://127.0.0.1:${listeningPort(server)}`, close: () => closeServer(server, sockets) };
}

function listeningPort(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("fake server is not listening on TCP");
  return address.port;
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Hanging faults keep sockets open on purpose; destroying them lets close() finish and the process exit.
    for (const socket of sockets) socket.destroy();
  });
}

/** Reads the whole body; past `limitBytes` it keeps draining (so the client can read our 413) but stops buffering. */
export async function readJsonBody(req: IncomingMessage, limitBytes = MAX_BODY_BYTES): Promise<RequestBody> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= limitBytes) chunks.push(chunk);
  }
  if (bytes > limitBytes) return { kind: "tooLarge", bytes };
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return { kind: "none" };
  try {
    return { kind: "json", value: JSON.parse(text) as unknown };
  } catch {
    return { kind: "invalidJson", text };
  }
}

export function recordRequest(req: IncomingMessage, body: RequestBody, at: number): RecordedRequest {
  return {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    body: body.kind === "json" ? body.value : body.kind === "invalidJson" ? body.text : undefined,
    headers: req.headers,
    at,
  };
}

export function sendJson(res: ServerResponse, answer: JsonAnswer): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
  res.end(JSON.stringify(answer.body));
}

/**
 * Answers with `produce()` unless a transport fault intervenes: before it by default (the provider
 * rejected the request, nothing was created), after it with `afterCommit` (the work was done and
 * counted, the answer is lost). Other faults are left to `produce`. Error answers are worded by the
 * provider (`answerFor`).
 */
export async function answerThroughFault(
  req: IncomingMessage,
  res: ServerResponse,
  fault: FaultKind | undefined,
  answerFor: (fault: ErrorAnswerFault) => JsonAnswer,
  produce: () => JsonAnswer | Promise<JsonAnswer>,
): Promise<void> {
  const transportFault = fault !== undefined && isTransportFault(fault) ? fault : undefined;
  const afterCommit = transportFault !== undefined && isAfterCommit(transportFault);
  if (transportFault !== undefined && !afterCommit) {
    if ((await applyTransportFault(req, res, transportFault, answerFor)) === "finished") return;
  }
  const answer = await produce();
  if (transportFault !== undefined && afterCommit) {
    if ((await applyTransportFault(req, res, transportFault, answerFor)) === "finished") return;
  }
  sendJson(res, answer);
}

/** What applying a transport fault did: the request is finished (answered, dropped or left hanging) or only delayed. */
type FaultEffect = "finished" | "delayed";

/** A `hang` with `ms` only delays; the caller then answers normally. */
async function applyTransportFault(
  req: IncomingMessage,
  res: ServerResponse,
  fault: TransportFault,
  answerFor: (fault: ErrorAnswerFault) => JsonAnswer,
): Promise<FaultEffect> {
  switch (fault.kind) {
    case "hang":
      if (fault.ms === undefined) return "finished"; // never answer: the socket stays open until the server closes
      await delayUnlessClosed(fault.ms, req.socket);
      return "delayed";
    case "reset":
      req.socket.destroy();
      return "finished";
    case "malformed":
      sendMalformed(res);
      return "finished";
    default:
      sendJson(res, answerFor(fault));
      return "finished";
  }
}

/** A 200 that claims JSON but is cut off, like a proxy dropping the tail of a response. */
function sendMalformed(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "application/json" });
  res.end('{"id": "truncat');
}

/** Waits `ms`, or less if the connection goes away first; the timer never keeps the process alive. */
export function delayUnlessClosed(ms: number, socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ms);
    timer.unref();
    socket.once("close", finish);
    function finish(): void {
      clearTimeout(timer);
      socket.off("close", finish);
      resolve();
    }
  });
}
