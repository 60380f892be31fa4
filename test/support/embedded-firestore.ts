// The Firestore the local runtime talks to: @firestore-emulator/server in this process, or the
// one FIRESTORE_EMULATOR_HOST already names (e.g. under `firebase emulators:exec`).

import { createRequire } from "node:module";
import net from "node:net";
import { countFirestoreOps } from "./firestore-ops.js";
import type { FirestoreOp, FirestoreOpCounter } from "./firestore-ops.js";

export interface FirestoreEndpoint {
  host: string;
  embedded: boolean;
  /** Deletes all data; only possible for the embedded server (it lives in this process). */
  clear(): void;
  /** Counts the reads and writes the server serves from now on (embedded server only). */
  countOps(onOp?: (op: FirestoreOp) => void): FirestoreOpCounter;
  stop(): Promise<void>;
}

interface EmbeddedServer {
  start(port: number): Promise<void>;
  stop(): void;
  state: { clear(): void } & Parameters<typeof countFirestoreOps>[0];
}

// Its ESM build does not resolve under vitest; the CommonJS build does.
const require = createRequire(import.meta.url);

export async function startFirestore(options: { forceEmbedded?: boolean } = {}): Promise<FirestoreEndpoint> {
  const existing = process.env.FIRESTORE_EMULATOR_HOST;
  if (existing && !options.forceEmbedded) {
    return {
      host: existing,
      embedded: false,
      clear: () => {
        throw new Error("cannot clear an external Firestore emulator from here");
      },
      countOps: () => {
        throw new Error("cannot count the operations of an external Firestore emulator from here");
      },
      stop: () => Promise.resolve(),
    };
  }
  const { FirestoreServer } = require("@firestore-emulator/server") as { FirestoreServer: new () => EmbeddedServer };
  const server = new FirestoreServer();
  const port = await freePort();
  await server.start(port);
  return {
    host: `127.0.0.1:${port}`,
    embedded: true,
    clear: () => server.state.clear(),
    countOps: (onOp) => countFirestoreOps(server.state, onOp),
    stop: () => Promise.resolve(server.stop()),
  };
}

/** Ports this process has handed out: the OS may offer a just-released port again. */
const portsHandedOut = new Set<number>();

/**
 * The server binds 0.0.0.0 and does not report its port: pick a free one first. Never the same
 * port twice in one process (several servers start at once, each between probe and bind).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await probeFreePort();
    if (portsHandedOut.has(port)) continue;
    portsHandedOut.add(port);
    return port;
  }
}

function probeFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * For a test file that talks to Firestore directly (no local runtime): an in-process server for
 * the whole file, emptied before each test. clear() needs the in-process server, even when an
 * external emulator is configured.
 */
export function useEmbeddedFirestore(hooks: {
  beforeAll(fn: () => Promise<void>): void;
  afterAll(fn: () => Promise<void>): void;
  beforeEach(fn: () => void): void;
}): void {
  let firestore: FirestoreEndpoint | undefined;
  hooks.beforeAll(async () => {
    firestore = await startFirestore({ forceEmbedded: true });
    process.env.FIRESTORE_EMULATOR_HOST = firestore.host;
  });
  hooks.afterAll(async () => {
    await firestore?.stop();
  });
  hooks.beforeEach(() => firestore?.clear());
}
