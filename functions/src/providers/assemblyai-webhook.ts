// AssemblyAI's webhook, our side of it: the URL a job announces its end to, and the per-visit
// secret it sends back in a header we name at submit time (AssemblyAI does not sign deliveries).
//
// The secret is derived, not drawn: HMAC-SHA256 keyed by the AssemblyAI API key over a label and
// the visit id. A submission has no idempotency key and may be retried, recovered (a later attempt
// adopts the job an interrupted one created) or repeated by a retry round or a new recording; a
// random secret drawn per attempt would have to be stored before each send and the adopted job's
// one found again. Derived, every attempt sends the same value, whichever job ends up recorded, and
// nothing secret is stored: the visit keeps only its SHA-256 (so a rotated API key does not lock
// out jobs in flight), and a delivery for a visit that is gone can still be told from a forgery.
// The API key is already the server's secret for AssemblyAI, bound to exactly the functions that
// submit (upload trigger, checker, api): no new secret to provision, and whoever holds the key can
// already read every transcript, so the derived value grants nothing more.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** The header AssemblyAI sends the secret in (`webhook_auth_header_name`). */
export const WEBHOOK_AUTH_HEADER = "X-Visit-Webhook-Secret";
/** The api route AssemblyAI posts to. */
export const WEBHOOK_PATH = "/webhooks/assemblyai";

const DERIVATION_LABEL = "assemblyai-webhook/v1/";

export interface WebhookRequest {
  url: string;
  authHeaderName: string;
  authHeaderValue: string;
}

/** The visit's webhook secret (base64url, 43 characters). Never logged, never stored. */
export function webhookSecret(apiKey: string, visitId: string): string {
  return createHmac("sha256", apiKey).update(DERIVATION_LABEL + visitId).digest("base64url");
}

/** What the visit stores of its secret. */
export function webhookSecretHash(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Where AssemblyAI posts a visit's deliveries: the visit id rides in the query, so no lookup by transcript id is needed. */
export function webhookUrl(baseUrl: string, visitId: string): string {
  return `${baseUrl}${WEBHOOK_PATH}?visit=${encodeURIComponent(visitId)}`;
}

/** What a submission sends so that AssemblyAI announces the job's end for this visit. */
export function webhookRequest(baseUrl: string, visitId: string, secret: string): WebhookRequest {
  return { url: webhookUrl(baseUrl, visitId), authHeaderName: WEBHOOK_AUTH_HEADER, authHeaderValue: secret };
}

/** Whether `presented` is the secret whose SHA-256 is `expectedHashHex`, in constant time. */
export function webhookSecretMatches(presented: string, expectedHashHex: string): boolean {
  const expected = Buffer.from(expectedHashHex, "hex");
  const actual = createHash("sha256").update(presented).digest();
  // Both are 32 bytes unless the stored hash is malformed; comparing hashes keeps lengths equal.
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
