// In-call retries for provider requests (p-retry): for transport failures and rate limits only,
// exponential backoff with jitter, Retry-After honoured, and never past the caller's deadline.
// Whether a failure is retried, and how long to wait, is decided once, right where the call
// failed: a retry that could not finish before the deadline is declined there — before anything
// is logged or slept — and left to the next invocation instead.

import pRetry, { AbortError } from "p-retry";
import { asPipelineError } from "../visit/errors.js";
import type { PipelineError } from "../visit/errors.js";

export interface RetryPolicy {
  /** Retries after the first try. */
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Epoch ms by which the last try must have finished: the function's time budget. */
  deadlineMs: number;
  /** Upper bound of one try, so a try is only started when it can finish before the deadline. */
  attemptTimeoutMs: number;
}

/** The usual policy: `retries` retries starting at `minDelayMs`, doubling, at most 16× that. */
export function retryPolicy(options: {
  retries: number;
  minDelayMs: number;
  deadlineMs: number;
  attemptTimeoutMs: number;
}): RetryPolicy {
  return { ...options, maxDelayMs: Math.max(options.minDelayMs * 16, 1) };
}

export interface RetryObserver {
  /** A retry was decided: it is about to wait `delayMs`, then try again. */
  onRetry?(error: PipelineError, attempt: number, delayMs: number): void;
}

/**
 * Failures worth repeating within the same call: the provider was unreachable, slow, overloaded
 * or rate limiting. An answer the provider did give (a refusal, a cut-off or invalid summary, a
 * failed job) is a whole attempt's outcome, handled across attempts, never re-bought in-call.
 */
function retriesInCall(error: PipelineError): boolean {
  return error.transient && !error.outcomeUnknown && error.code.startsWith("provider_");
}

/** The wait before retry number `retry` (1-based): doubling from the minimum, ±50 % jitter, capped. */
function backoffDelayMs(retry: number, policy: RetryPolicy, random: number): number {
  const exponential = Math.min(policy.minDelayMs * 2 ** Math.max(0, retry - 1), policy.maxDelayMs);
  return Math.round(exponential * (0.5 + Math.min(1, Math.max(0, random))));
}

export interface RetryEnvironment {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export async function withRetries<T>(
  call: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  observer: RetryObserver = {},
  environment: RetryEnvironment | (() => number) = {},
): Promise<T> {
  const env = typeof environment === "function" ? { now: environment } : environment;
  const now = env.now ?? Date.now;
  const sleep = env.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = env.random ?? Math.random;
  // The wait decided for each failure, read back when p-retry reports it.
  const planned = new WeakMap<Error, number>();

  const plan = (failure: PipelineError, attempt: number): number | null => {
    if (!retriesInCall(failure) || attempt > policy.retries) return null;
    const waitMs = Math.max(failure.retryAfterMs ?? 0, backoffDelayMs(attempt, policy, random()));
    return now() + waitMs + policy.attemptTimeoutMs <= policy.deadlineMs ? waitMs : null;
  };

  try {
    return await pRetry(
      async (attempt) => {
        try {
          return await call(attempt);
        } catch (error) {
          const failure = asPipelineError(error);
          const waitMs = plan(failure, attempt);
          if (waitMs === null) throw new AbortError(failure);
          planned.set(failure, waitMs);
          throw failure;
        }
      },
      {
        retries: policy.retries,
        // The waits are ours (planned above); p-retry supplies the loop and the bookkeeping.
        minTimeout: 0,
        maxTimeout: 0,
        randomize: false,
        onFailedAttempt: async ({ error, attemptNumber }) => {
          const waitMs = planned.get(error) ?? 0;
          observer.onRetry?.(asPipelineError(error), attemptNumber, waitMs);
          if (waitMs > 0) await sleep(waitMs);
        },
      },
    );
  } catch (error) {
    throw asPipelineError(error);
  }
}
