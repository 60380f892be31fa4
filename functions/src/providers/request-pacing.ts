// How AssemblyAI's request budget is shared and paced. Policy only, pure (time is an argument):
// the claims live in store/request-budget.ts, the per-instance token pools in steps/request-budget.ts.
//
// The budget (ASSEMBLYAI_REQUESTS_PER_MINUTE) is counted in fixed one-minute windows aligned to the
// epoch. Each window is cut into blocks; a caller spends only tokens of blocks it claimed with
// create(), so all callers together never spend more than the window holds, without a shared counter.
// Checker runs draw on CHECKER_SHARE of each window; the upload trigger, the api (retry, deletion)
// and account deletions draw on the rest, in smaller blocks.

export const PACING = {
  windowMs: 60_000,
  /** Share of each window for checker runs (overlapping ones share it through block claims). */
  checkerShare: 0.9,
  /** Tokens per claimed block: one Firestore create() per this many checker requests. */
  checkerBlockSize: 50,
  /** The other callers make one or two requests per invocation: small blocks waste little. */
  sharedBlockSize: 5,
  /** A caller that finds this many blocks of its pool in a row taken takes the window as spent. */
  maxClaimProbes: 8,
  /** Longest a single request waits for a token (a 429 pause or the next window) before deferring. */
  maxRequestWaitMs: 5_000,
  /** After a 429, callers send at this fraction of their pace for `recoveryMs` past the pause. */
  slowFactor: 0.5,
  recoveryMs: 60_000,
  /** The pause after a 429 that names no Retry-After. */
  defaultRetryAfterMs: 5_000,
  /** Longest pause a 429 can impose, whatever its Retry-After says. */
  maxPauseMs: 10 * 60_000,
} as const;

export type PoolName = "checker" | "shared";

export interface PoolShape {
  name: PoolName;
  tokensPerWindow: number;
  blockSize: number;
}

/** The two pools of a budget; the checker's share rounds down, so the other callers keep at least one token. */
export function poolShapes(requestsPerMinute: number): Record<PoolName, PoolShape> {
  const checker = Math.max(1, Math.min(requestsPerMinute - 1, Math.floor(requestsPerMinute * PACING.checkerShare)));
  return {
    checker: { name: "checker", tokensPerWindow: checker, blockSize: PACING.checkerBlockSize },
    shared: { name: "shared", tokensPerWindow: requestsPerMinute - checker, blockSize: PACING.sharedBlockSize },
  };
}

export function windowStartMs(nowMs: number): number {
  return Math.floor(nowMs / PACING.windowMs) * PACING.windowMs;
}

export function blockCount(pool: PoolShape): number {
  return Math.ceil(pool.tokensPerWindow / pool.blockSize);
}

/** Tokens in block `index`: full blocks, and a last one holding the remainder. */
export function blockTokens(pool: PoolShape, index: number): number {
  if (index < 0 || index >= blockCount(pool)) return 0;
  return Math.min(pool.blockSize, pool.tokensPerWindow - index * pool.blockSize);
}

/** The claim document's key: the window, the pool and the block's number in it. */
export function blockKey(windowStart: number, pool: PoolName, index: number): string {
  return `${windowStart}-${pool}-${index}`;
}

/** The pause a 429 asks for: its Retry-After, bounded, or a default when it names none. */
export function pauseAfterRateLimit(retryAfterMs: number | undefined): number {
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs) || retryAfterMs <= 0) return PACING.defaultRetryAfterMs;
  return Math.min(retryAfterMs, PACING.maxPauseMs);
}

export interface SlowDown {
  /** No request starts before this (epoch ms). */
  pausedUntilMs: number;
}

/** 1 normally; slowFactor from a 429 until recoveryMs after its pause ended. */
export function paceFactor(slowDown: SlowDown | null, nowMs: number): number {
  if (!slowDown) return 1;
  return nowMs < slowDown.pausedUntilMs + PACING.recoveryMs ? PACING.slowFactor : 1;
}

/**
 * Requests per second a checker run aims at: what is left of its share of the window, spread over
 * what is left of the window or of the run's intake (`runLeftMs`), whichever ends first, slowed
 * after a 429. A run that starts with the minute and takes visits for 55 s thus spends its whole
 * share in those 55 s; spread over the full minute it would leave the last 5 s of it unspent, every
 * run. The share is per window whatever the pace inside it, so the budget holds either way.
 */
export function targetRequestRate(input: { tokensLeft: number; nowMs: number; factor: number; runLeftMs?: number }): number {
  const windowLeftMs = windowStartMs(input.nowMs) + PACING.windowMs - input.nowMs;
  const secondsLeft = Math.max(0.5, Math.min(windowLeftMs, input.runLeftMs ?? Infinity) / 1000);
  return (Math.max(0, input.tokensLeft) / secondsLeft) * input.factor;
}

/**
 * Little's law: visits in flight = visits per second × seconds per visit. A visit costs
 * `requestsPerVisit` requests on average, so the visit rate is the request rate divided by it.
 */
export function concurrencyFor(input: { requestRate: number; visitLatencyMs: number; requestsPerVisit: number; max: number }): number {
  const visitsPerSecond = input.requestRate / Math.max(0.1, input.requestsPerVisit);
  const wanted = Math.ceil(visitsPerSecond * (Math.max(1, input.visitLatencyMs) / 1000));
  return Math.min(input.max, Math.max(1, wanted));
}

/** An exponentially weighted average that starts at its first sample. */
export class MovingAverage {
  private value: number | null = null;

  constructor(
    private readonly weight: number,
    private readonly initial: number,
  ) {}

  add(sample: number): void {
    this.value = this.value === null ? sample : this.value + this.weight * (sample - this.value);
  }

  get current(): number {
    return this.value ?? this.initial;
  }
}
