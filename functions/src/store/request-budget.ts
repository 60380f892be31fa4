// Firestore side of the provider request budget: blocks of a minute's tokens claimed with create()
// (exactly one caller gets each block, also on the embedded emulator, which does not isolate
// transactions), and the shared pause a 429 sets. Two small documents, never written per request.

import { z } from "zod";
import type { PoolName } from "../providers/request-pacing.js";
import type { ProviderName } from "../providers/outage-policy.js";
import { db, isAlreadyExists } from "./db.js";
import { typedConverter } from "./typed-documents.js";

const PACING = "pacing";
const BLOCKS = "budgetBlocks";

/** `pacing/{provider}/budgetBlocks/{windowStartMs}-{pool}-{index}`: a claimed block of one window's tokens. */
type BudgetBlock = { windowStart: Date; pool: PoolName; tokens: number; claimedAt: Date; owner: string; purgeAt: Date | null };

/** `pacing/{provider}`: until when every caller holds its requests after a 429. */
type PacingState = { pausedUntil: Date | null; rateLimitedAt: Date | null; updatedAt: Date | null };

// `purgeAt`: Firestore's TTL policy may delete a block after it (firestore.indexes.json): a block
// only matters during its minute.
const purgeAt = z.date().nullish().transform((value) => value ?? null);
const BudgetBlockSchema = z.object({
  windowStart: z.date(),
  pool: z.enum(["checker", "shared"]),
  tokens: z.number().int(),
  claimedAt: z.date(),
  owner: z.string(),
  purgeAt,
});
const OptionalDate = z.date().nullable().default(null);
const PacingStateSchema = z.object({ pausedUntil: OptionalDate, rateLimitedAt: OptionalDate, updatedAt: OptionalDate });

/** Compiles only when the schemas read exactly the models (not a narrower or wider type). */
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _schemasMatchModels: [Exactly<z.output<typeof BudgetBlockSchema>, BudgetBlock>, Exactly<z.output<typeof PacingStateSchema>, PacingState>] = [
  true,
  true,
];

const BLOCK_PURGE_MS = 3_600_000;
const pacingConverter = typedConverter(PACING, PacingStateSchema);

function pacingRef(provider: ProviderName) {
  return db().collection(PACING).doc(provider).withConverter(pacingConverter);
}

function blockRef(provider: ProviderName, key: string) {
  const collection = `${PACING}/${provider}/${BLOCKS}`;
  return db().collection(collection).doc(key).withConverter(typedConverter(collection, BudgetBlockSchema));
}

/** Claims a block of tokens; false when another caller holds it. */
export async function claimBudgetBlock(
  provider: ProviderName,
  key: string,
  block: { windowStart: Date; pool: PoolName; tokens: number; owner: string; now: Date },
): Promise<boolean> {
  try {
    await blockRef(provider, key).create({
      windowStart: block.windowStart,
      pool: block.pool,
      tokens: block.tokens,
      claimedAt: block.now,
      owner: block.owner,
      purgeAt: new Date(block.now.getTime() + BLOCK_PURGE_MS),
    });
    return true;
  } catch (error) {
    if (isAlreadyExists(error)) return false;
    throw error;
  }
}

/** The shared pause, or null when none was ever recorded. */
export async function readPause(provider: ProviderName): Promise<Date | null> {
  const snapshot = await pacingRef(provider).get();
  return snapshot.data()?.pausedUntil ?? null;
}

/**
 * Extends the shared pause. Written only on a 429. Two callers writing at once may leave the
 * shorter of their pauses; each of them also holds its own requests for its own pause.
 */
export async function recordPause(provider: ProviderName, pausedUntil: Date, now: Date): Promise<void> {
  await pacingRef(provider).set({ pausedUntil, rateLimitedAt: now, updatedAt: now }, { merge: true });
}
