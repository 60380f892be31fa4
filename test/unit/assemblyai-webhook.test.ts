// The webhook secret: derived per visit (the same for every submission of it), stored only as
// its hash, compared in constant time.

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  WEBHOOK_AUTH_HEADER,
  webhookRequest,
  webhookSecret,
  webhookSecretHash,
  webhookSecretMatches,
  webhookUrl,
} from "../../functions/src/providers/assemblyai-webhook.js";

describe("webhookSecret", () => {
  it("is the same for a visit every time, differs between visits and between keys, and is 43 base64url characters", () => {
    const secret = webhookSecret("key-1", "visit-a");
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(webhookSecret("key-1", "visit-a")).toBe(secret);
    expect(webhookSecret("key-1", "visit-b")).not.toBe(secret);
    expect(webhookSecret("key-2", "visit-a")).not.toBe(secret);
    // Not the key, nor anything the visit id alone gives.
    expect(secret).not.toContain("key-1");
    expect(secret).not.toBe(createHash("sha256").update("visit-a").digest("base64url"));
  });
});

describe("webhookSecretMatches", () => {
  const secret = webhookSecret("key-1", "visit-a");
  const hash = webhookSecretHash(secret);

  it("accepts the secret whose SHA-256 is stored", () => {
    expect(hash).toBe(createHash("sha256").update(secret).digest("hex"));
    expect(webhookSecretMatches(secret, hash)).toBe(true);
  });

  it("refuses every other value, whatever its length, and a malformed stored hash", () => {
    for (const other of ["", "x", secret.slice(0, -1), `${secret}x`, secret.toUpperCase(), webhookSecret("key-1", "visit-b"), hash]) {
      expect(webhookSecretMatches(other, hash), other).toBe(false);
    }
    expect(webhookSecretMatches(secret, "")).toBe(false);
    expect(webhookSecretMatches(secret, hash.slice(0, 40))).toBe(false);
  });
});

describe("webhookRequest", () => {
  it("points at the api's webhook route with the visit in the query, and names the header", () => {
    expect(webhookUrl("https://api.test/api", "v 1")).toBe("https://api.test/api/webhooks/assemblyai?visit=v%201");
    expect(webhookRequest("https://api.test/api", "visit-a", "s3cret")).toEqual({
      url: "https://api.test/api/webhooks/assemblyai?visit=visit-a",
      authHeaderName: WEBHOOK_AUTH_HEADER,
      authHeaderValue: "s3cret",
    });
  });
});
