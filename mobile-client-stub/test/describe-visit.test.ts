import { describe, expect, it } from "vitest";
import type { VisitError } from "../src/contract.js";
import { DEFAULT_STUCK_AFTER_MS, describeVisit, stuckCheckAt } from "../src/describe-visit.js";
import type { VisitView } from "../src/describe-visit.js";
import type { VisitDocument } from "../src/visit-document.js";

const NOW = new Date("2026-03-01T12:00:00Z");
const MINUTE = 60_000;

function visit(fields: Partial<VisitDocument> & Pick<VisitDocument, "status">): VisitDocument {
  return { error: null, hasTranscript: false, updatedAt: NOW, statusEnteredAt: NOW, ...fields };
}

function error(stage: VisitError["stage"], code: string, retryable: boolean): VisitError {
  return { stage, code, message: `message for ${code}.`, retryable };
}

/** The fields that do not depend on time. */
function shown(view: VisitView): Omit<VisitView, "stuck" | "stuckForMs"> {
  const { stuck: _stuck, stuckForMs: _stuckForMs, ...rest } = view;
  return rest;
}

describe("describeVisit: every status and error combination", () => {
  const cases: { name: string; doc: VisitDocument | null; expected: Omit<VisitView, "stuck" | "stuckForMs"> }[] = [
    {
      name: "no document yet",
      doc: null,
      expected: {
        status: "waiting_for_upload_processing",
        label: "Upload received; waiting for processing to start…",
        isTerminal: false,
        progressStep: 1,
        canRetry: false,
        retryDisabledReason: "waiting_for_upload_processing",
        transcriptAvailable: false,
        error: null,
      },
    },
    {
      name: "pending",
      doc: visit({ status: "pending" }),
      expected: {
        status: "pending",
        label: "Preparing the recording for transcription…",
        isTerminal: false,
        progressStep: 1,
        canRetry: false,
        retryDisabledReason: "already_processing",
        transcriptAvailable: false,
        error: null,
      },
    },
    {
      name: "pending, waiting for the next automatic attempt",
      doc: visit({ status: "pending", error: error("transcription", "provider_unavailable", true) }),
      expected: {
        status: "pending",
        label: "Preparing the recording for transcription… (message for provider_unavailable. Trying again automatically.)",
        isTerminal: false,
        progressStep: 1,
        canRetry: false,
        retryDisabledReason: "already_processing",
        transcriptAvailable: false,
        error: { code: "provider_unavailable", message: "message for provider_unavailable." },
      },
    },
    {
      name: "transcribing",
      doc: visit({ status: "transcribing" }),
      expected: {
        status: "transcribing",
        label: "Transcribing the recording…",
        isTerminal: false,
        progressStep: 2,
        canRetry: false,
        retryDisabledReason: "already_processing",
        transcriptAvailable: false,
        error: null,
      },
    },
    {
      name: "transcribing, rate limited",
      doc: visit({ status: "transcribing", error: error("transcription", "provider_rate_limited", true) }),
      expected: {
        status: "transcribing",
        label: "Transcribing the recording… (message for provider_rate_limited. Trying again automatically.)",
        isTerminal: false,
        progressStep: 2,
        canRetry: false,
        retryDisabledReason: "already_processing",
        transcriptAvailable: false,
        error: { code: "provider_rate_limited", message: "message for provider_rate_limited." },
      },
    },
    {
      name: "summarizing, transcript saved",
      doc: visit({ status: "summarizing", hasTranscript: true }),
      expected: {
        status: "summarizing",
        label: "Writing the visit summary…",
        isTerminal: false,
        progressStep: 3,
        canRetry: false,
        retryDisabledReason: "already_processing",
        transcriptAvailable: true,
        error: null,
      },
    },
    {
      name: "summarizing, waiting after a truncated summary",
      doc: visit({ status: "summarizing", hasTranscript: true, error: error("summarization", "summary_truncated", true) }),
      expected: {
        status: "summarizing",
        label: "Writing the visit summary… (message for summary_truncated. Trying again automatically.)",
        isTerminal: false,
        progressStep: 3,
        canRetry: false,
        retryDisabledReason: "already_processing",
        transcriptAvailable: true,
        error: { code: "summary_truncated", message: "message for summary_truncated." },
      },
    },
    {
      name: "completed (transcript available even without the map)",
      doc: visit({ status: "completed" }),
      expected: {
        status: "completed",
        label: "Summary ready.",
        isTerminal: true,
        progressStep: 4,
        canRetry: false,
        retryDisabledReason: "nothing_to_retry",
        transcriptAvailable: true,
        error: null,
      },
    },
    {
      name: "partial with a retryable summarization error",
      doc: visit({ status: "partial", hasTranscript: true, error: error("summarization", "attempts_exhausted", true) }),
      expected: {
        status: "partial",
        label: "Transcript ready; the summary could not be written. message for attempts_exhausted.",
        isTerminal: true,
        progressStep: 3,
        canRetry: true,
        retryDisabledReason: null,
        transcriptAvailable: true,
        error: { code: "attempts_exhausted", message: "message for attempts_exhausted." },
      },
    },
    {
      name: "partial with a non-retryable summarization error (the server would refuse the retry)",
      doc: visit({ status: "partial", hasTranscript: true, error: error("summarization", "transcript_too_long", false) }),
      expected: {
        status: "partial",
        label: "Transcript ready; the summary could not be written. message for transcript_too_long.",
        isTerminal: true,
        progressStep: 3,
        canRetry: false,
        retryDisabledReason: "not_retryable",
        transcriptAvailable: true,
        error: { code: "transcript_too_long", message: "message for transcript_too_long." },
      },
    },
    {
      name: "partial without an error",
      doc: visit({ status: "partial" }),
      expected: {
        status: "partial",
        label: "Transcript ready; the summary could not be written.",
        isTerminal: true,
        progressStep: 3,
        canRetry: true,
        retryDisabledReason: null,
        transcriptAvailable: true,
        error: null,
      },
    },
    {
      name: "failed with a retryable transcription error",
      doc: visit({ status: "failed", error: error("transcription", "audio_download_failed", true) }),
      expected: {
        status: "failed",
        label: "Processing failed: message for audio_download_failed.",
        isTerminal: true,
        progressStep: 2,
        canRetry: true,
        retryDisabledReason: null,
        transcriptAvailable: false,
        error: { code: "audio_download_failed", message: "message for audio_download_failed." },
      },
    },
    {
      name: "failed with a non-retryable transcription error",
      doc: visit({ status: "failed", error: error("transcription", "no_speech_detected", false) }),
      expected: {
        status: "failed",
        label: "Processing failed: message for no_speech_detected.",
        isTerminal: true,
        progressStep: 2,
        canRetry: false,
        retryDisabledReason: "needs_new_recording",
        transcriptAvailable: false,
        error: { code: "no_speech_detected", message: "message for no_speech_detected." },
      },
    },
    {
      name: "failed: upload rejected",
      doc: visit({ status: "failed", error: error("upload", "invalid_content_type", false) }),
      expected: {
        status: "failed",
        label: "Processing failed: message for invalid_content_type.",
        isTerminal: true,
        progressStep: 1,
        canRetry: false,
        retryDisabledReason: "needs_new_recording",
        transcriptAvailable: false,
        error: { code: "invalid_content_type", message: "message for invalid_content_type." },
      },
    },
    {
      name: "failed without an error",
      doc: visit({ status: "failed" }),
      expected: {
        status: "failed",
        label: "Processing failed.",
        isTerminal: true,
        progressStep: 1,
        canRetry: false,
        retryDisabledReason: "needs_new_recording",
        transcriptAvailable: false,
        error: null,
      },
    },
    {
      name: "failed with an error code this app does not know yet",
      doc: visit({ status: "failed", error: error("transcription", "some_future_code", true) }),
      expected: {
        status: "failed",
        label: "Processing failed: message for some_future_code.",
        isTerminal: true,
        progressStep: 2,
        canRetry: true,
        retryDisabledReason: null,
        transcriptAvailable: false,
        error: { code: "some_future_code", message: "message for some_future_code." },
      },
    },
  ];

  for (const { name, doc, expected } of cases) {
    it(name, () => {
      const view = describeVisit(doc, NOW);
      expect(shown(view)).toEqual(expected);
      expect(view.stuck).toBe(false);
      expect(view.stuckForMs).toBe(0);
    });
  }
});

describe("describeVisit: stuck detection", () => {
  const enteredAgo = (status: VisitDocument["status"], ms: number, fields: Partial<VisitDocument> = {}) =>
    visit({ status, statusEnteredAt: new Date(NOW.getTime() - ms), ...fields });

  it("defaults to 5 min pending, 60 min transcribing, 30 min summarizing", () => {
    expect(DEFAULT_STUCK_AFTER_MS).toMatchObject({ pending: 5 * MINUTE, transcribing: 60 * MINUTE, summarizing: 30 * MINUTE });
  });

  for (const status of ["pending", "transcribing", "summarizing"] as const) {
    it(`${status}: not stuck at exactly its threshold, stuck 1 ms later`, () => {
      const threshold = DEFAULT_STUCK_AFTER_MS[status];
      expect(describeVisit(enteredAgo(status, threshold), NOW)).toMatchObject({ stuck: false, stuckForMs: 0 });
      expect(describeVisit(enteredAgo(status, threshold + 1), NOW)).toMatchObject({ stuck: true, stuckForMs: threshold + 1 });
    });
  }

  it("measures from when the status was entered, not from the last update (poll counters update it)", () => {
    const doc = enteredAgo("transcribing", 61 * MINUTE, { updatedAt: NOW });
    expect(describeVisit(doc, NOW)).toMatchObject({ stuck: true, stuckForMs: 61 * MINUTE });
  });

  it("falls back to updatedAt when the status time is missing", () => {
    const doc = visit({ status: "pending", statusEnteredAt: null, updatedAt: new Date(NOW.getTime() - 6 * MINUTE) });
    expect(describeVisit(doc, NOW)).toMatchObject({ stuck: true, stuckForMs: 6 * MINUTE });
  });

  it("cannot tell without any timestamp", () => {
    const doc = visit({ status: "pending", statusEnteredAt: null, updatedAt: null });
    expect(describeVisit(doc, NOW).stuck).toBe(false);
    expect(stuckCheckAt(doc)).toBeNull();
  });

  it("is never stuck in a terminal status, however old", () => {
    for (const status of ["completed", "partial", "failed"] as const) {
      expect(describeVisit(enteredAgo(status, 1000 * MINUTE), NOW).stuck).toBe(false);
    }
  });

  it("is not stuck when the device clock is behind the server's timestamp", () => {
    expect(describeVisit(enteredAgo("pending", -10 * MINUTE), NOW).stuck).toBe(false);
  });

  it("takes per-status thresholds, keeping the defaults for the others", () => {
    const options = { stuckAfterMs: { pending: MINUTE } };
    expect(describeVisit(enteredAgo("pending", MINUTE + 1), NOW, options).stuck).toBe(true);
    expect(describeVisit(enteredAgo("summarizing", 29 * MINUTE), NOW, options).stuck).toBe(false);
  });

  it("warns about a document that has not appeared, measured from when waiting started", () => {
    const threshold = DEFAULT_STUCK_AFTER_MS.waiting_for_upload_processing;
    const since = (ms: number) => ({ waitingSince: new Date(NOW.getTime() - ms) });
    expect(describeVisit(null, NOW, since(threshold)).stuck).toBe(false);
    expect(describeVisit(null, NOW, since(threshold + 1))).toMatchObject({ status: "waiting_for_upload_processing", stuck: true, stuckForMs: threshold + 1 });
    expect(describeVisit(null, NOW).stuck).toBe(false);
  });

  it("says when the visit will count as stuck", () => {
    expect(stuckCheckAt(visit({ status: "summarizing" }))).toEqual(new Date(NOW.getTime() + 30 * MINUTE + 1));
    expect(stuckCheckAt(visit({ status: "completed" }))).toBeNull();
  });
});
