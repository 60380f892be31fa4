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

export const DEFAULT_RETRY: Omit<RetryPolicy, "deadlineMs" | "attemptTimeoutMs"> = {
  retries: 3,
  minDelayMs: 500,
  maxDelayMs: 8_000,
};

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
          if (!failure.retryable) throw new AbortError(failure);
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
          return failure.retryable && fitsBeforeDeadline(Math.max(failure.retryAfterMs ?? 0, policy.minDelayMs));
        },
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          const failure = asPipelineError(error);
          const retryAfterMs = failure.retryAfterMs ?? 0;
          if (!failure.retryable || retriesLeft === 0 || !fitsBeforeDeadline(retryAfterMs)) return;
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
