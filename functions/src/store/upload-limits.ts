// Per-user upload limits, kept in slots claimed with create() — the one write every Firestore
// (and the embedded emulator, which does not isolate transactions) makes atomically:
//   uploadSlots/{user}-{day}-{n}   n = 1…quota: one per recording accepted that (UTC) day
//   activeSlots/{user}-{n}-{k}     n = 1…max: one per visit being processed (k: its tenancies)
// A caller reads the user's slots, and if none is its own yet, creates the first free one; a
// create that loses a race re-reads and tries again. Only a caller that saw no slot of its own
// ever creates one, and two callers can only both succeed on the same free slot if one of them
// already holds it — so a recording holds at most one daily slot, however many deliveries race.
// Active slots are taken over, never deleted: see claimActiveSlot.

import { createHash } from "node:crypto";
import { z } from "zod";
import { PROCESSING_STATUSES } from "../visit/status.js";
import { db, isAlreadyExists } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { getTombstone } from "./tombstones.js";
import { getVisit } from "./visits.js";

const UPLOAD_SLOTS = "uploadSlots";
const ACTIVE_SLOTS = "activeSlots";
// A slot's visit may not exist yet (the slot is claimed before the visit is written); it is
// not taken for stale before this.
const ACTIVE_SLOT_GRACE_MS = 10 * 60_000;
const MAX_RACES = 20;

type Slot = { user: string; holder: string; claimedAt: Date; purgeAt: Date };
const SlotSchema = z.object({ user: z.string(), holder: z.string(), claimedAt: z.date(), purgeAt: z.date() }) satisfies z.ZodType<Slot, unknown>;
const uploadSlotConverter = typedConverter<Slot>(UPLOAD_SLOTS, SlotSchema);
const activeSlotConverter = typedConverter<Slot>(ACTIVE_SLOTS, SlotSchema);

// uids may hold characters a document id cannot; the hash also keeps uids out of ids.
function userKey(uid: string): string {
  return createHash("sha256").update(uid).digest("hex").slice(0, 32);
}

/** The UTC day an upload counts against, as YYYYMMDD. */
function dayOf(now: Date): string {
  return now.toISOString().slice(0, 10).replaceAll("-", "");
}

export type SlotDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface SlotKind {
  converter: typeof uploadSlotConverter;
  collection: string;
  /** The slot id prefix for this user (and day). */
  prefix: string;
  limit: number;
  retryAfterSeconds(now: Date): number;
}

/** Daily slots are never given back: a recording holds one, or the day's quota is spent. */
async function claimSlot(kind: SlotKind, user: string, holder: string, now: Date, purgeAt: Date): Promise<SlotDecision> {
  const slots = db().collection(kind.collection).withConverter(kind.converter);
  for (let race = 0; race < MAX_RACES; race++) {
    const snapshot = await slots.where("user", "==", user).get();
    const held = new Set<number>();
    for (const doc of snapshot.docs) {
      if (!doc.id.startsWith(kind.prefix)) continue;
      if (doc.data().holder === holder) return { allowed: true };
      held.add(Number(doc.id.slice(kind.prefix.length)));
    }
    const free = Array.from({ length: kind.limit }, (_, i) => i + 1).find((n) => !held.has(n));
    if (free === undefined) return { allowed: false, retryAfterSeconds: kind.retryAfterSeconds(now) };
    try {
      await slots.doc(`${kind.prefix}${free}`).create({ user, holder, claimedAt: now, purgeAt });
      return { allowed: true };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }
  // Extraordinary contention: refuse rather than risk paying beyond the limit.
  return { allowed: false, retryAfterSeconds: 60 };
}

/** Counts one recording (by its object and generation) against the user's daily quota. */
export function claimUploadSlot(input: { uid: string; recording: string; now: Date; quotaPerDay: number }): Promise<SlotDecision> {
  const user = userKey(input.uid);
  const day = dayOf(input.now);
  const nextDay = Date.UTC(input.now.getUTCFullYear(), input.now.getUTCMonth(), input.now.getUTCDate() + 1);
  const holder = createHash("sha256").update(input.recording).digest("hex").slice(0, 40);
  return claimSlot(
    {
      converter: uploadSlotConverter,
      collection: UPLOAD_SLOTS,
      prefix: `${user}-${day}-`,
      limit: input.quotaPerDay,
      retryAfterSeconds: (now) => Math.max(1, Math.ceil((nextDay - now.getTime()) / 1000)),
    },
    user,
    holder,
    input.now,
    new Date(nextDay + 86_400_000),
  );
}

/**
 * Takes one of the user's active-visit slots for this visit. Slot n is a sequence of tenancies
 * (`{user}-{n}-{k}`); its tenant is the holder of the highest k. A tenancy is taken — by a new
 * visit, or again by its own visit starting more work — only by creating the next one with
 * create(), so of any number of racing callers exactly one gets it, and nothing is ever freed by
 * a delete that could race. A slot may be taken over once its tenant's visit is finished (not
 * processing, and changed since the tenancy began) or gone.
 */
export async function claimActiveSlot(input: { uid: string; visitId: string; now: Date; maxActive: number }): Promise<SlotDecision> {
  const user = userKey(input.uid);
  const slots = db().collection(ACTIVE_SLOTS).withConverter(activeSlotConverter);
  const purgeAt = new Date(input.now.getTime() + 2 * 86_400_000);
  for (let race = 0; race < MAX_RACES; race++) {
    const tenants = currentTenancies((await slots.where("user", "==", user).get()).docs, `${user}-`, input.maxActive);
    const own = [...tenants].find(([, tenancy]) => tenancy.slot.holder === input.visitId);
    const candidate = own ?? (await firstTakeable(tenants, input.maxActive, input.now));
    if (candidate === undefined) return { allowed: false, retryAfterSeconds: ACTIVE_RETRY_AFTER_SECONDS };
    const [n, tenancy] = candidate;
    try {
      await slots.doc(`${user}-${n}-${(tenancy?.k ?? -1) + 1}`).create({ user, holder: input.visitId, claimedAt: input.now, purgeAt });
      return { allowed: true };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }
  return { allowed: false, retryAfterSeconds: 60 };
}

// A visit usually finishes within minutes; the app may try again then.
const ACTIVE_RETRY_AFTER_SECONDS = 300;

type Tenancy = { k: number; slot: Slot };

/** The current tenancy of each slot number within the limit. */
function currentTenancies(docs: { id: string; data(): Slot }[], prefix: string, limit: number): Map<number, Tenancy> {
  const tenants = new Map<number, Tenancy>();
  for (const doc of docs) {
    const match = /^(\d+)-(\d+)$/.exec(doc.id.slice(prefix.length));
    if (!doc.id.startsWith(prefix) || !match) continue;
    const [n, k] = [Number(match[1]), Number(match[2])];
    if (n > limit) continue;
    const current = tenants.get(n);
    if (!current || k > current.k) tenants.set(n, { k, slot: doc.data() });
  }
  return tenants;
}

/** A never-used slot number, else a slot whose tenant is finished; undefined when all are in use. */
async function firstTakeable(tenants: Map<number, Tenancy>, limit: number, now: Date): Promise<[number, Tenancy | undefined] | undefined> {
  for (let n = 1; n <= limit; n++) if (!tenants.has(n)) return [n, undefined];
  for (const [n, tenancy] of tenants) {
    if (!(await tenantInUse(tenancy.slot, now))) return [n, tenancy];
  }
  return undefined;
}

async function tenantInUse(slot: Slot, now: Date): Promise<boolean> {
  const visit = await getVisit(slot.holder);
  // In use while its visit is processing, and while the work that took the slot is still
  // starting: the visit has not changed since (an upload or a retry about to move it on).
  if (visit) return PROCESSING_STATUSES.has(visit.status) || visit.updatedAt.getTime() <= slot.claimedAt.getTime();
  if ((await getTombstone(slot.holder)) !== null) return false;
  // Not written yet (the slot is taken before the visit is recorded): in use for a while.
  return now.getTime() - slot.claimedAt.getTime() < ACTIVE_SLOT_GRACE_MS;
}
