// What is left of a visit anywhere the pipeline keeps data — Firestore (the visit, its artifact and
// pages, claims, action items, retry window, tombstone), the fake Cloud Storage and the fake
// AssemblyAI — read over the wire, for the data-lifecycle tests (deletion, re-upload, retention).

import { createHash } from "node:crypto";
import type { Timestamp } from "firebase-admin/firestore";
import { db } from "../../functions/src/store/db.js";
import type { FakeAssemblyAI } from "../fakes/assemblyai.js";
import type { FakeCloudStorage } from "../fakes/storage.js";
import { BUCKET } from "./local-runtime.js";

/** What AssemblyAI (and the fake) shows in place of the audio URL of a deleted transcript. */
const DELETED_AUDIO_URL = "http://deleted_by_user";

export interface ProviderJob {
  id: string;
  /** The audio URL the job was submitted with (the fake keeps it after a delete). */
  audioUrl: string;
  /** The object path the signed audio URL named (decoded), e.g. users/u/visits/v/visit-en.m4a. */
  objectPath: string;
  deleted: boolean;
}

/**
 * Every job the fake AssemblyAI has, with whether it was deleted there — read through its public
 * list endpoint (one GET, so it is also one recorded request and draws a queued "any" fault).
 */
export async function providerJobs(fake: FakeAssemblyAI, apiKey = "test-assemblyai-key"): Promise<ProviderJob[]> {
  const response = await fetch(`${fake.baseUrl}/v2/transcript?limit=200`, { headers: { authorization: apiKey } });
  if (!response.ok) throw new Error(`listing the fake's transcripts answered ${response.status}`);
  const body = (await response.json()) as { transcripts: { id: string; audio_url: string | null }[] };
  const deleted = new Set(body.transcripts.filter((job) => job.audio_url === DELETED_AUDIO_URL).map((job) => job.id));
  return fake.jobRecords().map((job) => ({
    id: job.id,
    audioUrl: job.audioUrl,
    objectPath: objectPathOf(job.audioUrl),
    deleted: deleted.has(job.id),
  }));
}

/** The jobs submitted for one visit's recordings (their signed URLs name the visit's folder). */
export async function providerJobsOf(fake: FakeAssemblyAI, visitId: string): Promise<ProviderJob[]> {
  return (await providerJobs(fake)).filter((job) => job.objectPath.includes(`/visits/${visitId}/`));
}

function objectPathOf(audioUrl: string): string {
  const pathname = URL.canParse(audioUrl) ? new URL(audioUrl).pathname : audioUrl;
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

export async function countDocs(collectionPath: string): Promise<number> {
  return (await db().collection(collectionPath).count().get()).data().count;
}

export async function docIds(collectionPath: string): Promise<string[]> {
  return (await db().collection(collectionPath).get()).docs.map((doc) => doc.id).sort();
}

export async function docExists(documentPath: string): Promise<boolean> {
  return (await db().doc(documentPath).get()).exists;
}

export async function readDoc(documentPath: string): Promise<Record<string, unknown> | undefined> {
  return (await db().doc(documentPath).get()).data();
}

/** The rate-limit document id of a user, as store/rate-limits.ts names it (a hash of the uid). */
export function userRateLimitId(uid: string): string {
  return `user-${createHash("sha256").update(uid).digest("hex").slice(0, 40)}`;
}

/** The userDeletions document id of a user, as store/user-deletions.ts names it. */
export function userDeletionId(uid: string): string {
  return createHash("sha256").update(uid).digest("hex").slice(0, 40);
}

export function visitFolder(uid: string, visitId: string): string {
  return `users/${uid}/visits/${visitId}/`;
}

export function objectsUnder(storage: FakeCloudStorage, prefix: string): string[] {
  return storage
    .objects(BUCKET)
    .filter((object) => object.name.startsWith(prefix))
    .map((object) => `${object.name}#${object.generation}`);
}

export interface VisitFootprint {
  visit: boolean;
  artifacts: number;
  pages: number;
  claims: number;
  actionItems: number;
  visitRateLimit: boolean;
  storageObjects: number;
  providerJobs: number;
  liveProviderJobs: number;
}

/** Everything of one visit that exists now. */
export async function footprint(
  runtime: { assemblyai: FakeAssemblyAI; storage: FakeCloudStorage },
  uid: string,
  visitId: string,
): Promise<VisitFootprint> {
  const [visit, artifacts, pages, claims, actionItems, visitRateLimit, jobs] = await Promise.all([
    docExists(`visits/${visitId}`),
    countDocs(`visits/${visitId}/artifacts`),
    countDocs(`visits/${visitId}/artifacts/transcript/pages`),
    countDocs(`visits/${visitId}/claims`),
    db().collection("actions").where("visitId", "==", visitId).count().get().then((snapshot) => snapshot.data().count),
    docExists(`rateLimits/visit-${visitId}`),
    providerJobsOf(runtime.assemblyai, visitId),
  ]);
  return {
    visit,
    artifacts,
    pages,
    claims,
    actionItems,
    visitRateLimit,
    storageObjects: objectsUnder(runtime.storage, visitFolder(uid, visitId)).length,
    providerJobs: jobs.length,
    liveProviderJobs: jobs.filter((job) => !job.deleted).length,
  };
}

/** A footprint of nothing at all (provider jobs may have existed: they must all be deleted). */
export function erased(providerJobCount: number): VisitFootprint {
  return {
    visit: false,
    artifacts: 0,
    pages: 0,
    claims: 0,
    actionItems: 0,
    visitRateLimit: false,
    storageObjects: 0,
    providerJobs: providerJobCount,
    liveProviderJobs: 0,
  };
}

export function isTimestamp(value: unknown): value is Timestamp {
  return typeof value === "object" && value !== null && typeof (value as { toMillis?: unknown }).toMillis === "function";
}
