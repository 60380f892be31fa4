// Finds protected health information and credentials in log text: transcript or summary text,
// signed URLs (in every encoding they can reach a log line), Firebase ID tokens / JWTs, AssemblyAI
// webhook secrets (by the header or request field that carries them), and
// recording object names (`users/<uid>/visits/<visitId>/<file>` — a file name can identify a
// patient). Used by the vitest setup file that scans every log line the functions emit
// (test/setup/phi-log-scan.ts). Findings carry only a short, redacted excerpt: a report of a leak
// must not repeat the leak.

import { readdirSync } from "node:fs";
import { loadVisitScript } from "../fakes/scripts.js";

export type PhiRule = "phrase" | "url" | "signed-url-param" | "jwt" | "webhook-secret" | "object-name" | "file-name";

export interface Finding {
  rule: PhiRule;
  /** Short and redacted: never the full secret or the full phrase. */
  excerpt: string;
  /** Offset of the match in the scanned text. */
  index: number;
}

export interface KnownPhi {
  /** Transcript or summary text that must never reach a log; each should be ≥ MIN_PHRASE_LENGTH. */
  phrases: string[];
}

/** Shorter phrases would match ordinary words and codes. */
export const MIN_PHRASE_LENGTH = 24;

// One character in its plain, JSON-escaped (`\/`, `\\/`, `\u002F`) and percent-encoded (also
// double-encoded: `%252F`) forms.
const SLASH = String.raw`(?:\\{0,8}\/|%(?:25){0,3}2[fF]|\\u002[fF])`;
const COLON = String.raw`(?::|%(?:25){0,3}3[aA]|\\u003[aA])`;
const EQUALS = String.raw`(?:=|%(?:25){0,3}3[dD]|\\u003[dD])`;
const AUDIO_EXTENSIONS = ["m4a", "mp3", "mp4", "wav", "aac", "ogg", "oga", "opus", "webm", "flac", "caf", "amr", "3gp", "aiff?", "wma"];
// A path segment: anything but a separator (in any encoding), whitespace, quotes or brackets.
const SEGMENT = String.raw`(?:(?!${SLASH})[^\s"'<>/\\]){1,400}`;

const PATTERNS: readonly { rule: Exclude<PhiRule, "phrase">; pattern: RegExp }[] = [
  // Any http(s) URL: the functions log none (sanitizeDetail strips them), and a signed one is a credential.
  { rule: "url", pattern: new RegExp(String.raw`(?<![a-z])https?${COLON}${SLASH}{2}`, "gi") },
  // Signed-URL query parameters, with or without a scheme or host in front of them.
  {
    rule: "signed-url-param",
    pattern: new RegExp(String.raw`(?:X-Goog-[a-z]{1,40}|X-Amz-[a-z]{1,40}|GoogleAccessId|Signature)(?:-[a-z]{1,40}){0,4}${EQUALS}`, "gi"),
  },
  // Firebase ID tokens and any other JWT (the emulator's unsigned ones end in an empty segment).
  { rule: "jwt", pattern: /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g },
  // A webhook secret next to the header (or the submit field) that carries it, as a header dump or JSON would show it.
  {
    rule: "webhook-secret",
    pattern: new RegExp(String.raw`(?:x-visit-webhook-secret|webhook_auth_header_value)["'\\]{0,4}\s*(?:${COLON}|${EQUALS})\s*["'\\]{0,4}[A-Za-z0-9_-]{8}`, "gi"),
  },
  // Recording object names, at least one character of the file name present.
  {
    rule: "object-name",
    pattern: new RegExp(String.raw`users${SLASH}${SEGMENT}${SLASH}visits${SLASH}${SEGMENT}${SLASH}(?!${SLASH})[^\s"'<>/\\]`, "gi"),
  },
  // A recording's file name on its own (what is left of an object name without its folders).
  { rule: "file-name", pattern: new RegExp(String.raw`[a-z0-9_)-]\.(?:${AUDIO_EXTENSIONS.join("|")})(?![a-z0-9])`, "gi") },
];

/** Every finding in `text`; one scan per rule (and one search per phrase) over the whole text. */
export function findPhi(text: string, known: KnownPhi): Finding[] {
  const findings: Finding[] = [];
  for (const { rule, pattern } of PATTERNS) {
    pattern.lastIndex = 0;
    for (const match of text.matchAll(pattern)) {
      findings.push({ rule, excerpt: redact(rule, match[0], text, match.index), index: match.index });
    }
  }
  const lower = text.toLowerCase();
  for (const phrase of known.phrases) {
    const forms = new Set([phrase, JSON.stringify(phrase).slice(1, -1)].map((form) => form.toLowerCase()));
    for (const form of forms) {
      if (form.length === 0) continue;
      const index = lower.indexOf(form);
      if (index >= 0) {
        findings.push({ rule: "phrase", excerpt: `"${phrase.slice(0, 8)}…" (${phrase.length} chars of known transcript/summary text)`, index });
        break;
      }
    }
  }
  return findings.sort((a, b) => a.index - b.index);
}

function redact(rule: Exclude<PhiRule, "phrase">, matched: string, text: string, index: number): string {
  switch (rule) {
    case "url":
      return `${matched}… (${encodingOf(matched)})`;
    case "signed-url-param":
      return `${matched}… (value redacted)`;
    case "jwt": {
      const length = /^[A-Za-z0-9_.-]*/.exec(text.slice(index, index + 10_000))?.[0].length ?? matched.length;
      return `${matched.slice(0, 6)}… (${length}-character token)`;
    }
    case "webhook-secret":
      return `${matched.slice(0, matched.search(/[:=%\\"'\s]/))}… (value redacted)`;
    case "object-name":
      return `users/…/visits/…/… (${encodingOf(matched)} object name)`;
    case "file-name":
      return `…${matched.slice(1)} (recording file name)`;
  }
}

function encodingOf(matched: string): string {
  if (/%(?:25)*2f/i.test(matched) || /%(?:25)*3a/i.test(matched)) return "percent-encoded";
  if (matched.includes("\\")) return "JSON-escaped";
  return "plain";
}

/** One line per finding, for a failure message. */
export function describeFindings(findings: readonly Finding[], where: (finding: Finding) => string = () => ""): string {
  return findings.map((finding) => `  [${finding.rule}] ${finding.excerpt}${where(finding)}`).join("\n");
}

// --- Known transcript and summary text ----------------------------------------------------------

const FIXTURES_DIR = new URL("../fixtures/", import.meta.url);
const WINDOW = 32;
const STRIDE = 8;

/**
 * The transcript text the fake AssemblyAI returns (every test/fixtures/*.script.txt) and the
 * summary text the fake OpenAI generates from it (sentences of the transcript prompt, plus its
 * fallback string), as phrases of at least MIN_PHRASE_LENGTH characters: whole sentences up to
 * WINDOW + STRIDE characters, longer ones as overlapping WINDOW-character pieces, so any leaked
 * fragment of WINDOW + STRIDE characters or more contains one.
 */
export function knownPhiPhrases(): string[] {
  const scripts = readdirSync(FIXTURES_DIR)
    .filter((name) => name.endsWith(".script.txt"))
    .map((name) => name.slice(0, -".script.txt".length));
  const sentences = scripts.flatMap((name) => loadVisitScript(name).flatMap((turn) => sentencesOf(turn.text)));
  // The fake OpenAI's only string that does not come from the prompt.
  sentences.push("No content was provided.");
  return [...new Set(sentences.flatMap(phrasesOf))];
}

export function sentencesOf(text: string): string[] {
  return text
    .split(/\r?\n/)
    .flatMap((line) => line.split(/(?<=[.!?])\s+/))
    .map((sentence) => sentence.trim())
    .filter(Boolean);
}

function phrasesOf(sentence: string): string[] {
  if (sentence.length < MIN_PHRASE_LENGTH) return [];
  if (sentence.length <= WINDOW + STRIDE) return [sentence];
  const phrases: string[] = [];
  for (let start = 0; start + WINDOW <= sentence.length; start += STRIDE) phrases.push(sentence.slice(start, start + WINDOW));
  phrases.push(sentence.slice(-WINDOW));
  return phrases;
}
