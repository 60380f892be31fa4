// The show command's output: what a visit screen shows, as plain text.

import type { VisitContentView } from "../visit-content.js";

export function visitContentText(view: VisitContentView, visitId: string): string {
  const lines: string[] = [];
  const section = (title: string, items: readonly string[]) => {
    if (items.length === 0) return;
    lines.push("", `${title}:`, ...items.map((item) => `  - ${item}`));
  };
  for (const notice of view.notices) lines.push(`! ${notice}`);
  const summary = view.summary;
  if (summary === null) {
    lines.push("No summary yet.");
  } else {
    if (view.languageSwitch) {
      const flag = view.languageSwitch.showing === "preferred" ? "--original" : "";
      lines.push(`[${view.languageSwitch.label}: npm run stub -- show ${visitId}${flag ? ` ${flag}` : ""}]`);
    }
    lines.push(`Summary (${summary.language})`, summary.overview);
    section("Key points", summary.keyPoints);
    section("Diagnoses", summary.diagnoses.map((d) => `${d.name} (${d.certainty.replace("_", " ")})`));
    section("Medications", summary.medications.map((m) => [m.name, m.dose, `(${m.change})`, m.instructions].filter(Boolean).join(" ")));
    section("Tests", summary.testsOrdered.map((t) => [t.name, t.timing].filter(Boolean).join(", ")));
    section("To do", summary.actionItems.map((a) => `${a.description}${a.timing ? ` (${a.timing})` : ""} [${a.owner.replace("_", " ")}]`));
    if (summary.followUp) lines.push("", `Follow-up: ${[summary.followUp.timing, summary.followUp.reason].filter(Boolean).join(": ")}`);
    section("Seek care sooner if", summary.warningSigns);
  }
  section("Speakers", view.speakers.map((s) => `${s.speaker} = ${s.label}`));
  if (view.transcriptPaged) lines.push("", "Transcript: stored in pages (long recording); not shown here.");
  else section("Transcript", view.transcriptLines.map((line) => `${line.label}: ${line.text}`));
  if (view.clinicianNote) {
    lines.push("", "Clinician's note (SOAP)");
    if (view.clinicianNote.chiefComplaint) lines.push(`Chief complaint: ${view.clinicianNote.chiefComplaint}`);
    for (const { title, items } of view.clinicianNote.sections) section(title, items.length > 0 ? items : ["—"]);
  }
  return `${lines.join("\n")}\n`;
}
