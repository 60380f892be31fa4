// The retry button's limits, as a pure decision: a per-visit cooldown and a per-user quota over a
// sliding hour. Time is passed in.

export interface RetryLimits {
  cooldownSeconds: number;
  quotaPerHour: number;
}

export interface RetryHistory {
  /** When this visit was last retried. */
  lastVisitRetryAt: Date | null;
  /** When this user's retries in (at least) the last hour happened. */
  userRetryTimes: readonly Date[];
}

export type RetryAllowance =
  | { allowed: true; userRetryTimes: Date[] }
  | { allowed: false; code: "retry_too_soon" | "retry_quota_exceeded"; retryAfterSeconds: number };

const HOUR_MS = 3_600_000;

export function decideRetryAllowance(history: RetryHistory, now: Date, limits: RetryLimits): RetryAllowance {
  const nowMs = now.getTime();
  if (history.lastVisitRetryAt) {
    const waitMs = history.lastVisitRetryAt.getTime() + limits.cooldownSeconds * 1000 - nowMs;
    if (waitMs > 0) return { allowed: false, code: "retry_too_soon", retryAfterSeconds: Math.ceil(waitMs / 1000) };
  }
  const recent = history.userRetryTimes
    .filter((time) => time.getTime() > nowMs - HOUR_MS)
    .sort((a, b) => a.getTime() - b.getTime());
  if (recent.length >= limits.quotaPerHour) {
    // The window frees a slot when the oldest retry in it turns an hour old.
    const oldest = recent[recent.length - limits.quotaPerHour] as Date;
    const waitMs = oldest.getTime() + HOUR_MS - nowMs;
    return { allowed: false, code: "retry_quota_exceeded", retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
  }
  return { allowed: true, userRetryTimes: [...recent, now] };
}
