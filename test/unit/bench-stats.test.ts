// The benchmark's percentiles (test/bench/stats.ts): nearest rank, as its tables print them.

import { describe, expect, it } from "vitest";
import { percentile, spread } from "../bench/stats.js";

describe("percentile", () => {
  it("takes the nearest rank, whatever the input order", () => {
    const values = [5, 1, 4, 2, 3];
    expect(percentile(values, 50)).toBe(3);
    expect(percentile(values, 95)).toBe(5);
    expect(percentile(values, 100)).toBe(5);
    expect(percentile(values, 0)).toBe(1);
    // Twenty values: p95 is the 19th.
    expect(percentile(Array.from({ length: 20 }, (_, i) => 20 - i), 95)).toBe(19);
    // An even count: the lower middle.
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
  });

  it("is NaN for no values and leaves its input alone", () => {
    expect(percentile([], 50)).toBeNaN();
    const values = [3, 1, 2];
    percentile(values, 50);
    expect(values).toEqual([3, 1, 2]);
  });
});

describe("spread", () => {
  it("prints p50 / p95 / max with the unit", () => {
    expect(spread([10, 20, 30, 40])).toBe("20.0 / 40.0 / 40.0 ms");
    expect(spread([1.25, 2.5], "s", 2)).toBe("1.25 / 2.50 / 2.50 s");
  });
});
