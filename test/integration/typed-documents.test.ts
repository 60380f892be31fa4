// The typed Firestore edge (store/typed-documents.ts) against the embedded Firestore: the one
// timestamp rule, zod-checked reads, and update paths checked by the compiler.

import { Timestamp } from "firebase-admin/firestore";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { db } from "../../functions/src/store/db.js";
import { DocumentInvalidError, fromStored, typedConverter } from "../../functions/src/store/typed-documents.js";
import { useEmbeddedFirestore } from "../support/embedded-firestore.js";

const COLLECTION = "typedSamples";

type Sample = {
  name: string;
  failures: number;
  startedAt: Date;
  window: { openedAt: Date | null; marks: Date[] };
};

const SampleSchema = z.object({
  name: z.string(),
  failures: z.number(),
  startedAt: z.date(),
  window: z.object({ openedAt: z.date().nullable(), marks: z.array(z.date()) }),
});

const sampleConverter = typedConverter<Sample>(COLLECTION, SampleSchema);

function sampleRef(id: string) {
  return db().collection(COLLECTION).doc(id).withConverter(sampleConverter);
}

function rawRef(id: string) {
  return db().collection(COLLECTION).doc(id);
}

/** The converter runs when the snapshot's data is read, not when the document is fetched. */
async function readError(id: string): Promise<unknown> {
  const snapshot = await sampleRef(id).get();
  try {
    snapshot.data();
  } catch (error) {
    return error;
  }
  throw new Error(`${COLLECTION}/${id} was read without an error`);
}

const T0 = new Date("2030-01-01T00:00:00.000Z");
const T1 = new Date("2030-01-01T00:01:00.123Z");
const T2 = new Date("2030-01-01T00:02:00.456Z");

const SAMPLE: Sample = { name: "first", failures: 2, startedAt: T0, window: { openedAt: T1, marks: [T1, T2] } };

useEmbeddedFirestore({ beforeAll, afterAll, beforeEach });

describe("fromStored", () => {
  it("turns Timestamps into Dates at any depth, in maps and arrays", () => {
    const stored = {
      at: Timestamp.fromDate(T0),
      nested: { deeper: { at: Timestamp.fromDate(T1) }, list: [Timestamp.fromDate(T2), { at: Timestamp.fromDate(T0) }] },
      lists: [[Timestamp.fromDate(T1)]],
    };
    expect(fromStored(stored)).toEqual({ at: T0, nested: { deeper: { at: T1 }, list: [T2, { at: T0 }] }, lists: [[T1]] });
  });

  it("keeps everything that is not a Timestamp as it is", () => {
    const plain = { text: "a", count: 3, flag: false, none: null, list: [1, "b"], when: T0, map: { n: 1 } };
    expect(fromStored(plain)).toEqual(plain);
    expect(fromStored("text")).toBe("text");
    expect(fromStored(null)).toBeNull();
    expect(fromStored(T0)).toBe(T0);
  });

  it("keeps a Timestamp's milliseconds", () => {
    expect(fromStored(new Timestamp(1_893_456_000, 123_000_000))).toEqual(new Date("2030-01-01T00:00:00.123Z"));
  });
});

describe("typedConverter", () => {
  it("reads a valid document with its Timestamps as Dates", async () => {
    await rawRef("valid").set({
      name: "first",
      failures: 2,
      startedAt: Timestamp.fromDate(T0),
      window: { openedAt: Timestamp.fromDate(T1), marks: [Timestamp.fromDate(T1), Timestamp.fromDate(T2)] },
    });
    const read = (await sampleRef("valid").get()).data();
    expect(read).toEqual(SAMPLE);
    expect(read?.window.marks[1]).toBeInstanceOf(Date);
  });

  it("reads query results through the same check", async () => {
    await sampleRef("one").set(SAMPLE);
    await sampleRef("two").set({ ...SAMPLE, name: "second" });
    const snapshot = await db().collection(COLLECTION).withConverter(sampleConverter).orderBy("name").get();
    expect(snapshot.docs.map((doc) => doc.data().name)).toEqual(["first", "second"]);
    expect(snapshot.docs[0]?.data().startedAt).toEqual(T0);
  });

  it("throws DocumentInvalidError naming the collection, the document and the first bad field", async () => {
    await rawRef("bad-nested").set({ ...SAMPLE, window: { openedAt: "yesterday", marks: [] } });
    const error = await readError("bad-nested");
    expect(error).toBeInstanceOf(DocumentInvalidError);
    expect(error).toMatchObject({
      code: "document_invalid",
      collection: COLLECTION,
      documentId: "bad-nested",
      fieldPath: "window.openedAt",
      message: `${COLLECTION}/bad-nested does not match the data model at window.openedAt`,
    });
  });

  it("names an array element and a top-level field by their paths", async () => {
    await rawRef("bad-mark").set({ ...SAMPLE, window: { openedAt: null, marks: [T1, 42] } });
    expect(await readError("bad-mark")).toMatchObject({ fieldPath: "window.marks.1", documentId: "bad-mark" });
    await rawRef("bad-count").set({ ...SAMPLE, failures: "2" });
    expect(await readError("bad-count")).toMatchObject({ fieldPath: "failures", documentId: "bad-count" });
    await rawRef("no-name").set({ failures: 1, startedAt: T0, window: { openedAt: null, marks: [] } });
    expect(await readError("no-name")).toMatchObject({ fieldPath: "name", documentId: "no-name" });
  });

  it("writes a model with Dates that reads back equal, stored as Timestamps", async () => {
    await sampleRef("round-trip").set(SAMPLE);
    expect((await sampleRef("round-trip").get()).data()).toEqual(SAMPLE);
    const raw = await rawRef("round-trip").get();
    expect(raw.get("startedAt")).toBeInstanceOf(Timestamp);
    expect(raw.get("window.marks")).toEqual([expect.any(Timestamp), expect.any(Timestamp)]);
  });

  it("applies typed dotted-path updates", async () => {
    await sampleRef("updated").set(SAMPLE);
    await sampleRef("updated").update({ failures: 3, "window.openedAt": null, "window.marks": [T2] });
    expect((await sampleRef("updated").get()).data()).toEqual({ ...SAMPLE, failures: 3, window: { openedAt: null, marks: [T2] } });
  });
});

async function _misspeltUpdatePathsDoNotTypecheck(): Promise<void> {
  const ref = sampleRef("never-called");
  // @ts-expect-error misspelt top-level field
  await ref.update({ failurez: 1 });
  // @ts-expect-error misspelt dotted path
  await ref.update({ "window.openedAz": null });
  // @ts-expect-error wrong value type at a dotted path
  await ref.update({ "window.marks": "not dates" });
  await db().runTransaction(async (tx) => {
    await tx.get(ref);
    // @ts-expect-error misspelt field in a transaction update
    tx.update(ref, { failurez: 1 });
  });
}
