// The pacing policy (providers/request-pacing.ts): how a minute's budget is split into pools and
// blocks, the pause and slower pace after a 429, and the concurrency that follows from a rate.

import { describe, expect, it } from "vitest";
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
} from "../../functions/src/providers/request-pacing.js";

const MINUTE = Date.parse("2031-03-04T05:06:00Z");

describe("pools and blocks", () => {
  it.each([10, 12, 60, 200, 3300, 100_000])("splits %i requests a minute into two pools that add up to it", (requestsPerMinute) => {
    const pools = poolShapes(requestsPerMinute);
    expect(pools.checker.tokensPerWindow + pools.shared.tokensPerWindow).toBe(requestsPerMinute);
    expect(pools.shared.tokensPerWindow).toBeGreaterThanOrEqual(1);
    expect(pools.checker.tokensPerWindow).toBe(Math.min(requestsPerMinute - 1, Math.floor(requestsPerMinute * PACING.checkerShare)));
  });

  it.each([10, 60, 200, 3300])("cuts each pool of a %i budget into blocks holding exactly its tokens", (requestsPerMinute) => {
    for (const pool of Object.values(poolShapes(requestsPerMinute))) {
      const blocks = Array.from({ length: blockCount(pool) }, (_, index) => blockTokens(pool, index));
      expect(blocks.reduce((sum, tokens) => sum + tokens, 0)).toBe(pool.tokensPerWindow);
      expect(blocks.every((tokens) => tokens >= 1 && tokens <= pool.blockSize)).toBe(true);
      expect(blockTokens(pool, -1)).toBe(0);
      expect(blockTokens(pool, blocks.length)).toBe(0);
    }
  });

  it("keys a block by its window, pool and number, so each can be claimed once", () => {
    expect(blockKey(MINUTE, "checker", 3)).toBe(`${MINUTE}-checker-3`);
    expect(new Set([blockKey(MINUTE, "checker", 0), blockKey(MINUTE, "shared", 0), blockKey(MINUTE + 60_000, "checker", 0)]).size).toBe(3);
  });

  it("counts in fixed minutes aligned to the epoch", () => {
    expect(windowStartMs(MINUTE)).toBe(MINUTE);
    expect(windowStartMs(MINUTE + 59_999)).toBe(MINUTE);
    expect(windowStartMs(MINUTE + 60_000)).toBe(MINUTE + 60_000);
  });
});

describe("after a 429", () => {
  it("pauses for the Retry-After, bounded, or a default when there is none", () => {
    expect(pauseAfterRateLimit(7_000)).toBe(7_000);
    expect(pauseAfterRateLimit(undefined)).toBe(PACING.defaultRetryAfterMs);
    expect(pauseAfterRateLimit(0)).toBe(PACING.defaultRetryAfterMs);
    expect(pauseAfterRateLimit(Number.NaN)).toBe(PACING.defaultRetryAfterMs);
    expect(pauseAfterRateLimit(3_600_000)).toBe(PACING.maxPauseMs);
  });

  it("slows the pace until the recovery period after the pause has passed", () => {
    const pause = { pausedUntilMs: MINUTE + 10_000 };
    expect(paceFactor(null, MINUTE)).toBe(1);
    expect(paceFactor(pause, MINUTE + 5_000)).toBe(PACING.slowFactor);
    expect(paceFactor(pause, MINUTE + 10_000 + PACING.recoveryMs - 1)).toBe(PACING.slowFactor);
    expect(paceFactor(pause, MINUTE + 10_000 + PACING.recoveryMs)).toBe(1);
  });

  it("a slowed run asks for proportionally fewer visits in flight", () => {
    const input = { tokensLeft: 2_970, nowMs: MINUTE };
    const normal = targetRequestRate({ ...input, factor: 1 });
    const slowed = targetRequestRate({ ...input, factor: PACING.slowFactor });
    expect(slowed).toBeCloseTo(normal * PACING.slowFactor);
    const at = (requestRate: number) => concurrencyFor({ requestRate, visitLatencyMs: 400, requestsPerVisit: 1, max: 64 });
    expect(at(slowed)).toBeLessThan(at(normal));
  });
});

describe("the pace of a checker run", () => {
  it("spreads what is left of the share over what is left of the minute", () => {
    const share = poolShapes(3300).checker.tokensPerWindow;
    // At the start of a minute: the share's steady rate, 90 % of the budget's 55 requests a second.
    expect(targetRequestRate({ tokensLeft: share, nowMs: MINUTE, factor: 1 })).toBeCloseTo(share / 60);
    expect(share / 60 / (3300 / 60)).toBeCloseTo(PACING.checkerShare);
    expect(targetRequestRate({ tokensLeft: 100, nowMs: MINUTE + 50_000, factor: 1 })).toBeCloseTo(10);
    expect(targetRequestRate({ tokensLeft: 0, nowMs: MINUTE + 50_000, factor: 1 })).toBe(0);
  });

  it("spends the share by the end of the run's intake when that comes before the minute's end", () => {
    const share = poolShapes(3300).checker.tokensPerWindow;
    // A run that starts with the minute and takes visits for 55 s: the whole share in those 55 s.
    expect(targetRequestRate({ tokensLeft: share, nowMs: MINUTE, factor: 1, runLeftMs: 55_000 })).toBeCloseTo(share / 55);
    // A run with more time than the minute has left paces by the minute.
    expect(targetRequestRate({ tokensLeft: 100, nowMs: MINUTE + 50_000, factor: 1, runLeftMs: 30_000 })).toBeCloseTo(10);
    // Slowed after a 429 all the same; never more than what is left in half a second.
    expect(targetRequestRate({ tokensLeft: share, nowMs: MINUTE, factor: PACING.slowFactor, runLeftMs: 55_000 })).toBeCloseTo((share / 55) * PACING.slowFactor);
    expect(targetRequestRate({ tokensLeft: 100, nowMs: MINUTE, factor: 1, runLeftMs: 0 })).toBeCloseTo(200);
  });

  it("sizes concurrency by Little's law, within 1 and the maximum", () => {
    // 49.5 requests/s, one request per visit, 300 ms per visit: 15 in flight.
    expect(concurrencyFor({ requestRate: 49.5, visitLatencyMs: 300, requestsPerVisit: 1, max: 48 })).toBe(15);
    // Twice the latency, twice the concurrency; two requests per visit, half.
    expect(concurrencyFor({ requestRate: 49.5, visitLatencyMs: 600, requestsPerVisit: 1, max: 48 })).toBe(30);
    expect(concurrencyFor({ requestRate: 49.5, visitLatencyMs: 600, requestsPerVisit: 2, max: 48 })).toBe(15);
    expect(concurrencyFor({ requestRate: 49.5, visitLatencyMs: 5_000, requestsPerVisit: 1, max: 48 })).toBe(48);
    expect(concurrencyFor({ requestRate: 0, visitLatencyMs: 300, requestsPerVisit: 1, max: 48 })).toBe(1);
  });

  it("averages latency from its first sample on", () => {
    const average = new MovingAverage(0.5, 300);
    expect(average.current).toBe(300);
    average.add(100);
    expect(average.current).toBe(100);
    average.add(200);
    expect(average.current).toBe(150);
  });
});
