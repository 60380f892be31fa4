// Counts the document reads and writes the embedded Firestore serves, as Firestore bills them:
// a read per document a get returns (missing ones included), a read per document a query returns
// (at least one per query; an aggregation one per 1,000 entries), a write per document a commit writes or
// deletes. Counted inside the server, so every client path (transactions, batches, getAll) is seen.

export interface FirestoreOps {
  reads: number;
  writes: number;
  queries: number;
}

export interface FirestoreOpCounter {
  /** What was counted since the counter was made (or last reset). */
  snapshot(): FirestoreOps;
  reset(): void;
  /** Stops counting until resume() (the measurer's own reads between phases). */
  pause(): void;
  resume(): void;
  /** Puts the server's methods back. */
  stop(): void;
}

/** One counted operation: what it was and the document (or query parent) it touched. */
export interface FirestoreOp {
  kind: "read" | "query" | "write";
  path: string;
  /** Billed reads (a query's results) or 1. */
  count: number;
}

interface CountableState {
  getDocument(path: string): unknown;
  v1Query(parent: string, query: unknown): unknown[];
  writeV1Document(date: Date, write: unknown): unknown;
}

const AGGREGATION_ENTRIES_PER_READ = 1000;

export function countFirestoreOps(state: CountableState, onOp?: (op: FirestoreOp) => void): FirestoreOpCounter {
  const ops: FirestoreOps = { reads: 0, writes: 0, queries: 0 };
  // The server's methods live on its prototype: the counting ones shadow them on the instance.
  const original = {
    getDocument: state.getDocument.bind(state),
    v1Query: state.v1Query.bind(state),
    writeV1Document: state.writeV1Document.bind(state),
  };
  // The server's own lookups while it writes or queries are not reads a client made.
  let inside = 0;
  let paused = false;
  const within = <T>(run: () => T): T => {
    inside++;
    try {
      return run();
    } finally {
      inside--;
    }
  };
  state.getDocument = (path) => {
    if (inside === 0 && !paused) {
      ops.reads++;
      onOp?.({ kind: "read", path: shortPath(path), count: 1 });
    }
    return within(() => original.getDocument(path));
  };
  state.v1Query = (parent, query) => {
    const results = within(() => original.v1Query(parent, query));
    if (inside === 0 && !paused) {
      // An aggregation (count, sum) is billed one read per 1,000 index entries it matched, not
      // per result; the server runs it through the same query method, called from its own handler.
      const aggregation = /RunAggregationQuery/.test(new Error().stack ?? "");
      const count = Math.max(1, aggregation ? Math.ceil(results.length / AGGREGATION_ENTRIES_PER_READ) : results.length);
      ops.queries++;
      ops.reads += count;
      onOp?.({ kind: "query", path: `${shortPath(parent)} ${JSON.stringify(query).slice(0, 160)}`, count });
    }
    return results;
  };
  state.writeV1Document = (date, write) => {
    if (inside === 0 && !paused) {
      ops.writes++;
      onOp?.({ kind: "write", path: shortPath(writtenPath(write)), count: 1 });
    }
    return within(() => original.writeV1Document(date, write));
  };
  return {
    snapshot: () => ({ ...ops }),
    reset() {
      ops.reads = 0;
      ops.writes = 0;
      ops.queries = 0;
    },
    pause: () => (paused = true),
    resume: () => (paused = false),
    stop() {
      const shadowed = state as Partial<CountableState>;
      delete shadowed.getDocument;
      delete shadowed.v1Query;
      delete shadowed.writeV1Document;
    },
  };
}

/** `projects/p/databases/d/documents/visits/v` → `visits/v`. */
function shortPath(path: string): string {
  return path.replace(/^projects\/[^/]+\/databases\/[^/]+\/documents\/?/, "");
}

function writtenPath(write: unknown): string {
  const w = write as { delete?: string; update?: { name?: string }; transform?: { document?: string } };
  return w.delete || w.update?.name || w.transform?.document || "?";
}
