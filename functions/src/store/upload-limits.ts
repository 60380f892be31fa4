// Per-user upload limits, kept in slots claimed with create() — the one write every Firestore
// (and the embedded emulator, which does not isolate transactions) makes atomically:
//   uploadSlots/{user}-{day}-{n}   n = 1…quota: one per recording accepted that (UTC) day
//   activeSlots/{user}-{n}-{k}     n = 1…max: one per visit being processed (k: its tenancies),
//                                  each naming the start it was taken for (recording, round)
// A caller reads the user's slots, and if none is its own yet, creates the first free one; a
// create that loses a race re-reads and tries again. Only a caller that saw no slot of its own
// ever creates one, and two callers can only both succeed on the same free slot if one of them
// already holds it — so a recording holds at most one daily slot, however many deliveries race.
// Active slots are taken over, never deleted: see claimActiveSlot.

import { createHash } from "node:crypto";
import { z } from "zod";
import { PROCESSING_STATUSES } from "../visit/status.js";
import { db, deleteDocuments, isAlreadyExists } from "./db.js";
import { typedConverter } from "./typed-documents.js";
import { getTombstone } from "./tombstones.js";
import { getVisit } from "./visits.js";

const UPLOAD_SLOTS = "uploadSlots";
const ACTIVE_SLOTS = "activeSlots";
// A tenancy is taken before its start is written (the visit recorded, the retry's round begun);
// until then it is in use, for at most this long (a start that died on the way frees it then).
const START_GRACE_MS = 10 * 60_000;
const MAX_RACES = 20;

type Slot = { user: string; holder: string; claimedAt: Date; purgeAt: Date };
const SlotSchema = z.object({ user: z.string(), holder: z.string(), claimedAt: z.date(), purgeAt: z.date() }) satisfies z.ZodType<Slot, unknown>;
const uploadSlotConverter = typedConverter<Slot>(UPLOAD_SLOTS, SlotSchema);

/**
 * What a tenancy was taken for: the holder visit starting on `generation` (a new recording), or
 * starting retry round `round` of it (a retry). Null in tenancies written before this was recorded.
 */
export type VisitStart = { generation: string; round: number | null };
type Tenancy = Slot & { start: VisitStart | null };
const TenancySchema = SlotSchema.extend({
  start: z
    .object({ generation: z.string(), round: z.number().int().nullable() })
    .nullish()
    .transform((value) => value ?? null),
}) satisfies z.ZodType<Tenancy, unknown>;
const activeSlotConverter = typedConverter<Tenancy>(ACTIVE_SLOTS, TenancySchema);

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
 * Takes one of the user's active-visit slots for this visit, for one start of it (a new
 * recording, or a retry round). Slot n is a sequence of tenancies (`{user}-{n}-{k}`); its tenant
 * is the holder of the highest k. Every grant creates the next tenancy with create() — by a new
 * visit taking a slot over, or by the tenant itself starting again — so of any number of racing
 * callers exactly one gets it, and nothing is ever freed by a delete that could race. A slot may
 * be taken over only once its tenant's visit is known to be done with it: its start happened and
 * the visit is no longer processing (or the start can no longer happen), or the visit is gone. A
 * start refused after its slot was taken holds the slot until START_GRACE_MS has passed: freeing
 * it sooner could free it under another start of the same visit that is still on its way. Never on the visit's timestamps alone: a failed visit that is written to
 * (a cost, a notification) while its retry is starting is not free.
 */
export async function claimActiveSlot(input: {
  uid: string;
  visitId: string;
  start: VisitStart;
  now: Date;
  maxActive: number;
}): Promise<SlotDecision> {
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
      await slots.doc(`${user}-${n}-${(tenancy?.k ?? -1) + 1}`).create({ user, holder: input.visitId, claimedAt: input.now, purgeAt, start: input.start });
      return { allowed: true };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }
  return { allowed: false, retryAfterSeconds: 60 };
}

// A visit usually finishes within minutes; the app may try again then.
const ACTIVE_RETRY_AFTER_SECONDS = 300;

type CurrentTenancy = { k: number; slot: Tenancy };

/** The current tenancy of each slot number within the limit. */
function currentTenancies(docs: { id: string; data(): Tenancy }[], prefix: string, limit: number): Map<number, CurrentTenancy> {
  const tenants = new Map<number, CurrentTenancy>();
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

/** A never-used slot number, else a slot whose tenant is done with it; undefined when all are in use. */
async function firstTakeable(
  tenants: Map<number, CurrentTenancy>,
  limit: number,
  now: Date,
): Promise<[number, CurrentTenancy | undefined] | undefined> {
  for (let n = 1; n <= limit; n++) if (!tenants.has(n)) return [n, undefined];
  for (const [n, tenancy] of tenants) {
    if (!(await tenantInUse(tenancy.slot, now))) return [n, tenancy];
  }
  return undefined;
}

async function tenantInUse(slot: Tenancy, now: Date): Promise<boolean> {
  const visit = await getVisit(slot.holder);
  if (visit) {
    if (PROCESSING_STATUSES.has(visit.status)) return true;
    // Not processing: done with the slot once the start it was taken for has happened (or can no
    // longer happen); until then the upload or retry that took it is about to move the visit on.
    return !startHappened(slot, visit) && now.getTime() - slot.claimedAt.getTime() < START_GRACE_MS;
  }
  if ((await getTombstone(slot.holder)) !== null) return false;
  // Not written yet (the slot is taken before the visit is recorded): in use for a while.
  return now.getTime() - slot.claimedAt.getTime() < START_GRACE_MS;
}

/** Whether the visit shows the start a tenancy was taken for (or one that overtook it). */
export function startHappened(
  slot: { claimedAt: Date; start: VisitStart | null },
  visit: { audio: { generation: string } | null; retryCount: number; updatedAt: Date },
): boolean {
  // A tenancy from before starts were recorded: the visit changed since.
  if (!slot.start) return visit.updatedAt.getTime() > slot.claimedAt.getTime();
  const { generation, round } = slot.start;
  // A retry of a recording the visit no longer holds can no longer start; a new recording the
  // visit does not hold yet has not been recorded.
  if (visit.audio?.generation !== generation) return round !== null;
  return round === null || visit.retryCount >= round;
}

/** Deletes the user's quota and in-flight slots: an account deletion, once its visits are gone. */
export async function deleteUserLimitSlots(uid: string): Promise<number> {
  const user = userKey(uid);
  const snapshots = await Promise.all([UPLOAD_SLOTS, ACTIVE_SLOTS].map((collection) => db().collection(collection).where("user", "==", user).get()));
  return deleteDocuments(snapshots.flatMap((snapshot) => snapshot.docs.map((doc) => doc.ref)));
}
