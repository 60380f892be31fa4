// Stage: audio retention (AUDIO_RETENTION_DAYS). Recordings past their retention are deleted from
// Storage and the visit says so (`audio.deletedAt`); the transcript and summary stay. A retry
// that would need the recording then answers `audio_deleted` instead of submitting a dead URL.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { deleteAudioGeneration } from "../store/audio-objects.js";
import { findAudioPastRetention, markAudioDeleted } from "../store/visits.js";
import { PROCESSING_STATUSES } from "../visit/status.js";

export interface RetentionReport {
  deleted: number;
  /** Visits still processing their recording: their deletion waits for the next run. */
  deferred: number;
}

const PAGE_SIZE = 100;

export async function deleteExpiredRecordings(p: Pipeline, deadlineMs: number): Promise<RetentionReport> {
  const report: RetentionReport = { deleted: 0, deferred: 0 };
  const deferred = new Set<string>();
  while (Date.now() < deadlineMs) {
    const due = (await findAudioPastRetention(p.now(), PAGE_SIZE + deferred.size)).filter((visit) => !deferred.has(visit.id));
    if (due.length === 0) break;
    for (const visit of due) {
      const audio = visit.audio;
      // A recording still being transcribed is needed a little longer; it goes on the next run.
      if (PROCESSING_STATUSES.has(visit.status) && visit.status !== "summarizing") {
        deferred.add(visit.id);
        continue;
      }
      const result = audio && !audio.deletedAt ? await deleteAudioGeneration(audio) : "already_gone";
      if (audio) await markAudioDeleted(visit.id, audio.generation, p.now());
      logs.audioRetentionDeleted(visit.id, result);
      report.deleted += 1;
    }
    if (due.length < PAGE_SIZE) break;
  }
  report.deferred = deferred.size;
  return report;
}
