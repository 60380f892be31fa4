import { describe, expect, it } from "vitest";
import { nextAttemptDelaySeconds, nextPollDelaySeconds } from "../../functions/src/visit/backoff.js";

describe("nextPollDelaySeconds", () => {
  const backoff = { initialSeconds: 30, maxSeconds: 600 };
  it("starts at the initial delay and doubles per check, capped", () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((checks) => nextPollDelaySeconds(checks, backoff, 0.5))).toEqual([
      30, 60, 120, 240, 480, 600, 600,
    ]);
  });

  it("applies ±10 % jitter", () => {
    expect(nextPollDelaySeconds(1, backoff, 0)).toBe(54);
    expect(nextPollDelaySeconds(1, backoff, 1)).toBe(66);
  });

  it("never returns less than a second", () => {
    expect(nextPollDelaySeconds(0, { initialSeconds: 0, maxSeconds: 1 }, 0)).toBe(1);
  });
});

describe("nextAttemptDelaySeconds", () => {
  it("doubles per attempt from the base, capped at 30 minutes", () => {
    expect([1, 2, 3, 10].map((attempt) => nextAttemptDelaySeconds(attempt, 60, undefined, 0.5))).toEqual([60, 120, 240, 1800]);
  });

  it("never waits less than Retry-After", () => {
    expect(nextAttemptDelaySeconds(1, 60, 300_000, 0.5)).toBe(300);
    expect(nextAttemptDelaySeconds(1, 0, 1_500, 0.5)).toBe(2);
  });
});
