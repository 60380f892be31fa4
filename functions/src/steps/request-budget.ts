// The AssemblyAI request budget as callers meet it: every request takes a token (in the SDK's fetch,
// so list pages and retries count too), tokens come from blocks claimed in Firestore
// (store/request-budget.ts), a 429 pauses every caller, and a checker run sizes its concurrency
// from the budget and the latency it measures. The policy and its numbers: providers/request-pacing.ts.

import { AsyncLocalStorage } from "node:async_hooks";
import type { ProviderName } from "../providers/outage-policy.js";
import {
  MovingAverage,
  PACING,
  blockCount,
  blockKey,
  blockTokens,
  concurrencyFor,
  paceFactor,
  pauseAfterRateLimit,
  poolShapes,
  targetRequestRate,
  windowStartMs,
} from "../providers/request-pacing.js";
import type { PoolShape } from "../providers/request-pacing.js";
import { claimBudgetBlock, readPause, recordPause } from "../store/request-budget.js";
import { PipelineError } from "../visit/errors.js";

/** How long an instance reuses the shared pause it read (a 429 it saw itself applies at once). */
const PAUSE_CACHE_MS = 2_000;

export interface BudgetObserver {
  paused(provider: ProviderName, untilMs: number): void;
  windowSpent(provider: ProviderName, pool: string, windowStartMs: number, spent: number): void;
}

/** One caller's tokens of one pool: what it claimed in the current window and has not spent yet. */
export class TokenPool {
  private window = -1;
  private tokens = 0;
  private spentInWindow = 0;
  private takenByOthers = 0;
  private nextIndex = 0;
  /** Blocks of this window this caller tried (claimed or found taken), and of those, found taken. */
  private probed = 0;
  private missed = 0;
  private exhausted = false;
  private claiming: Promise<void> | null = null;
  /** Tokens spent over the pool's life (all windows). */
  spent = 0;

  constructor(
    readonly shape: PoolShape,
    private readonly provider: ProviderName,
    private readonly owner: string,
    private readonly observer?: BudgetObserver,
  ) {}

  /** A token now, claiming a block if none is left; false when this pool's share of the window is spent. */
  async tryTake(now: Date): Promise<boolean> {
    for (;;) {
      this.roll(now.getTime());
      if (this.tokens > 0) {
        this.tokens -= 1;
        this.spentInWindow += 1;
        this.spent += 1;
        return true;
      }
      if (this.exhausted) return false;
      // One claim at a time: concurrent takers wait for it instead of claiming a block each.
      this.claiming ??= this.claimNextBlock(now).finally(() => (this.claiming = null));
      await this.claiming;
    }
  }

  /** Gives back a token taken in the window that is still current (it was not needed). */
  refund(takenInWindow: number, nowMs: number): void {
    this.roll(nowMs);
    if (takenInWindow !== this.window) return;
    this.tokens += 1;
    this.spentInWindow -= 1;
    this.spent -= 1;
  }

  currentWindow(nowMs: number): number {
    this.roll(nowMs);
    return this.window;
  }

  /** Whether the current window is known to be spent (only a failed claim tells). */
  spentOut(nowMs: number): boolean {
    this.roll(nowMs);
    return this.exhausted && this.tokens === 0;
  }

  /** What is left of the window's share, as far as this caller knows. */
  tokensLeft(nowMs: number): number {
    this.roll(nowMs);
    if (this.exhausted) return this.tokens;
    return Math.max(this.tokens, this.shape.tokensPerWindow - this.spentInWindow - this.takenByOthers);
  }

  private roll(nowMs: number): void {
    const window = windowStartMs(nowMs);
    if (window === this.window) return;
    this.window = window;
    this.tokens = 0;
    this.spentInWindow = 0;
    this.takenByOthers = 0;
    this.probed = 0;
    this.missed = 0;
    this.exhausted = false;
    // The checker's blocks are taken in order (a run learns where the others are); the many small
    // callers start at random so they rarely meet on one block.
    this.nextIndex = this.shape.name === "checker" ? 0 : Math.floor(Math.random() * blockCount(this.shape));
  }

  private async claimNextBlock(now: Date): Promise<void> {
    const window = this.window;
    const blocks = blockCount(this.shape);
    // Every block once at most; a small caller also stops after a few blocks in a row found taken
    // (only misses count: a busy instance may claim block after block of its share).
    const missLimit = this.shape.name === "checker" ? blocks : PACING.maxClaimProbes;
    while (this.window === window && this.probed < blocks && this.missed < missLimit) {
      const index = this.nextIndex % blocks;
      this.nextIndex += 1;
      this.probed += 1;
      const tokens = blockTokens(this.shape, index);
      const claimed = await claimBudgetBlock(this.provider, blockKey(window, this.shape.name, index), {
        windowStart: new Date(window),
        pool: this.shape.name,
        tokens,
        owner: this.owner,
        now,
      });
      if (this.window !== window) return;
      if (claimed) {
        this.missed = 0;
        this.tokens += tokens;
        return;
      }
      this.missed += 1;
      this.takenByOthers += tokens;
    }
    if (this.window === window && !this.exhausted) {
      this.exhausted = true;
      this.observer?.windowSpent(this.provider, this.shape.name, window, this.spentInWindow);
    }
  }
}

/** What a unit of work (one gate) holds: its pool, its deadline, and the token taken when it opened. */
export interface RequestPass {
  pool: TokenPool;
  deadlineMs: number;
  reserved: number;
}

interface BudgetContext {
  pool?: TokenPool;
  pass?: RequestPass;
  /** A token taken for this work before it started (a checker visit's), spent by its first gate. */
  prepaid?: { tokens: number };
}

export type Admission = { allowed: true; pass: RequestPass } | { allowed: false; retryAt: Date };

export interface RequestBudgetSettings {
  provider: ProviderName;
  requestsPerMinute: number;
  owner: string;
  clock: () => Date;
  sleep?: (ms: number) => Promise<void>;
  observer?: BudgetObserver;
}

export class RequestBudget {
  private readonly context = new AsyncLocalStorage<BudgetContext>();
  private readonly pools: ReturnType<typeof poolShapes>;
  /** The upload trigger's, the api's and account deletions' pool, for this instance. */
  private readonly shared: TokenPool;
  private pause = { untilMs: 0, readAtMs: -Infinity };
  private pauseRead: Promise<Date | null> | null = null;
  private readonly sleep: (ms: number) => Promise<void>;
  /** 429s this instance saw (for reports). */
  rateLimits = 0;

  constructor(private readonly settings: RequestBudgetSettings) {
    this.pools = poolShapes(settings.requestsPerMinute);
    this.shared = this.newPool("shared");
    this.sleep = settings.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  get requestsPerMinute(): number {
    return this.settings.requestsPerMinute;
  }

  /** A checker run's own pool: overlapping runs each claim blocks of the checker share. */
  newCheckerPool(): TokenPool {
    return this.newPool("checker");
  }

  /** Runs `work` with its provider requests drawn from `pool` (the checker wraps its run in this). */
  inPool<T>(pool: TokenPool, work: () => Promise<T>): Promise<T> {
    return this.context.run({ pool }, work);
  }

  /** Runs `work` holding one token already taken from `pool`; given back if the work sends nothing. */
  async withPrepaidToken<T>(pool: TokenPool, work: () => Promise<T>): Promise<T> {
    const window = pool.currentWindow(this.settings.clock().getTime());
    const prepaid = { tokens: 1 };
    try {
      return await this.context.run({ pool, prepaid }, work);
    } finally {
      if (prepaid.tokens > 0) pool.refund(window, this.settings.clock().getTime());
    }
  }

  /** Opening a unit of work: one token taken now (or the time to come back). */
  async admit(deadlineMs: number): Promise<Admission> {
    const pool = this.currentPool();
    const prepaid = this.context.getStore()?.prepaid;
    if (prepaid && prepaid.tokens > 0) {
      prepaid.tokens -= 1;
      return { allowed: true, pass: { pool, deadlineMs, reserved: 1 } };
    }
    const retryAt = await this.waitForToken(pool, deadlineMs);
    return retryAt ? { allowed: false, retryAt } : { allowed: true, pass: { pool, deadlineMs, reserved: 1 } };
  }

  /** Runs the requests of one call under the pass its gate holds. */
  withPass<T>(pass: RequestPass, work: () => Promise<T>): Promise<T> {
    return this.context.run({ pool: pass.pool, pass }, work);
  }

  /** Before each HTTP request: honour a pause, then spend the reserved token or take another. */
  async beforeRequest(): Promise<void> {
    const pass = this.context.getStore()?.pass;
    const pool = pass?.pool ?? this.currentPool();
    const deadlineMs = pass?.deadlineMs ?? Date.now() + PACING.maxRequestWaitMs;
    if (pass && pass.reserved > 0) {
      const pausedUntil = await this.waitOutPause(deadlineMs);
      if (pausedUntil === null) {
        pass.reserved -= 1;
        return;
      }
      throw budgetExhausted(pausedUntil, this.settings.clock(), "requests are paused after a 429");
    }
    const retryAt = await this.waitForToken(pool, deadlineMs);
    if (retryAt) throw budgetExhausted(retryAt, this.settings.clock(), `the ${pool.shape.name} share of this minute is spent`);
  }

  /** A 429: every caller holds its requests for the Retry-After, then goes slower for a while. */
  async rateLimited(retryAfterMs: number | undefined): Promise<void> {
    this.rateLimits += 1;
    const now = this.settings.clock();
    const untilMs = now.getTime() + pauseAfterRateLimit(retryAfterMs);
    if (untilMs <= this.pause.untilMs) return;
    this.pause = { untilMs, readAtMs: Date.now() };
    this.settings.observer?.paused(this.settings.provider, untilMs);
    await recordPause(this.settings.provider, new Date(untilMs), now);
  }

  /** 1, or the slower factor while a recent 429 is being recovered from. */
  async paceFactor(): Promise<number> {
    const untilMs = await this.pausedUntilMs();
    return paceFactor(untilMs > 0 ? { pausedUntilMs: untilMs } : null, this.settings.clock().getTime());
  }

  async pausedUntilMs(): Promise<number> {
    if (Date.now() - this.pause.readAtMs >= PAUSE_CACHE_MS) {
      // Callers that find the cache stale at once share one read (a checker run starts dozens).
      this.pauseRead ??= readPause(this.settings.provider).finally(() => (this.pauseRead = null));
      const stored = (await this.pauseRead)?.getTime() ?? 0;
      this.pause = { untilMs: Math.max(stored, this.pause.untilMs), readAtMs: Date.now() };
    }
    return this.pause.untilMs;
  }

  private newPool(name: "checker" | "shared"): TokenPool {
    return new TokenPool(this.pools[name], this.settings.provider, this.settings.owner, this.settings.observer);
  }

  private currentPool(): TokenPool {
    return this.context.getStore()?.pool ?? this.shared;
  }

  /** How long it may wait for a token: briefly, and never past the caller's deadline. */
  private mayWait(waitMs: number, deadlineMs: number): boolean {
    return waitMs <= Math.min(PACING.maxRequestWaitMs, deadlineMs - Date.now());
  }

  /** null once the pause (if any) is over; otherwise when it ends, if that is too far to wait. */
  private async waitOutPause(deadlineMs: number): Promise<Date | null> {
    for (let round = 0; round < 2; round++) {
      const waitMs = (await this.pausedUntilMs()) - this.settings.clock().getTime();
      if (waitMs <= 0) return null;
      if (round > 0 || !this.mayWait(waitMs, deadlineMs)) return new Date(this.settings.clock().getTime() + waitMs);
      await this.sleep(waitMs);
    }
    return null;
  }

  /** null once a token is taken; otherwise when one may be, if that is too far to wait. */
  private async waitForToken(pool: TokenPool, deadlineMs: number): Promise<Date | null> {
    for (let round = 0; round < 2; round++) {
      const pausedUntil = await this.waitOutPause(deadlineMs);
      if (pausedUntil) return pausedUntil;
      const now = this.settings.clock();
      if (await pool.tryTake(now)) return null;
      const nextWindow = windowStartMs(now.getTime()) + PACING.windowMs;
      if (round > 0 || !this.mayWait(nextWindow - now.getTime(), deadlineMs)) return new Date(nextWindow);
      await this.sleep(nextWindow - now.getTime());
    }
    return null;
  }
}

function budgetExhausted(retryAt: Date, now: Date, detail: string): PipelineError {
  return new PipelineError("request_budget_exhausted", { retryAfterMs: Math.max(0, retryAt.getTime() - now.getTime()), detail });
}

/**
 * A checker run's pace: before each visit it waits until fewer visits are in flight than the
 * budget and the measured latency call for (Little's law), and stops when the run's time is up or
 * its share is spent for longer than the run has left.
 */
export class CheckerRunPace {
  private inFlight = 0;
  private visitsDone = 0;
  private readonly latencyMs = new MovingAverage(0.2, 300);
  private readonly waiting: (() => void)[] = [];
  private factor = 1;
  private readonly waitedFor = new Set<number>();
  /** The largest concurrency the run used (for reports). */
  peakConcurrency = 0;

  constructor(
    private readonly budget: RequestBudget,
    readonly pool: TokenPool,
    private readonly options: { maxConcurrency: number; runEndsMs: number; clock: () => Date },
  ) {}

  /** Whether another visit may start now (after waiting for room); false ends the run's intake. */
  async admitVisit(): Promise<boolean> {
    for (;;) {
      const realLeftMs = this.options.runEndsMs - Date.now();
      if (realLeftMs <= 0) return false;
      const nowMs = this.options.clock().getTime();
      const pausedUntil = await this.budget.pausedUntilMs();
      const waitUntil = nowMs < pausedUntil ? pausedUntil : this.pool.spentOut(nowMs) ? windowStartMs(nowMs) + PACING.windowMs : null;
      if (waitUntil !== null) {
        // Waited for this moment once already (and the clock says it has not come): stop.
        if (waitUntil - nowMs >= realLeftMs || this.waitedFor.has(waitUntil)) return false;
        this.waitedFor.add(waitUntil);
        await new Promise((resolve) => setTimeout(resolve, waitUntil - nowMs));
        continue;
      }
      if (this.inFlight >= this.limit(nowMs)) {
        await new Promise<void>((resolve) => this.waiting.push(resolve));
        continue;
      }
      // The visit's first request is paid before the visit is taken: a visit the run cannot serve
      // keeps its due time (its place in line) instead of being claimed and deferred.
      this.inFlight += 1;
      if (!(await this.pool.tryTake(this.options.clock()))) {
        this.release();
        continue;
      }
      this.peakConcurrency = Math.max(this.peakConcurrency, this.inFlight);
      return true;
    }
  }

  /** Checks one admitted visit with the token taken for it; the latency feeds the pace. */
  async check<T>(work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await this.budget.withPrepaidToken(this.pool, work);
    } finally {
      this.visitsDone += 1;
      this.latencyMs.add(Date.now() - started);
      this.factor = await this.budget.paceFactor();
      this.release();
    }
  }

  /** An admitted slot not used (nothing was left to check): its token goes back too. */
  unused(): void {
    const nowMs = this.options.clock().getTime();
    this.pool.refund(this.pool.currentWindow(nowMs), nowMs);
    this.release();
  }

  private release(): void {
    this.inFlight -= 1;
    // Every waiter looks again: a slot is free, and the limit itself may have grown.
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** The measured average time of one visit's check. */
  get meanVisitMs(): number {
    return this.latencyMs.current;
  }

  /** Visits in flight the budget and latency call for now. */
  limit(nowMs: number): number {
    const requestRate = targetRequestRate({
      tokensLeft: this.pool.tokensLeft(nowMs),
      nowMs,
      factor: this.factor,
      runLeftMs: this.options.runEndsMs - Date.now(),
    });
    const requestsPerVisit = this.visitsDone === 0 ? 1 : this.pool.spent / this.visitsDone;
    return concurrencyFor({ requestRate, visitLatencyMs: this.latencyMs.current, requestsPerVisit, max: this.options.maxConcurrency });
  }
}
