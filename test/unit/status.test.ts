import { describe, expect, it } from "vitest";
import { visitError } from "../../functions/src/visit/errors.js";
import {
  HISTORY_LIMIT,
  IllegalTransitionError,
  VISIT_STATUSES,
  appendHistory,
  canApply,
  nextStatus,
  planTransition,
} from "../../functions/src/visit/status.js";
import type { StatusHistoryEntry, VisitEvent, VisitStatus } from "../../functions/src/visit/status.js";

const failure = visitError("transcription", "transcription_failed");
const EVENTS: VisitEvent[] = [
  { type: "upload_accepted" },
  { type: "upload_rejected", error: visitError("upload", "empty_audio") },
  { type: "transcription_submitted", transcriptId: "t-1" },
  { type: "transcript_saved" },
  { type: "transcription_failed", error: failure },
  { type: "summary_saved" },
  { type: "summary_failed", error: visitError("summarization", "summary_refused") },
  { type: "retry_accepted", resume: "transcription" },
  { type: "retry_accepted", resume: "transcript_checkpoint" },
  { type: "retry_accepted", resume: "summarization" },
  { type: "operator_requeued", resume: "transcription" },
  { type: "operator_requeued", resume: "transcript_checkpoint" },
  { type: "operator_requeued", resume: "summarization" },
  { type: "operator_failed", error: visitError("transcription", "operator_failed") },
  { type: "operator_failed", error: visitError("summarization", "operator_failed") },
];

// The whole table, spelled out: from-status → event → resulting status (absent = illegal).
const OPERATOR_FAILED = { "operator_failed:transcription": "failed", "operator_failed:summarization": "partial" } as const;
const OPERATOR_REQUEUED = {
  "operator_requeued:transcription": "pending",
  "operator_requeued:transcript_checkpoint": "transcribing",
  "operator_requeued:summarization": "summarizing",
} as const;
const EXPECTED: Record<string, Partial<Record<string, VisitStatus>>> = {
  "(none)": { upload_accepted: "pending", upload_rejected: "failed" },
  pending: { transcription_submitted: "transcribing", transcription_failed: "failed", ...OPERATOR_FAILED },
  transcribing: { transcript_saved: "summarizing", transcription_failed: "failed", ...OPERATOR_FAILED },
  summarizing: { summary_saved: "completed", summary_failed: "partial", ...OPERATOR_FAILED },
  partial: {
    "retry_accepted:transcription": "pending",
    "retry_accepted:transcript_checkpoint": "transcribing",
    "retry_accepted:summarization": "summarizing",
    ...OPERATOR_REQUEUED,
  },
  completed: {},
  failed: {
    upload_accepted: "pending",
    upload_rejected: "failed",
    "retry_accepted:transcription": "pending",
    "retry_accepted:transcript_checkpoint": "transcribing",
    "retry_accepted:summarization": "summarizing",
    ...OPERATOR_REQUEUED,
  },
};

function eventKey(event: VisitEvent): string {
  if (event.type === "retry_accepted" || event.type === "operator_requeued") return `${event.type}:${event.resume}`;
  return event.type === "operator_failed" ? `${event.type}:${event.error.stage}` : event.type;
}

describe("visit state machine", () => {
  for (const from of [null, ...VISIT_STATUSES] as (VisitStatus | null)[]) {
    for (const event of EVENTS) {
      const expected = EXPECTED[from ?? "(none)"]?.[eventKey(event)];
      it(`${from ?? "(none)"} + ${eventKey(event)} → ${expected ?? "illegal"}`, () => {
        expect(canApply(from, event)).toBe(expected !== undefined);
        if (expected) expect(nextStatus(from, event)).toBe(expected);
        else expect(() => nextStatus(from, event)).toThrow(IllegalTransitionError);
      });
    }
  }

  it("completed is final: no event leaves it", () => {
    expect(EVENTS.filter((event) => canApply("completed", event))).toEqual([]);
  });

  it("plans the fields of a transition with the given time", () => {
    const now = new Date("2026-01-02T03:04:05Z");
    const plan = planTransition("pending", { type: "transcription_submitted", transcriptId: "t-9" }, now);
    expect(plan.status).toBe("transcribing");
    expect(plan.fields).toMatchObject({ status: "transcribing", transcriptId: "t-9", transcribingAt: now, updatedAt: now, error: null });
    expect(plan.historyEntry).toEqual({ status: "transcribing", event: "transcription_submitted", at: now, code: null });
  });

  it("an operator's failure records its error and drops the lease, so work in flight is fenced off", () => {
    const error = visitError("transcription", "operator_failed");
    const plan = planTransition("transcribing", { type: "operator_failed", error }, new Date(0));
    expect(plan.fields).toMatchObject({ status: "failed", error, lease: null, nextCheckAt: null });
    expect(plan.historyEntry).toMatchObject({ event: "operator_failed", code: "operator_failed" });
  });

  it("records the error and clears the due time when a visit fails", () => {
    const plan = planTransition("transcribing", { type: "transcription_failed", error: failure }, new Date(0));
    expect(plan.fields).toMatchObject({ status: "failed", error: failure, nextCheckAt: null });
    expect(plan.historyEntry.code).toBe("transcription_failed");
  });

  it("keeps only the latest history entries", () => {
    const entry: StatusHistoryEntry = { status: "pending", event: "upload_accepted", at: new Date(0), code: null };
    let history: StatusHistoryEntry[] = [];
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) history = appendHistory(history, { ...entry, at: new Date(i) });
    expect(history).toHaveLength(HISTORY_LIMIT);
    expect(history[0]!.at.getTime()).toBe(5);
  });
});
