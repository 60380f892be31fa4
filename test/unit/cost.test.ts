import { describe, expect, it } from "vitest";
import { addToCost, audioDelta, discardedCallDelta, paidCallDelta, sameCost, sumCost, tokenDelta } from "../../functions/src/visit/cost.js";

const PRICES = { audioHour: 230_000, millionInputTokens: 400_000, millionOutputTokens: 1_600_000 };

describe("visit cost (visit/cost.ts)", () => {
  it("is null with no ledger entry, and the sum of the entries otherwise", () => {
    expect(sumCost([])).toBeNull();
    expect(sumCost([paidCallDelta(), paidCallDelta(), discardedCallDelta()])).toEqual({
      audioSeconds: 0,
      promptTokens: 0,
      completionTokens: 0,
      paidCalls: 2,
      discardedPaidCalls: 1,
      estimatedUsd: 0,
    });
  });

  it("prices audio per hour and tokens per million, each entry rounded to a whole micro-dollar", () => {
    // Half an hour at $0.23/h: $0.115.
    expect(audioDelta(1800, PRICES)).toMatchObject({ audioSeconds: 1800, estimatedMicroUsd: 115_000 });
    // 1 s at $0.23/h is 63.9 micro-dollars: 64.
    expect(audioDelta(1, PRICES).estimatedMicroUsd).toBe(64);
    // 10 000 prompt and 500 completion tokens: $0.004 + $0.0008.
    expect(tokenDelta({ promptTokens: 10_000, completionTokens: 500 }, PRICES)).toMatchObject({ promptTokens: 10_000, completionTokens: 500, estimatedMicroUsd: 4_800 });
  });

  it("sums micro-dollars exactly, whatever the order (no float drift in the estimate)", () => {
    const entries = Array.from({ length: 1000 }, (_, index) => audioDelta(index % 7, PRICES));
    const forward = sumCost(entries);
    const backward = sumCost([...entries].reverse());
    expect(forward).toEqual(backward);
    const micro = entries.reduce((sum, entry) => sum + entry.estimatedMicroUsd, 0);
    expect(forward?.estimatedUsd).toBe(micro / 1_000_000);
  });

  it("adds an entry to a cost exactly as summing the ledger with that entry would (entry by entry, 1,000 of them)", () => {
    const entries = Array.from({ length: 1000 }, (_, index) =>
      index % 3 === 0 ? audioDelta(61.25 + (index % 11), PRICES) : index % 3 === 1 ? tokenDelta({ promptTokens: 900 + index, completionTokens: 33 }, PRICES) : paidCallDelta(),
    );
    let running: ReturnType<typeof addToCost> | null = null;
    for (const [count, entry] of entries.entries()) {
      running = addToCost(running, entry);
      expect(sameCost(running, sumCost(entries.slice(0, count + 1)))).toBe(true);
    }
    expect(addToCost(null, paidCallDelta())).toEqual(sumCost([paidCallDelta()]));
  });

  it("counts nothing for a missing, negative or non-finite figure", () => {
    expect(audioDelta(Number.NaN, PRICES)).toMatchObject({ audioSeconds: 0, estimatedMicroUsd: 0 });
    expect(audioDelta(-5, PRICES)).toMatchObject({ audioSeconds: 0, estimatedMicroUsd: 0 });
    expect(tokenDelta({ promptTokens: -1, completionTokens: Number.POSITIVE_INFINITY }, PRICES)).toMatchObject({ promptTokens: 0, completionTokens: 0, estimatedMicroUsd: 0 });
  });

  it("compares costs field by field", () => {
    const cost = sumCost([paidCallDelta()]);
    expect(sameCost(cost, sumCost([paidCallDelta()]))).toBe(true);
    expect(sameCost(cost, sumCost([paidCallDelta(), paidCallDelta()]))).toBe(false);
    expect(sameCost(null, null)).toBe(true);
    expect(sameCost(cost, null)).toBe(false);
  });
});
