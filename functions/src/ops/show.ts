// `ops show`: one visit as an operator needs it — status history, attempts, lease, errors, cost,
// audit. Never transcript or summary text, never the recording's object name or a URL.

import { getVisit } from "../store/visits.js";
import { scanCreatedSince } from "./scan.js";
import type { ScanProgress } from "./scan.js";
import type { AuditEntry, Visit } from "../visit/model.js";
import { STATUS_TIME_FIELD } from "../visit/status.js";
import type { VisitStatus } from "../visit/status.js";

const iso = (date: Date | null) => date?.toISOString() ?? null;

export type VisitView = ReturnType<typeof viewOf>;

/** The operator's view of a visit: only ids, statuses, codes, counts and times. Pure. */
export function viewOf(visit: Visit) {
  return {
    visitId: visit.id,
    userId: visit.userId,
    status: visit.status,
    createdAt: iso(visit.createdAt),
    updatedAt: iso(visit.updatedAt),
    statusTimes: Object.fromEntries(Object.values(STATUS_TIME_FIELD).map((field) => [field, iso(visit[field])])),
    history: visit.history.map((entry) => ({ status: entry.status, event: entry.event, at: iso(entry.at), code: entry.code })),
    attempts: visit.attempts,
    retryCount: visit.retryCount,
    checks: visit.checks,
    summaryDispatches: visit.summaryDispatches,
    lease: visit.lease ? { ...visit.lease, expiresAt: iso(visit.lease.expiresAt) } : null,
    nextCheckAt: iso(visit.nextCheckAt),
    deadlineAt: iso(visit.deadlineAt),
    error: visit.error ? { stage: visit.error.stage, code: visit.error.code, retryable: visit.error.retryable } : null,
    transcriptId: visit.transcriptId,
    // The recording without its object name (file names can identify a patient).
    recording: visit.audio
      ? { contentType: visit.audio.contentType, sizeBytes: visit.audio.sizeBytes, generation: visit.audio.generation, deletedAt: iso(visit.audio.deletedAt) }
      : null,
    transcript: visit.transcript
      ? {
          languageCode: visit.transcript.languageCode,
          audioDurationSeconds: visit.transcript.audioDurationSeconds,
          utteranceCount: visit.transcript.utteranceCount,
          speakerCount: visit.transcript.speakerCount,
          characterCount: visit.transcript.characterCount,
          providerDeletedAt: iso(visit.transcript.providerDeletedAt),
        }
      : null,
    hasSummary: visit.summary !== null,
    summaryModel: visit.summaryModel,
    // What was asked for beside the summary, and whether it is written: language, state, model only.
    summaryTranslation: visit.summaryTranslation,
    clinicianNote: visit.clinicianNote,
    actionItemCount: visit.actionItemCount,
    cost: visit.cost,
    audit: visit.audit.map((entry: AuditEntry) => ({ ...entry, at: iso(entry.at) })),
    pendingProviderDeletes: visit.pendingProviderDeletes.length,
    audioExpiresAt: iso(visit.audioExpiresAt),
    parkedAt: iso(visit.parkedAt),
  };
}

export async function showVisit(visitId: string): Promise<VisitView | null> {
  const visit = await getVisit(visitId);
  return visit ? viewOf(visit) : null;
}

export interface ListedVisit {
  visitId: string;
  status: VisitStatus;
  errorCode: string | null;
  createdAt: string;
}

/** Visits created since `since` in a status (and with an error code), oldest first. */
export async function listVisits(
  filter: { status: VisitStatus; code: string | null; since: Date },
  options: { progress?: ScanProgress } = {},
): Promise<ListedVisit[]> {
  const scan = await scanCreatedSince(filter.since, options);
  return scan.visits
    .filter((visit) => visit.status === filter.status && (filter.code === null || visit.error?.code === filter.code))
    .map((visit) => ({ visitId: visit.id, status: visit.status, errorCode: visit.error?.code ?? null, createdAt: visit.createdAt.toISOString() }));
}
