// Stage: everything stored about a user, as one JSON document streamed a visit at a time, so a
// user with hundreds of visits never has them all in memory at once. Recordings are not inlined:
// each one still kept comes as a download link valid for 15 minutes. An export that runs out of
// time ends with `complete: false` and the visit id to continue after (`?after=`).

import type { Pipeline } from "../pipeline.js";
import { listActionItems } from "../store/actions.js";
import { listSummaryParts } from "../store/summary-parts.js";
import { exportSummaryArtifacts } from "../store/summary-artifacts.js";
import { listDevices } from "../store/devices.js";
import { exportProfile } from "../store/profiles.js";
import { loadTranscript } from "../store/transcripts.js";
import { listUserVisits } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import type { Visit } from "../visit/model.js";

const PAGE_SIZE = 20;
export const AUDIO_LINK_SECONDS = 15 * 60;
// A page is not started this close to the deadline.
const PAGE_BUDGET_MS = 10_000;

export async function exportUserData(
  p: Pipeline,
  request: { uid: string; requestId: string; after?: string | null },
  write: (chunk: string) => Promise<void>,
  deadlineMs: number,
): Promise<{ visits: number; complete: boolean }> {
  await write(`{"format":"visit-pipeline-export/1","exportedAt":${JSON.stringify(p.now().toISOString())},"userId":${JSON.stringify(request.uid)},"visits":[`);
  let after = request.after ?? null;
  let count = 0;
  let complete = false;
  while (Date.now() < deadlineMs - PAGE_BUDGET_MS) {
    const page = await listUserVisits(request.uid, after, PAGE_SIZE);
    for (const visit of page) {
      await write(`${count > 0 ? "," : ""}${JSON.stringify(await exportVisit(p, visit))}`);
      count += 1;
      after = visit.id;
    }
    if (page.length < PAGE_SIZE) {
      complete = true;
      break;
    }
  }
  // Push registrations: which devices, not their tokens (a token is a credential for pushing to
  // the device, not data about the user). Listed in the first page of an export only.
  const devices = request.after ? null : (await listDevices(request.uid)).map((device) => ({ platform: device.platform, registeredAt: device.updatedAt }));
  // The profile (the preferred language) likewise, in the first page.
  const profile = request.after ? { included: false, reason: "listed in the export's first page" } : { included: true, profile: await exportProfile(request.uid) };
  await write(
    `],"devices":${JSON.stringify(devices === null ? { included: false, reason: "listed in the export's first page" } : { included: true, tokens: false, items: devices })}` +
      `,"profile":${JSON.stringify(profile)}` +
      `,"complete":${complete},"resumeAfter":${JSON.stringify(complete ? null : after)},"requestId":${JSON.stringify(request.requestId)}}`,
  );
  return { visits: count, complete };
}

async function exportVisit(p: Pipeline, visit: Visit) {
  const audio = visit.audio;
  const transcript = audio ? await loadTranscript(visit.id, audio.generation) : null;
  const { clinicianNote: note, summaryTranslation: translation } = await exportSummaryArtifacts(visit.id);
  const keptAudio = audio && !audio.deletedAt ? audio : null;
  return {
    visitId: visit.id,
    status: visit.status,
    createdAt: visit.createdAt,
    updatedAt: visit.updatedAt,
    error: visit.error,
    history: visit.history,
    recording: audio && {
      fileName: audio.fileName,
      contentType: audio.contentType,
      sizeBytes: audio.sizeBytes,
      deletedAt: audio.deletedAt,
      downloadUrl: keptAudio ? await p.signAudioUrl(keptAudio, addSeconds(p.now(), AUDIO_LINK_SECONDS)) : null,
      downloadUrlExpiresInSeconds: keptAudio ? AUDIO_LINK_SECONDS : null,
    },
    transcriptInfo: visit.transcript,
    transcript: transcript && { languageCode: transcript.languageCode, text: transcript.text, utterances: transcript.utterances, speakerRoles: transcript.speakerRoles },
    summary: visit.summary,
    summaryModel: visit.summaryModel,
    summaryModels: visit.summaryModels,
    summaryParts: visit.summaryParts,
    summaryTranslation: translation && { language: translation.language, model: translation.model, summary: translation.summary },
    clinicianNote: note && { format: note.format, model: note.model, parts: note.parts, note: note.note },
    // Parts of a summary still being written (they are deleted once it is saved).
    unmergedSummaryParts: await listSummaryParts(visit.id),
    actionItems: await listActionItems(visit.id),
  };
}
