// Visit summaries for tests, in the strict schema's shape: every field present, empty unless given.

import type { VisitSummary } from "../../functions/src/visit/summary.js";

export function visitSummary(overrides: Partial<VisitSummary> = {}): VisitSummary {
  return {
    language: "en",
    speakers: [],
    overview: "",
    keyPoints: [],
    diagnoses: [],
    medications: [],
    testsOrdered: [],
    actionItems: [],
    followUp: null,
    warningSigns: [],
    ...overrides,
  };
}
