// In-call retries for provider requests: exponential backoff with jitter (p-retry), retryable
// errors only, Retry-After honoured, and never past the caller's deadline — a retry that would
// outlive the function is left to the next invocation instead.

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
  onRetry?(error: PipelineError, attempt: number, delayMs: number): void;
}

export async function withRetries<T>(
  call: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  observer: RetryObserver = {},
  now: () => number = Date.now,
): Promise<T> {
  const fitsBeforeDeadline = (waitMs: number) => now() + waitMs + policy.attemptTimeoutMs <= policy.deadlineMs;
  try {
    return await pRetry(
      async (attempt) => {
        try {
          return await call(attempt);
        } catch (error) {
          const failure = asPipelineError(error);
          // A paid call that may have taken effect is never repeated blindly.
          if (!failure.transient || failure.outcomeUnknown) throw new AbortError(failure);
          throw failure;
        }
      },
      {
        retries: policy.retries,
        minTimeout: policy.minDelayMs,
        maxTimeout: policy.maxDelayMs,
        factor: 2,
        randomize: true,
        shouldRetry: ({ error }) => {
          const failure = asPipelineError(error);
          return failure.transient && fitsBeforeDeadline(Math.max(failure.retryAfterMs ?? 0, policy.minDelayMs));
        },
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          const failure = asPipelineError(error);
          const retryAfterMs = failure.retryAfterMs ?? 0;
          if (!failure.transient || retriesLeft === 0 || !fitsBeforeDeadline(retryAfterMs)) return;
          observer.onRetry?.(failure, attemptNumber, retryAfterMs);
          // p-retry's own backoff follows; waiting out Retry-After first keeps us at or past it.
          if (retryAfterMs > 0) await sleep(retryAfterMs);
        },
      },
    );
  } catch (error) {
    throw asPipelineError(error);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
