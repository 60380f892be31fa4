// Action items: one document per item in the top-level `actions` collection, with ids derived
// from the visit and the item's position, so writing a visit's summary again replaces its items
// instead of adding to them.

import type { Transaction } from "firebase-admin/firestore";
import type { ActionItem } from "../visit/summary.js";
import { COLLECTIONS, db } from "./db.js";

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
