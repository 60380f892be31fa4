// Every log line the pipeline emits, one named function each: reading this file tells what the
// pipeline can report. Fields are ids, codes, counts and durations — never transcript or summary
// text, never object names (file names can identify a patient), never signed URLs.

import { logger } from "firebase-functions";
import { sanitizeDetail } from "./visit/errors.js";
import { normalizeMediaType } from "./visit/upload.js";
import type { PipelineError } from "./visit/errors.js";
import type { LeaseStage, VisitCost } from "./visit/model.js";
import type { VisitStatus } from "./visit/status.js";
import { notifyLog } from "./runtime-hooks.js";

type Fields = Record<string, string | number | boolean | null | undefined | Record<string, number>>;

function emit(severity: "debug" | "info" | "warn" | "error", event: string, fields: Fields): void {
  // Provider text can embed the signed audio URL (a credential): every detail is sanitized here —
  // and so is every other string field (ids, states, content types can come from outside too):
  // no URL, object name or token, and bounded length.
  const safe: Fields = {};
  for (const [key, value] of Object.entries(fields)) safe[key] = typeof value === "string" ? sanitizeDetail(value) : value;
  logger[severity](event, { event, ...safe });
  notifyLog({ severity, event, fields: safe });
}

function errorFields(error: PipelineError): Fields {
  return {
    code: error.code,
    transient: error.transient,
    httpStatus: error.httpStatus,
    retryAfterMs: error.retryAfterMs,
    detail: error.detail,
  };
}

/** The visit's cost so far, numbers only (undefined until the first paid call). */
function costFields(cost: VisitCost | null): Record<string, number> | undefined {
  return cost ? { ...cost } : undefined;
}

const ATTEMPT_FAILED_EVENT: Record<LeaseStage, string> = {
  transcription: "transcription_submit_failed",
  summarization: "summarization_failed",
};

export const logs = {
  uploadIgnored: (reason: string, bucket: string, generation: string) =>
    emit("info", "upload_ignored", { reason, bucket, generation }),
  uploadOwnerMismatch: (visitId: string) => emit("warn", "upload_ignored_owner_mismatch", { visitId }),
  uploadVisitBusy: (visitId: string, status: VisitStatus) => emit("info", "upload_ignored_visit_busy", { visitId, status }),
  uploadDuplicate: (visitId: string, generation: string, status: VisitStatus) =>
    emit("info", "upload_duplicate_delivery", { visitId, generation, status }),
  /** `contentType` is the client's: logged as its media type, without control characters, bounded. */
  uploadRejected: (visitId: string, code: string, contentType: string | undefined, sizeBytes: number) =>
    emit("warn", "upload_rejected", {
      visitId,
      code,
      contentType: normalizeMediaType(contentType?.replace(/[\u0000-\u001f\u007f-\u009f]/g, ""))?.slice(0, 100),
      sizeBytes,
    }),
  uploadAccepted: (visitId: string, contentType: string, sizeBytes: number) =>
    emit("info", "upload_accepted", { visitId, contentType, sizeBytes }),

  attemptClaimedElsewhere: (stage: LeaseStage, visitId: string, attempt: number) =>
    emit("info", "attempt_claimed_elsewhere", { visitId, stage, attempt }),
  /** A paid attempt failed; `willRetry` says whether another attempt follows automatically. */
  attemptFailed: (stage: LeaseStage, visitId: string, attempt: number, error: PipelineError, willRetry: boolean) =>
    emit(willRetry ? "warn" : "error", ATTEMPT_FAILED_EVENT[stage], { visitId, attempt, willRetry, ...errorFields(error) }),
  /** A paid stage gave up (attempts, deadline, budget): the visit ended `failed` or `partial` with `code`. */
  stageEnded: (visitId: string, stage: LeaseStage, status: VisitStatus, code: string) =>
    emit("error", "visit_stage_ended", { visitId, stage, status, code }),
  transcriptionSubmitted: (visitId: string, transcriptId: string, attempt: number, durationMs: number) =>
    emit("info", "transcription_submitted", { visitId, transcriptId, attempt, durationMs }),
  submissionRecoveryChecked: (visitId: string, suspects: number, found: boolean) =>
    emit("warn", "submission_recovery_checked", { visitId, suspects, found }),
  workDeferredForOutage: (visitId: string, provider: string, retryAt: Date) =>
    emit("warn", "work_deferred_provider_outage", { visitId, provider, retryAt: retryAt.toISOString() }),
  transcriptPending: (visitId: string, state: string, checks: number, nextCheckInSeconds: number) =>
    emit("debug", "transcript_pending", { visitId, state, checks, nextCheckInSeconds }),
  transcriptCheckFailed: (visitId: string, error: PipelineError, nextCheckInSeconds: number) =>
    emit("warn", "transcript_check_failed", { visitId, nextCheckInSeconds, ...errorFields(error) }),
  transcriptSaved: (
    visitId: string,
    fields: {
      transcriptId: string;
      utteranceCount: number;
      characterCount: number;
      audioDurationSeconds: number | null;
      languageCode: string | null;
      cost: VisitCost | null;
    },
  ) => emit("info", "transcript_saved", { visitId, ...fields, cost: costFields(fields.cost) }),
  transcriptionFailed: (visitId: string, code: string, transcriptId: string | null, detail: string) =>
    emit("error", "transcription_failed", { visitId, code, transcriptId, detail }),

  summarizationEnqueued: (visitId: string, dispatch: number, result: string) =>
    emit("info", "summarization_enqueued", { visitId, dispatch, result }),
  summarizationEnqueueFailed: (visitId: string, dispatch: number, detail: string) =>
    emit("error", "summarization_enqueue_failed", { visitId, dispatch, detail }),
  summarizationSkipped: (visitId: string, reason: string) => emit("info", "summarization_skipped", { visitId, reason }),
  summarizationStarted: (visitId: string, attempt: number, dispatch: number) =>
    emit("info", "summarization_started", { visitId, attempt, dispatch }),
  summarizationCompleted: (
    visitId: string,
    fields: { attempt: number; model: string; actionItemCount: number; promptTokens?: number; completionTokens?: number; durationMs: number; cost: VisitCost | null },
  ) => emit("info", "summarization_completed", { visitId, ...fields, cost: costFields(fields.cost) }),
  /**
   * `document`: `summary`, `clinician_note` or `summary_translation`; `units`: the transcript's
   * prompt lines, or the summary's items; `partTokens`: the estimated tokens of units a part may hold.
   */
  summaryPartsPlanned: (visitId: string, fields: { document: string; parts: number; alreadySaved: number; units: number; partTokens: number }) =>
    emit("info", "summary_parts_planned", { visitId, ...fields }),
  /** A part the model found too large (beyond its context, or an answer cut off) is split in two. */
  summaryPartSplit: (visitId: string, document: string, from: number, to: number) => emit("warn", "summary_part_split", { visitId, document, from, to }),
  summaryFallbackUsed: (visitId: string, model: string, reason: string) =>
    emit("warn", "summary_fallback_used", { visitId, model, reason }),
  summaryMergeClipped: (visitId: string, parts: number, clipped: number, document = "summary") =>
    emit("warn", "summary_merge_clipped", { visitId, document, parts, clipped }),
  /**
   * The patient summary is saved on the visit while what else was asked for is written:
   * `translateTo` (the preferred language, or null) and whether a clinician's note follows.
   */
  summarySavedBeforeExtras: (visitId: string, attempt: number, translateTo: string | null, clinicianNote: boolean) =>
    emit("info", "summary_saved_before_extras", { visitId, attempt, translateTo, clinicianNote }),
  /** A companion of the summary was written and saved (`document`: `clinician_note` or `summary_translation`). */
  summaryExtraSaved: (visitId: string, document: string, model: string, fields: { language?: string; parts?: number } = {}) =>
    emit("info", "summary_extra_saved", { visitId, document, model, ...fields }),
  /** The profile's preferred language is not one the pipeline can use (written around firestore.rules); not translated. */
  preferredLanguageIgnored: (visitId: string, code: string) => emit("warn", "preferred_language_ignored", { visitId, code }),

  providerRetry: (
    visitId: string,
    provider: string,
    operation: string,
    error: PipelineError,
    attempt: number,
    retryAfterMs: number,
  ) => emit("warn", "provider_retry", { visitId, provider, operation, attempt, waitMs: retryAfterMs, ...errorFields(error) }),
  breakerOpened: (provider: string, failures: number, until: Date) =>
    emit("error", "provider_breaker_opened", { provider, failures, until: until.toISOString() }),
  breakerClosed: (provider: string) => emit("info", "provider_breaker_closed", { provider }),
  breakerProbeStarted: (provider: string) => emit("info", "provider_breaker_probe", { provider }),
  /** A 429: every caller holds its requests to the provider until `until`. */
  requestBudgetPaused: (provider: string, until: Date) =>
    emit("warn", "request_budget_paused", { provider, until: until.toISOString() }),
  /** One caller found its pool's share of a minute spent (`spent`: what this caller used of it). */
  requestBudgetWindowSpent: (provider: string, pool: string, windowStart: Date, spent: number) =>
    emit("info", "request_budget_window_spent", { provider, pool, windowStart: windowStart.toISOString(), spent }),
  retryAccepted: (visitId: string, retryCount: number, resumedStage: string) =>
    emit("info", "retry_accepted", { visitId, retryCount, resumedStage }),
  retryRejected: (visitId: string, code: string) => emit("info", "retry_rejected", { visitId, code }),
  /** Operator actions (ops CLI); who and why are in the visit's audit, not in logs. */
  operatorRequeued: (visitId: string, retryCount: number, resumedStage: string) =>
    emit("warn", "operator_requeued", { visitId, retryCount, resumedStage }),
  operatorFailed: (visitId: string, status: VisitStatus) => emit("warn", "operator_failed", { visitId, status }),
  operatorBreakerReset: (provider: string, previousState: string) => emit("warn", "operator_breaker_reset", { provider, previousState }),
  /** A webhook delivery that did not prove it came for the visit (no or a wrong secret). Never the presented value. */
  webhookRejected: (visitId: string | null, reason: string) => emit("warn", "webhook_rejected", { visitId, reason }),
  /** An authenticated webhook delivery and what it did (`outcome`: a poll outcome, or why it changed nothing). */
  webhookHandled: (visitId: string, transcriptId: string | null, outcome: string, durationMs: number) =>
    emit("info", "webhook_handled", { visitId, transcriptId, outcome, durationMs }),
  apiRequestFailed: (requestId: string, route: string, detail: string) =>
    emit("error", "api_request_failed", { requestId, route, detail }),
  staleWriteRejected: (visitId: string, stage: string, attempt: number, reason: string) =>
    emit("warn", "stale_write_rejected", { visitId, stage, attempt, reason }),
  visitDocumentInvalid: (visitId: string) => emit("error", "visit_document_invalid", { visitId }),
  checkerRunFinished: (fields: {
    due: number;
    handled: number;
    durationMs: number;
    outcomes: Record<string, number>;
    requests: number;
    peakConcurrency: number;
    meanVisitMs: number;
  }) =>
    emit("info", "checker_run_finished", fields),
  checkerRunNotRecorded: (error: PipelineError) => emit("warn", "checker_run_not_recorded", errorFields(error)),
  checkerVisitFailed: (visitId: string, error: PipelineError) =>
    emit("error", "checker_visit_failed", { visitId, ...errorFields(error) }),
  retryResumeFailed: (visitId: string, resumedStage: string, error: PipelineError) =>
    emit("error", "retry_resume_failed", { visitId, resumedStage, ...errorFields(error) }),
  notificationSent: (visitId: string, status: VisitStatus, counts: { devices: number; sent: number; removed: number; failed: number }) =>
    emit("info", "notification_sent", { visitId, status, ...counts }),
  notificationSkipped: (visitId: string, status: VisitStatus, reason: string) =>
    emit("info", "notification_skipped", { visitId, status, reason }),
  /** A notification that could not be sent; it is not retried. */
  notificationFailed: (visitId: string, status: VisitStatus, error: PipelineError) =>
    emit("warn", "notification_failed", { visitId, status, ...errorFields(error) }),
  /** FCM said the token no longer works: its registration was removed (the token is never logged). */
  deviceTokenRemoved: (visitId: string, platform: string | null) => emit("info", "device_token_removed", { visitId, platform }),
  configInvalid: (detail: string) => emit("error", "config_invalid", { detail }),

  providerDeleteFailed: (visitId: string, error: PipelineError) =>
    emit("warn", "provider_delete_failed", { visitId, ...errorFields(error) }),
  providerTranscriptsDeleted: (visitId: string, deleted: number, pending: number) =>
    emit("info", "provider_transcripts_deleted", { visitId, deleted, pending }),
  recordingSuperseded: (visitId: string, removed: Record<string, number>) =>
    emit("info", "recording_superseded", { visitId, removed }),
  uploadObjectDeleted: (visitId: string | null, reason: string, result: string) =>
    emit("info", "upload_object_deleted", { visitId, reason, result }),
  visitDeleted: (visitId: string, reason: string, removed: Record<string, number>, pendingProviderDeletes: number) =>
    emit("info", "visit_deleted", { visitId, reason, removed, pendingProviderDeletes }),
  deletedVisitSwept: (visitId: string, removed: Record<string, number>, pendingProviderDeletes: number) =>
    emit("info", "deleted_visit_swept", { visitId, removed, pendingProviderDeletes }),
  userDataDeleted: (visits: number, reason: string, complete: boolean) =>
    emit("info", "user_data_deleted", { visits, reason, complete }),
  audioRetentionDeleted: (visitId: string, result: string) => emit("info", "audio_retention_deleted", { visitId, result }),
  /** The tokens one paid model call was billed for (an answer used or not): what the cost metrics sum. */
  paidCallUsage: (visitId: string, stage: string, usage: { promptTokens: number; completionTokens: number }) =>
    emit("info", "paid_call_usage", { visitId, stage, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens }),
  /** An attempt spent its invocation's time with work left; the next attempt carries on (not counted as a try). */
  attemptContinued: (visitId: string, stage: string, attempt: number) => emit("info", "attempt_continued", { visitId, stage, attempt }),
  paidResultAbandoned: (visitId: string, stage: string) => emit("warn", "paid_result_abandoned", { visitId, stage }),
  housekeepingFailed: (part: string, error: PipelineError) => emit("error", "housekeeping_failed", { part, ...errorFields(error) }),
};
