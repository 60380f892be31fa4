// What the demo's local OpenAI answers: a plain extractive summary of the transcript in the
// prompt (sentences picked by keyword), shaped like the visit summary schema. It lets the demo
// show a readable summary without a model; it is no substitute for one, and says so in the demo.

import type { ChatRequestBody } from "../fakes/openai.js";

interface Line {
  speaker: string;
  sentences: string[];
}

const MEDICATIONS = ["lisinopril", "ibuprofen", "acetaminophen", "amoxicillin", "amoxicilina", "paracetamol", "metformin"];
const TESTS: [RegExp, string][] = [
  [/basic metabolic panel/i, "Basic metabolic panel"],
  [/\bA one C\b|\bA1C\b/i, "A1C"],
  [/radiograf[ií]a de t[oó]rax/i, "Radiografía de tórax"],
  [/chest x-?ray/i, "Chest X-ray"],
];
const GREETING = /^(good (morning|afternoon|evening)|buenos d[ií]as|buenas tardes|hello|hi|thank you|muchas gracias|gracias)\b/i;

export function extractiveSummary(body: ChatRequestBody): Record<string, unknown> {
  const prompt = body.messages.map((m) => (typeof m.content === "string" ? m.content : "")).join("\n");
  const language = /language code:\s*([a-z]{2})/i.exec(prompt)?.[1]?.toLowerCase() ?? "en";
  const lines = parseTranscript(prompt);
  const clinician = lines[0]?.speaker;
  const said = (who: "clinician" | "patient") =>
    lines.filter((l) => (l.speaker === clinician) === (who === "clinician")).flatMap((l) => l.sentences);
  const clinicianSentences = said("clinician").filter((s) => !GREETING.test(s) && !s.endsWith("?"));
  const patientSentences = said("patient").filter((s) => !GREETING.test(s) && !s.endsWith("?"));

  const medications = MEDICATIONS.flatMap((name) => {
    const sentence = clinicianSentences.find((s) => s.toLowerCase().includes(name));
    if (!sentence) return [];
    return [{ name: capitalize(name), dose: doseIn(sentence), change: medicationChange(sentence, name), instructions: sentence }];
  });
  const testsOrdered = TESTS.flatMap(([pattern, name]) => {
    const sentence = clinicianSentences.find((s) => pattern.test(s));
    return sentence ? [{ name, timing: /within [^.,]+|hoy mismo/i.exec(sentence)?.[0] ?? null }] : [];
  });
  const followUpSentence = clinicianSentences.find((s) => /again in|de nuevo en/i.test(s)) ?? null;
  const followUpTiming = followUpSentence ? (/(?:again in|de nuevo en) ([^.,]+?)(?: to\b|[.,]|$)/i.exec(followUpSentence)?.[1] ?? null) : null;
  const warningSigns = clinicianSentences.filter((s) => /^(if|si)\b/i.test(s));
  const selfCare = clinicianSentences.filter((s) => /^(check|call|beba|drink|take|tome)\b/i.test(s));

  const actionItems = [
    ...medications
      .filter((m) => m.change !== "continued")
      .map((m) => ({ description: `${m.change === "stopped" ? "Stop" : "Take"} ${m.name}${m.dose ? ` ${m.dose}` : ""}`, owner: "patient", dueDate: null, timing: null })),
    ...testsOrdered.map((t) => ({ description: `Get ${t.name}`, owner: "patient", dueDate: null, timing: t.timing })),
    ...selfCare.map((s) => ({ description: s, owner: "patient", dueDate: null, timing: null })),
    ...(followUpSentence ? [{ description: followUpSentence, owner: "care_team", dueDate: null, timing: followUpTiming }] : []),
  ];
  // The one who speaks first is taken for the clinician (who opens the visit), the others for the
  // patient — inferred, as a model would say when no one introduces themselves.
  const speakers = [...new Set(lines.map((l) => l.speaker))].map((speaker) => ({
    speaker,
    role: speaker === clinician ? "clinician" : "patient",
    certainty: "inferred",
  }));
  return {
    language,
    speakers,
    overview: [patientSentences[0], followUpSentence].filter(Boolean).join(" "),
    keyPoints: clinicianSentences.filter((s) => /\d|one|two|three|four|five|treinta|quinientos/i.test(s)).slice(0, 5),
    diagnoses: diagnoses(clinicianSentences),
    medications,
    testsOrdered,
    actionItems,
    followUp: followUpSentence ? { timing: followUpTiming, reason: followUpSentence } : null,
    warningSigns,
  };
}

function parseTranscript(prompt: string): Line[] {
  return [...prompt.matchAll(/^\[\d\d:\d\d\] Speaker ([A-Z]+): (.+)$/gm)].map((m) => ({
    speaker: m[1] ?? "?",
    sentences: (m[2] ?? "").split(/(?<=[.!?])\s+/).map((s) => s.trim()).filter(Boolean),
  }));
}

function doseIn(sentence: string): string | null {
  return /\b(?:\w+ )?(?:\w+ )?(?:milligrams|miligramos|mg)\b[^.,]*/i.exec(sentence)?.[0] ?? null;
}

function medicationChange(sentence: string, name: string): "started" | "stopped" | "changed" | "continued" {
  const text = sentence.toLowerCase();
  if (/\bstop|deje de|suspend/.test(text) || new RegExp(`${name} can`).test(text)) return "stopped";
  if (/\bstart|recetar|instead|en su lugar|use\b/.test(text)) return "started";
  if (/\bchange|cambiar|increase|aumentar/.test(text)) return "changed";
  return "continued";
}

function diagnoses(sentences: string[]): { name: string; certainty: "confirmed" | "suspected" }[] {
  const found: { name: string; certainty: "confirmed" | "suspected" }[] = [];
  const neumonia = sentences.find((s) => /neumon[ií]a/i.test(s));
  if (neumonia) found.push({ name: "Neumonía leve", certainty: /puede ser|posible/i.test(neumonia) ? "suspected" : "confirmed" });
  if (sentences.some((s) => /measured .*over|blood pressure/i.test(s))) found.push({ name: "Elevated blood pressure", certainty: "confirmed" });
  return found;
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
