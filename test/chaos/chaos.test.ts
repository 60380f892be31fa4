// A smaller chaos run inside `npm test`: every invariant must hold under injected provider
// faults, crashes and stalls at failpoints, duplicate/concurrent deliveries, overlapping checker
// runs, concurrent retry clicks, deletions at random moments (also of visits a zombie holds) and new
// recordings uploaded into failed visits, with several visits per user and the per-user upload
// limits at their production defaults. (`npm run chaos` runs the large one.)

import { describe, expect, it } from "vitest";
import { runChaos } from "./chaos.js";

describe("chaos", () => {
  // Seed 11 with the production limits; seed 29 with a day's quota below the visits per user, so
  // that the quota refuses recordings too (and the visits it refuses stay unpaid).
  const runs = [
    { seed: 11, limits: {}, refusedWith: "too_many_active_visits", minCompletedShare: 0.5, summaryContextTokens: 0 },
    // Seed 29 also summarizes every visit in parts (a small context budget), with checkpoints, splits and merges under the same faults.
    { seed: 29, limits: { uploadQuotaPerDay: 3 }, refusedWith: "upload_quota_exceeded", minCompletedShare: 0.25, summaryContextTokens: 1_400 },
  ];
  it.each(runs)("seed $seed: 40 visits at fault rate 0.25 keep every invariant (limits $limits)", async (run) => {
    // A higher delete rate than the large run's, so that 40 visits surely see deletions.
    const report = await runChaos({ visits: 40, faultRate: 0.25, seed: run.seed, deleteRate: 0.2, limits: run.limits, summaryContextTokens: run.summaryContextTokens });
    for (const invariant of report.invariants) {
      expect(invariant.ok, `${invariant.name} (${invariant.detail}) ${report.leftovers.join("; ")}`).toBe(true);
    }
    expect(report.invariants.map((invariant) => invariant.name)).toContain("a recording a limit refused is never paid for");
    expect(report.stuck).toEqual([]);
    // The run really was chaotic: faults were injected and handlers crashed.
    expect(report.faultsInjected.assemblyai + report.faultsInjected.openai).toBeGreaterThan(10);
    expect(report.failpoints.crashes + report.failpoints.stalls).toBeGreaterThan(0);
    expect(report.deliveries.duplicateUploads).toBeGreaterThan(0);
    expect(report.byStatus.completed).toBeGreaterThan(report.visits * run.minCompletedShare);
    // Visits were deleted (and swept), and failed visits got new recordings that replaced the old.
    expect(report.deleted).toBeGreaterThan(0);
    expect(report.sweeps.sweepsRun).toBeGreaterThanOrEqual(report.deleted);
    expect(report.reuploads.accepted).toBeGreaterThan(0);
    // The per-user limits refused visits (five visits per user arrive at once).
    expect(report.limits?.refusals[run.refusedWith]).toBeGreaterThan(0);
    // With the small budget, completed visits were summarized in parts (and only then).
    if (run.summaryContextTokens > 0) expect(report.summariesInParts.visits).toBe(report.byStatus.completed);
    else expect(report.summariesInParts.visits).toBe(0);
  }, 300_000);
});
