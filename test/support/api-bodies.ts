// The API's response bodies as docs/api.md and the lifecycle design define them, for the tests that call it.

export interface ApiErrorBody {
  error: { code: string; message: string; requestId: string; retryAfterSeconds?: number };
}

export interface RetryAcceptedBody {
  visitId: string;
  status: string;
  resumedStage: string;
  retryCount: number;
  requestId: string;
}

/** What a deletion removed, by kind (`removed` in the deletion answers). */
export interface DeletionCountsBody {
  visit: number;
  transcriptDocuments: number;
  claims: number;
  actionItems: number;
  rateLimits: number;
  storageObjects: number;
  providerTranscripts: number;
}

/** `200` of `DELETE /visits/{visitId}`. */
export interface VisitDeletedBody {
  visitId: string;
  deleted: true;
  alreadyDeleted: boolean;
  removed: DeletionCountsBody;
  pendingProviderDeletes: number;
  requestId: string;
}

/** `200` (complete) or `202` (continued by the checker) of `DELETE /me`. */
export interface UserDataDeletedBody {
  visits: number;
  removed: DeletionCountsBody;
  pendingProviderDeletes: number;
  /** Push registrations (`users/{uid}/devices`) removed. */
  devices: number;
  /** The profile (`users/{uid}`) removed: 1 or 0. */
  profile: number;
  /** Upload-limit slots (`uploadSlots`, `activeSlots`) removed. */
  limitSlots: number;
  complete: boolean;
  requestId: string;
}

/** One visit of `GET /me/export`. */
export interface ExportedVisitBody {
  visitId: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  error: { stage: string; code: string; retryable: boolean } | null;
  history: { status: string; event: string }[];
  recording: {
    fileName: string;
    contentType: string;
    sizeBytes: number;
    deletedAt: string | null;
    downloadUrl: string | null;
    downloadUrlExpiresInSeconds: number | null;
  } | null;
  transcriptInfo: Record<string, unknown> | null;
  transcript: { languageCode: string | null; text: string; utterances: { speaker: string | null; text: string }[]; speakerRoles: unknown[] | null } | null;
  summary: { overview: string; actionItems: unknown[]; speakers: unknown[] } | null;
  summaryModel: string | null;
  summaryModels: string[];
  summaryParts: number | null;
  summaryTranslation: { language: string; model: string; summary: unknown } | null;
  clinicianNote: { format: string; model: string; parts: number; note: unknown } | null;
  unmergedSummaryParts: { document: string; generation: string; from: number; to: number; model: string | null; summary: unknown; note: unknown }[];
  actionItems: Record<string, unknown>[];
}

/** `200` of `GET /me/export` (streamed; parsed once complete). */
export interface ExportBody {
  format: string;
  exportedAt: string;
  userId: string;
  visits: ExportedVisitBody[];
  complete: boolean;
  resumeAfter: string | null;
  /** The caller's profile, in a first export. */
  profile: { included: true; profile: { preferredLanguage: string | null } | null } | { included: false; reason: string };
  requestId: string;
}
