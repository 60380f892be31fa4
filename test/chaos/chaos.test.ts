// A smaller chaos run inside `npm test`: every invariant must hold under injected provider
// faults, crashes and stalls at failpoints, duplicate/concurrent deliveries, overlapping checker
// runs and concurrent retry clicks. (`npm run chaos` runs the large one.)

import { describe, expect, it } from "vitest";
import { runChaos } from "./chaos.js";

describe("chaos", () => {
  it.each([11, 29])("seed %i: 40 visits at fault rate 0.25 keep every invariant", async (seed) => {
    const report = await runChaos({ visits: 40, faultRate: 0.25, seed });
    for (const invariant of report.invariants) {
      expect({ invariant: invariant.name, ok: invariant.ok, detail: invariant.detail }).toMatchObject({ ok: true });
    }
    expect(report.stuck).toEqual([]);
    // The run really was chaotic: faults were injected and handlers crashed.
    expect(report.faultsInjected.assemblyai + report.faultsInjected.openai).toBeGreaterThan(10);
    expect(report.failpoints.crashes + report.failpoints.stalls).toBeGreaterThan(0);
    expect(report.deliveries.duplicateUploads).toBeGreaterThan(0);
    expect(report.byStatus.completed).toBeGreaterThan(report.visits / 2);
  }, 300_000);
});
