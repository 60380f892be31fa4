// A loopback HTTP server that answers with whatever a test scripts — an HTML error page, a body cut
// off mid-JSON, a megabyte of garbage, a well-formed answer with fields nobody asked for — so the
// real provider adapters (and the real SDKs under them) can be pointed at answers the fakes, which
// always speak valid JSON, never give.

import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  /** Sent as is (a string is sent as UTF-8). */
  body: string | Buffer;
}

export interface HostileRequest {
  method: string;
  path: string;
  body: string;
}

export interface HostileServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** Every request received, in order. */
  requests: HostileRequest[];
  /** The next requests get these answers, in order; after the last, every request gets the last. */
  script(...answers: (ScriptedAnswer | ((request: HostileRequest) => ScriptedAnswer))[]): void;
  close(): Promise<void>;
}

export async function startHostileServer(): Promise<HostileServer> {
  let answers: (ScriptedAnswer | ((request: HostileRequest) => ScriptedAnswer))[] = [];
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request: HostileRequest = { method: req.method ?? "GET", path: req.url ?? "/", body: Buffer.concat(chunks).toString("utf8") };
      requests.push(request);
      const next = answers.length > 1 ? answers.shift() : answers[0];
      const answer = typeof next === "function" ? next(request) : next;
      if (!answer) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("no answer scripted");
        return;
      }
      const body = typeof answer.body === "string" ? Buffer.from(answer.body, "utf8") : answer.body;
      res.writeHead(answer.status, { "content-length": String(body.length), ...answer.headers });
      res.end(body);
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    script(...next) {
      answers = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** An error page as a proxy, a load balancer or a captive portal sends it. */
export function htmlPage(title: string, padding = 0): string {
  return `<!DOCTYPE html><html><head><title>${title}</title></head><body><h1>${title}</h1>${"<p>.</p>".repeat(padding)}</body></html>`;
}
