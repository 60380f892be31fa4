// Per-user upload limits, kept in slots claimed with create() — the one write every Firestore
// (and the embedded emulator, which does not isolate transactions) makes atomically:
//   uploadSlots/{user}-{day}-{n}   n = 1…quota: one per recording accepted that (UTC) day
//   activeSlots/{user}-{n}         n = 1…max: one per visit being processed
// A caller reads the user's slots, and if none is its own yet, creates the first free one; a
// create that loses a race re-reads and tries again. Only a caller that saw no slot of its own
// ever creates one, and two callers can only both succeed on the same free slot if one of them
// already holds it — so a recording or a visit holds at most one slot, however many deliveries
// race. Active slots are released lazily: a slot whose visit is no longer processing is freed by
// the next caller that needs room.

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
  /** Frees slots that no longer count; returns the numbers freed. */
  release?(slots: Map<number, Slot>, now: Date): Promise<number[]>;
  retryAfterSeconds(now: Date): number;
}

async function claimSlot(kind: SlotKind, user: string, holder: string, now: Date, purgeAt: Date): Promise<SlotDecision> {
  const slots = db().collection(kind.collection).withConverter(kind.converter);
  for (let race = 0; race < MAX_RACES; race++) {
    const snapshot = await slots.where("user", "==", user).get();
    const held = new Map<number, Slot>();
    for (const doc of snapshot.docs) {
      if (!doc.id.startsWith(kind.prefix)) continue;
      const slot = doc.data();
      if (slot.holder === holder) return { allowed: true };
      held.set(Number(doc.id.slice(kind.prefix.length)), slot);
    }
    for (const freed of (await kind.release?.(held, now)) ?? []) held.delete(freed);
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

/** Takes one of the user's active-visit slots for this visit (kept while the visit is processing). */
export function claimActiveSlot(input: { uid: string; visitId: string; now: Date; maxActive: number }): Promise<SlotDecision> {
  const user = userKey(input.uid);
  return claimSlot(
    {
      converter: activeSlotConverter,
      collection: ACTIVE_SLOTS,
      prefix: `${user}-`,
      limit: input.maxActive,
      release: (slots, now) => releaseFinishedVisits(user, slots, now),
      // A visit usually finishes within minutes; the app may try again then.
      retryAfterSeconds: () => 300,
    },
    user,
    input.visitId,
    input.now,
    new Date(input.now.getTime() + 2 * 86_400_000),
  );
}

async function releaseFinishedVisits(user: string, slots: Map<number, Slot>, now: Date): Promise<number[]> {
  const freed: number[] = [];
  await Promise.all(
    [...slots].map(async ([n, slot]) => {
      const visit = await getVisit(slot.holder);
      const deleted = !visit && (await getTombstone(slot.holder)) !== null;
      const processing = visit
        ? PROCESSING_STATUSES.has(visit.status)
        : !deleted && now.getTime() - slot.claimedAt.getTime() < ACTIVE_SLOT_GRACE_MS;
      if (processing) return;
      // Freed only if it still names that visit (another caller may have freed and re-taken it).
      // Real Firestore isolates this transaction; the embedded emulator does not (a narrow window).
      const ref = db().collection(ACTIVE_SLOTS).doc(`${user}-${n}`).withConverter(activeSlotConverter);
      const released = await db().runTransaction(async (tx) => {
        if ((await tx.get(ref)).data()?.holder !== slot.holder) return false;
        tx.delete(ref);
        return true;
      });
      if (released) freed.push(n);
    }),
  );
  return freed;
}
