// Idempotency keys for paid or irreversible work. A key is claimed with create(), which every
// Firestore (and the embedded emulator) enforces atomically: of any number of concurrent or
// repeated deliveries, exactly one gets to make the call the key names.

import { SUBCOLLECTIONS, isAlreadyExists } from "./db.js";
import { visitRef } from "./visits.js";

export type ClaimStage = "transcription" | "summarization" | "check" | "retry";

export interface ClaimInput {
  visitId: string;
  /** Unique per unit of work, e.g. workClaimKey(…) or `check-<dueTimeMs>`. */
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
/** `unknown`: sent, outcome not known; `not_created`: a later search found no job from it. */
export type ClaimResult = "succeeded" | "failed" | "unknown" | "recovered" | "not_created";

export async function recordClaimOutcome(
  visitId: string,
  key: string,
  outcome: { result: ClaimResult; code?: string; transcriptId?: string; now: Date },
): Promise<void> {
  await claimRef(visitId, key).set(
    { outcome: outcome.result, code: outcome.code ?? null, transcriptId: outcome.transcriptId, finishedAt: outcome.now },
    { merge: true },
  );
}

/** Noted before a submission is sent, so a job it may have created can be found later. */
export async function recordSubmittedAudioUrlHash(visitId: string, key: string, audioUrlSha256: string): Promise<void> {
  await claimRef(visitId, key).set({ audioUrlSha256 }, { merge: true });
}

/**
 * One unit of work of a stage, unique per recording (object generation), per retry round (the
 * visit's retryCount when it started) and per automatic attempt within the round.
 */
export interface WorkKey {
  stage: "transcription" | "summarization";
  generation: string;
  round: number;
  attempt: number;
}

export function workClaimKey(work: WorkKey): string {
  return `${work.stage}-${work.generation}-r${work.round}-${work.attempt}`;
}

export interface StoredClaim {
  key: string;
  stage: ClaimStage;
  attempt: number;
  claimedAt: Date;
  outcome: ClaimResult | null;
  audioUrlSha256: string | null;
}

/** The claims of one stage of a visit (a handful per recording). */
export async function listClaims(visitId: string, stage: ClaimStage): Promise<StoredClaim[]> {
  const snapshot = await visitRef(visitId).collection(SUBCOLLECTIONS.claims).where("stage", "==", stage).get();
  return snapshot.docs.map((doc) => {
    const data = doc.data();
    const claimedAt = data.claimedAt as { toDate?: () => Date } | undefined;
    return {
      key: doc.id,
      stage,
      attempt: typeof data.attempt === "number" ? data.attempt : 0,
      claimedAt: claimedAt?.toDate ? claimedAt.toDate() : new Date(0),
      outcome: (data.outcome ?? null) as ClaimResult | null,
      audioUrlSha256: typeof data.audioUrlSha256 === "string" ? data.audioUrlSha256 : null,
    };
  });
}
