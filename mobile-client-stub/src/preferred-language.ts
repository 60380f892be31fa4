// The user's preferred language for summaries: `users/{uid}.preferredLanguage`, the one field of the
// profile the app may write (firestore.rules). The code is checked here first, so a bad value is
// answered with `invalid_language` and nothing is written; the rules refuse it too.

import { isPreferredLanguageCode } from "./contract.js";
import { errorCode } from "./error-code.js";
import { languageName } from "./visit-content.js";

/** The slice of Firestore this needs; firebase-ports.ts implements it with `setDoc`. */
export interface ProfileWriter {
  /** Writes `users/{uid}` as `{ preferredLanguage }` (null: no preference). */
  writePreferredLanguage(uid: string, language: string | null): Promise<void>;
}

export interface PreferredLanguageDeps {
  writer: ProfileWriter;
  currentUid: () => string | null;
}

export type PreferredLanguageOutcome =
  | { kind: "saved"; language: string | null; message: string }
  /** `invalid_language` (nothing written), `not_signed_in`, or Firestore's code (`permission-denied`, `unavailable`, …). */
  | { kind: "error"; code: string; message: string };

/** Sets (a code) or clears (null) the language summaries are also written in, from the next visit on. */
export async function setPreferredLanguage(deps: PreferredLanguageDeps, language: string | null): Promise<PreferredLanguageOutcome> {
  if (language !== null && !isPreferredLanguageCode(language)) {
    return {
      kind: "error",
      code: "invalid_language",
      message: `"${language}" is not a language code: use a two-letter ISO 639-1 code in lower case, such as en, es or fr.`,
    };
  }
  const uid = deps.currentUid();
  if (uid === null) return { kind: "error", code: "not_signed_in", message: "Sign in first." };
  try {
    await deps.writer.writePreferredLanguage(uid, language);
  } catch (error) {
    return { kind: "error", code: errorCode(error) || "write_failed", message: `The preferred language was not saved: ${error instanceof Error ? error.message : String(error)}` };
  }
  return {
    kind: "saved",
    language,
    message:
      language === null
        ? "No preferred language: summaries are written in the language of the recording only."
        : `Summaries of recordings in another language will also be written in ${languageName(language)}.`,
  };
}
