// When a provider counts as down, and how the shared outage breaker is tuned. Policy only: the
// breaker's state lives in store/breaker.ts, which applies these settings.

import type { Config } from "../config.js";
import type { ErrorCode, PipelineError } from "../visit/errors.js";

export const PROVIDER_NAMES = ["assemblyai", "openai"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export interface BreakerSettings {
  failureThreshold: number;
  windowSeconds: number;
  cooldownSeconds: number;
  /** a probe that neither succeeds nor fails within this long is presumed dead and another probe may start */
  probeLeaseSeconds: number;
  /** how long acquire() may reuse a state it read (per instance), to avoid a Firestore read per provider call; default 2000 */
  cacheMs?: number;
}

const OUTAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "provider_unavailable",
  "provider_timeout",
  "provider_network_error",
  "provider_bad_response",
  "provider_rate_limited",
]);

/** Outage-like failures. Auth, bad request, quota, content and job errors say the provider is up. */
export function countsTowardOutage(error: PipelineError): boolean {
  return OUTAGE_CODES.has(error.code);
}

const DEFAULT_PROBE_LEASE_SECONDS = 60;
// Time between a probe's request timing out and its outcome being recorded.
const PROBE_REPORT_MARGIN_SECONDS = 30;

export function breakerSettingsFrom(config: Config): BreakerSettings {
  const longestRequestSeconds = Math.max(config.assemblyAiTimeoutSeconds, config.openAiTimeoutSeconds);
  return {
    failureThreshold: config.breakerFailureThreshold,
    windowSeconds: config.breakerWindowSeconds,
    cooldownSeconds: config.breakerCooldownSeconds,
    // A probe still waiting on its request must not be presumed dead, or two live probes would run.
    probeLeaseSeconds: Math.max(DEFAULT_PROBE_LEASE_SECONDS, longestRequestSeconds + PROBE_REPORT_MARGIN_SECONDS),
  };
}
