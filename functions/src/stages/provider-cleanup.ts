// Keeping data at AssemblyAI no longer than needed: once a visit's transcript is saved here (and
// whenever a recording or a visit is deleted), its transcripts are deleted there. A delete that
// fails never blocks the visit: it is recorded and the checker tries it again.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { openProviderGate } from "../steps/provider-call.js";
import { listWorkClaims } from "../store/claims.js";
import type { UnrecordedSubmission } from "../store/claims.js";
import { findProviderCleanupDue, settleProviderDeletes } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { asPipelineError } from "../visit/errors.js";
import type { Visit } from "../visit/model.js";

// A failed provider delete is tried again this much later by the checker.
export const PROVIDER_DELETE_RETRY_SECONDS = 600;

export interface ProviderDeletes {
  done: string[];
  failed: string[];
}

/** Deletes transcripts at AssemblyAI through the breaker; reports which are gone and which failed. */
export async function deleteAtAssemblyAi(
  p: Pipeline,
  visitId: string,
  transcriptIds: readonly string[],
  deadlineMs: number,
): Promise<ProviderDeletes> {
  const ids = [...new Set(transcriptIds)];
  if (ids.length === 0) return { done: [], failed: [] };
  const gate = await openProviderGate(p, "assemblyai", { visitId, deadlineMs });
  if (!gate.allowed) return { done: [], failed: ids };
  const result: ProviderDeletes = { done: [], failed: [] };
  for (const id of ids) {
    try {
      await gate.call("delete_transcript", () => p.speech().deleteTranscript(id));
      result.done.push(id);
    } catch (thrown) {
      logs.providerDeleteFailed(visitId, asPipelineError(thrown));
      result.failed.push(id);
    }
  }
  return result;
}

/**
 * The jobs that submissions whose answer was lost (outcome unknown, no job id) created, found by
 * the audio URL they sent, so that deleting the visit or recording deletes them too. Best effort:
 * a search that cannot run now is logged and skipped (the claims that knew the hashes are deleted).
 */
export async function findUnrecordedJobs(
  p: Pipeline,
  visitId: string,
  submissions: readonly UnrecordedSubmission[],
  deadlineMs: number,
): Promise<string[]> {
  if (submissions.length === 0) return [];
  const gate = await openProviderGate(p, "assemblyai", { visitId, deadlineMs });
  if (!gate.allowed) return [];
  const found: string[] = [];
  for (const { audioUrlSha256, claimedAt } of submissions) {
    try {
      const id = await gate.call("find_transcript", () => p.speech().findTranscriptByAudioUrl(new Set([audioUrlSha256]), claimedAt));
      if (id) found.push(id);
    } catch (thrown) {
      logs.providerDeleteFailed(visitId, asPipelineError(thrown));
    }
  }
  return found;
}

/**
 * Every job AssemblyAI holds that reads one of the visit's objects (its folder, by the audio URL),
 * created since `since`, whatever its status: what work racing the visit's deletion left there and
 * no record names — a submission whose answer was lost after its claim was erased, or whose
 * invocation died right after sending. Null when the search could not run (try again later).
 */
export async function findJobsReadingVisitObjects(
  p: Pipeline,
  visit: { visitId: string; userId: string },
  since: Date,
  deadlineMs: number,
): Promise<string[] | null> {
  const gate = await openProviderGate(p, "assemblyai", { visitId: visit.visitId, deadlineMs });
  if (!gate.allowed) return null;
  const folder = `users/${visit.userId}/visits/${visit.visitId}/`;
  try {
    return await gate.call("find_transcript", () => p.speech().findTranscriptsReadingObjects(folder, since));
  } catch (thrown) {
    logs.providerDeleteFailed(visit.visitId, asPipelineError(thrown));
    return null;
  }
}

/** This recording's jobs at AssemblyAI: the visit's own and any an earlier attempt created. */
async function recordingJobs(visit: Visit): Promise<string[]> {
  const generation = visit.audio?.generation;
  const claimed = (await listWorkClaims(visit.id, "transcription"))
    .filter((claim) => claim.generation === generation && claim.transcriptId !== null)
    .map((claim) => claim.transcriptId as string);
  return [...(visit.transcriptId ? [visit.transcriptId] : []), ...claimed];
}

/** After the transcript is saved: delete the recording's jobs at AssemblyAI (DELETE_PROVIDER_TRANSCRIPTS). */
export async function releaseProviderTranscripts(p: Pipeline, visit: Visit, deadlineMs: number): Promise<void> {
  if (!p.config.deleteProviderTranscripts) return;
  await settle(p, visit.id, await deleteAtAssemblyAi(p, visit.id, await recordingJobs(visit), deadlineMs));
}

export async function settle(p: Pipeline, visitId: string, result: ProviderDeletes): Promise<void> {
  const now = p.now();
  await settleProviderDeletes(visitId, { ...result, now, retryAt: addSeconds(now, PROVIDER_DELETE_RETRY_SECONDS) });
  if (result.done.length + result.failed.length > 0) logs.providerTranscriptsDeleted(visitId, result.done.length, result.failed.length);
}

/** The checker's part: provider deletes that failed before and are due again. */
export async function retryProviderDeletes(p: Pipeline, limit: number, deadlineMs: number): Promise<number> {
  const due = await findProviderCleanupDue(p.now(), limit);
  for (const visit of due) {
    await settle(p, visit.id, await deleteAtAssemblyAi(p, visit.id, visit.pendingProviderDeletes, deadlineMs));
  }
  return due.length;
}
