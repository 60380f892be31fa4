// Stage: a recording landed in Cloud Storage. Decide whether it is ours and acceptable, record
// it on its visit (replacing an earlier, failed recording entirely), and hand it to
// transcription. Returns as soon as AssemblyAI has the job. An object the pipeline will never
// use — rejected, or uploaded where it cannot go — is deleted from Storage at once.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { StepOutcome } from "../steps/paid-step.js";
import { deleteAudioGeneration } from "../store/audio-objects.js";
import { claimReplacement } from "../store/claims.js";
import { getTombstone } from "../store/tombstones.js";
import { getVisit, markAudioDeleted, recordUpload } from "../store/visits.js";
import type { UploadOutcome } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { PipelineError, visitError } from "../visit/errors.js";
import { sameAudio } from "../visit/model.js";
import type { AudioRef } from "../visit/model.js";
import { normalizeMediaType, parseObjectSize, parseVisitUploadPath, validateUpload } from "../visit/upload.js";
import { announceOutcome } from "./notify-outcome.js";
import { submitTranscription } from "./submit-transcription.js";
import { supersedeRecording } from "./supersede-recording.js";
import { checkUploadLimits } from "./upload-limits.js";

/** The parts of a Cloud Storage object-finalized event the pipeline reads. */
export interface UploadedObject {
  bucket: string;
  name: string;
  contentType?: string | undefined;
  size?: unknown;
  generation?: unknown;
}

export type UploadResult =
  | { outcome: "ignored"; reason: string }
  | { outcome: "rejected"; code: string }
  | { outcome: "accepted"; submission: StepOutcome }
  | { outcome: "duplicate"; submission: StepOutcome | null };

export async function acceptUpload(p: Pipeline, object: UploadedObject, deadlineMs: number): Promise<UploadResult> {
  const generation = generationOf(object.generation);
  const parsed = parseVisitUploadPath(object.name);
  if (!parsed.ok || !/^\d+$/.test(generation)) {
    const reason = parsed.ok ? "missing_generation" : parsed.reason;
    logs.uploadIgnored(reason, object.bucket, generation);
    // Objects outside the visit folders are not the pipeline's (the app may keep other files in
    // the bucket); one without a generation cannot be deleted without risking a newer object.
    if (reason !== "not_a_visit_path" && reason !== "missing_generation") {
      await discardObject(null, { bucket: object.bucket, path: object.name, generation }, reason);
    }
    return { outcome: "ignored", reason };
  }
  const { uid, visitId, fileName } = parsed.path;
  const sizeBytes = parseObjectSize(object.size);
  const validation = validateUpload({ contentType: object.contentType, sizeBytes }, p.config.maxUploadBytes);
  const audio: AudioRef = {
    bucket: object.bucket,
    path: object.name,
    fileName,
    // A rejected type is the client's text: stored normalized, printable and bounded.
    contentType: validation.ok ? validation.contentType : storedContentType(object.contentType),
    sizeBytes: Number.isFinite(sizeBytes) ? sizeBytes : 0,
    generation,
    deletedAt: null,
  };
  for (let look = 1; ; look++) {
    const current = await getVisit(visitId);
    // This recording will be taken by the visit (a new visit, or a new recording of a failed one).
    const takesRecording =
      (!current && !(await getTombstone(visitId))) ||
      (current?.userId === uid && current.status === "failed" && !sameAudio(current.audio, audio));
    const superseding = current !== null && takesRecording;
    const replacing = current?.audio?.generation ?? null;
    if (superseding && !(await mayReplace(p, visitId, replacing, generation))) {
      // Another new recording is replacing the same one: once it is recorded, this one may replace it.
      if (look < MAX_LOOKS && (await recordingReplaced(visitId, replacing, deadlineMs))) continue;
      throw new PipelineError("upload_conflict", { detail: "another recording is replacing the visit's recording" });
    }
    if (superseding) await supersedeRecording(p, current, generation, deadlineMs);
    let rejection = validation.ok ? null : visitError("upload", validation.code);
    if (!rejection && takesRecording) {
      const limits = await checkUploadLimits(p, { uid, visitId, recording: `${audio.bucket}/${audio.path}#${generation}`, generation });
      if (!limits.allowed) rejection = visitError("upload", limits.code);
    }
    const now = p.now();
    const recorded = await recordUpload({
      visitId,
      userId: uid,
      audio,
      rejection,
      now,
      deadlineAt: addSeconds(now, p.config.visitDeadlineHours * 3600),
      audioExpiresAt: p.config.audioRetentionDays > 0 ? addSeconds(now, p.config.audioRetentionDays * 86_400) : null,
      replacing,
    });
    if (recorded.kind === "changed") {
      // The visit took another recording since it was read (a concurrent upload): look again.
      if (look < MAX_LOOKS) continue;
      throw new PipelineError("upload_conflict", { detail: "the visit's recording kept changing" });
    }
    if (recorded.kind === "busy" && superseding) {
      // A retry took the visit between replacing its recording and recording this one: the new
      // recording is kept and the delivery retried (the retry ends on the deleted recording).
      logs.uploadVisitBusy(visitId, recorded.status);
      throw new PipelineError("upload_conflict", { detail: "visit taken by a retry while its recording was replaced" });
    }
    return reportUpload(p, recorded, { visitId, generation, audio, contentType: object.contentType }, deadlineMs);
  }
}

// Concurrent uploads into one visit take its place one after another; a delivery that still finds
// it changing after this many looks is retried by Cloud Storage.
const MAX_LOOKS = 8;
// How long a delivery waits for another recording to finish replacing the visit's (it deletes the
// earlier recording's data first, usually within a second or two).
const REPLACEMENT_WAIT_MS = 5_000;
const REPLACEMENT_POLL_MS = 100;

/** Waits until the visit no longer holds `replaced` (true), or gives up (false). */
async function recordingReplaced(visitId: string, replaced: string | null, deadlineMs: number): Promise<boolean> {
  const giveUpMs = Math.min(deadlineMs, Date.now() + REPLACEMENT_WAIT_MS);
  for (;;) {
    const visit = await getVisit(visitId);
    if (!visit || (visit.audio?.generation ?? null) !== replaced) return true;
    if (Date.now() + REPLACEMENT_POLL_MS >= giveUpMs) return false;
    await new Promise((resolve) => setTimeout(resolve, REPLACEMENT_POLL_MS));
  }
}

/** Whether this recording may replace the visit's `replaced` one (claimed once, by one recording). */
function mayReplace(p: Pipeline, visitId: string, replaced: string | null, generation: string): Promise<boolean> {
  const now = p.now();
  return claimReplacement(
    visitId,
    { replaces: replaced ?? "none", generation },
    { owner: `upload-${generation}`, now, purgeAt: addSeconds(now, p.config.bookkeepingRetentionDays * 86_400) },
  );
}

/** Logs what recording the upload did, and hands a new (or not yet submitted) recording to transcription. */
async function reportUpload(
  p: Pipeline,
  recorded: Exclude<UploadOutcome, { kind: "changed" }>,
  upload: { visitId: string; generation: string; audio: AudioRef; contentType: string | undefined },
  deadlineMs: number,
): Promise<UploadResult> {
  const { visitId, generation, audio } = upload;
  switch (recorded.kind) {
    case "owner_mismatch":
      logs.uploadOwnerMismatch(visitId);
      await discardObject(visitId, audio, "owner_mismatch");
      return { outcome: "ignored", reason: "owner_mismatch" };
    case "busy":
      logs.uploadVisitBusy(visitId, recorded.status);
      await discardObject(visitId, audio, "visit_busy");
      return { outcome: "ignored", reason: "visit_busy" };
    case "deleted":
      logs.uploadIgnored("visit_deleted", audio.bucket, generation);
      await discardObject(visitId, audio, "visit_deleted");
      return { outcome: "ignored", reason: "visit_deleted" };
    case "rejected":
      logs.uploadRejected(visitId, recorded.visit.error?.code ?? "unknown", upload.contentType, audio.sizeBytes);
      // A recording refused by a limit is kept: the retry button processes it once the limit allows.
      if (!recorded.visit.error?.retryable) {
        await discardObject(visitId, audio, "rejected");
        await markAudioDeleted(visitId, generation, p.now());
      }
      await announceOutcome(p, recorded.visit);
      return { outcome: "rejected", code: recorded.visit.error?.code ?? "unknown" };
    case "duplicate":
      logs.uploadDuplicate(visitId, generation, recorded.visit.status);
      // A redelivery may find the first delivery interrupted before it submitted; the attempt
      // claim inside submitTranscription keeps this to one paid submission either way.
      return {
        outcome: "duplicate",
        submission: recorded.visit.status === "pending" ? await submitTranscription(p, visitId, deadlineMs) : null,
      };
    case "started":
      logs.uploadAccepted(visitId, audio.contentType, audio.sizeBytes);
      return { outcome: "accepted", submission: await submitTranscription(p, visitId, deadlineMs) };
  }
}

/** Deletes exactly this object generation (a newer object at the same name is left alone). */
async function discardObject(visitId: string | null, audio: Pick<AudioRef, "bucket" | "path" | "generation">, reason: string): Promise<void> {
  const result = await deleteAudioGeneration(audio);
  logs.uploadObjectDeleted(visitId, reason, result);
}

function storedContentType(contentType: string | undefined): string {
  return normalizeMediaType(contentType?.replace(/[\u0000-\u001f\u007f]/g, ""))?.slice(0, 100) || "unknown";
}

/** Generations arrive as decimal strings (they exceed 2^53); anything else is treated as missing. */
function generationOf(value: unknown): string {
  if (typeof value === "string") return value.trim();
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return "";
}
