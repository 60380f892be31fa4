// A live view of one visit: snapshots interpreted by describeVisit, re-checked for "stuck", a missing document as a state.

import { isValidVisitId } from "./contract.js";
import { describeVisit, stuckCheckAt } from "./describe-visit.js";
import type { DescribeVisitOptions, VisitView } from "./describe-visit.js";
import { errorCode } from "./error-code.js";
import type { Scheduler } from "./scheduler.js";
import { parseVisitDocument } from "./visit-document.js";
import type { VisitDocument } from "./visit-document.js";

/** The slice of Firestore watching needs; firebase-ports.ts implements it with `onSnapshot`. */
export interface VisitDocumentSource {
  /**
   * Listens to visits/{visitId}: `onData` gets the document's data, or null when it does not
   * exist; after `onError` the listener has ended. Returns a function that stops listening.
   */
  listen(visitId: string, onData: (data: unknown) => void, onError: (error: unknown) => void): () => void;
}

export interface WatchDeps {
  source: VisitDocumentSource;
  scheduler: Scheduler;
}

export interface WatchVisitError {
  /** `unreadable_visit` (a document that does not match the contract), `invalid_visit_id`, or Firestore's code. */
  code: string;
  message: string;
}

export interface WatchVisitOptions {
  stuckAfterMs?: DescribeVisitOptions["stuckAfterMs"];
  /** Told when the document cannot be read; except for `unreadable_visit`, watching has stopped. */
  onError?: (error: WatchVisitError) => void;
}

// firestore.rules let a user read a visit whose userId is theirs; a visit that does not exist yet
// has no userId, so listening to it is denied rather than answered with "missing". Right after an
// upload that is the normal case: listen again until the upload trigger has created the document.
const RELISTEN_FIRST_DELAY_MS = 1_000;
const RELISTEN_MAX_DELAY_MS = 10_000;

/** Calls `onChange` with the visit's view whenever it changes. Returns a function that stops watching. */
export function watchVisit(
  deps: WatchDeps,
  visitId: string,
  onChange: (view: VisitView) => void,
  options: WatchVisitOptions = {},
): () => void {
  const { source, scheduler } = deps;
  const describeOptions: DescribeVisitOptions = {
    ...(options.stuckAfterMs ? { stuckAfterMs: options.stuckAfterMs } : {}),
    waitingSince: new Date(scheduler.now()),
  };
  let doc: VisitDocument | null = null;
  let seenDocument = false;
  let stopped = false;
  let lastViewKey: string | null = null;
  let relistenDelayMs = RELISTEN_FIRST_DELAY_MS;
  let stopListening: (() => void) | null = null;
  let cancelStuckCheck: (() => void) | null = null;
  let cancelRelisten: (() => void) | null = null;

  const publish = () => {
    const view = describeVisit(doc, new Date(scheduler.now()), describeOptions);
    // Snapshots also arrive for fields the view does not show (poll counters, leases).
    const key = viewKey(view);
    if (key !== lastViewKey) {
      lastViewKey = key;
      onChange(view);
    }
    scheduleStuckCheck();
  };

  // No snapshot arrives while a visit is stuck, so the warning needs a timer of its own.
  const scheduleStuckCheck = () => {
    cancelStuckCheck?.();
    cancelStuckCheck = null;
    const stuckAt = stuckCheckAt(doc, describeOptions);
    const delayMs = stuckAt === null ? 0 : stuckAt.getTime() - scheduler.now();
    if (delayMs > 0) cancelStuckCheck = scheduler.schedule(publish, delayMs);
  };

  const onData = (data: unknown) => {
    if (stopped) return;
    if (data === null) {
      doc = null;
      publish();
      return;
    }
    const parsed = parseVisitDocument(data);
    if (!parsed.ok) {
      options.onError?.({ code: "unreadable_visit", message: parsed.message });
      return;
    }
    seenDocument = true;
    doc = parsed.visit;
    publish();
  };

  const onError = (error: unknown) => {
    if (stopped) return;
    stopListening = null;
    if (errorCode(error) === "permission-denied" && !seenDocument) {
      publish();
      cancelRelisten = scheduler.schedule(() => {
        cancelRelisten = null;
        listen();
      }, relistenDelayMs);
      relistenDelayMs = Math.min(relistenDelayMs * 2, RELISTEN_MAX_DELAY_MS);
      return;
    }
    stop();
    const message = error instanceof Error ? error.message : String(error);
    options.onError?.({ code: errorCode(error) || "watch_failed", message: `Watching visit ${visitId} stopped: ${message}` });
  };

  const listen = () => {
    if (stopped) return;
    const unsubscribe = source.listen(visitId, onData, onError);
    // A source may answer synchronously, and the answer may have stopped the watch already.
    if (stopped) unsubscribe();
    else stopListening = unsubscribe;
  };

  const stop = () => {
    stopped = true;
    stopListening?.();
    cancelStuckCheck?.();
    cancelRelisten?.();
    stopListening = cancelStuckCheck = cancelRelisten = null;
  };

  if (!isValidVisitId(visitId)) {
    // Firestore would throw synchronously on an id that is not a single path segment.
    options.onError?.({ code: "invalid_visit_id", message: `"${visitId}" is not a visit id.` });
    return stop;
  }
  listen();
  return stop;
}

/** Everything the view shows except the ever-growing stuckForMs. */
function viewKey(view: VisitView): string {
  const { stuckForMs: _ignored, ...shown } = view;
  return JSON.stringify(shown);
}
