// The languages a user may ask their summaries in: the ISO 639-1 codes (two lowercase letters),
// the same kind of code the summary's `language` carries. One list, restated in firestore.rules
// (the profile's write rule) and in the mobile client stub; tests keep the three in step.

/** ISO 639-1, as maintained by the Library of Congress (183 codes; `bh` was withdrawn in 2021). */
export const ISO_639_1_CODES = [
  "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az",
  "ba", "be", "bg", "bi", "bm", "bn", "bo", "br", "bs",
  "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy",
  "da", "de", "dv", "dz",
  "ee", "el", "en", "eo", "es", "et", "eu",
  "fa", "ff", "fi", "fj", "fo", "fr", "fy",
  "ga", "gd", "gl", "gn", "gu", "gv",
  "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
  "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu",
  "ja", "jv",
  "ka", "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky",
  "la", "lb", "lg", "li", "ln", "lo", "lt", "lu", "lv",
  "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my",
  "na", "nb", "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny",
  "oc", "oj", "om", "or", "os",
  "pa", "pi", "pl", "ps", "pt",
  "qu",
  "rm", "rn", "ro", "ru", "rw",
  "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw",
  "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty",
  "ug", "uk", "ur", "uz",
  "ve", "vi", "vo",
  "wa", "wo",
  "xh",
  "yi", "yo",
  "za", "zh", "zu",
] as const;

export type LanguageCode = (typeof ISO_639_1_CODES)[number];

const CODES: ReadonlySet<string> = new Set(ISO_639_1_CODES);

export function isLanguageCode(value: unknown): value is LanguageCode {
  return typeof value === "string" && CODES.has(value);
}

/**
 * A stored preferred language as the pipeline uses it: absent or null is no preference; anything
 * else must be exactly an ISO 639-1 code (no case folding, no region: what firestore.rules let in).
 */
export type PreferredLanguage = { ok: true; language: LanguageCode | null } | { ok: false; code: "invalid_language" };

export function parsePreferredLanguage(value: unknown): PreferredLanguage {
  if (value === undefined || value === null) return { ok: true, language: null };
  return isLanguageCode(value) ? { ok: true, language: value } : { ok: false, code: "invalid_language" };
}
