// Provider outage circuit breaker shared by all instances: state in Firestore, probes claimed with
// create(). Storage and transitions only; what counts as an outage and the settings are policy
// (providers/outage-policy.ts).

import { FieldValue } from "firebase-admin/firestore";
import type { FirestoreDataConverter } from "firebase-admin/firestore";
import { z } from "zod";
import type { BreakerSettings, ProviderName } from "../providers/outage-policy.js";
import { db, isAlreadyExists } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import type { StoredData } from "./typed-documents.js";

export type BreakerStateName = "closed" | "open" | "half_open";

export type BreakerState = {
  provider: ProviderName;
  state: BreakerStateName;
  failures: number;
  windowStartedAt: Date | null;
  openedAt: Date | null;
  openUntil: Date | null;
  updatedAt: Date | null;
};

export type BreakerDecision = { allowed: true; probe: boolean } | { allowed: false; retryAt: Date };

export interface OutageBreaker {
  /** Ask before a provider call. Closed → allowed. Open and cooling down → { allowed:false, retryAt: openUntil }. Cooldown over → the first caller to claim the probe gets { allowed:true, probe:true } and the state becomes half_open; everyone else gets { allowed:false, retryAt: now + probeLeaseSeconds }. */
  acquire(provider: ProviderName, now: Date): Promise<BreakerDecision>;
  /** After a successful call. A probe's success closes the breaker (and resets counts). For a non-probe call in the closed state this must be cheap: no Firestore write. */
  recordSuccess(provider: ProviderName, now: Date, probe: boolean): Promise<void>;
  /** After a call failed in a way the outage policy counts (countsTowardOutage). A probe's failure re-opens for another cooldown. In the closed state, failures are counted in a fixed window starting at the first failure; reaching failureThreshold opens the breaker. */
  recordOutage(provider: ProviderName, now: Date, probe: boolean): Promise<void>;
  /** Current state for health/ops (no cache). */
  state(provider: ProviderName): Promise<BreakerState>;
}

/** The breaker's transitions worth logging; the caller wires them to logs. */
export interface BreakerObserver {
  opened(provider: ProviderName, failures: number, untilMs: number): void;
  closed(provider: ProviderName): void;
  probeStarted(provider: ProviderName): void;
}

const BREAKERS = "breakers";
const PROBES = "probes";
const OPENINGS = "openings";
const DEFAULT_CACHE_MS = 2000;

/** The `breakers/{provider}` document: the public state plus what the probe claims need. */
type BreakerDocument = BreakerState & {
  /** Probes started in this open period; the next probe's claim key is built from it. */
  probesStarted: number;
  /** Until when the running probe may still report; after it a replacement may start. */
  probeLeaseUntil: Date | null;
};

/** `breakers/{provider}/probes/{openedAtMs}-{probesStarted}`: a probe claimed with create(). */
type ProbeClaim = { openedAt: Date | null; claimedAt: Date; leaseUntil: Date; purgeAt: Date | null };

/** `breakers/{provider}/openings/{windowStartedAtMs}`: an opening claimed with create(). */
type OpeningClaim = { openedAt: Date; failures: number; purgeAt: Date | null };

const OptionalDate = z.date().nullable().default(null);

// Failure counting merges only its own fields, so a document may lack `state`: that is closed.
// `provider` is written with every change but the document id is what names the provider.
function breakerSchema(provider: ProviderName) {
  return z.object({
    provider: z.literal(provider).default(provider),
    state: z.enum(["closed", "open", "half_open"]).default("closed"),
    failures: z.number().default(0),
    windowStartedAt: OptionalDate,
    openedAt: OptionalDate,
    openUntil: OptionalDate,
    updatedAt: OptionalDate,
    probesStarted: z.number().default(0),
    probeLeaseUntil: OptionalDate,
  });
}

// `purgeAt`: Firestore's TTL policy may delete a claim after it (firestore.indexes.json): a claim
// only matters while its open period is current.
const purgeAt = z.date().nullish().transform((value) => value ?? null);
const ProbeClaimSchema = z.object({ openedAt: z.date().nullable(), claimedAt: z.date(), leaseUntil: z.date(), purgeAt });
const OpeningClaimSchema = z.object({ openedAt: z.date(), failures: z.number(), purgeAt });
const CLAIM_PURGE_MS = 86_400_000;

/** Compiles only when the schemas read exactly the models (not a narrower or wider type). */
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _schemasMatchModels: [
  Exactly<z.output<ReturnType<typeof breakerSchema>>, BreakerDocument>,
  Exactly<z.output<typeof ProbeClaimSchema>, ProbeClaim>,
  Exactly<z.output<typeof OpeningClaimSchema>, OpeningClaim>,
] = [true, true, true];

type BreakerConverter = FirestoreDataConverter<BreakerDocument, StoredData<BreakerDocument>>;

// One schema and converter per provider, made on first use: they hold no connection (so they
// outlive a reset Firestore handle), and zod compiles an object schema on its first parse.
const breakerConverters = new Map<ProviderName, { schema: ReturnType<typeof breakerSchema>; converter: BreakerConverter }>();

function breakerConverter(provider: ProviderName) {
  let entry = breakerConverters.get(provider);
  if (!entry) {
    const schema = breakerSchema(provider);
    entry = { schema, converter: typedConverter(BREAKERS, schema) };
    breakerConverters.set(provider, entry);
  }
  return entry;
}

function breakerRef(provider: ProviderName) {
  return db().collection(BREAKERS).doc(provider).withConverter(breakerConverter(provider).converter);
}

function probeRef(provider: ProviderName, key: string) {
  const collection = `${BREAKERS}/${provider}/${PROBES}`;
  return db().collection(collection).doc(key).withConverter(typedConverter(collection, ProbeClaimSchema));
}

function openingRef(provider: ProviderName, key: string) {
  const collection = `${BREAKERS}/${provider}/${OPENINGS}`;
  return db().collection(collection).doc(key).withConverter(typedConverter(collection, OpeningClaimSchema));
}

function addSeconds(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}

async function readStored(provider: ProviderName): Promise<BreakerDocument> {
  const snapshot = await breakerRef(provider).get();
  // A provider never written to reads as an empty document: closed, nothing counted.
  return snapshot.data() ?? breakerConverter(provider).schema.parse({});
}

function publicState(stored: BreakerDocument): BreakerState {
  const { provider, state, failures, windowStartedAt, openedAt, openUntil, updatedAt } = stored;
  return { provider, state, failures, windowStartedAt, openedAt, openUntil, updatedAt };
}

const CLAIM_PROBE = "claim_probe";

/** What the stored state says about a call now, or that a probe may be claimed. */
function decide(stored: BreakerDocument, now: Date, settings: BreakerSettings): BreakerDecision | typeof CLAIM_PROBE {
  if (stored.state === "closed") return { allowed: true, probe: false };
  if (stored.openUntil && now < stored.openUntil) return { allowed: false, retryAt: stored.openUntil };
  if (stored.state === "half_open" && stored.probeLeaseUntil && now < stored.probeLeaseUntil) {
    return { allowed: false, retryAt: addSeconds(now, settings.probeLeaseSeconds) };
  }
  return CLAIM_PROBE;
}

/** The open period (openedAt) and the probe's number in it: each can be claimed exactly once. */
function probeKey(stored: BreakerDocument): string {
  return `${stored.openedAt?.getTime() ?? 0}-${stored.probesStarted}`;
}

function closedFields(provider: ProviderName, now: Date): BreakerDocument {
  return {
    provider,
    state: "closed",
    failures: 0,
    windowStartedAt: null,
    openedAt: null,
    openUntil: null,
    probesStarted: 0,
    probeLeaseUntil: null,
    updatedAt: now,
  };
}

function openFields(provider: ProviderName, now: Date, failures: number, openUntil: Date): Omit<BreakerDocument, "windowStartedAt"> {
  return { provider, state: "open", failures, openedAt: now, openUntil, probesStarted: 0, probeLeaseUntil: null, updatedAt: now };
}

interface CachedRead {
  stored: BreakerDocument;
  readAtMs: number;
}

export function createFirestoreBreaker(settings: BreakerSettings, observer?: BreakerObserver): OutageBreaker {
  const cacheMs = settings.cacheMs ?? DEFAULT_CACHE_MS;
  const cache = new Map<ProviderName, CachedRead>();

  async function readFresh(provider: ProviderName): Promise<BreakerDocument> {
    const stored = await readStored(provider);
    cache.set(provider, { stored, readAtMs: Date.now() });
    return stored;
  }

  function cached(provider: ProviderName): BreakerDocument | undefined {
    const entry = cache.get(provider);
    return entry && Date.now() - entry.readAtMs < cacheMs ? entry.stored : undefined;
  }

  /** Commits a write, forgetting the cached state whatever the outcome: it may be stale now. */
  async function commitWrite(provider: ProviderName, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } finally {
      cache.delete(provider);
    }
  }

  /**
   * The claim and the half_open state go in one commit with the create() first: on the embedded
   * emulator (writes applied one by one) a lost claim then writes nothing, and on Firestore the
   * commit is atomic. A claimer that read an older probesStarted tries a key already taken.
   */
  async function claimProbe(provider: ProviderName, stored: BreakerDocument, now: Date): Promise<BreakerDecision> {
    const leaseUntil = addSeconds(now, settings.probeLeaseSeconds);
    const ref = breakerRef(provider);
    const batch = db().batch();
    batch.create(probeRef(provider, probeKey(stored)), {
      openedAt: stored.openedAt,
      claimedAt: now,
      leaseUntil,
      purgeAt: new Date(now.getTime() + CLAIM_PURGE_MS),
    });
    batch.set(
      ref,
      { provider, state: "half_open", probesStarted: stored.probesStarted + 1, probeLeaseUntil: leaseUntil, updatedAt: now },
      { merge: true },
    );
    try {
      await commitWrite(provider, () => batch.commit());
    } catch (error) {
      if (isAlreadyExists(error)) return { allowed: false, retryAt: leaseUntil };
      throw error;
    }
    observer?.probeStarted(provider);
    return { allowed: true, probe: true };
  }

  async function acquire(provider: ProviderName, now: Date): Promise<BreakerDecision> {
    const reused = cached(provider);
    if (reused) {
      const decision = decide(reused, now, settings);
      if (decision !== CLAIM_PROBE) return decision;
    }
    // A probe is only claimed against fresh state, so a stale cache cannot start one for a period
    // another instance has already closed.
    const stored = await readFresh(provider);
    const decision = decide(stored, now, settings);
    return decision === CLAIM_PROBE ? claimProbe(provider, stored, now) : decision;
  }

  async function recordSuccess(provider: ProviderName, now: Date, probe: boolean): Promise<void> {
    // Only a probe changes anything: ordinary successes leave counting to the fixed window.
    if (!probe) return;
    const stored = await readStored(provider);
    if (stored.state === "closed") return;
    await commitWrite(provider, () => breakerRef(provider).set(closedFields(provider, now)));
    observer?.closed(provider);
  }

  async function reopen(provider: ProviderName, stored: BreakerDocument, now: Date): Promise<void> {
    // Another report (e.g. of a probe presumed dead) already re-opened it for a fresh cooldown.
    if (stored.state === "open" && stored.openUntil && now < stored.openUntil) return;
    const failures = stored.failures + 1;
    const openUntil = addSeconds(now, settings.cooldownSeconds);
    await commitWrite(provider, () => breakerRef(provider).set(openFields(provider, now, failures, openUntil), { merge: true }));
    observer?.opened(provider, failures, openUntil.getTime());
  }

  /**
   * Opening is claimed per window with create(), so concurrent failures that all reach the
   * threshold open (and report) it once, and a late writer cannot restart an open period.
   */
  async function openAtThreshold(provider: ProviderName, now: Date, failures: number, windowStartedAt: Date): Promise<void> {
    const openUntil = addSeconds(now, settings.cooldownSeconds);
    const ref = breakerRef(provider);
    const batch = db().batch();
    batch.create(openingRef(provider, String(windowStartedAt.getTime())), { openedAt: now, failures, purgeAt: new Date(now.getTime() + CLAIM_PURGE_MS) });
    batch.set(ref, { ...openFields(provider, now, failures, openUntil), windowStartedAt }, { merge: true });
    try {
      await commitWrite(provider, () => batch.commit());
    } catch (error) {
      if (isAlreadyExists(error)) return;
      throw error;
    }
    observer?.opened(provider, failures, openUntil.getTime());
  }

  /**
   * Counts in a fixed window. Only the counting fields are written (never `state`), so a count
   * racing with an opening cannot close the breaker; concurrent counts may be approximate.
   */
  async function countFailure(provider: ProviderName, stored: BreakerDocument, now: Date): Promise<void> {
    const windowStart = stored.windowStartedAt;
    const inWindow = windowStart !== null && now.getTime() < addSeconds(windowStart, settings.windowSeconds).getTime();
    const failures = inWindow ? stored.failures + 1 : 1;
    const windowStartedAt = inWindow ? windowStart : now;
    if (failures >= settings.failureThreshold) return openAtThreshold(provider, now, failures, windowStartedAt);
    const counted = inWindow ? { failures: FieldValue.increment(1) } : { failures: 1, windowStartedAt };
    await commitWrite(provider, () => breakerRef(provider).set({ provider, ...counted, updatedAt: now }, { merge: true }));
  }

  async function recordOutage(provider: ProviderName, now: Date, probe: boolean): Promise<void> {
    const stored = await readStored(provider);
    if (stored.state === "closed") return countFailure(provider, stored, now);
    if (probe) return reopen(provider, stored, now);
    // A call let through before the breaker opened: the outage is already known.
  }

  async function state(provider: ProviderName): Promise<BreakerState> {
    return publicState(await readStored(provider));
  }

  return { acquire, recordSuccess, recordOutage, state };
}

/**
 * Closes the breaker by hand (ops CLI), e.g. once a provider outage is known to be over: the
 * state and counts start afresh; a probe still running reports into the closed state harmlessly.
 */
export async function resetBreaker(provider: ProviderName, now: Date): Promise<{ before: BreakerState; after: BreakerState }> {
  const before = publicState(await readStored(provider));
  await breakerRef(provider).set(closedFields(provider, now));
  return { before, after: publicState(await readStored(provider)) };
}
