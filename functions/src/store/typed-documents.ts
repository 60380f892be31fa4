// The typed edge between the pipeline's plain data and Firestore documents, shared by every store
// module: one timestamp rule (Firestore Timestamps become Dates on the way in; Dates are written
// as Timestamps by the SDK on the way out), zod-checked reads, and stored shapes derived from the
// model so that `update()` paths — dotted ones included — are checked by the compiler.

import { Timestamp } from "firebase-admin/firestore";
import type { DocumentData, FirestoreDataConverter, QueryDocumentSnapshot } from "firebase-admin/firestore";
import type { z } from "zod";

/** A model type as Firestore holds it: every Date may come back as a Timestamp. */
export type Stored<T> = T extends Date
  ? Date | Timestamp
  : T extends readonly (infer Item)[]
    ? Stored<Item>[]
    : T extends object
      ? { [K in keyof T]: Stored<T[K]> }
      : T;

/**
 * `Stored<T>` as the converter's database type. Without an index signature (which `& DocumentData`
 * would add, letting any field name through), so `update()` paths are checked against the model.
 */
export type StoredData<T> = Extract<Stored<T>, DocumentData>;

/** Timestamps to Dates, all the way down (arrays and maps included). */
export function fromStored(value: unknown): unknown {
  if (value instanceof Timestamp) return value.toDate();
  if (Array.isArray(value)) return value.map(fromStored);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fromStored(item)]));
  }
  return value;
}

/** A stored document that does not match its model: reported with the first bad field, never half-used. */
export class DocumentInvalidError extends Error {
  readonly code = "document_invalid";
  constructor(
    readonly collection: string,
    readonly documentId: string,
    readonly fieldPath: string,
  ) {
    super(`${collection}/${documentId} does not match the data model at ${fieldPath}`);
    this.name = "DocumentInvalidError";
  }
}

/**
 * A converter whose reads are checked by `schema` (after the timestamp rule) and whose writes are
 * the model itself. `T` is what the pipeline works with; the document id is not part of it.
 */
export function typedConverter<T extends DocumentData>(
  collection: string,
  schema: z.ZodType<T>,
): FirestoreDataConverter<T, StoredData<T>> {
  return {
    toFirestore: (model) => model as StoredData<T>,
    fromFirestore(snapshot: QueryDocumentSnapshot): T {
      const parsed = schema.safeParse(fromStored(snapshot.data()));
      if (!parsed.success) {
        throw new DocumentInvalidError(collection, snapshot.id, parsed.error.issues[0]?.path.join(".") || "(root)");
      }
      return parsed.data;
    },
  };
}
