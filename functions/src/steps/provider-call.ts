// Every provider request goes through here: the shared outage breaker is asked first (while it is
// open the caller defers its work, without using up a visit's attempts), then, for AssemblyAI, the
// shared request budget (no token: deferred the same way), then the request runs
// with the in-call retries of its operation, bounded by the caller's deadline, and its outcome is
// reported back to the breaker.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { countsTowardOutage } from "../providers/outage-policy.js";
import type { ProviderName } from "../providers/outage-policy.js";
import { retryPolicy, withRetries } from "../providers/retry.js";
import { asPipelineError } from "../visit/errors.js";
import type { RequestBudget } from "./request-budget.js";

/** The provider operations and their in-call retries (a submission gets one more: it is the entry point). */
const OPERATIONS = {
  submit: { provider: "assemblyai", retries: 3 },
  get_transcript: { provider: "assemblyai", retries: 2 },
  find_transcript: { provider: "assemblyai", retries: 2 },
  delete_transcript: { provider: "assemblyai", retries: 2 },
  summarize: { provider: "openai", retries: 2 },
  write_clinician_note: { provider: "openai", retries: 2 },
  translate_summary: { provider: "openai", retries: 2 },
} as const satisfies Record<string, { provider: ProviderName; retries: number }>;

export type ProviderOperation = keyof typeof OPERATIONS;
export type OperationOf<P extends ProviderName> = {
  [Op in ProviderOperation]: (typeof OPERATIONS)[Op]["provider"] extends P ? Op : never;
}[ProviderOperation];

export type ProviderGate<P extends ProviderName> =
  | { allowed: false; retryAt: Date }
  | { allowed: true; call<T>(operation: OperationOf<P>, request: () => Promise<T>): Promise<T> };

/** Asks the breaker once for this unit of work; the gate then runs its provider requests. */
export async function openProviderGate<P extends ProviderName>(
  p: Pipeline,
  provider: P,
  work: { visitId: string; deadlineMs: number },
): Promise<ProviderGate<P>> {
  const breaker = p.breaker();
  const decision = await breaker.acquire(provider, p.now());
  if (!decision.allowed) return decision;
  // AssemblyAI requests are paced by the shared request budget: no token, no work (deferred like an outage).
  const budget = provider === "assemblyai" ? p.requestBudget() : null;
  const admission = budget ? await budget.admit(work.deadlineMs) : null;
  if (admission && !admission.allowed) return admission;
  const pass = admission?.pass;
  const attemptTimeoutMs = (provider === "assemblyai" ? p.config.assemblyAiTimeoutSeconds : p.config.openAiTimeoutSeconds) * 1000;
  return {
    allowed: true,
    async call(operation, request) {
      const policy = retryPolicy({
        retries: OPERATIONS[operation].retries,
        minDelayMs: p.config.providerRetryMinDelayMs,
        deadlineMs: work.deadlineMs,
        attemptTimeoutMs,
      });
      try {
        const paced = budget && pass ? () => budget.withPass(pass, () => reportingRateLimits(budget, request)) : request;
        const result = await withRetries(paced, policy, {
          onRetry: (error, attempt, waitMs) => logs.providerRetry(work.visitId, provider, operation, error, attempt, waitMs),
        });
        await breaker.recordSuccess(provider, p.now(), decision.probe);
        return result;
      } catch (thrown) {
        const failure = asPipelineError(thrown);
        // Any answer that is not an outage (a 400, a refusal) shows the provider is up again. Our own
        // budget refusing a request says nothing about the provider (a probe it stopped expires).
        if (failure.code === "request_budget_exhausted") throw failure;
        if (countsTowardOutage(failure)) await breaker.recordOutage(provider, p.now(), decision.probe);
        else await breaker.recordSuccess(provider, p.now(), decision.probe);
        throw failure;
      }
    },
  };
}

/** A 429 pauses every caller of the provider before the retry (if any) is planned. */
async function reportingRateLimits<T>(budget: RequestBudget, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (thrown) {
    const failure = asPipelineError(thrown);
    if (failure.httpStatus === 429) await budget.rateLimited(failure.retryAfterMs);
    throw failure;
  }
}
