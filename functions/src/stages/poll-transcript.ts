// Stage: check a transcribing visit's job at AssemblyAI. Still running → back off. Done → save
// the transcript first (it is paid for), then move to summarizing and fire summarization as its
// own unit of work. Failed → the visit fails with the provider's reason as a code.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { CompletedTranscript } from "../providers/ports.js";
import { retryPolicy, withRetries } from "../providers/retry.js";
import { saveTranscript, transcriptInfo } from "../store/transcripts.js";
import { applyVisitEvent, updateVisit } from "../store/visits.js";
import { addSeconds, nextPollDelaySeconds } from "../visit/backoff.js";
import { asPipelineError, visitError } from "../visit/errors.js";
import type { ErrorCode, PipelineError } from "../visit/errors.js";
import type { Visit } from "../visit/model.js";
import { failpoint } from "../runtime-hooks.js";
import { guardedBreakerCall } from "./breaker-gate.js";
import { dispatchSummarization } from "./dispatch-summarization.js";

export type PollOutcome =
  | "still_processing"
  | "transcript_saved"
  | "failed"
  | "check_failed"
  | "deferred_outage"
  | "superseded";

export async function pollTranscript(p: Pipeline, visit: Visit, deadlineMs: number): Promise<PollOutcome> {
  const transcriptId = visit.transcriptId;
  if (!transcriptId) return failVisit(p, visit, "transcript_not_found", "no transcript id on a transcribing visit");
  const guard = { statuses: ["transcribing"] as const, transcriptId };
  const checks = visit.checks + 1;
  const pastDeadline = visit.deadlineAt !== null && p.now() >= visit.deadlineAt;

  const gate = await guardedBreakerCall(p, "assemblyai");
  if (!gate.allowed) {
    if (pastDeadline) return failVisit(p, visit, "deadline_exceeded", "deadline passed during a provider outage");
    await updateVisit(visit.id, { nextCheckAt: gate.retryAt }, { now: p.now(), guard });
    logs.workDeferredForOutage(visit.id, "assemblyai", gate.retryAt);
    return "deferred_outage";
  }
  let result;
  try {
    result = await gate.run(() =>
      withRetries(
        () => p.speech().check(transcriptId),
        retryPolicy({ retries: 2, minDelayMs: p.config.providerRetryMinDelayMs, deadlineMs, attemptTimeoutMs: p.config.assemblyAiTimeoutSeconds * 1000 }),
        { onRetry: (error, n, waitMs) => logs.providerRetry(visit.id, "assemblyai", "get_transcript", error, n, waitMs) },
      ),
    );
  } catch (thrown) {
    const error = asPipelineError(thrown);
    if (pastDeadline) return failVisit(p, visit, "deadline_exceeded", error.code);
    return handleCheckFailure(p, visit, checks, error);
  }

  // A finished transcript is saved even past the deadline: it is paid for.
  if (pastDeadline && (result.state === "queued" || result.state === "processing")) {
    return failVisit(p, visit, "deadline_exceeded", `still ${result.state} at the deadline`);
  }
  switch (result.state) {
    case "queued":
    case "processing": {
      const delay = nextPollDelaySeconds(checks, pollBackoff(p), Math.random());
      const now = p.now();
      const written = await updateVisit(visit.id, { checks, nextCheckAt: addSeconds(now, delay) }, { now, guard });
      logs.transcriptPending(visit.id, result.state, checks, delay);
      return written.applied ? "still_processing" : "superseded";
    }
    case "error":
      return failVisit(p, visit, result.code, result.providerMessage);
    case "completed":
      await failpoint("after_transcript_fetch");
      return checkpointTranscript(p, visit, result.transcript, checks);
  }
}

function pollBackoff(p: Pipeline) {
  return { initialSeconds: p.config.pollInitialDelaySeconds, maxSeconds: p.config.pollMaxDelaySeconds };
}

/** Saves a completed transcript, then moves the visit on. Saving again is harmless (same content). */
export async function checkpointTranscript(
  p: Pipeline,
  visit: Visit,
  transcript: CompletedTranscript,
  checks: number,
): Promise<PollOutcome> {
  await saveTranscript(visit.id, transcript, p.now());
  const info = transcriptInfo(transcript);
  logs.transcriptSaved(visit.id, {
    transcriptId: transcript.transcriptId,
    utteranceCount: info.utteranceCount,
    characterCount: info.characterCount,
    audioDurationSeconds: info.audioDurationSeconds,
    languageCode: info.languageCode,
  });
  const guard = { statuses: ["transcribing"] as const, transcriptId: transcript.transcriptId };
  if (transcript.text.trim() === "") {
    // Nothing to summarize: the transcript is kept, the visit ends with a clear reason.
    const written = await applyVisitEvent(
      visit.id,
      { type: "transcription_failed", error: visitError("transcription", "no_speech_detected") },
      { now: p.now(), guard, fields: { transcript: info, checks, lease: null } },
    );
    return written.applied ? "failed" : "superseded";
  }
  const now = p.now();
  const written = await applyVisitEvent(
    visit.id,
    { type: "transcript_saved" },
    {
      now,
      guard,
      fields: {
        transcript: info,
        checks,
        lease: null,
        "attempts.summarization": 0,
        nextCheckAt: addSeconds(now, p.config.summaryWatchdogSeconds),
      },
    },
  );
  if (!written.applied) return "superseded";
  await dispatchSummarization(p, written.visit);
  return "transcript_saved";
}

async function handleCheckFailure(p: Pipeline, visit: Visit, checks: number, error: PipelineError): Promise<PollOutcome> {
  if (!error.transient) return failVisit(p, visit, error.code, error.detail ?? error.code);
  const now = p.now();
  const delay = Math.max(
    nextPollDelaySeconds(checks, pollBackoff(p), Math.random()),
    Math.ceil((error.retryAfterMs ?? 0) / 1000),
  );
  logs.transcriptCheckFailed(visit.id, error, delay);
  await updateVisit(
    visit.id,
    { checks, nextCheckAt: addSeconds(now, delay) },
    { now, guard: { statuses: ["transcribing"], transcriptId: visit.transcriptId ?? "" } },
  );
  return "check_failed";
}

async function failVisit(p: Pipeline, visit: Visit, code: ErrorCode, detail: string): Promise<PollOutcome> {
  logs.transcriptionFailed(visit.id, code, visit.transcriptId, detail);
  const written = await applyVisitEvent(
    visit.id,
    { type: "transcription_failed", error: visitError("transcription", code) },
    {
      now: p.now(),
      guard: { statuses: ["transcribing"], ...(visit.transcriptId ? { transcriptId: visit.transcriptId } : {}) },
      fields: { lease: null },
    },
  );
  return written.applied ? "failed" : "superseded";
}
