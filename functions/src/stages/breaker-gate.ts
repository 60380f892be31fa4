// Puts a provider call behind the shared outage breaker: ask first, then report how it went.
// While the breaker is open the caller defers its work — without using up a visit's attempts.

import type { Pipeline } from "../pipeline.js";
import { countsTowardOutage } from "../providers/outage-policy.js";
import type { ProviderName } from "../providers/outage-policy.js";
import { asPipelineError } from "../visit/errors.js";

export type BreakerGate =
  | { allowed: false; retryAt: Date }
  | { allowed: true; probe: boolean; run<T>(call: () => Promise<T>): Promise<T> };

export async function guardedBreakerCall(p: Pipeline, provider: ProviderName): Promise<BreakerGate> {
  const breaker = p.breaker();
  const decision = await breaker.acquire(provider, p.now());
  if (!decision.allowed) return decision;
  return {
    allowed: true,
    probe: decision.probe,
    async run(call) {
      try {
        const result = await call();
        await breaker.recordSuccess(provider, p.now(), decision.probe);
        return result;
      } catch (error) {
        const failure = asPipelineError(error);
        // Any answer that is not an outage (a 400, a refusal) shows the provider is up again.
        if (countsTowardOutage(failure)) await breaker.recordOutage(provider, p.now(), decision.probe);
        else await breaker.recordSuccess(provider, p.now(), decision.probe);
        throw error;
      }
    },
  };
}
