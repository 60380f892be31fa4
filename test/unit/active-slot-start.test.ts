// When a visit is done with the active slot a tenancy took for one of its starts: the rule
// claimActiveSlot applies before it lets another visit take the slot over.

import { describe, expect, it } from "vitest";
import { startHappened } from "../../functions/src/store/upload-limits.js";

const claimedAt = new Date("2026-12-01T10:00:00Z");
const after = new Date(claimedAt.getTime() + 1000);
const before = new Date(claimedAt.getTime() - 1000);
const visit = (generation: string, retryCount: number, updatedAt = after) => ({ audio: { generation }, retryCount, updatedAt });

describe("startHappened", () => {
  it("a new recording: once the visit holds it", () => {
    const slot = { claimedAt, start: { generation: "g2", round: null } };
    expect(startHappened(slot, visit("g1", 0))).toBe(false);
    expect(startHappened(slot, visit("g2", 0))).toBe(true);
    expect(startHappened(slot, visit("g2", 3))).toBe(true);
  });

  it("a retry round: once the visit's retry count reaches it on the same recording, whatever else was written", () => {
    const slot = { claimedAt, start: { generation: "g1", round: 2 } };
    expect(startHappened(slot, visit("g1", 1))).toBe(false);
    expect(startHappened(slot, visit("g1", 1, new Date(claimedAt.getTime() + 60_000)))).toBe(false);
    expect(startHappened(slot, visit("g1", 2))).toBe(true);
    expect(startHappened(slot, visit("g1", 3))).toBe(true);
  });

  it("a retry of a recording the visit no longer holds can no longer start", () => {
    expect(startHappened({ claimedAt, start: { generation: "g1", round: 2 } }, visit("g2", 1))).toBe(true);
  });

  it("a tenancy from before starts were recorded: once the visit changed after it", () => {
    expect(startHappened({ claimedAt, start: null }, visit("g1", 0, before))).toBe(false);
    expect(startHappened({ claimedAt, start: null }, visit("g1", 0, after))).toBe(true);
  });
});
