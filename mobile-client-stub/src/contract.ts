// The parts of the pipeline's contract the app relies on, restated so this folder can be copied into an app.

// Source of truth: docs/data-model.md, functions/src/visit/status.ts (statuses, their time fields,
// resume stages), functions/src/visit/errors.ts (the stored error), functions/src/visit/upload.ts
// (visit ids, file names, the upload path), functions/src/visit/summary.ts and clinician-note.ts
// (speaker roles, the note's sections), functions/src/visit/language.ts (preferred languages),
// storage.rules (upload size, content type) and firestore.rules (the profile). This folder must not
// import functions/; test/contract.test.ts fails when this file drifts from them.

export const VISIT_STATUSES = ["pending", "transcribing", "summarizing", "partial", "completed", "failed"] as const;
export type VisitStatus = (typeof VISIT_STATUSES)[number];

/** Statuses the pipeline never leaves on its own (only a retry or a new upload moves them). */
export const TERMINAL_STATUSES: ReadonlySet<VisitStatus> = new Set(["completed", "partial", "failed"]);
/** Statuses in which the pipeline is working and the retry endpoint answers `already_processing`. */
export const PROCESSING_STATUSES: ReadonlySet<VisitStatus> = new Set(["pending", "transcribing", "summarizing"]);

/** The visit field recording when the visit last entered each status. */
export const STATUS_TIME_FIELD = {
  pending: "pendingAt",
  transcribing: "transcribingAt",
  summarizing: "summarizingAt",
  partial: "partialAt",
  completed: "completedAt",
  failed: "failedAt",
} as const satisfies Record<VisitStatus, string>;

export const PIPELINE_STAGES = ["upload", "transcription", "summarization"] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/**
 * `visit.error`. `code` stays a plain string here: the backend may add codes, and an app already
 * in users' hands must still show the (safe) message and honour `retryable` for them.
 */
export interface VisitError {
  stage: PipelineStage;
  code: string;
  message: string;
  retryable: boolean;
}

/** The stage a retry resumes (the retry endpoint's `resumedStage`). */
export const RESUME_STAGES = ["transcription", "transcript_checkpoint", "summarization"] as const;
export type ResumeStage = (typeof RESUME_STAGES)[number];

/** storage.rules: `request.resource.size <= 250 * 1024 * 1024` (and the MAX_UPLOAD_BYTES param). */
export const MAX_UPLOAD_BYTES = 250 * 1024 * 1024;

// Visit ids are Firestore document ids and Cloud Tasks task ids; Firestore auto-ids qualify.
export const VISIT_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
// The functions refuse object names with a slash or control characters in the file name.
export const FILE_NAME_PATTERN = /^[^/\u0000-\u001f\u007f]{1,255}$/;

/** Also excludes `__name__`-style ids, which Firestore reserves. */
export function isValidVisitId(visitId: string): boolean {
  return VISIT_ID_PATTERN.test(visitId) && !/^__.*__$/.test(visitId);
}

export function isValidFileName(fileName: string): boolean {
  return FILE_NAME_PATTERN.test(fileName) && fileName !== "." && fileName !== "..";
}

/** The only object layout the upload trigger accepts. */
export function visitAudioPath(uid: string, visitId: string, fileName: string): string {
  return `users/${uid}/visits/${visitId}/${fileName}`;
}

/** Who a speaker label is (`visit.summary.speakers`, the transcript artifact's `speakerRoles`). */
export const SPEAKER_ROLES = ["clinician", "patient", "caregiver", "interpreter", "other", "unknown"] as const;
export type SpeakerRoleName = (typeof SPEAKER_ROLES)[number];
/** `stated`: the recording says so; `inferred`: from what they say. Null with `unknown`. */
export const ROLE_CERTAINTIES = ["stated", "inferred"] as const;
export type RoleCertainty = (typeof ROLE_CERTAINTIES)[number];

/** `visit.summaryTranslation.state` / `visit.clinicianNote.state`: asked for, and whether it is written. */
export const SUMMARY_EXTRA_STATES = ["requested", "saved"] as const;

/** The SOAP note's sections, in order (the `clinician-note` artifact's `note`). */
export const NOTE_SECTIONS = ["subjective", "objective", "assessment", "plan"] as const;

/** The artifacts of a visit the app reads besides the visit (`visits/{visitId}/artifacts/{id}`). */
export const ARTIFACT_IDS = { transcript: "transcript", translation: "summary-translation", clinicianNote: "clinician-note" } as const;

/** What `users/{uid}.preferredLanguage` may be (firestore.rules refuse anything else): ISO 639-1. */
export const PREFERRED_LANGUAGE_CODES: readonly string[] = [
  "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bi", "bm", "bn", "bo", "br",
  "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et",
  "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht",
  "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj", "kk",
  "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln", "lo", "lt", "lu", "lv", "mg",
  "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny",
  "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se",
  "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk",
  "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo",
  "za", "zh", "zu",
];

export function isPreferredLanguageCode(value: string): boolean {
  return PREFERRED_LANGUAGE_CODES.includes(value);
}
