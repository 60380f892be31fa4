import { describe, expect, it } from "vitest";
import { parseVisitDocument } from "../src/visit-document.js";

/** What the SDK hands over for a Firestore Timestamp. */
const timestamp = (iso: string) => ({ seconds: Date.parse(iso) / 1000, nanoseconds: 0, toMillis: () => Date.parse(iso) });

describe("parseVisitDocument", () => {
  it("reads the status, the error, transcript presence and the time the status was entered", () => {
    const parsed = parseVisitDocument({
      userId: "u1",
      status: "transcribing",
      transcriptId: "t-1",
      transcript: null,
      error: { stage: "transcription", code: "provider_timeout", message: "The provider did not answer in time.", retryable: true },
      createdAt: timestamp("2026-03-01T11:00:00Z"),
      updatedAt: timestamp("2026-03-01T11:30:00Z"),
      pendingAt: timestamp("2026-03-01T11:00:00Z"),
      transcribingAt: timestamp("2026-03-01T11:01:00Z"),
      history: [],
    });
    expect(parsed).toEqual({
      ok: true,
      visit: {
        status: "transcribing",
        error: { stage: "transcription", code: "provider_timeout", message: "The provider did not answer in time.", retryable: true },
        hasTranscript: false,
        updatedAt: new Date("2026-03-01T11:30:00Z"),
        statusEnteredAt: new Date("2026-03-01T11:01:00Z"),
      },
    });
  });

  it("accepts Dates and missing optional fields", () => {
    const parsed = parseVisitDocument({ status: "completed", completedAt: new Date("2026-03-01T12:00:00Z"), transcript: { utteranceCount: 3 } });
    expect(parsed).toEqual({
      ok: true,
      visit: { status: "completed", error: null, hasTranscript: true, updatedAt: null, statusEnteredAt: new Date("2026-03-01T12:00:00Z") },
    });
  });

  it("refuses a status outside the contract, naming the field", () => {
    const parsed = parseVisitDocument({ status: "archived" });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toMatch(/^The visit document is not readable: status: /);
  });

  it("refuses a malformed error and a timestamp that is not one", () => {
    expect(parseVisitDocument({ status: "failed", error: { code: "x" } }).ok).toBe(false);
    expect(parseVisitDocument({ status: "pending", pendingAt: "yesterday" }).ok).toBe(false);
  });

  it("refuses something that is not a document", () => {
    expect(parseVisitDocument("pending")).toEqual({ ok: false, message: expect.stringMatching(/^The visit document is not readable: document: /) });
  });
});
