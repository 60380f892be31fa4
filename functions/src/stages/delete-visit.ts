// Stage: delete a visit and everything stored about it — the visit, its transcript (and pages),
// claims, action items, rate-limit window, every Storage object under its folder, and its
// transcripts at AssemblyAI. A tombstone is written first, so that work still in flight finds the
// visit deleted and writes nothing that lasts: whatever such work recreates anyway is removed by
// the checker's sweep once no invocation can still be running.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { TIMEOUTS } from "../pipeline.js";
import { deleteActionItems } from "../store/actions.js";
import { deleteObjectsUnder } from "../store/audio-objects.js";
import { deleteClaims } from "../store/claims.js";
import { deleteUserDevices } from "../store/devices.js";
import { deleteProfile } from "../store/profiles.js";
import { deleteUserLimitSlots } from "../store/upload-limits.js";
import { deleteUserRateLimit, deleteVisitRateLimit } from "../store/rate-limits.js";
import {
  NO_COUNTS,
  addCounts,
  createTombstone,
  findTombstonesToSweep,
  getTombstone,
  recordDeletion,
  writeTombstone,
} from "../store/tombstones.js";
import type { DeletionCounts, DeletionReason, Tombstone } from "../store/tombstones.js";
import { deleteTranscripts } from "../store/transcripts.js";
import { finishUserDeletion, findUserDeletionsDue, keepUserDeletion } from "../store/user-deletions.js";
import { deleteVisitDocument, getVisit, listUserVisits } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { deleteAtAssemblyAi, findJobsReadingVisitObjects, findUnrecordedJobs } from "./provider-cleanup.js";

// The sweep runs after the longest invocation that could still be writing (a summarization's
// lease) has surely ended; pending provider deletes are retried at the same pace.
export const SWEEP_DELAY_SECONDS = TIMEOUTS.summarize + 300;
// Visits deleted per query page, and the time one page may need (so a page is not started late).
const USER_PAGE_SIZE = 25;
const USER_PAGE_BUDGET_MS = 15_000;
// A deletion another request is running is waited for at most ERASE_WAIT_MS, only while this much
// of our own time is left (to finish it ourselves if it stopped), and never once it is older than
// the longest invocation that deletes visits.
const ERASE_WAIT_MS = 10_000;
const ERASE_BUDGET_MS = 15_000;
const ERASE_POLL_MS = 100;
const LONGEST_DELETION_SECONDS = Math.max(TIMEOUTS.api, TIMEOUTS.checker, TIMEOUTS.accountDeletion);
const DEFAULT_BUCKET = () => (JSON.parse(process.env.FIREBASE_CONFIG ?? "{}") as { storageBucket?: string }).storageBucket ?? null;

export type DeleteVisitOutcome =
  | { kind: "not_found" }
  | { kind: "deleted"; removed: DeletionCounts; pendingProviderDeletes: number; alreadyDeleted: boolean };

export async function deleteVisit(
  p: Pipeline,
  request: { visitId: string; uid: string; reason: DeletionReason },
  deadlineMs: number,
): Promise<DeleteVisitOutcome> {
  const now = p.now();
  const visit = await getVisit(request.visitId);
  if (!visit) {
    // Deleted before: the same answer again (idempotent) — but only to its owner.
    const tombstone = await getTombstone(request.visitId);
    if (!tombstone || tombstone.userId !== request.uid) return { kind: "not_found" };
    // A deletion still under way: what it records once done (else what it has recorded so far).
    const recorded = tombstone.removed.visit > 0 ? tombstone : ((await awaitDeletion(p, request.visitId, deadlineMs)) ?? tombstone);
    return deletedBefore(recorded);
  }
  // Another user's visit answers exactly like a missing one.
  if (visit.userId !== request.uid) return { kind: "not_found" };
  const fresh: Tombstone = {
    userId: visit.userId,
    bucket: visit.audio?.bucket ?? DEFAULT_BUCKET(),
    reason: request.reason,
    deletedAt: now,
    removed: NO_COUNTS,
    pendingProviderDeletes: [...new Set([...visit.pendingProviderDeletes, ...(visit.transcriptId ? [visit.transcriptId] : [])])],
    sweepAt: addSeconds(now, SWEEP_DELAY_SECONDS),
    sweeps: 0,
    purgeAt: addSeconds(now, p.config.bookkeepingRetentionDays * 86_400),
  };
  // One deletion erases (repeated taps, DELETE /me racing DELETE /visits/{id}); the others wait
  // for its record, so the data is deleted, and AssemblyAI called, once.
  let tombstone = fresh;
  if (!(await createTombstone(visit.id, fresh))) {
    const finished = await awaitDeletion(p, visit.id, deadlineMs);
    if (finished) return deletedBefore(finished);
    // That deletion was cut short, or a late write recreated the visit: erase (again), adding to its record.
    tombstone = await writeTombstone(visit.id, fresh);
  }
  const removed = await eraseVisitData(p, visit.id, tombstone, deadlineMs);
  logs.visitDeleted(visit.id, request.reason, removed.counts, removed.pending.length);
  return { kind: "deleted", removed: removed.counts, pendingProviderDeletes: removed.pending.length, alreadyDeleted: false };
}

function deletedBefore(tombstone: Tombstone): DeleteVisitOutcome {
  return { kind: "deleted", removed: tombstone.removed, pendingProviderDeletes: tombstone.pendingProviderDeletes.length, alreadyDeleted: true };
}

/**
 * Waits for the deletion that holds the visit's tombstone to record what it removed (the visit
 * document goes first, the record last), or until it cannot be running any more or has had its
 * time. Then: the tombstone as recorded so far while the visit document is gone (that deletion,
 * or the sweep, finishes the rest); null when the visit document still exists (that deletion
 * stopped before it, or a late write recreated it): the caller erases.
 */
async function awaitDeletion(p: Pipeline, visitId: string, deadlineMs: number): Promise<Tombstone | null> {
  const giveUpAtMs = Math.min(deadlineMs - ERASE_BUDGET_MS, Date.now() + ERASE_WAIT_MS);
  let tombstone = await getTombstone(visitId);
  while (tombstone && tombstone.removed.visit === 0 && Date.now() < giveUpAtMs) {
    if (p.now().getTime() - tombstone.deletedAt.getTime() > LONGEST_DELETION_SECONDS * 1000) break;
    await new Promise<void>((resolve) => setTimeout(resolve, ERASE_POLL_MS));
    tombstone = await getTombstone(visitId);
  }
  return !tombstone || (await getVisit(visitId)) ? null : tombstone;
}

/**
 * Removes whatever of the visit exists now and records it on the tombstone. The visit document
 * goes first, so every guarded write of work in flight fails from then on.
 */
async function eraseVisitData(
  p: Pipeline,
  visitId: string,
  tombstone: Tombstone,
  deadlineMs: number,
): Promise<{ counts: DeletionCounts; pending: string[]; searchAgain: boolean }> {
  const visit = await deleteVisitDocument(visitId);
  const [transcriptDocuments, claims, actionItems, rateLimits, storageObjects] = await Promise.all([
    deleteTranscripts(visitId, null),
    deleteClaims(visitId),
    deleteActionItems(visitId),
    deleteVisitRateLimit(visitId),
    tombstone.bucket ? deleteObjectsUnder(tombstone.bucket, `users/${tombstone.userId}/visits/${visitId}/`) : Promise.resolve(0),
  ]);
  const lostAnswers = await findUnrecordedJobs(p, visitId, claims.unrecorded, deadlineMs);
  // A sweep also asks AssemblyAI for every job reading the visit's objects: work that raced the
  // deletion can leave one no record names (its claim erased before it sent, then its answer lost
  // or its invocation dead). Looked for from before the deletion: work then in flight counts.
  const racing =
    tombstone.sweeps > 0
      ? await findJobsReadingVisitObjects(p, { visitId, userId: tombstone.userId }, addSeconds(tombstone.deletedAt, -SWEEP_DELAY_SECONDS), deadlineMs)
      : [];
  const provider = await deleteAtAssemblyAi(
    p,
    visitId,
    [...tombstone.pendingProviderDeletes, ...claims.transcriptIds, ...lostAnswers, ...(racing ?? [])],
    deadlineMs,
  );
  const searchAgain = racing === null;
  const counts = addCounts(tombstone.removed, {
    visit,
    transcriptDocuments,
    claims: claims.count,
    actionItems,
    rateLimits,
    storageObjects,
    providerTranscripts: provider.done.length,
  });
  await recordDeletion(visitId, {
    removed: counts,
    pendingProviderDeletes: provider.failed,
    // Swept once more either way (late writes); after that only while provider deletes are pending
    // (or the search for jobs no record names could not run).
    sweepAt: tombstone.sweeps === 0 || provider.failed.length > 0 || searchAgain ? addSeconds(p.now(), SWEEP_DELAY_SECONDS) : null,
  });
  return { counts, pending: provider.failed, searchAgain };
}

/** The checker's part: sweep deleted visits whose sweep is due (late writes, pending provider deletes). */
export async function sweepDeletedVisits(p: Pipeline, limit: number, deadlineMs: number): Promise<number> {
  const due = await findTombstonesToSweep(p.now(), limit);
  for (const { visitId, tombstone } of due) {
    const swept = { ...tombstone, sweeps: tombstone.sweeps + 1 };
    const removed = await eraseVisitData(p, visitId, swept, deadlineMs);
    await recordDeletion(visitId, {
      removed: removed.counts,
      pendingProviderDeletes: removed.pending,
      sweepAt: removed.pending.length > 0 || removed.searchAgain ? addSeconds(p.now(), SWEEP_DELAY_SECONDS) : null,
      sweeps: swept.sweeps,
    });
    logs.deletedVisitSwept(visitId, removed.counts, removed.pending.length);
  }
  return due.length;
}

export interface UserDeletion {
  visits: number;
  removed: DeletionCounts;
  pendingProviderDeletes: number;
  /** Push registrations (`users/{uid}/devices`) removed; 0 until the visits are all gone. */
  devices: number;
  /** The user's profile (`users/{uid}`: the preferred language) removed: 1 or 0; 0 until the visits are all gone. */
  profile: number;
  /** The user's upload-limit slots (`uploadSlots`, `activeSlots`) removed; 0 until the visits are all gone. */
  limitSlots: number;
  /** False when time ran out first: the checker carries the deletion on. */
  complete: boolean;
}

/** Deletes every visit of a user (account deletion, `DELETE /me`), a page at a time, within the time budget. */
export async function deleteUserData(
  p: Pipeline,
  request: { uid: string; reason: DeletionReason },
  deadlineMs: number,
): Promise<UserDeletion> {
  const result: UserDeletion = { visits: 0, removed: NO_COUNTS, pendingProviderDeletes: 0, devices: 0, profile: 0, limitSlots: 0, complete: false };
  // Each page is deleted before the next is read, so the query always starts from the top.
  while (Date.now() < deadlineMs - USER_PAGE_BUDGET_MS) {
    const page = await listUserVisits(request.uid, null, USER_PAGE_SIZE);
    if (page.length === 0) {
      result.complete = true;
      break;
    }
    for (const visit of page) {
      const outcome = await deleteVisit(p, { visitId: visit.id, uid: request.uid, reason: request.reason }, deadlineMs);
      if (outcome.kind !== "deleted") continue;
      result.visits += 1;
      result.removed = addCounts(result.removed, outcome.removed);
      result.pendingProviderDeletes += outcome.pendingProviderDeletes;
    }
  }
  const now = p.now();
  if (result.complete) {
    result.removed = { ...result.removed, rateLimits: result.removed.rateLimits + (await deleteUserRateLimit(request.uid)) };
    // The push registrations last: a visit deleted above can no longer end and notify. The
    // profile with them: no visit is left to be summarized in its language.
    result.devices = await deleteUserDevices(request.uid);
    result.profile = await deleteProfile(request.uid);
    result.limitSlots = await deleteUserLimitSlots(request.uid);
    await finishUserDeletion(request.uid);
  } else {
    await keepUserDeletion({
      uid: request.uid,
      reason: request.reason,
      requestedAt: now,
      continueAt: now,
      purgeAt: addSeconds(now, p.config.bookkeepingRetentionDays * 86_400),
    });
  }
  logs.userDataDeleted(result.visits, request.reason, result.complete);
  return result;
}

/** The checker's part: account deletions that ran out of time before. */
export async function continueUserDeletions(p: Pipeline, limit: number, deadlineMs: number): Promise<number> {
  const due = await findUserDeletionsDue(p.now(), limit);
  for (const request of due) await deleteUserData(p, request, deadlineMs);
  return due.length;
}
