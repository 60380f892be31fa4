// Waiting times between checks and attempts. Pure: the random jitter is passed in.

export interface PollBackoff {
  initialSeconds: number;
  maxSeconds: number;
}

/**
 * Delay before status check number `checks + 1` of a transcript: the initial delay, doubling
 * with each check that found the job still queued or processing, capped, with ±10 % jitter so
 * visits uploaded together do not stay in lockstep.
 */
export function nextPollDelaySeconds(checks: number, backoff: PollBackoff, random: number): number {
  const exponential = backoff.initialSeconds * 2 ** Math.max(0, checks);
  const capped = Math.min(Math.max(exponential, 1), backoff.maxSeconds);
  return Math.max(1, Math.round(capped * (0.9 + 0.2 * clamp01(random))));
}

/**
 * Delay before attempt `attempt + 1` of a stage after a retryable failure: the base delay,
 * doubling per attempt, at most 30 minutes, and never shorter than the provider's Retry-After.
 */
export function nextAttemptDelaySeconds(
  attempt: number,
  baseSeconds: number,
  retryAfterMs: number | undefined,
  random: number,
): number {
  const exponential = Math.min(baseSeconds * 2 ** Math.max(0, attempt - 1), 1800);
  const jittered = Math.round(exponential * (0.8 + 0.4 * clamp01(random)));
  return Math.max(jittered, Math.ceil((retryAfterMs ?? 0) / 1000));
}

function clamp01(value: number): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0.5;
}

export function addSeconds(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}
