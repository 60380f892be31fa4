// Serves an `onRequest` function over real HTTP the way the Cloud Functions runtime (Functions Framework) does.

import http from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { NextFunction, Request, Response } from "express";
import type { Request as FunctionsRequest } from "firebase-functions/v2/https";

/** What `onRequest` returns, as far as serving it is concerned. */
export type HttpFunction = (req: FunctionsRequest, res: Response) => void | Promise<void>;

export interface ServedFunction {
  /** `http://127.0.0.1:PORT`; the function sees paths below it, as under `https://…/api`. */
  baseUrl: string;
  close(): Promise<void>;
}

// Well above any limit a function sets for itself, so the function's own limit is what a test
// exercises (the platform's is 32 MB).
const PLATFORM_BODY_LIMIT = "10mb";

/** Keeps the bytes as received, as the Functions Framework does, so `req.rawBody` is a Buffer. */
function saveRawBody(req: Request, _res: Response, buffer: Buffer): void {
  (req as Request & { rawBody?: Buffer }).rawBody = buffer;
}

export async function serveHttpFunction(handler: HttpFunction): Promise<ServedFunction> {
  const app = express();
  app.disable("x-powered-by");
  // The Functions Framework's parser chain: CloudEvents JSON, JSON, text, url-encoded, then raw for
  // every other type (first match wins); each keeps the raw bytes.
  const common = { limit: PLATFORM_BODY_LIMIT, verify: saveRawBody };
  app.use(express.json({ ...common, type: "application/cloudevents+json" }));
  app.use(express.json(common));
  app.use(express.text(common));
  app.use(express.urlencoded({ ...common, extended: true }));
  app.use(express.raw({ ...common, type: "*/*" }));
  app.use((req: Request, res: Response, next: NextFunction) => {
    Promise.resolve(handler(req as FunctionsRequest, res)).catch(next);
  });
  // A body the platform cannot parse is answered before the function runs; never with a stack.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof error === "object" && error !== null && "status" in error ? Number(error.status) : 500;
    if (!res.headersSent) res.status(Number.isInteger(status) && status >= 400 ? status : 500).type("text/plain").send("Error");
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(0, "127.0.0.1", (error?: Error) => (error ? reject(error) : resolve(listening)));
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // fetch keeps connections alive; without this close() waits for them to time out.
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * One request with node's own HTTP client: the path goes out exactly as given (fetch, a WHATWG
 * URL client, would turn `/visits/%2E%2E/retry` into `/retry`), and a GET may carry a body.
 */
export function sendRaw(
  baseUrl: string,
  request: { method: string; path: string; headers?: Record<string, string>; body?: Buffer },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const { method, path, headers = {}, body } = request;
    const outgoing = http.request({ hostname, port, method, path, headers, agent: false }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => {
        const received = new Headers();
        for (const [name, value] of Object.entries(incoming.headers)) {
          if (value !== undefined) received.set(name, Array.isArray(value) ? value.join(", ") : value);
        }
        resolve({ status: incoming.statusCode ?? 0, headers: received, text: Buffer.concat(chunks).toString("utf8") });
      });
      incoming.on("error", reject);
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

/** One real ID token per user for a whole test file (revocation tests use users of their own). */
export function tokenCache(issue: (uid: string) => Promise<string>): (uid: string) => Promise<string> {
  const tokens = new Map<string, Promise<string>>();
  return (uid) => {
    let token = tokens.get(uid);
    if (!token) {
      token = issue(uid);
      tokens.set(uid, token);
    }
    return token;
  };
}
