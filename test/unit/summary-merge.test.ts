// Merging part summaries into one VisitSummary: de-duplication by normalized keys, stable order,
// later parts winning where the visit moves on, and bounds that are reported.

import { describe, expect, it } from "vitest";
import type { ClinicianNote } from "../../functions/src/visit/clinician-note.js";
import { MERGED_LIST_LIMIT, dedupKey, mergeClinicianNotes, mergeSpeakerRoles, mergeSummaries } from "../../functions/src/visit/summary-merge.js";
import type { SpeakerRole, VisitSummary } from "../../functions/src/visit/summary.js";
import { visitSummary } from "../support/summaries.js";

const EN = { languageCode: "en", speakerLabels: [] };
const UNKNOWN_LANGUAGE = { languageCode: null, speakerLabels: [] };

const part = (overrides: Partial<VisitSummary>): VisitSummary => visitSummary(overrides);

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
    expect(mergeSummaries([only], EN)).toEqual({ summary: only, clipped: 0 });
  });

  it("keeps one of each duplicate action item, at its first position, filling timing from a later mention", () => {
    const merged = mergeSummaries(
      [
        part({ actionItems: [item("Book a follow-up appointment."), item("Start the walking plan")] }),
        part({ actionItems: [item("book a follow up appointment", "patient", "within two weeks"), item("Send the referral", "clinician")] }),
        part({ actionItems: [item("BOOK A FOLLOW-UP APPOINTMENT"), item("Send the referral", "clinician")] }),
      ],
      EN,
    ).summary;
    expect(merged.actionItems.map((a) => a.description)).toEqual(["Book a follow-up appointment.", "Start the walking plan", "Send the referral"]);
    expect(merged.actionItems[0]?.timing).toBe("within two weeks");
    const keys = merged.actionItems.map((a) => `${a.owner}|${dedupKey(a.description)}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("keeps the same task for different owners apart", () => {
    const merged = mergeSummaries([part({ actionItems: [item("Call the lab", "patient")] }), part({ actionItems: [item("Call the lab", "clinician")] })], EN).summary;
    expect(merged.actionItems).toHaveLength(2);
  });

  it("merges medications by name: first position, the later part's change and dose, earlier details kept when the later has none", () => {
    const merged = mergeSummaries(
      [
        part({ medications: [{ name: "Lisinopril", dose: "10 mg daily", change: "started", instructions: "in the morning" }, { name: "Aspirin", dose: null, change: "continued", instructions: null }] }),
        part({ medications: [{ name: "lisinopril", dose: "20 mg daily", change: "changed", instructions: null }] }),
      ],
      EN,
    ).summary;
    expect(merged.medications).toEqual([
      { name: "Lisinopril", dose: "20 mg daily", change: "changed", instructions: "in the morning" },
      { name: "Aspirin", dose: null, change: "continued", instructions: null },
    ]);
  });

  it("merges diagnoses by name, the last certainty winning", () => {
    const merged = mergeSummaries(
      [part({ diagnoses: [{ name: "Angina", certainty: "suspected" }] }), part({ diagnoses: [{ name: "angina", certainty: "confirmed" }, { name: "Anemia", certainty: "ruled_out" }] })],
      EN,
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
      EN,
    ).summary;
    expect(merged.overview).toBe("First hour.\n\nSecond hour.\n\nThird hour.");
    expect(merged.keyPoints).toEqual(["Chest pain on stairs", "Bloods ordered"]);
    expect(merged.testsOrdered).toEqual([{ name: "ECG", timing: "today" }]);
    expect(merged.warningSigns).toEqual(["Pain at rest"]);
    expect(merged.followUp).toEqual({ timing: "in two weeks", reason: "results" });
  });

  it("is deterministic and uses the visit's language, else the parts' most common one", () => {
    const parts = [part({ language: "es", keyPoints: ["a"] }), part({ language: "en", keyPoints: ["b"] }), part({ language: "es", keyPoints: ["a"] })];
    expect(mergeSummaries(parts, UNKNOWN_LANGUAGE)).toEqual(mergeSummaries(parts, UNKNOWN_LANGUAGE));
    expect(mergeSummaries(parts, UNKNOWN_LANGUAGE).summary.language).toBe("es");
    expect(mergeSummaries(parts, EN).summary.language).toBe("en");
  });

  it("bounds the merged lists and reports what it left out", () => {
    const many = (offset: number) => part({ keyPoints: Array.from({ length: 60 }, (_, i) => `point ${offset + i}`) });
    const merged = mergeSummaries([many(0), many(60)], EN);
    expect(merged.summary.keyPoints).toHaveLength(MERGED_LIST_LIMIT);
    expect(merged.clipped).toBe(120 - MERGED_LIST_LIMIT);
  });
});

describe("mergeSpeakerRoles", () => {
  const role = (speaker: string, r: SpeakerRole["role"], certainty: SpeakerRole["certainty"] = "inferred"): SpeakerRole => ({
    speaker,
    role: r,
    certainty: r === "unknown" ? null : certainty,
  });
  const unknown = (speaker: string): SpeakerRole => ({ speaker, role: "unknown", certainty: null });

  it("names exactly the transcript's labels, in their order: a label no part names is unknown, one the transcript lacks is dropped", () => {
    expect(mergeSpeakerRoles([[role("B", "patient"), role("Z", "clinician")]], ["A", "B", "C"])).toEqual([unknown("A"), role("B", "patient"), unknown("C")]);
    expect(mergeSpeakerRoles([], ["A"])).toEqual([unknown("A")]);
    expect(mergeSpeakerRoles([[role("A", "clinician")]], [])).toEqual([]);
  });

  it("takes a role the naming parts agree on, stated when any part stated it", () => {
    const parts = [[role("A", "clinician")], [unknown("A")], [role("A", "clinician", "stated")], []];
    expect(mergeSpeakerRoles(parts, ["A"])).toEqual([role("A", "clinician", "stated")]);
    expect(mergeSpeakerRoles([[role("A", "interpreter")], [role("A", "interpreter")]], ["A"])).toEqual([role("A", "interpreter", "inferred")]);
  });

  it("lets a stated role outweigh inferred ones, and never resolves a disagreement between equals by guessing", () => {
    // One part heard the caregiver introduce herself; another only guessed she was the patient.
    expect(mergeSpeakerRoles([[role("B", "patient")], [role("B", "caregiver", "stated")]], ["B"])).toEqual([role("B", "caregiver", "stated")]);
    // Two inferences that disagree: unknown.
    expect(mergeSpeakerRoles([[role("B", "patient")], [role("B", "caregiver")]], ["B"])).toEqual([unknown("B")]);
    // Two statements that disagree: unknown, whatever the inferences say.
    expect(mergeSpeakerRoles([[role("B", "patient", "stated")], [role("B", "caregiver", "stated")], [role("B", "patient")]], ["B"])).toEqual([unknown("B")]);
  });

  it("is deterministic: the order of the parts does not change the result", () => {
    const parts = [[role("A", "clinician"), role("B", "patient")], [role("A", "clinician", "stated"), role("B", "caregiver")], [unknown("A"), role("C", "other")]];
    const forwards = mergeSpeakerRoles(parts, ["A", "B", "C"]);
    expect(mergeSpeakerRoles([...parts].reverse(), ["A", "B", "C"])).toEqual(forwards);
    expect(forwards).toEqual([role("A", "clinician", "stated"), unknown("B"), role("C", "other")]);
  });

  it("gives mergeSummaries its speakers, for one part as for several", () => {
    const one = part({ speakers: [role("A", "clinician"), role("Q", "patient")] });
    expect(mergeSummaries([one], { languageCode: "en", speakerLabels: ["A", "B"] }).summary.speakers).toEqual([role("A", "clinician"), unknown("B")]);
    const two = [part({ speakers: [role("A", "clinician")] }), part({ speakers: [role("B", "patient", "stated")] })];
    expect(mergeSummaries(two, { languageCode: "en", speakerLabels: ["A", "B"] }).summary.speakers).toEqual([role("A", "clinician"), role("B", "patient", "stated")]);
  });
});

describe("mergeClinicianNotes", () => {
  const note = (overrides: Partial<ClinicianNote>): ClinicianNote => ({
    language: "en",
    chiefComplaint: null,
    subjective: [],
    objective: [],
    assessment: [],
    plan: [],
    ...overrides,
  });

  it("returns a single note unchanged", () => {
    const only = note({ chiefComplaint: "Cough", plan: ["Rest"] });
    expect(mergeClinicianNotes([only], "en")).toEqual({ note: only, clipped: 0 });
  });

  it("keeps each section's statements in order, once (by normalized text), and the first chief complaint stated", () => {
    const merged = mergeClinicianNotes(
      [
        note({ subjective: ["Chest tightness on stairs"], plan: ["ECG today"] }),
        note({ chiefComplaint: "Chest tightness", subjective: ["chest tightness on stairs.", "No pain at rest"], assessment: ["Stable angina, suspected"], plan: ["ECG today", "Start aspirin"] }),
        note({ chiefComplaint: "Follow-up", objective: ["BP 150/95"] }),
      ],
      "en",
    );
    expect(merged.note).toEqual({
      language: "en",
      chiefComplaint: "Chest tightness",
      subjective: ["Chest tightness on stairs", "No pain at rest"],
      objective: ["BP 150/95"],
      assessment: ["Stable angina, suspected"],
      plan: ["ECG today", "Start aspirin"],
    });
    expect(merged.clipped).toBe(0);
  });

  it("uses the visit's language, else the parts' most common one, and bounds each section, reporting what it left out", () => {
    const parts = [note({ language: "es", plan: Array.from({ length: 60 }, (_, i) => `paso ${i}`) }), note({ language: "es", plan: Array.from({ length: 60 }, (_, i) => `paso ${i + 60}`) }), note({ language: "en" })];
    const merged = mergeClinicianNotes(parts, null);
    expect(merged.note.language).toBe("es");
    expect(merged.note.plan).toHaveLength(MERGED_LIST_LIMIT);
    expect(merged.clipped).toBe(120 - MERGED_LIST_LIMIT);
    expect(mergeClinicianNotes(parts, "en").note.language).toBe("en");
  });
});
