// The summary in the user's preferred language: what the model translated, taken only where it
// is text. Every list must keep its length and order (item n of the translation is item n of the
// original: the app pairs translated action items with the `actions` documents by index), and
// everything that is not free text — roles, certainties, medication changes, owners, due dates —
// is the original's, so a translation can change words but never what the summary says happened.

import { PipelineError } from "./errors.js";
import { TEXT_LIMIT, normalizeLanguageCode } from "./summary.js";
import type { VisitSummary } from "./summary.js";

/**
 * How much longer than its source a translated text may be (and never less than TEXT_LIMIT):
 * room for a language that takes more words, while a runaway answer is refused — never cut.
 */
export const TRANSLATED_TEXT_GROWTH_LIMIT = 3;

/**
 * The original with its texts replaced by the translation's, in `language`. Throws `summary_invalid`
 * when the translation is in another language, does not line up with the original item for item,
 * or has a text past TRANSLATED_TEXT_GROWTH_LIMIT. The original is already bounded — a summary
 * merged from parts has up to 100 items a list and an overview of up to 10,000 characters — so
 * nothing of it is cut here (normalizeSummary's bounds are those of one answer).
 */
export function applyTranslation(original: VisitSummary, translated: VisitSummary, language: string): VisitSummary {
  if (normalizeLanguageCode(translated.language) !== language) {
    throw new PipelineError("summary_invalid", { detail: `translation in ${translated.language.slice(0, 16)}, asked for ${language}` });
  }
  const lists = ["keyPoints", "diagnoses", "medications", "testsOrdered", "actionItems", "warningSigns"] as const;
  for (const list of lists) {
    if (translated[list].length !== original[list].length) {
      throw new PipelineError("summary_invalid", { detail: `translation has ${translated[list].length} ${list}, the summary ${original[list].length}` });
    }
  }
  if ((translated.followUp === null) !== (original.followUp === null)) {
    throw new PipelineError("summary_invalid", { detail: "translation and summary disagree on the follow-up" });
  }
  // A text the original has keeps a place in the translation (a blank translation keeps the
  // original words, so no item is dropped and the lists stay aligned); one it left null stays null.
  const words = (source: string, target: string | null): string => {
    const text = target?.trim() ?? "";
    if (text === "") return source;
    if (text.length > Math.max(TEXT_LIMIT, TRANSLATED_TEXT_GROWTH_LIMIT * source.length)) {
      throw new PipelineError("summary_invalid", { detail: `a translated text of ${text.length} characters for ${source.length}` });
    }
    return text;
  };
  const textOf = (source: string | null, target: string | null) => (source === null ? null : words(source, target));
  const at = <T>(items: readonly T[], index: number): T => {
    const item = items[index];
    if (item === undefined) throw new PipelineError("summary_invalid", { detail: "translation list shorter than checked" });
    return item;
  };
  return {
    language,
    speakers: original.speakers,
    overview: words(original.overview, translated.overview),
    keyPoints: original.keyPoints.map((point, i) => words(point, at(translated.keyPoints, i))),
    diagnoses: original.diagnoses.map((diagnosis, i) => ({ ...diagnosis, name: words(diagnosis.name, at(translated.diagnoses, i).name) })),
    medications: original.medications.map((medication, i) => {
      const translatedMedication = at(translated.medications, i);
      return {
        ...medication,
        name: words(medication.name, translatedMedication.name),
        dose: textOf(medication.dose, translatedMedication.dose),
        instructions: textOf(medication.instructions, translatedMedication.instructions),
      };
    }),
    testsOrdered: original.testsOrdered.map((test, i) => {
      const translatedTest = at(translated.testsOrdered, i);
      return { name: words(test.name, translatedTest.name), timing: textOf(test.timing, translatedTest.timing) };
    }),
    actionItems: original.actionItems.map((item, i) => {
      const translatedItem = at(translated.actionItems, i);
      return { ...item, description: words(item.description, translatedItem.description), timing: textOf(item.timing, translatedItem.timing) };
    }),
    followUp:
      original.followUp && translated.followUp
        ? { timing: textOf(original.followUp.timing, translated.followUp.timing), reason: textOf(original.followUp.reason, translated.followUp.reason) }
        : null,
    warningSigns: original.warningSigns.map((sign, i) => words(sign, at(translated.warningSigns, i))),
  };
}
