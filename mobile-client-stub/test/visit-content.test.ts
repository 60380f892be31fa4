import { describe, expect, it } from "vitest";
import { describeVisitContent, languageName, loadVisitContent, speakerLabel } from "../src/visit-content.js";
import type { DocumentReader, VisitContentDocuments } from "../src/visit-content.js";

const summary = (language: string, overview: string, actionItem: string) => ({
  language,
  speakers: [
    { speaker: "A", role: "clinician", certainty: "stated" },
    { speaker: "B", role: "patient", certainty: "inferred" },
    { speaker: "C", role: "unknown", certainty: null },
  ],
  overview,
  keyPoints: ["BP 152/96"],
  diagnoses: [{ name: "Hypertension", certainty: "confirmed" }],
  medications: [{ name: "Lisinopril", dose: "10 mg", change: "started", instructions: null }],
  testsOrdered: [{ name: "A1C", timing: null }],
  actionItems: [{ description: actionItem, owner: "patient", dueDate: null, timing: "daily" }],
  followUp: { timing: "4 weeks", reason: null },
  warningSigns: [],
});

const ENGLISH = summary("en", "Follow-up for high blood pressure.", "Check your blood pressure");
const SPANISH = summary("es", "Control de la presión arterial alta.", "Mida su presión arterial");

const transcript = {
  storage: "inline",
  utterances: [
    { speaker: "A", text: "Good morning." },
    { speaker: "B", text: "Good morning, doctor." },
    { speaker: "C", text: "I drove him here." },
    { speaker: null, text: "(noise)" },
  ],
  speakerRoles: ENGLISH.speakers,
};

const note = { kind: "clinician_note", format: "soap", note: { language: "en", chiefComplaint: "Headaches", subjective: ["Two weeks of headaches"], objective: ["BP 152/96"], assessment: [], plan: ["Start lisinopril"] } };

function documents(overrides: Partial<VisitContentDocuments> & { visit?: Record<string, unknown> }): VisitContentDocuments {
  return {
    visit: { status: "completed", summary: ENGLISH, summaryTranslation: null, clinicianNote: null, ...overrides.visit },
    transcript: overrides.transcript === undefined ? transcript : overrides.transcript,
    translation: overrides.translation ?? null,
    clinicianNote: overrides.clinicianNote ?? null,
  };
}

describe("speaker labels", () => {
  it("name a stated role, say 'likely' of an inferred one, and keep the letter of an unknown speaker", () => {
    expect(speakerLabel("A", "clinician", "stated")).toBe("Clinician");
    expect(speakerLabel("B", "patient", "inferred")).toBe("Patient (likely)");
    expect(speakerLabel("D", "interpreter", null)).toBe("Interpreter (likely)");
    expect(speakerLabel("C", "unknown", null)).toBe("Speaker C");
    expect(speakerLabel("E", "other", "stated")).toBe("Other speaker");
  });

  it("replace the letters on the transcript's lines", () => {
    const view = describeVisitContent(documents({}));
    expect(view.speakers.map((s) => s.label)).toEqual(["Clinician", "Patient (likely)", "Speaker C"]);
    expect(view.transcriptLines).toEqual([
      { label: "Clinician", text: "Good morning." },
      { label: "Patient (likely)", text: "Good morning, doctor." },
      { label: "Speaker C", text: "I drove him here." },
      { label: "Speaker", text: "(noise)" },
    ]);
  });

  it("come from the transcript artifact while the visit's summary is not there, and are letters for a summary saved before roles", () => {
    expect(describeVisitContent(documents({ visit: { status: "partial", summary: null } })).speakers.map((s) => s.label)).toEqual(["Clinician", "Patient (likely)", "Speaker C"]);
    const { speakers: _none, ...older } = ENGLISH;
    const view = describeVisitContent(documents({ visit: { summary: older }, transcript: { ...transcript, speakerRoles: null } }));
    expect(view.speakers).toEqual([]);
    expect(view.transcriptLines[0]).toEqual({ label: "Speaker A", text: "Good morning." });
  });
});

describe("the summary in the preferred language", () => {
  const translated = documents({
    visit: { summaryTranslation: { language: "es", state: "saved", model: "m" } },
    translation: { kind: "summary_translation", language: "es", summary: SPANISH },
  });

  it("is shown first, with a switch to the original", () => {
    const view = describeVisitContent(translated);
    expect(view.summary?.overview).toBe("Control de la presión arterial alta.");
    expect(view.summary?.actionItems[0]?.description).toBe("Mida su presión arterial");
    expect(view.languageSwitch).toEqual({ showing: "preferred", label: "Show the original (English)" });
  });

  it("switches to the original, and back", () => {
    const original = describeVisitContent(translated, "original");
    expect(original.summary?.overview).toBe("Follow-up for high blood pressure.");
    expect(original.languageSwitch).toEqual({ showing: "original", label: "Show in Spanish" });
  });

  it("has no switch when there is no translation, and the original is the summary", () => {
    const view = describeVisitContent(documents({}));
    expect(view.languageSwitch).toBeNull();
    expect(view.summary?.language).toBe("en");
  });

  it("is not shown until it is saved, and a partial visit says which one is missing", () => {
    const view = describeVisitContent(
      documents({
        visit: { status: "partial", summaryTranslation: { language: "fr", state: "requested", model: null }, clinicianNote: { format: "soap", state: "requested", model: null } },
        translation: { kind: "summary_translation", language: "fr", summary: SPANISH },
      }),
    );
    expect(view.summary?.language).toBe("en");
    expect(view.languageSwitch).toBeNull();
    expect(view.notices).toEqual([
      "The summary in French could not be written; the retry button tries again.",
      "The clinician's note could not be written; the retry button tries again.",
    ]);
  });
});

describe("the clinician's note", () => {
  it("is shown by SOAP section when saved", () => {
    const view = describeVisitContent(documents({ visit: { clinicianNote: { format: "soap", state: "saved", model: "m" } }, clinicianNote: note }));
    expect(view.clinicianNote).toEqual({
      chiefComplaint: "Headaches",
      sections: [
        { title: "Subjective", items: ["Two weeks of headaches"] },
        { title: "Objective", items: ["BP 152/96"] },
        { title: "Assessment", items: [] },
        { title: "Plan", items: ["Start lisinopril"] },
      ],
    });
  });

  it("is absent when none was asked for", () => {
    expect(describeVisitContent(documents({ clinicianNote: note })).clinicianNote).toBeNull();
  });
});

describe("documents that do not match the contract", () => {
  it("are reported and left out, the rest still shown", () => {
    const view = describeVisitContent(
      documents({ visit: { clinicianNote: { format: "soap", state: "saved", model: "m" } }, clinicianNote: { note: { plan: "not a list" } }, transcript: { storage: "scrolls" } }),
    );
    expect(view.summary?.overview).toBe("Follow-up for high blood pressure.");
    expect(view.clinicianNote).toBeNull();
    expect(view.transcriptLines).toEqual([]);
    expect(view.notices).toEqual(["The transcript could not be read.", "The clinician's note could not be read."]);
  });

  it("a paged transcript is said to be so, not shown as empty", () => {
    expect(describeVisitContent(documents({ transcript: { storage: "paged", speakerRoles: null } })).transcriptPaged).toBe(true);
  });
});

describe("loadVisitContent", () => {
  function reader(store: Record<string, unknown>): DocumentReader & { paths: string[] } {
    const paths: string[] = [];
    return {
      paths,
      read: (path) => {
        paths.push(path);
        return Promise.resolve(store[path] ?? null);
      },
    };
  }

  it("reads the visit, its transcript, and the translation and note only once the visit says they are saved", async () => {
    const saved = reader({
      "visits/v1": { status: "completed", summaryTranslation: { language: "es", state: "saved" }, clinicianNote: { format: "soap", state: "saved" } },
      "visits/v1/artifacts/transcript": transcript,
      "visits/v1/artifacts/summary-translation": { language: "es", summary: SPANISH },
      "visits/v1/artifacts/clinician-note": note,
    });
    const loaded = await loadVisitContent(saved, "v1");
    expect(saved.paths.sort()).toEqual(["visits/v1", "visits/v1/artifacts/clinician-note", "visits/v1/artifacts/summary-translation", "visits/v1/artifacts/transcript"]);
    expect(loaded.translation).toEqual({ language: "es", summary: SPANISH });

    const requested = reader({ "visits/v2": { status: "partial", summaryTranslation: { language: "es", state: "requested" }, clinicianNote: null } });
    await loadVisitContent(requested, "v2");
    expect(requested.paths.sort()).toEqual(["visits/v2", "visits/v2/artifacts/transcript"]);
  });
});

describe("languageName", () => {
  it("names a language in English, or keeps the code", () => {
    expect(languageName("fr")).toBe("French");
    expect(languageName("es")).toBe("Spanish");
    expect(languageName("!!")).toBe("!!");
  });
});
