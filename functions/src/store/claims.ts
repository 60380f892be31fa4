// Idempotency keys for paid or irreversible work. A key is claimed with create(), which every
// Firestore (and the embedded emulator) enforces atomically: of any number of concurrent or
// repeated deliveries, exactly one gets to make the call the key names.

import { FieldValue } from "firebase-admin/firestore";
import { SUBCOLLECTIONS, isAlreadyExists } from "./db.js";
import { visitRef } from "./visits.js";

export type ClaimStage = "transcription" | "summarization" | "poll" | "retry";

export interface ClaimInput {
  visitId: string;
  /** Unique per unit of work, e.g. `transcription-<generation>-<attempt>`. */
  key: string;
  stage: ClaimStage;
  attempt: number;
  owner: string;
  now: Date;
  expiresAt: Date;
}

function claimRef(visitId: string, key: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.claims).doc(key);
}

/** True when this caller now owns the key; false when someone already claimed it. */
export async function claimKey(input: ClaimInput): Promise<boolean> {
  try {
    await claimRef(input.visitId, input.key).create({
      stage: input.stage,
      attempt: input.attempt,
      owner: input.owner,
      claimedAt: input.now,
      expiresAt: input.expiresAt,
      outcome: null,
    });
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

/**
 * Records what the claimed call produced (e.g. the transcript id), so that work done by an
 * attempt that then lost its lease can still be found.
 */
export async function recordClaimOutcome(
  visitId: string,
  key: string,
  outcome: { result: "succeeded" | "failed"; code?: string; transcriptId?: string; now: Date },
): Promise<void> {
  await claimRef(visitId, key).set(
    {
      outcome: outcome.result,
      code: outcome.code ?? null,
      transcriptId: outcome.transcriptId ?? FieldValue.delete(),
      finishedAt: outcome.now,
    },
    { merge: true },
  );
}

export function transcriptionClaimKey(generation: string, attempt: number): string {
  return `transcription-${generation}-${attempt}`;
}

export function summarizationClaimKey(attempt: number): string {
  return `summarization-${attempt}`;
}
