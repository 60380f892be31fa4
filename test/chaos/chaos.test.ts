// A smaller chaos run inside `npm test`: every invariant must hold under injected provider
// faults, crashes and stalls at failpoints, duplicate/concurrent deliveries, overlapping checker
// runs, concurrent retry clicks, deletions at random moments (also of visits a zombie holds) and new
// recordings uploaded into failed visits, with several visits per user and the per-user limits on
// (UPLOAD_QUOTA_PER_DAY and MAX_CONCURRENT_VISITS_PER_USER at their defaults), and AssemblyAI webhook
// deliveries (duplicated, late, unauthenticated) racing the checkers — with a clinician's note for
// every visit and, for every other user, the summary also in their preferred language. (`npm run
// chaos` runs the large one.)

import { describe, expect, it } from "vitest";
import { runChaos } from "./chaos.js";

describe("chaos", () => {
  const runs = [
    { seed: 11, summaryContextTokens: 0 },
    // Seed 29 also summarizes every visit in parts (a small context budget), with checkpoints, splits and merges under the same faults.
    { seed: 29, summaryContextTokens: 1_650 },
  ];
  it.each(runs)("seed $seed: 40 visits at fault rate 0.25 keep every invariant", async (run) => {
    // A higher delete rate than the large run's, so that 40 visits surely see deletions.
    const report = await runChaos({ visits: 40, faultRate: 0.25, seed: run.seed, deleteRate: 0.2, limits: {}, summaryContextTokens: run.summaryContextTokens });
    for (const invariant of report.invariants) {
      expect(invariant.ok, `${invariant.name} (${invariant.detail}) ${report.leftovers.join("; ")}`).toBe(true);
    }
    expect(report.stuck).toEqual([]);
    // The run really was chaotic: faults were injected and handlers crashed.
    expect(report.faultsInjected.assemblyai + report.faultsInjected.openai).toBeGreaterThan(10);
    expect(report.failpoints.crashes + report.failpoints.stalls).toBeGreaterThan(0);
    expect(report.deliveries.duplicateUploads).toBeGreaterThan(0);
    expect(report.byStatus.completed).toBeGreaterThan(report.visits / 2);
    // Visits were deleted (and swept), and failed visits got new recordings that replaced the old.
    expect(report.deleted).toBeGreaterThan(0);
    expect(report.sweeps.sweepsRun).toBeGreaterThanOrEqual(report.deleted);
    expect(report.reuploads.accepted).toBeGreaterThan(0);
    // With the small budget, every completed visit was summarized in parts.
    if (run.summaryContextTokens > 0) expect(report.summariesInParts.visits).toBe(report.byStatus.completed);
    // Without it, only a visit whose summary answer was cut off (an injected `length` fault) is
    // written in parts: a cut-off answer is halved, not asked again.
    else expect(report.summariesInParts.visits).toBeLessThanOrEqual(report.faultsInjected.byKind.length ?? 0);
    // AssemblyAI's webhook deliveries were among the faults: with and without the secret, and used.
    expect(report.webhooks.byAuth.secret).toBeGreaterThan(0);
    expect((report.webhooks.byAuth.missing ?? 0) + (report.webhooks.byAuth.wrong ?? 0)).toBeGreaterThan(0);
    expect(report.webhooks.outcomes.transcript_saved).toBeGreaterThan(0);
    // The limits were met: five visits per user against three in flight refused some, and users
    // came back once Retry-After had passed.
    expect(report.limits?.refusals.too_many_active_visits ?? 0).toBeGreaterThan(0);
    expect(report.limits?.limitRetryClicks).toBeGreaterThan(0);
    // The translations and notes were paid for under the same storm, and every completed visit has its own.
    expect(report.companions.notes).toBe(report.byStatus.completed);
    expect(report.companions.translations).toBeGreaterThan(0);
  }, 300_000);
});
