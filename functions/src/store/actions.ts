// Action items: one document per item in the top-level `actions` collection, with ids derived
// from the visit and the item's position, so writing a visit's summary again replaces its items
// instead of adding to them.

import type { Transaction } from "firebase-admin/firestore";
import type { ActionItem } from "../visit/summary.js";
import { COLLECTIONS, db } from "./db.js";
import { fromStored } from "./typed-documents.js";

function actionItemId(visitId: string, index: number): string {
  return `${visitId}-${String(index + 1).padStart(3, "0")}`;
}

function actionRef(visitId: string, index: number) {
  return db().collection(COLLECTIONS.actions).doc(actionItemId(visitId, index));
}

/**
 * Writes the items in the caller's transaction and deletes any left over from a longer
 * earlier list (`previousCount`), so the collection always mirrors the stored summary.
 */
export function writeActionItems(
  tx: Transaction,
  input: { visitId: string; userId: string; items: readonly ActionItem[]; previousCount: number; now: Date },
): void {
  input.items.forEach((item, index) => {
    tx.set(actionRef(input.visitId, index), {
      visitId: input.visitId,
      userId: input.userId,
      index,
      description: item.description,
      owner: item.owner,
      dueDate: item.dueDate,
      timing: item.timing,
      done: false,
      createdAt: input.now,
    });
  });
  for (let index = input.items.length; index < input.previousCount; index++) {
    tx.delete(actionRef(input.visitId, index));
  }
}

/** Deletes every action item of a visit (visit deletion); returns how many. */
export async function deleteActionItems(visitId: string): Promise<number> {
  const snapshot = await db().collection(COLLECTIONS.actions).where("visitId", "==", visitId).get();
  const batch = db().batch();
  // A summary holds at most 50 items (visit/summary.ts), well within one commit.
  snapshot.docs.forEach((doc) => batch.delete(doc.ref));
  if (!snapshot.empty) await batch.commit();
  return snapshot.size;
}

/** A visit's action items as the app sees them (for the user's data export). */
export async function listActionItems(visitId: string) {
  const snapshot = await db().collection(COLLECTIONS.actions).where("visitId", "==", visitId).get();
  return snapshot.docs
    .map((doc) => {
      const data = fromStored(doc.data()) as Record<string, unknown>;
      return {
        id: doc.id,
        index: typeof data.index === "number" ? data.index : 0,
        description: data.description,
        owner: data.owner,
        dueDate: data.dueDate ?? null,
        timing: data.timing ?? null,
        done: data.done === true,
        doneAt: data.doneAt ?? null,
      };
    })
    .sort((a, b) => a.index - b.index);
}
