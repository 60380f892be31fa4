// The preferred language: one list of codes (functions/src/visit/language.ts) that firestore.rules
// restates for the profile's write rule. The rules themselves run in the rules tier
// (test/emulators/rules.tier.ts, Java 21); here, what can be checked without an emulator: the
// parser, and that the rules file restates the list and the one-field, owner-only profile.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ISO_639_1_CODES, isLanguageCode, parsePreferredLanguage } from "../../functions/src/visit/language.js";
import { ERROR_CODES } from "../../functions/src/visit/errors.js";

const rules = readFileSync(new URL("../../firestore.rules", import.meta.url), "utf8");

/** The body of `match /users/{uid} { … }` (up to its closing brace at the same indent). */
function profileRule(): string {
  const match = /^( *)match \/users\/\{uid\} \{\n([\s\S]*?)^\1\}/m.exec(rules);
  if (!match?.[2]) throw new Error("firestore.rules has no match /users/{uid} block");
  return match[2];
}

describe("parsePreferredLanguage", () => {
  it("takes an ISO 639-1 code exactly as written, and none for absent or null", () => {
    expect(parsePreferredLanguage("es")).toEqual({ ok: true, language: "es" });
    expect(parsePreferredLanguage("zu")).toEqual({ ok: true, language: "zu" });
    expect(parsePreferredLanguage(undefined)).toEqual({ ok: true, language: null });
    expect(parsePreferredLanguage(null)).toEqual({ ok: true, language: null });
  });

  it("refuses anything else with invalid_language: other cases, regions, three letters, withdrawn codes, non-strings", () => {
    for (const value of ["ES", "es-MX", "es_419", "spa", "zz", "bh", "", " es", 42, true, ["es"], { code: "es" }]) {
      expect(parsePreferredLanguage(value), JSON.stringify(value)).toEqual({ ok: false, code: "invalid_language" });
    }
    expect(ERROR_CODES.invalid_language).toMatchObject({ transient: false, retryable: false });
  });

  it("lists the 183 ISO 639-1 codes, each once, each a name the runtime's ICU knows", () => {
    expect(ISO_639_1_CODES).toHaveLength(183);
    expect(new Set(ISO_639_1_CODES).size).toBe(183);
    const names = new Intl.DisplayNames(["en"], { type: "language", fallback: "none" });
    for (const code of ISO_639_1_CODES) {
      expect(isLanguageCode(code)).toBe(true);
      expect(names.of(code), code).toBeTruthy();
    }
  });
});

describe("firestore.rules: the profile", () => {
  it("restates exactly the list of codes the pipeline accepts", () => {
    const listed = /function preferredLanguageCodes\(\) \{\s*return \[([^\]]*)\];/.exec(rules)?.[1];
    expect(listed).toBeDefined();
    expect([...listed!.matchAll(/'([a-z]+)'/g)].map((match) => match[1])).toEqual([...ISO_639_1_CODES]);
  });

  it("lets only the owner read it, and write only preferredLanguage (a listed code, null, or absent); no list, no delete", () => {
    const rule = profileRule();
    const allows = [...rule.matchAll(/allow ([a-z, ]+): if ([\s\S]*?);/g)].map((match) => ({ methods: match[1]!.split(/, */), condition: match[2]!.replace(/\s+/g, " ") }));
    expect(allows.map((allow) => allow.methods)).toEqual([["get"], ["create", "update"], ["list", "delete"]]);
    expect(allows[0]!.condition).toBe("signedIn() && request.auth.uid == uid");
    expect(allows[1]!.condition).toBe(
      "signedIn() && request.auth.uid == uid && request.resource.data.keys().hasOnly(['preferredLanguage']) && (!('preferredLanguage' in request.resource.data) || request.resource.data.preferredLanguage == null || request.resource.data.preferredLanguage in preferredLanguageCodes())",
    );
    expect(allows[2]!.condition).toBe("false");
  });
});
