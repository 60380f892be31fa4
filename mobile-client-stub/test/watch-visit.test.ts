import { beforeEach, describe, expect, it } from "vitest";
import type { VisitView } from "../src/describe-visit.js";
import { watchVisit } from "../src/watch-visit.js";
import type { VisitDocumentSource, WatchVisitError } from "../src/watch-visit.js";
import { FakeScheduler } from "./fakes.js";

const START = Date.parse("2026-03-01T12:00:00Z");
const MINUTE = 60_000;

interface Listener {
  visitId: string;
  onData: (data: unknown) => void;
  onError: (error: unknown) => void;
  active: boolean;
}

/** Stands in for onSnapshot: the test pushes snapshots and errors to the live listener. */
class FakeSource implements VisitDocumentSource {
  readonly listeners: Listener[] = [];

  listen(visitId: string, onData: (data: unknown) => void, onError: (error: unknown) => void): () => void {
    const listener = { visitId, onData, onError, active: true };
    this.listeners.push(listener);
    return () => {
      listener.active = false;
    };
  }

  get active(): Listener[] {
    return this.listeners.filter((listener) => listener.active);
  }

  snapshot(data: unknown): void {
    for (const listener of this.active) listener.onData(data);
  }

  /** Firestore ends a listener when it reports an error. */
  fail(code: string): void {
    for (const listener of this.active) {
      listener.active = false;
      listener.onError(Object.assign(new Error(`${code} from Firestore`), { code }));
    }
  }
}

const at = (ms: number) => ({ toMillis: () => ms });

describe("watchVisit", () => {
  let source: FakeSource;
  let scheduler: FakeScheduler;
  let views: VisitView[];
  let errors: WatchVisitError[];
  const watch = (visitId = "visit1", stuckAfterMs?: { pending?: number }) =>
    watchVisit({ source, scheduler }, visitId, (view) => views.push(view), {
      onError: (error) => errors.push(error),
      ...(stuckAfterMs ? { stuckAfterMs } : {}),
    });

  beforeEach(() => {
    source = new FakeSource();
    scheduler = new FakeScheduler(START);
    views = [];
    errors = [];
  });

  it("listens to the visit and reports each status as it changes", () => {
    watch();
    expect(source.active.map((listener) => listener.visitId)).toEqual(["visit1"]);
    source.snapshot(null);
    source.snapshot({ status: "pending", pendingAt: at(START) });
    source.snapshot({ status: "transcribing", transcribingAt: at(START) });
    source.snapshot({ status: "summarizing", summarizingAt: at(START), transcript: { utteranceCount: 2 } });
    source.snapshot({ status: "completed", completedAt: at(START) });
    expect(views.map((view) => view.status)).toEqual(["waiting_for_upload_processing", "pending", "transcribing", "summarizing", "completed"]);
    expect(views.at(-1)).toMatchObject({ isTerminal: true, progressStep: 4, transcriptAvailable: true });
    expect(errors).toEqual([]);
  });

  it("stays quiet when a snapshot changes nothing the view shows (poll counters, leases)", () => {
    watch();
    source.snapshot({ status: "transcribing", transcribingAt: at(START), checks: 1 });
    source.snapshot({ status: "transcribing", transcribingAt: at(START), checks: 2, updatedAt: at(START + 1000) });
    expect(views).toHaveLength(1);
  });

  it("reports a new automatic-retry error without a status change", () => {
    watch();
    source.snapshot({ status: "transcribing", transcribingAt: at(START) });
    source.snapshot({
      status: "transcribing",
      transcribingAt: at(START),
      error: { stage: "transcription", code: "provider_rate_limited", message: "Rate limited.", retryable: true },
    });
    expect(views.map((view) => view.error?.code ?? null)).toEqual([null, "provider_rate_limited"]);
  });

  it("treats a denied listen before the document exists as waiting, and listens again with backoff", () => {
    watch();
    source.fail("permission-denied");
    expect(views.map((view) => view.status)).toEqual(["waiting_for_upload_processing"]);
    expect(errors).toEqual([]);

    const relistenTimes: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      const listened = source.listeners.length;
      while (source.listeners.length === listened) scheduler.advance(100);
      relistenTimes.push(scheduler.now() - START);
      source.fail("permission-denied");
    }
    // 1 s, then doubling, at most 10 s apart.
    expect(relistenTimes).toEqual([1_000, 3_000, 7_000, 15_000, 25_000, 35_000]);
    expect(views).toHaveLength(1);

    scheduler.advance(10_000);
    source.snapshot({ status: "pending", pendingAt: at(scheduler.now()) });
    expect(views.map((view) => view.status)).toEqual(["waiting_for_upload_processing", "pending"]);
  });

  it("warns when the document has not appeared after 2 minutes", () => {
    watch();
    source.fail("permission-denied");
    scheduler.advance(2 * MINUTE);
    expect(views.some((view) => view.stuck)).toBe(false);
    scheduler.advance(1);
    expect(views.at(-1)).toMatchObject({ status: "waiting_for_upload_processing", stuck: true, stuckForMs: 2 * MINUTE + 1 });
  });

  it("stops and reports a denied listen once the document has been seen (e.g. signed out)", () => {
    watch();
    source.snapshot({ status: "pending", pendingAt: at(START) });
    source.fail("permission-denied");
    scheduler.advance(60 * MINUTE);
    expect(errors).toEqual([{ code: "permission-denied", message: "Watching visit visit1 stopped: permission-denied from Firestore" }]);
    expect(source.listeners).toHaveLength(1);
    expect(scheduler.pendingTimers).toBe(0);
  });

  it("stops and reports any other listener error", () => {
    watch();
    source.fail("unavailable");
    expect(errors).toEqual([{ code: "unavailable", message: "Watching visit visit1 stopped: unavailable from Firestore" }]);
    expect(views).toEqual([]);
    scheduler.advance(MINUTE);
    expect(source.listeners).toHaveLength(1);
  });

  it("reports an unreadable document but keeps watching", () => {
    watch();
    source.snapshot({ status: "archived" });
    source.snapshot({ status: "pending", pendingAt: at(START) });
    expect(errors).toEqual([{ code: "unreadable_visit", message: expect.stringContaining("status") }]);
    expect(views.map((view) => view.status)).toEqual(["pending"]);
    expect(source.active).toHaveLength(1);
  });

  it("flags a visit stuck when its status overstays the threshold, without a new snapshot", () => {
    watch();
    source.snapshot({ status: "pending", pendingAt: at(START) });
    scheduler.advance(5 * MINUTE);
    expect(views).toHaveLength(1);
    scheduler.advance(1);
    expect(views.map((view) => [view.status, view.stuck])).toEqual([
      ["pending", false],
      ["pending", true],
    ]);
    expect(views.at(-1)?.stuckForMs).toBe(5 * MINUTE + 1);

    // Moving on clears the warning and measures the new status from its own start.
    source.snapshot({ status: "transcribing", transcribingAt: at(scheduler.now()) });
    expect(views.at(-1)).toMatchObject({ status: "transcribing", stuck: false });
    scheduler.advance(60 * MINUTE);
    expect(views.at(-1)?.stuck).toBe(false);
    scheduler.advance(1);
    expect(views.at(-1)).toMatchObject({ status: "transcribing", stuck: true });
  });

  it("uses the thresholds it is given", () => {
    watch("visit1", { pending: MINUTE });
    source.snapshot({ status: "pending", pendingAt: at(START) });
    scheduler.advance(MINUTE + 1);
    expect(views.at(-1)?.stuck).toBe(true);
  });

  it("sets no timer for a terminal visit", () => {
    watch();
    source.snapshot({ status: "failed", failedAt: at(START), error: { stage: "upload", code: "empty_audio", message: "Empty.", retryable: false } });
    expect(scheduler.pendingTimers).toBe(0);
  });

  it("stops listening and cancels its timers when unsubscribed", () => {
    const stop = watch();
    source.snapshot({ status: "pending", pendingAt: at(START) });
    expect(scheduler.pendingTimers).toBe(1);
    stop();
    expect(source.active).toEqual([]);
    expect(scheduler.pendingTimers).toBe(0);
    source.listeners[0]?.onData({ status: "completed" });
    expect(views).toHaveLength(1);
  });

  it("cancels a pending re-listen when unsubscribed while waiting", () => {
    const stop = watch();
    source.fail("permission-denied");
    stop();
    scheduler.advance(MINUTE);
    expect(source.listeners).toHaveLength(1);
    expect(scheduler.pendingTimers).toBe(0);
  });

  it("does not leak a listener when a re-listen is answered at once and the answer ends the watch", () => {
    const released: string[] = [];
    let listens = 0;
    const answeringSource: VisitDocumentSource = {
      listen(_visitId, onData, onError) {
        listens += 1;
        const attempt = listens;
        if (attempt === 1) onError(Object.assign(new Error("denied"), { code: "permission-denied" }));
        else onData({ status: "completed", completedAt: at(START) });
        return () => released.push(`listener ${attempt}`);
      },
    };
    const stop = watchVisit({ source: answeringSource, scheduler }, "visit1", (view) => {
      views.push(view);
      if (view.isTerminal) stop();
    });
    scheduler.advance(1_000);
    expect(views.map((view) => view.status)).toEqual(["waiting_for_upload_processing", "completed"]);
    expect(released).toContain("listener 2");
    expect(scheduler.pendingTimers).toBe(0);
  });

  it("refuses a visit id Firestore could not address, without listening", () => {
    watch("a/b");
    expect(errors).toEqual([{ code: "invalid_visit_id", message: '"a/b" is not a visit id.' }]);
    expect(source.listeners).toEqual([]);
  });
});
