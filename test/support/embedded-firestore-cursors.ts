// The embedded Firestore (@firestore-emulator/server 0.3.15) ignores query cursors (startAt,
// startAfter, endAt, endBefore) and cannot order by document id (`__name__`): it looks for a field
// of that name, finds none, and keeps insertion order. Production pages a user's visits with
// `where(userId).orderBy(__name__).startAfter(id).limit(n)` (store/visits.ts listUserVisits), which
// real Firestore serves; on the embedded server every page would be the first page again, so an
// export of more than one page would never end. This opt-in patch of the in-process server teaches
// it exactly that query shape: ordering by document id, with cursors on it. Queries ordered by
// anything else are left to the server as they are.

import { createRequire } from "node:module";

interface StateDocument {
  name: string;
}

interface CursorProto {
  values: { reference_value: string }[];
  before: boolean;
}

/** The server's generated (google-protobuf) StructuredQuery message, as far as used here. */
interface StructuredQueryProto {
  order_by: { field: { field_path: string }; direction: number }[];
  readonly has_start_at: boolean;
  start_at: CursorProto | undefined;
  readonly has_end_at: boolean;
  end_at: CursorProto | undefined;
  readonly has_limit: boolean;
  limit: { value: number } | undefined;
  clone(): StructuredQueryProto;
}

type V1Query = (this: unknown, parent: string, query: StructuredQueryProto) => StateDocument[];

interface StateClass {
  prototype: { v1Query: V1Query };
}

const DESCENDING = 2;
const require = createRequire(import.meta.url);
let installed = false;

/** Makes the in-process embedded Firestore honour document-id ordering and cursors (idempotent). */
export function supportDocumentIdCursors(): void {
  if (installed) return;
  installed = true;
  const { FirestoreState } = require("@firestore-emulator/server") as { FirestoreState: StateClass };
  const original = FirestoreState.prototype.v1Query;
  FirestoreState.prototype.v1Query = function v1Query(this: unknown, parent: string, query: StructuredQueryProto): StateDocument[] {
    const orders = query.order_by;
    const byDocumentId = orders.length === 1 && orders[0]?.field.field_path === "__name__";
    if (!byDocumentId) return original.call(this, parent, query);
    const descending = orders[0]?.direction === DESCENDING;
    // The same query without ordering, cursors and limit: the server filters, this sorts and cuts.
    const unbounded = query.clone();
    unbounded.order_by = [];
    unbounded.start_at = undefined;
    unbounded.end_at = undefined;
    unbounded.limit = undefined;
    const sign = descending ? -1 : 1;
    let docs = original.call(this, parent, unbounded).sort((a, b) => sign * compareIds(a.name, b.name));
    if (query.has_start_at && query.start_at) {
      const { id, before } = cursorOf(query.start_at);
      docs = docs.filter((doc) => {
        const order = sign * compareIds(doc.name, id);
        return before ? order >= 0 : order > 0;
      });
    }
    if (query.has_end_at && query.end_at) {
      const { id, before } = cursorOf(query.end_at);
      docs = docs.filter((doc) => {
        const order = sign * compareIds(doc.name, id);
        return before ? order < 0 : order <= 0;
      });
    }
    return query.has_limit && query.limit ? docs.slice(0, query.limit.value) : docs;
  };
}

function cursorOf(cursor: CursorProto): { id: string; before: boolean } {
  const reference = cursor.values[0]?.reference_value ?? "";
  return { id: reference.slice(reference.lastIndexOf("/") + 1), before: cursor.before };
}

/** Document ids sort by their UTF-8 bytes. */
function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
