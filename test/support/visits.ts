// Reads of pipeline state for tests, the demo and the chaos suite, through the same
// firebase-admin client the functions use (over the wire to the emulator).

import { db } from "../../functions/src/store/db.js";
import { getVisit } from "../../functions/src/store/visits.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { isTerminal } from "../../functions/src/visit/status.js";
import type { LocalRuntime } from "./local-runtime.js";

export async function readVisit(visitId: string): Promise<Visit> {
  const visit = await getVisit(visitId);
  if (!visit) throw new Error(`visit ${visitId} does not exist`);
  return visit;
}

export async function visitExists(visitId: string): Promise<boolean> {
  return (await db().collection("visits").doc(visitId).get()).exists;
}

export async function isSettled(visitIds: readonly string[]): Promise<boolean> {
  const snapshots = await db().getAll(...visitIds.map((id) => db().collection("visits").doc(id)));
  return snapshots.every((snapshot) => {
    const status = snapshot.get("status") as Visit["status"] | undefined;
    return status !== undefined && isTerminal(status);
  });
}

export async function readActionItems(visitId: string): Promise<Record<string, unknown>[]> {
  const snapshot = await db().collection("actions").where("visitId", "==", visitId).get();
  return snapshot.docs
    .map((doc) => ({ id: doc.id, ...doc.data() }))
    .sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

export async function readTranscriptArtifact(visitId: string): Promise<Record<string, unknown> | undefined> {
  return (await db().doc(`visits/${visitId}/artifacts/transcript`).get()).data();
}

export async function countDocuments(collection: string): Promise<number> {
  return (await db().collection(collection).count().get()).data().count;
}

let visitCounter = 0;

/** A fresh visit id (letters, digits, '-' only, like the app's ids). */
export function newVisitId(prefix = "visit"): string {
  visitCounter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${visitCounter}`;
}

/**
 * Duplicate and concurrent deliveries of one summarization task: with the task queue held, the
 * visit `upload` starts is taken to `summarizing`, its task is delivered `deliveries` times at once,
 * the visit settles, and the task is delivered once more, late. Returns the visit's id.
 */
export async function summarizeWithConcurrentDeliveries(runtime: LocalRuntime, upload: () => Promise<string>, deliveries = 6): Promise<string> {
  runtime.tasks.pause();
  const visitId = await upload();
  await runtime.runChecker();
  const status = (await readVisit(visitId)).status;
  if (status !== "summarizing") throw new Error(`visit ${visitId} is ${status}, not summarizing`);
  const deliver = async () => {
    await runtime.functions.summarizeVisit.run({ data: { visitId, dispatch: 1 } } as never);
  };
  await Promise.all(Array.from({ length: deliveries }, deliver));
  runtime.tasks.resume();
  await runtime.runUntilSettled([visitId]);
  await deliver();
  return visitId;
}
