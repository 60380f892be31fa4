// A new recording uploaded into a failed visit replaces the earlier one entirely: its transcript
// (and pages), action items, claims, audio object and AssemblyAI jobs are deleted before the new
// recording is recorded. Idempotent, so a delivery that fails half-way is simply retried.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { deleteActionItems } from "../store/actions.js";
import { deleteAudioGeneration } from "../store/audio-objects.js";
import { deleteClaims } from "../store/claims.js";
import { deleteTranscripts } from "../store/transcripts.js";
import { markAudioDeleted } from "../store/visits.js";
import type { Visit } from "../visit/model.js";
import { deleteAtAssemblyAi, findUnrecordedJobs, settle } from "./provider-cleanup.js";

export async function supersedeRecording(p: Pipeline, visit: Visit, newGeneration: string, deadlineMs: number): Promise<void> {
  const old = visit.audio;
  if (!old || old.generation === newGeneration) return;
  // Marked first, so a retry racing this upload answers audio_deleted instead of resubmitting it.
  await markAudioDeleted(visit.id, old.generation, p.now());
  const [transcriptDocuments, claims, actionItems, audio] = await Promise.all([
    deleteTranscripts(visit.id, newGeneration),
    deleteClaims(visit.id, old.generation),
    deleteActionItems(visit.id),
    old.deletedAt ? Promise.resolve("already_gone" as const) : deleteAudioGeneration(old),
  ]);
  const lostAnswers = await findUnrecordedJobs(p, visit.id, claims.unrecorded, deadlineMs);
  const jobs = [...(visit.transcriptId ? [visit.transcriptId] : []), ...claims.transcriptIds, ...visit.pendingProviderDeletes, ...lostAnswers];
  const provider = await deleteAtAssemblyAi(p, visit.id, jobs, deadlineMs);
  await settle(p, visit.id, provider);
  logs.recordingSuperseded(visit.id, {
    transcriptDocuments,
    claims: claims.count,
    actionItems,
    audioObjects: audio === "deleted" ? 1 : 0,
    providerTranscripts: provider.done.length,
  });
}
