import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { systemScheduler } from "../src/scheduler.js";

describe("systemScheduler", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs a callback after its delay, unless cancelled", () => {
    const calls: string[] = [];
    systemScheduler.schedule(() => calls.push("kept"), 100);
    const cancel = systemScheduler.schedule(() => calls.push("cancelled"), 100);
    cancel();
    vi.advanceTimersByTime(99);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(["kept"]);
    expect(systemScheduler.now()).toBe(1_100);
  });

  it("does not fire at once for a delay beyond setTimeout's 32-bit range (a huge stuck threshold)", () => {
    const calls: number[] = [];
    systemScheduler.schedule(() => calls.push(1), 2 ** 40);
    vi.advanceTimersByTime(24 * 60 * 60 * 1000);
    expect(calls).toEqual([]);
  });
});
