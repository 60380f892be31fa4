// Merging part summaries into one VisitSummary: de-duplication by normalized keys, stable order,
// later parts winning where the visit moves on, and bounds that are reported.

import { describe, expect, it } from "vitest";
import { MERGED_LIST_LIMIT, dedupKey, mergeSummaries } from "../../functions/src/visit/summary-merge.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";

function part(overrides: Partial<VisitSummary>): VisitSummary {
  return {
    language: "en",
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

const item = (description: string, owner: "patient" | "clinician" | "care_team" = "patient", timing: string | null = null) => ({
  description,
  owner,
  dueDate: null,
  timing,
});

describe("dedupKey", () => {
  it("ignores case, accents, punctuation and spacing", () => {
    expect(dedupKey("  Book a Follow-up  appointment. ")).toBe(dedupKey("book a follow up appointment"));
    expect(dedupKey("Ibuprofeno")).toBe(dedupKey("IBUPROFENO"));
    expect(dedupKey("Café")).toBe(dedupKey("cafe"));
    expect(dedupKey("Take 10 mg")).not.toBe(dedupKey("Take 20 mg"));
  });

  it("keeps a text that is only punctuation as itself", () => {
    expect(dedupKey(" ?! ")).toBe("?!");
  });
});

describe("mergeSummaries", () => {
  it("returns a single part unchanged", () => {
    const only = part({ overview: "One.", actionItems: [item("Rest")] });
    expect(mergeSummaries([only], "en")).toEqual({ summary: only, clipped: 0 });
  });

  it("keeps one of each duplicate action item, at its first position, filling timing from a later mention", () => {
    const merged = mergeSummaries(
      [
        part({ actionItems: [item("Book a follow-up appointment."), item("Start the walking plan")] }),
        part({ actionItems: [item("book a follow up appointment", "patient", "within two weeks"), item("Send the referral", "clinician")] }),
        part({ actionItems: [item("BOOK A FOLLOW-UP APPOINTMENT"), item("Send the referral", "clinician")] }),
      ],
      "en",
    ).summary;
    expect(merged.actionItems.map((a) => a.description)).toEqual(["Book a follow-up appointment.", "Start the walking plan", "Send the referral"]);
    expect(merged.actionItems[0]?.timing).toBe("within two weeks");
    const keys = merged.actionItems.map((a) => `${a.owner}|${dedupKey(a.description)}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("keeps the same task for different owners apart", () => {
    const merged = mergeSummaries([part({ actionItems: [item("Call the lab", "patient")] }), part({ actionItems: [item("Call the lab", "clinician")] })], "en").summary;
    expect(merged.actionItems).toHaveLength(2);
  });

  it("merges medications by name: first position, the later part's change and dose, earlier details kept when the later has none", () => {
    const merged = mergeSummaries(
      [
        part({ medications: [{ name: "Lisinopril", dose: "10 mg daily", change: "started", instructions: "in the morning" }, { name: "Aspirin", dose: null, change: "continued", instructions: null }] }),
        part({ medications: [{ name: "lisinopril", dose: "20 mg daily", change: "changed", instructions: null }] }),
      ],
      "en",
    ).summary;
    expect(merged.medications).toEqual([
      { name: "Lisinopril", dose: "20 mg daily", change: "changed", instructions: "in the morning" },
      { name: "Aspirin", dose: null, change: "continued", instructions: null },
    ]);
  });

  it("merges diagnoses by name, the last certainty winning", () => {
    const merged = mergeSummaries(
      [part({ diagnoses: [{ name: "Angina", certainty: "suspected" }] }), part({ diagnoses: [{ name: "angina", certainty: "confirmed" }, { name: "Anemia", certainty: "ruled_out" }] })],
      "en",
    ).summary;
    expect(merged.diagnoses).toEqual([
      { name: "Angina", certainty: "confirmed" },
      { name: "Anemia", certainty: "ruled_out" },
    ]);
  });

  it("joins overviews in order, de-duplicates key points, tests and warning signs, takes the last follow-up", () => {
    const merged = mergeSummaries(
      [
        part({ overview: "First hour.", keyPoints: ["Chest pain on stairs"], testsOrdered: [{ name: "ECG", timing: null }], warningSigns: ["Pain at rest"], followUp: { timing: "in a month", reason: null } }),
        part({ overview: "Second hour.", keyPoints: ["chest pain on stairs", "Bloods ordered"], testsOrdered: [{ name: "ecg", timing: "today" }], warningSigns: ["pain at rest"], followUp: null }),
        part({ overview: "Third hour.", followUp: { timing: "in two weeks", reason: "results" } }),
      ],
      "en",
    ).summary;
    expect(merged.overview).toBe("First hour.\n\nSecond hour.\n\nThird hour.");
    expect(merged.keyPoints).toEqual(["Chest pain on stairs", "Bloods ordered"]);
    expect(merged.testsOrdered).toEqual([{ name: "ECG", timing: "today" }]);
    expect(merged.warningSigns).toEqual(["Pain at rest"]);
    expect(merged.followUp).toEqual({ timing: "in two weeks", reason: "results" });
  });

  it("is deterministic and uses the visit's language, else the parts' most common one", () => {
    const parts = [part({ language: "es", keyPoints: ["a"] }), part({ language: "en", keyPoints: ["b"] }), part({ language: "es", keyPoints: ["a"] })];
    expect(mergeSummaries(parts, null)).toEqual(mergeSummaries(parts, null));
    expect(mergeSummaries(parts, null).summary.language).toBe("es");
    expect(mergeSummaries(parts, "en").summary.language).toBe("en");
  });

  it("bounds the merged lists and reports what it left out", () => {
    const many = (offset: number) => part({ keyPoints: Array.from({ length: 60 }, (_, i) => `point ${offset + i}`) });
    const merged = mergeSummaries([many(0), many(60)], "en");
    expect(merged.summary.keyPoints).toHaveLength(MERGED_LIST_LIMIT);
    expect(merged.clipped).toBe(120 - MERGED_LIST_LIMIT);
  });
});
