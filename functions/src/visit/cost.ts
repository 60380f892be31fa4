// What a visit's paid provider calls cost: each accounted fact (a paid call sent, the tokens it
// used, its result discarded, the audio of a transcript job) is one ledger entry; the visit's
// `cost` is their sum. Amounts are whole micro-dollars per entry, so a sum never drifts with the
// order it was added in. Pure: prices come in as arguments.

import type { VisitCost } from "./model.js";

/** Unit prices in micro-dollars (config.ts parses the USD params into these). */
export interface UnitPrices {
  audioHour: number;
  millionInputTokens: number;
  millionOutputTokens: number;
}

export const COST_FACTS = ["sent", "usage", "discarded", "audio"] as const;
export type CostFact = (typeof COST_FACTS)[number];

/** One ledger entry's contribution. */
export type CostDelta = {
  audioSeconds: number;
  promptTokens: number;
  completionTokens: number;
  paidCalls: number;
  discardedPaidCalls: number;
  estimatedMicroUsd: number;
};

const NOTHING: CostDelta = { audioSeconds: 0, promptTokens: 0, completionTokens: 0, paidCalls: 0, discardedPaidCalls: 0, estimatedMicroUsd: 0 };

/** A paid request left: counted before it is sent, whatever comes back. */
export function paidCallDelta(): CostDelta {
  return { ...NOTHING, paidCalls: 1 };
}

/** A paid call whose result was thrown away (fenced off, or its recording replaced). */
export function discardedCallDelta(): CostDelta {
  return { ...NOTHING, discardedPaidCalls: 1 };
}

/** What a summary call used, priced per million tokens. */
export function tokenDelta(usage: { promptTokens: number; completionTokens: number }, prices: UnitPrices): CostDelta {
  const promptTokens = nonNegative(usage.promptTokens);
  const completionTokens = nonNegative(usage.completionTokens);
  return {
    ...NOTHING,
    promptTokens,
    completionTokens,
    estimatedMicroUsd: Math.round((promptTokens * prices.millionInputTokens + completionTokens * prices.millionOutputTokens) / 1_000_000),
  };
}

/** The audio a transcript job billed (AssemblyAI `audio_duration`), priced per hour. */
export function audioDelta(audioSeconds: number, prices: UnitPrices): CostDelta {
  const seconds = nonNegative(audioSeconds);
  return { ...NOTHING, audioSeconds: seconds, estimatedMicroUsd: Math.round((seconds * prices.audioHour) / 3600) };
}

/** The visit's cost: the sum of its ledger entries (null while there are none). */
export function sumCost(entries: readonly CostDelta[]): VisitCost | null {
  if (entries.length === 0) return null;
  const total = entries.reduce<CostDelta>(
    (sum, entry) => ({
      audioSeconds: sum.audioSeconds + entry.audioSeconds,
      promptTokens: sum.promptTokens + entry.promptTokens,
      completionTokens: sum.completionTokens + entry.completionTokens,
      paidCalls: sum.paidCalls + entry.paidCalls,
      discardedPaidCalls: sum.discardedPaidCalls + entry.discardedPaidCalls,
      estimatedMicroUsd: sum.estimatedMicroUsd + entry.estimatedMicroUsd,
    }),
    NOTHING,
  );
  const { estimatedMicroUsd, ...counts } = total;
  // Audio seconds are reported with millisecond precision (the provider's own is coarser).
  return { ...counts, audioSeconds: Math.round(counts.audioSeconds * 1000) / 1000, estimatedUsd: estimatedMicroUsd / 1_000_000 };
}

/**
 * The visit's cost with one more entry, from the cost it has: what sumCost gives for its ledger
 * with the entry added, as long as the cost agrees with the ledger (a transaction that read the
 * visit makes it so; the ledger stays the authority, see store/costs.ts).
 */
export function addToCost(cost: VisitCost | null, delta: CostDelta): VisitCost {
  const { estimatedUsd, ...counts } = cost ?? { ...NOTHING, estimatedUsd: 0 };
  const sum = sumCost([{ ...counts, estimatedMicroUsd: Math.round(estimatedUsd * 1_000_000) }, delta]);
  // Two entries make a cost (sumCost is null only for none).
  return sum ?? { ...counts, estimatedUsd };
}

export function sameCost(a: VisitCost | null, b: VisitCost | null): boolean {
  if (a === null || b === null) return a === b;
  return (Object.keys(a) as (keyof VisitCost)[]).every((key) => a[key] === b[key]);
}

function nonNegative(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}
