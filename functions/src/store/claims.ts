// Idempotency keys for paid or irreversible work. A key is claimed with create(), which every
// Firestore (and the embedded emulator) enforces atomically: of any number of concurrent or
// repeated deliveries, exactly one gets to make the call the key names. The key formats are
// built here and nowhere else; what is counted later (paid attempts, suspects) is read from the
// claim's fields, never parsed back out of its key.

import { FieldValue, Timestamp } from "firebase-admin/firestore";
import type { Transaction } from "firebase-admin/firestore";
import { z } from "zod";
import type { LeaseStage } from "../visit/model.js";
import { SUBCOLLECTIONS, deleteDocuments, isAlreadyExists, isNotFound } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { visitRef } from "./visits.js";

/** `unknown`: sent, outcome not known; `not_created`: a later search found no job from it; `discarded`: it succeeded, but its result was fenced off (another attempt had moved the visit on). */
export const CLAIM_RESULTS = ["succeeded", "failed", "unknown", "recovered", "not_created", "discarded"] as const;
export type ClaimResult = (typeof CLAIM_RESULTS)[number];

/**
 * One unit of a stage's paid work: unique per recording (object generation), per retry round
 * (the visit's retryCount when it started) and per automatic attempt within the round.
 */
export type WorkKey = {
  stage: LeaseStage;
  generation: string;
  round: number;
  attempt: number;
};

export type Claim = WorkKey & {
  owner: string;
  claimedAt: Date;
  expiresAt: Date;
  /** When the paid request was about to leave (set before it is sent): this attempt was paid for. */
  sentAt: Date | null;
  /** Paid requests the attempt sent (a summary written in parts sends one per part). */
  paidCalls: number;
  /** SHA-256 of the signed audio URL a submission sent, to find the job it may have created. */
  audioUrlSha256: string | null;
  outcome: ClaimResult | null;
  code: string | null;
  /** What the paid call produced that the visit needs again if its checkpoint was lost. */
  transcriptId: string | null;
  finishedAt: Date | null;
  /** Firestore's TTL policy may delete the claim after this (firestore.indexes.json). */
  purgeAt: Date | null;
};

/** A check, retry or notification claim: one caller per due time, per retry round and time slot, or per outcome. */
type GateClaim = { stage: "check" | "retry" | "notify"; owner: string; claimedAt: Date; expiresAt: Date; purgeAt: Date | null };

/** Who claims, until when the claim holds, and when its document may be purged. */
export interface ClaimHolder {
  owner: string;
  now: Date;
  expiresAt: Date;
  purgeAt: Date;
}

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? null);

const ClaimSchema = z
  .object({
  stage: z.enum(["transcription", "summarization"]),
  generation: z.string(),
  round: z.number(),
  attempt: z.number(),
  owner: z.string(),
  claimedAt: z.date(),
  expiresAt: z.date(),
  sentAt: nullable(z.date()),
  // Claims written before the count: a sent one made one call.
  paidCalls: z.number().nullish().transform((value) => value ?? null),
  audioUrlSha256: nullable(z.string()),
  outcome: nullable(z.enum(CLAIM_RESULTS)),
  code: nullable(z.string()),
  transcriptId: nullable(z.string()),
  finishedAt: nullable(z.date()),
  purgeAt: nullable(z.date()),
  })
  .transform(({ paidCalls, ...claim }) => ({ ...claim, paidCalls: paidCalls ?? (claim.sentAt ? 1 : 0) })) satisfies z.ZodType<Claim, unknown>;

const GateClaimSchema = z.object({
  stage: z.enum(["check", "retry", "notify"]),
  owner: z.string(),
  claimedAt: z.date(),
  expiresAt: z.date(),
  purgeAt: nullable(z.date()),
}) satisfies z.ZodType<GateClaim, unknown>;

const claimConverter = typedConverter<Claim>("claims", ClaimSchema);
const gateClaimConverter = typedConverter<GateClaim>("claims", GateClaimSchema);

function claims(visitId: string) {
  return visitRef(visitId).collection(SUBCOLLECTIONS.claims);
}

function workKey(work: WorkKey): string {
  return `${work.stage}-${work.generation}-r${work.round}-${work.attempt}`;
}

function workRef(visitId: string, work: WorkKey) {
  return claims(visitId).doc(workKey(work)).withConverter(claimConverter);
}

async function createOnce(create: () => Promise<unknown>): Promise<boolean> {
  try {
    await create();
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

/** True when this caller now owns the unit of work; false when someone already claimed it. */
export function claimWork(visitId: string, work: WorkKey, holder: ClaimHolder): Promise<boolean> {
  const claim: Claim = {
    ...work,
    owner: holder.owner,
    claimedAt: holder.now,
    expiresAt: holder.expiresAt,
    sentAt: null,
    paidCalls: 0,
    audioUrlSha256: null,
    outcome: null,
    code: null,
    transcriptId: null,
    finishedAt: null,
    purgeAt: holder.purgeAt,
  };
  return createOnce(() => workRef(visitId, work).create(claim));
}

/** An update of a claim that is gone with its deleted visit changes nothing and is not an error. */
async function updateUnlessDeleted(update: () => Promise<unknown>): Promise<void> {
  try {
    await update();
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/**
 * Noted before each paid request is sent, so the attempt counts as paid and its result can be
 * looked for; written in the commit that accounts the call in the visit's cost (store/costs.ts).
 */
export function writeWorkSent(tx: Transaction, visitId: string, work: WorkKey, sent: { now: Date; audioUrlSha256?: string }): void {
  tx.update(workRef(visitId, work), {
    sentAt: sent.now,
    paidCalls: FieldValue.increment(1),
    ...(sent.audioUrlSha256 ? { audioUrlSha256: sent.audioUrlSha256 } : {}),
  });
}

/** The claim's document name: cost ledger entries of a unit of work are named after it. */
export function workKeyOf(work: WorkKey): string {
  return workKey(work);
}

export function recordWorkOutcome(
  visitId: string,
  work: WorkKey,
  outcome: { result: ClaimResult; code?: string; transcriptId?: string; now: Date },
): Promise<void> {
  return updateUnlessDeleted(() =>
    workRef(visitId, work).update({
      outcome: outcome.result,
      code: outcome.code ?? null,
      finishedAt: outcome.now,
      ...(outcome.transcriptId ? { transcriptId: outcome.transcriptId } : {}),
    }),
  );
}

/** Paid provider calls made for a visit so far: the requests sent by attempts of any stage, round or recording. */
export async function countPaidCalls(visitId: string): Promise<number> {
  return paidCallsOf(await listAllWorkClaims(visitId));
}

export function paidCallsOf(workClaims: readonly Claim[]): number {
  return workClaims.reduce((sum, claim) => sum + claim.paidCalls, 0);
}

/** Every work claim of a visit, of both stages (a handful per recording and round). */
export async function listAllWorkClaims(visitId: string): Promise<Claim[]> {
  const snapshot = await claims(visitId).withConverter(claimConverter).where("stage", "in", ["transcription", "summarization"]).get();
  return snapshot.docs.map((doc) => doc.data());
}

/** The work claims of one stage of a visit (a handful per recording). */
export async function listWorkClaims(visitId: string, stage: LeaseStage): Promise<Claim[]> {
  const snapshot = await claims(visitId).withConverter(claimConverter).where("stage", "==", stage).get();
  return snapshot.docs.map((doc) => doc.data());
}

/**
 * One checker per due time: overlapping checker runs read the same due time, so exactly one of
 * them gets the visit.
 */
export function claimCheck(visitId: string, dueAt: Date, holder: ClaimHolder): Promise<boolean> {
  const claim: GateClaim = { stage: "check", owner: holder.owner, claimedAt: holder.now, expiresAt: holder.expiresAt, purgeAt: holder.purgeAt };
  return createOnce(() => claims(visitId).doc(`check-${dueAt.getTime()}`).withConverter(gateClaimConverter).create(claim));
}

/** One retry per round and time slot, however many clicks race. */
export function claimRetry(
  visitId: string,
  retry: { round: number; slot: number },
  holder: ClaimHolder,
): Promise<boolean> {
  const claim: GateClaim = { stage: "retry", owner: holder.owner, claimedAt: holder.now, expiresAt: holder.expiresAt, purgeAt: holder.purgeAt };
  return createOnce(() =>
    claims(visitId).doc(`retry-${retry.round}-${retry.slot}`).withConverter(gateClaimConverter).create(claim),
  );
}

/** Which outcome of which recording and round a notification announces: one send per key. */
export type NotificationKey = { generation: string; round: number; status: string };

/**
 * One outcome notification per recording, retry round and terminal status, however many
 * invocations see the visit end (the checker, a duplicate task, a retry racing it).
 */
export function claimNotification(visitId: string, key: NotificationKey, holder: ClaimHolder): Promise<boolean> {
  const claim: GateClaim = { stage: "notify", owner: holder.owner, claimedAt: holder.now, expiresAt: holder.expiresAt, purgeAt: holder.purgeAt };
  return createOnce(() =>
    claims(visitId).doc(`notify-${key.generation}-r${key.round}-${key.status}`).withConverter(gateClaimConverter).create(claim),
  );
}

/**
 * Which new recording replaces a visit's recording: `recording-{replaced generation}`, holding the
 * new recording's generation. Of several uploads racing to replace one failed recording, exactly
 * one gets to delete it and take its place; the others look again once the winner is recorded.
 * It carries the new recording's generation, so it goes with that recording's claims when that
 * one is replaced in turn.
 */
type ReplacementClaim = { stage: "recording"; generation: string; replaces: string; owner: string; claimedAt: Date; purgeAt: Date | null };

const ReplacementClaimSchema = z.object({
  stage: z.literal("recording"),
  generation: z.string(),
  replaces: z.string(),
  owner: z.string(),
  claimedAt: z.date(),
  purgeAt: nullable(z.date()),
}) satisfies z.ZodType<ReplacementClaim, unknown>;

const replacementClaimConverter = typedConverter<ReplacementClaim>("claims", ReplacementClaimSchema);

/** True when this recording (`generation`) may replace `replaced`: it claimed that, now or in an earlier delivery. */
export async function claimReplacement(
  visitId: string,
  replacement: { replaces: string; generation: string },
  holder: Pick<ClaimHolder, "owner" | "now" | "purgeAt">,
): Promise<boolean> {
  const ref = claims(visitId).doc(`recording-${replacement.replaces}`).withConverter(replacementClaimConverter);
  const claim: ReplacementClaim = { stage: "recording", ...replacement, owner: holder.owner, claimedAt: holder.now, purgeAt: holder.purgeAt };
  if (await createOnce(() => ref.create(claim))) return true;
  return (await ref.get()).data()?.generation === replacement.generation;
}

/** A paid request whose answer was lost: only the hash of the audio URL it sent can find its job. */
export type UnrecordedSubmission = { audioUrlSha256: string; claimedAt: Date };

/**
 * Deletes every claim of a visit — of one recording (`generation`), or all of them — and returns
 * how many, with the AssemblyAI transcript ids they recorded (those jobs are deleted there too)
 * and the submissions that may have created a job no claim names (to be looked for there).
 */
export async function deleteClaims(
  visitId: string,
  generation?: string,
): Promise<{ count: number; transcriptIds: string[]; unrecorded: UnrecordedSubmission[] }> {
  const snapshot = await claims(visitId).get();
  const doomed = snapshot.docs.filter((doc) => generation === undefined || doc.get("generation") === generation);
  const transcriptIds = doomed.flatMap((doc) => {
    const id: unknown = doc.get("transcriptId");
    return typeof id === "string" && id !== "" ? [id] : [];
  });
  const unrecorded = doomed.flatMap((doc): UnrecordedSubmission[] => {
    const hash: unknown = doc.get("audioUrlSha256");
    const outcome: unknown = doc.get("outcome");
    const claimedAt: unknown = doc.get("claimedAt");
    const found: unknown = doc.get("transcriptId");
    if (typeof hash !== "string" || !doc.get("sentAt") || (typeof found === "string" && found !== "")) return [];
    if (outcome !== null && outcome !== undefined && outcome !== "unknown") return [];
    return claimedAt instanceof Timestamp ? [{ audioUrlSha256: hash, claimedAt: claimedAt.toDate() }] : [];
  });
  return { count: await deleteDocuments(doomed.map((doc) => doc.ref)), transcriptIds, unrecorded };
}
