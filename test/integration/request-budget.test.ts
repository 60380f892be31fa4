// Token pools of the request budget (steps/request-budget.ts) against block claims in the embedded
// Firestore: how far one caller gets in its pool, and when it takes a window as spent.

import { describe, expect, it } from "vitest";
import { PACING, blockCount, blockKey, blockTokens, poolShapes, windowStartMs } from "../../functions/src/providers/request-pacing.js";
import { RequestBudget } from "../../functions/src/steps/request-budget.js";
import { claimBudgetBlock } from "../../functions/src/store/request-budget.js";
import { useLocalRuntime } from "../support/use-local-runtime.js";

const runtime = useLocalRuntime();
const REQUESTS_PER_MINUTE = 3300;
// Well inside a window, so every token below comes from the same one.
const NOW = new Date(windowStartMs(Date.parse("2031-03-04T05:06:00Z")) + 10_000);
const shared = poolShapes(REQUESTS_PER_MINUTE).shared;

function budget(owner: string): RequestBudget {
  // A caller that finds no token would wait for the next window: here it gives up at once.
  return new RequestBudget({ provider: "assemblyai", requestsPerMinute: REQUESTS_PER_MINUTE, owner, clock: () => NOW, sleep: () => Promise.resolve() });
}

/** Requests one caller outside any checker run gets before its pool says no. */
async function requestsGranted(caller: RequestBudget, limit: number): Promise<number> {
  for (let granted = 0; granted < limit; granted++) {
    try {
      await caller.beforeRequest();
    } catch {
      return granted;
    }
  }
  return limit;
}

/** Claims the shared pool's blocks `which` picks, as other callers would; the tokens they hold. */
async function claimedByOthers(which: (index: number) => boolean): Promise<number> {
  const windowStart = windowStartMs(NOW.getTime());
  let tokens = 0;
  for (let index = 0; index < blockCount(shared); index++) {
    if (!which(index)) continue;
    tokens += blockTokens(shared, index);
    const block = { windowStart: new Date(windowStart), pool: "shared" as const, tokens: blockTokens(shared, index), owner: "others", now: NOW };
    await claimBudgetBlock("assemblyai", blockKey(windowStart, "shared", index), block);
  }
  return tokens;
}

describe("the shared pool (upload trigger, api, account deletions)", () => {
  it("lets one busy instance claim block after block, up to the whole share of the minute", async () => {
    expect(blockCount(shared)).toBeGreaterThan(PACING.maxClaimProbes);
    expect(await requestsGranted(budget("busy-instance"), shared.tokensPerWindow + 10)).toBe(shared.tokensPerWindow);
  });

  it("takes the window as spent after finding a run of blocks taken, without trying every block", async () => {
    // Every block of the shared pool already claimed by other callers.
    await claimedByOthers(() => true);
    const attempts: string[] = [];
    const counter = runtime().firestore.countOps((op) => {
      if (op.kind === "write" && op.path.includes("/budgetBlocks/")) attempts.push(op.path);
    });
    try {
      expect(await requestsGranted(budget("late-instance"), 1)).toBe(0);
    } finally {
      counter.stop();
    }
    expect(attempts).toHaveLength(PACING.maxClaimProbes);
  });

  it("finds the blocks left between taken ones", async () => {
    // Every other block taken: each claim misses at most once before it finds a free one.
    const taken = await claimedByOthers((index) => index % 2 === 0);
    expect(await requestsGranted(budget("instance"), shared.tokensPerWindow)).toBe(shared.tokensPerWindow - taken);
  });
});
