// Stage: AssemblyAI announced that a visit's job ended (the webhook fast path). The delivery is
// only a hint: it is authenticated with the visit's secret, then the visit is checked exactly as
// the checker checks it (checkVisit: the claim on the due time, the check lease, pollTranscript,
// which reads the job's state from AssemblyAI itself and dispatches summarization). A delivery
// that cannot be used — a visit that is gone, another job's, a transcript already saved, a
// duplicate — changes nothing. The checker stays the safety net for lost deliveries.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { webhookSecretHash, webhookSecretMatches } from "../providers/assemblyai-webhook.js";
import { getVisit } from "../store/visits.js";
import type { Visit } from "../visit/model.js";
import { checkVisit } from "./check-due-visits.js";

export interface WebhookDelivery {
  visitId: string;
  /** The auth header's value as received; null when it is missing. */
  presentedSecret: string | null;
  /** `transcript_id` of the body; null when the body had none that could be read. */
  transcriptId: string | null;
}

export type WebhookResult =
  | { authenticated: false }
  | { authenticated: true; outcome: string };

// How often, and how long at most, a delivery that found the visit's check taken looks again for
// that check's result. A check normally writes it within a second of its status read; a holder
// slower than this (an outage, a zombie) leaves the visit to the checker's safety net.
const HOLDER_WAIT_STEP_MS = 150;
const HOLDER_WAIT_MS = 2_500;

export async function receiveTranscriptWebhook(p: Pipeline, delivery: WebhookDelivery, deadlineMs: number): Promise<WebhookResult> {
  const startedMs = Date.now();
  const visit = await readVisitOrNull(delivery.visitId);
  // A visit that is gone (or never was) has no stored hash: the derivation still tells AssemblyAI's
  // deliveries for it from forgeries. The stored hash wins when there is one (a rotated API key).
  const expectedHash = visit?.webhookSecretSha256 ?? webhookSecretHash(p.webhookSecret(delivery.visitId));
  if (delivery.presentedSecret === null || !webhookSecretMatches(delivery.presentedSecret, expectedHash)) {
    logs.webhookRejected(visit ? visit.id : null, delivery.presentedSecret === null ? "secret_missing" : "secret_wrong");
    return { authenticated: false };
  }
  const outcome = await useDelivery(p, visit, delivery, deadlineMs);
  logs.webhookHandled(delivery.visitId, delivery.transcriptId, outcome, Date.now() - startedMs);
  return { authenticated: true, outcome };
}

async function useDelivery(p: Pipeline, first: Visit | null, delivery: WebhookDelivery, deadlineMs: number): Promise<string> {
  let visit = first;
  let waitingForChecks: number | null = null;
  let waitUntilMs = deadlineMs;
  for (;;) {
    const unusable = whyUnusable(visit, delivery.transcriptId);
    if (unusable || !visit) return unusable ?? "visit_not_found";
    if (waitingForChecks === null || visit.checks > waitingForChecks) {
      const outcome = await checkVisit(p, visit, deadlineMs);
      if (outcome !== "claimed_elsewhere" && outcome !== "superseded") return outcome;
      // A checker run (or another delivery) is checking the job right now, and may have read it
      // just before it ended: wait for that check's result, then check once more if still needed.
      waitingForChecks = visit.checks;
      waitUntilMs = Math.min(deadlineMs, Date.now() + HOLDER_WAIT_MS);
    }
    if (Date.now() + HOLDER_WAIT_STEP_MS >= waitUntilMs) return "checked_elsewhere";
    await new Promise((resolve) => setTimeout(resolve, HOLDER_WAIT_STEP_MS));
    visit = await readVisitOrNull(delivery.visitId);
  }
}

/** Why this delivery cannot move the visit on, or null when its job is the visit's current one. */
function whyUnusable(visit: Visit | null, transcriptId: string | null): string | null {
  if (!visit) return "visit_not_found";
  if (transcriptId === null) return "malformed_delivery";
  if (visit.transcriptId !== transcriptId) return "other_job";
  if (visit.status !== "transcribing") return "not_transcribing";
  return null;
}

async function readVisitOrNull(visitId: string): Promise<Visit | null> {
  try {
    return await getVisit(visitId);
  } catch (error) {
    // An unreadable document is the checker's to park; a delivery leaves it alone.
    if (error instanceof Error && "code" in error && error.code === "document_invalid") return null;
    throw error;
  }
}
