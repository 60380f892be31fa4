// The visit document (docs/data-model.md) parsed with zod at the edge: the fields the app uses, timestamps as Dates.

import { z } from "zod";
import { PIPELINE_STAGES, STATUS_TIME_FIELD, VISIT_STATUSES } from "./contract.js";
import type { VisitError, VisitStatus } from "./contract.js";

/** Firestore Timestamps (anything with `toMillis()`) and Dates, as a Date. */
const TimestampSchema = z
  .custom<{ toMillis(): number } | Date>(
    (value) => value instanceof Date || (typeof value === "object" && value !== null && "toMillis" in value && typeof value.toMillis === "function"),
    "expected a timestamp",
  )
  .transform((value) => (value instanceof Date ? value : new Date(value.toMillis())));

const OptionalTimestamp = TimestampSchema.nullish().transform((value) => value ?? null);

export const VisitErrorSchema = z.object({
  stage: z.enum(PIPELINE_STAGES),
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
}) satisfies z.ZodType<VisitError>;

const VisitDocumentSchema = z.object({
  status: z.enum(VISIT_STATUSES),
  error: VisitErrorSchema.nullish().transform((value) => value ?? null),
  // Only its presence matters here; the text is in the transcript artifact.
  transcript: z.record(z.string(), z.unknown()).nullish().transform((value) => value !== null && value !== undefined),
  updatedAt: OptionalTimestamp,
  pendingAt: OptionalTimestamp,
  transcribingAt: OptionalTimestamp,
  summarizingAt: OptionalTimestamp,
  partialAt: OptionalTimestamp,
  completedAt: OptionalTimestamp,
  failedAt: OptionalTimestamp,
});

type ParsedVisitDocument = z.infer<typeof VisitDocumentSchema>;

export interface VisitDocument {
  status: VisitStatus;
  error: VisitError | null;
  hasTranscript: boolean;
  updatedAt: Date | null;
  /** When the visit entered its current status (`<status>At`), if recorded. */
  statusEnteredAt: Date | null;
}

export type VisitDocumentParse = { ok: true; visit: VisitDocument } | { ok: false; message: string };

export function parseVisitDocument(data: unknown): VisitDocumentParse {
  const parsed = VisitDocumentSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, message: `The visit document is not readable: ${issue ? `${issue.path.join(".") || "document"}: ${issue.message}` : "invalid"}` };
  }
  return { ok: true, visit: toVisitDocument(parsed.data) };
}

function toVisitDocument(doc: ParsedVisitDocument): VisitDocument {
  return {
    status: doc.status,
    error: doc.error,
    hasTranscript: doc.transcript,
    updatedAt: doc.updatedAt,
    statusEnteredAt: doc[STATUS_TIME_FIELD[doc.status]],
  };
}
