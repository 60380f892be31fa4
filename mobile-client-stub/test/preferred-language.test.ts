import { describe, expect, it } from "vitest";
import { setPreferredLanguage } from "../src/preferred-language.js";
import type { ProfileWriter } from "../src/preferred-language.js";

function recordingWriter(failWith?: Error): ProfileWriter & { writes: [string, string | null][] } {
  const writes: [string, string | null][] = [];
  return {
    writes,
    writePreferredLanguage: (uid, language) => {
      if (failWith !== undefined) return Promise.reject(failWith);
      writes.push([uid, language]);
      return Promise.resolve();
    },
  };
}

describe("setPreferredLanguage", () => {
  it("writes an ISO 639-1 code, or null to clear it, for the signed-in user", async () => {
    const writer = recordingWriter();
    const deps = { writer, currentUid: () => "uid-1" };
    expect(await setPreferredLanguage(deps, "es")).toEqual({ kind: "saved", language: "es", message: "Summaries of recordings in another language will also be written in Spanish." });
    expect(await setPreferredLanguage(deps, null)).toMatchObject({ kind: "saved", language: null });
    expect(writer.writes).toEqual([
      ["uid-1", "es"],
      ["uid-1", null],
    ]);
  });

  it("answers invalid_language for anything else and writes nothing", async () => {
    const writer = recordingWriter();
    for (const bad of ["ES", "es-MX", "spa", "zz", "", " es", "bh"]) {
      const outcome = await setPreferredLanguage({ writer, currentUid: () => "uid-1" }, bad);
      expect(outcome, bad).toMatchObject({ kind: "error", code: "invalid_language" });
    }
    expect(writer.writes).toEqual([]);
  });

  it("needs a signed-in user, and reports a refused write with Firestore's code", async () => {
    expect(await setPreferredLanguage({ writer: recordingWriter(), currentUid: () => null }, "fr")).toMatchObject({ kind: "error", code: "not_signed_in" });
    const denied = Object.assign(new Error("Missing or insufficient permissions."), { code: "permission-denied" });
    expect(await setPreferredLanguage({ writer: recordingWriter(denied), currentUid: () => "uid-1" }, "fr")).toMatchObject({ kind: "error", code: "permission-denied" });
    expect(await setPreferredLanguage({ writer: recordingWriter(new Error("offline")), currentUid: () => "uid-1" }, "fr")).toMatchObject({ kind: "error", code: "write_failed" });
  });
});
