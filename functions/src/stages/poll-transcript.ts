// Stage: check a transcribing visit's job at AssemblyAI (a free request, behind the same breaker
// and in-call retries as paid work; the checker's claim on the due time makes it single). Still
// running → back off. Done → save the transcript first (it is paid for), then move to summarizing
// and fire summarization as its own unit of work. Failed → the visit fails with the provider's
// reason as a code.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { CompletedTranscript, TranscriptCheck } from "../providers/ports.js";
import { failpoint } from "../runtime-hooks.js";
import { openProviderGate } from "../steps/provider-call.js";
import { saveTranscript, transcriptInfo } from "../store/transcripts.js";
import { applyVisitEvent, updateVisit } from "../store/visits.js";
import type { VisitGuard } from "../store/visits.js";
import { addSeconds, nextPollDelaySeconds } from "../visit/backoff.js";
import { asPipelineError, visitError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";
import type { Visit, VisitCost, VisitPatch } from "../visit/model.js";
import { recordCost } from "../store/costs.js";
import { audioDelta, discardedCallDelta } from "../visit/cost.js";
import type { VisitEvent } from "../visit/status.js";
import { dispatchSummarization } from "./dispatch-summarization.js";
import { announceIfEnded } from "./notify-outcome.js";
import { releaseProviderTranscripts } from "./provider-cleanup.js";

export type PollOutcome = "still_processing" | "transcript_saved" | "failed" | "check_failed" | "deferred_outage" | "superseded";

export async function pollTranscript(p: Pipeline, visit: Visit, deadlineMs: number): Promise<PollOutcome> {
  const transcriptId = visit.transcriptId;
  if (!transcriptId) return failVisit(p, visit, "transcript_not_found", "no transcript id on a transcribing visit");
  const checks = visit.checks + 1;
  const pastDeadline = visit.deadlineAt !== null && p.now() >= visit.deadlineAt;

  const gate = await openProviderGate(p, "assemblyai", { visitId: visit.id, deadlineMs });
  if (!gate.allowed) {
    if (pastDeadline) return failVisit(p, visit, "deadline_exceeded", "deadline passed during a provider outage");
    logs.workDeferredForOutage(visit.id, "assemblyai", gate.retryAt);
    return movePoll(p, visit, { nextCheckAt: gate.retryAt }, "deferred_outage");
  }
  let result: TranscriptCheck;
  try {
    result = await gate.call("get_transcript", () => p.speech().check(transcriptId));
  } catch (thrown) {
    const error = asPipelineError(thrown);
    if (pastDeadline) return failVisit(p, visit, "deadline_exceeded", error.code);
    if (!error.transient) return failVisit(p, visit, error.code, error.detail ?? error.code);
    const delay = Math.max(nextPollDelay(p, checks), Math.ceil((error.retryAfterMs ?? 0) / 1000));
    logs.transcriptCheckFailed(visit.id, error, delay);
    return movePoll(p, visit, { checks, nextCheckAt: addSeconds(p.now(), delay) }, "check_failed");
  }

  switch (result.state) {
    case "queued":
    case "processing": {
      if (pastDeadline) return failVisit(p, visit, "deadline_exceeded", `still ${result.state} at the deadline`);
      // A job that will announce its end is only looked at by the safety net's slower cadence.
      const delay = visit.webhookSecretSha256 ? Math.max(nextPollDelay(p, checks), p.config.webhookSafetyPollSeconds) : nextPollDelay(p, checks);
      logs.transcriptPending(visit.id, result.state, checks, delay);
      return movePoll(p, visit, { checks, nextCheckAt: addSeconds(p.now(), delay) }, "still_processing");
    }
    case "error":
      return failVisit(p, visit, result.code, result.providerMessage);
    case "completed":
      // A finished transcript is saved even past the deadline: it is paid for.
      await failpoint("after_transcript_fetch");
      return checkpointTranscript(p, visit, result.transcript, checks, deadlineMs);
  }
}

function nextPollDelay(p: Pipeline, checks: number): number {
  return nextPollDelaySeconds(checks, { initialSeconds: p.config.pollInitialDelaySeconds, maxSeconds: p.config.pollMaxDelaySeconds }, Math.random());
}

/** Writes to a transcribing visit are fenced by its job: a newer job (a retry) makes them stale. */
function pollGuard(transcriptId: string | null): VisitGuard {
  return { statuses: ["transcribing"], ...(transcriptId ? { transcriptId } : {}) };
}

async function movePoll(p: Pipeline, visit: Visit, patch: VisitPatch, outcome: PollOutcome): Promise<PollOutcome> {
  const written = await updateVisit(visit.id, patch, { now: p.now(), guard: pollGuard(visit.transcriptId) });
  return written.applied ? outcome : "superseded";
}

async function moveOn(p: Pipeline, visitId: string, transcriptId: string | null, event: VisitEvent, fields: VisitPatch) {
  const written = await applyVisitEvent(visitId, event, { now: p.now(), guard: pollGuard(transcriptId), fields: { ...fields, lease: null } });
  await announceIfEnded(p, written);
  return written;
}

/** Saves a completed transcript, then moves the visit on. Saving again is harmless (same content). */
export async function checkpointTranscript(
  p: Pipeline,
  visit: Visit,
  transcript: CompletedTranscript,
  checks: number,
  deadlineMs: number,
): Promise<PollOutcome> {
  if (!visit.audio) return failVisit(p, visit, "internal_error", "transcribing visit without a recording");
  // Saved only while the visit exists and still has this recording: a check that outlived the
  // visit's deletion, or the recording's replacement by a new upload, keeps nothing.
  const saved = await saveTranscript(visit.id, visit.audio.generation, transcript, p.now());
  if (saved === "visit_missing") return "superseded";
  const cost = await recordTranscriptCost(p, visit.id, transcript, saved === "superseded");
  if (saved === "superseded") return "superseded";
  const info = transcriptInfo(transcript);
  logs.transcriptSaved(visit.id, {
    cost,
    transcriptId: transcript.transcriptId,
    utteranceCount: info.utteranceCount,
    characterCount: info.characterCount,
    audioDurationSeconds: info.audioDurationSeconds,
    languageCode: info.languageCode,
  });
  if (transcript.text.trim() === "") {
    // Nothing to summarize: the transcript is kept, the visit ends with a clear reason.
    const event: VisitEvent = { type: "transcription_failed", error: visitError("transcription", "no_speech_detected") };
    const written = await moveOn(p, visit.id, transcript.transcriptId, event, { transcript: info, checks });
    if (written.applied) await releaseProviderTranscripts(p, written.visit, deadlineMs);
    return written.applied ? "failed" : "superseded";
  }
  const written = await moveOn(p, visit.id, transcript.transcriptId, { type: "transcript_saved" }, {
    transcript: info,
    checks,
    "attempts.summarization": 0,
    nextCheckAt: addSeconds(p.now(), p.config.summaryWatchdogSeconds),
  });
  if (!written.applied) return "superseded";
  await dispatchSummarization(p, written.visit);
  await releaseProviderTranscripts(p, written.visit, deadlineMs);
  return "transcript_saved";
}

/**
 * The finished job's audio, on the visit's cost once per job however many checks see it done;
 * the job of a recording a new upload replaced is also counted as a discarded paid call.
 */
async function recordTranscriptCost(p: Pipeline, visitId: string, transcript: CompletedTranscript, discarded: boolean): Promise<VisitCost | null> {
  const key = { workStage: "transcription", of: transcript.transcriptId } as const;
  const audio = audioDelta(transcript.audioDurationSeconds ?? 0, p.config.unitPrices);
  const recorded = await recordCost(visitId, { ...key, fact: "audio" }, audio, { now: p.now() });
  if (!discarded) return recorded.cost;
  return (await recordCost(visitId, { ...key, fact: "discarded" }, discardedCallDelta(), { now: p.now() })).cost;
}

async function failVisit(p: Pipeline, visit: Visit, code: ErrorCode, detail: string): Promise<PollOutcome> {
  logs.transcriptionFailed(visit.id, code, visit.transcriptId, detail);
  const event: VisitEvent = { type: "transcription_failed", error: visitError("transcription", code) };
  const written = await moveOn(p, visit.id, visit.transcriptId, event, {});
  return written.applied ? "failed" : "superseded";
}
