// Stage: a recording landed in Cloud Storage. Decide whether it is ours and acceptable, record
// it on its visit, and hand it to transcription. Returns as soon as AssemblyAI has the job.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { recordUpload } from "../store/visits.js";
import type { UploadOutcome } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { visitError } from "../visit/errors.js";
import type { AudioRef } from "../visit/model.js";
import { normalizeMediaType, parseObjectSize, parseVisitUploadPath, validateUpload } from "../visit/upload.js";
import { submitTranscription } from "./submit-transcription.js";
import type { StepOutcome } from "../steps/paid-step.js";

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
  if (!parsed.ok) {
    logs.uploadIgnored(parsed.reason, object.bucket, generation);
    return { outcome: "ignored", reason: parsed.reason };
  }
  if (!/^\d+$/.test(generation)) {
    logs.uploadIgnored("missing_generation", object.bucket, generation);
    return { outcome: "ignored", reason: "missing_generation" };
  }
  const { uid, visitId, fileName } = parsed.path;
  const sizeBytes = parseObjectSize(object.size);
  const validation = validateUpload({ contentType: object.contentType, sizeBytes }, p.config.maxUploadBytes);
  const audio: AudioRef = {
    bucket: object.bucket,
    path: object.name,
    fileName,
    contentType: validation.ok ? validation.contentType : (normalizeMediaType(object.contentType) ?? "unknown"),
    sizeBytes: Number.isFinite(sizeBytes) ? sizeBytes : 0,
    generation,
  };
  const recorded = await recordUpload({
    visitId,
    userId: uid,
    audio,
    rejection: validation.ok ? null : visitError("upload", validation.code),
    now: p.now(),
    deadlineAt: addSeconds(p.now(), p.config.visitDeadlineHours * 3600),
  });

  return reportUpload(p, recorded, { visitId, generation, audio, contentType: object.contentType }, deadlineMs);
}

/** Logs what recording the upload did, and hands a new (or not yet submitted) recording to transcription. */
async function reportUpload(
  p: Pipeline,
  recorded: UploadOutcome,
  upload: { visitId: string; generation: string; audio: AudioRef; contentType: string | undefined },
  deadlineMs: number,
): Promise<UploadResult> {
  const { visitId, generation, audio } = upload;
  switch (recorded.kind) {
    case "owner_mismatch":
      logs.uploadOwnerMismatch(visitId);
      return { outcome: "ignored", reason: "owner_mismatch" };
    case "busy":
      logs.uploadVisitBusy(visitId, recorded.status);
      return { outcome: "ignored", reason: "visit_busy" };
    case "rejected":
      logs.uploadRejected(visitId, recorded.visit.error?.code ?? "unknown", upload.contentType, audio.sizeBytes);
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

/** Generations arrive as decimal strings (they exceed 2^53); anything else is treated as missing. */
function generationOf(value: unknown): string {
  if (typeof value === "string") return value.trim();
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return "";
}
