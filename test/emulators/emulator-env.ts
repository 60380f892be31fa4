// What the Firebase emulators need from this project: the demo project, the functions' param and secret files, and the Java check.

import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { functionsRegion, tunables } from "../../functions/src/config.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const FUNCTIONS_DIR = path.join(REPO_ROOT, "functions");
export const FIXTURES_DIR = path.join(REPO_ROOT, "test/fixtures");
export const FIREBASE_CLI = path.join(REPO_ROOT, "node_modules/firebase-tools/lib/bin/firebase.js");

/** A `demo-` project: firebase-tools then refuses to reach any real Google service. */
export const PROJECT_ID = "demo-visit-pipeline";
export const DEFAULT_BUCKET = `${PROJECT_ID}.appspot.com`;

/** The keys the fake providers accept (test/fakes: FakeAssemblyAI and FakeOpenAI defaults). */
export const FAKE_PROVIDER_SECRETS: Readonly<Record<string, string>> = {
  ASSEMBLYAI_API_KEY: "test-assemblyai-key",
  OPENAI_API_KEY: "test-openai-key",
};

/** firebase-tools refuses to start Firestore, Storage and Pub/Sub below this (emulator/commandUtils.js). */
export const MIN_JAVA_MAJOR = 21;

/** The region every function is deployed to unless FUNCTIONS_REGION says otherwise. */
export function defaultRegion(): string {
  const fallback = functionsRegion.options.default;
  return typeof fallback === "string" ? fallback : "us-central1";
}

/**
 * Every param the functions declare, with its default. The Functions emulator resolves params
 * only from the dotenv files (functions/env.js `loadUserEnvs`, not the process environment); a
 * param missing there is prompted for on a terminal, or silently defaulted and *appended* to
 * `.env.local` when not interactive (`writeResolvedParams`). Writing them all ourselves keeps
 * both from happening.
 */
export function paramDefaults(): Record<string, string> {
  const defaults: Record<string, string> = { [functionsRegion.name]: defaultRegion() };
  for (const tunable of Object.values(tunables)) defaults[tunable.param.name] = String(tunable.defaultValue);
  return defaults;
}

/** One `KEY=value` per line, as firebase-tools' dotenv parser reads it. Values here never need quoting. */
export function dotenv(values: Readonly<Record<string, string>>): string {
  return Object.entries(values)
    .map(([key, value]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`not a dotenv key: ${key}`);
      if (/[\s"'#\\$]/.test(value)) throw new Error(`${key}: value would need quoting: ${value}`);
      return `${key}=${value}\n`;
    })
    .join("");
}

/** Keys a dotenv file defines (enough of the syntax to tell which params a developer has set). */
export function dotenvKeys(content: string): Set<string> {
  const keys = new Set<string>();
  for (const line of content.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=/.exec(line);
    if (match?.[1]) keys.add(match[1]);
  }
  return keys;
}

/** The installed Java's major version, or null when `java` cannot be run. */
export function javaMajorVersion(): number | null {
  // `java -version` writes to stderr; firebase-tools runs the same command.
  const result = spawnSync("java", ["-version"], { encoding: "utf8", timeout: 15_000 });
  if (result.error || result.status !== 0) return null;
  return parseJavaMajor(`${result.stdout}\n${result.stderr}`);
}

function parseJavaMajor(output: string): number | null {
  // `version "17.0.15"`, `version "21"`, or the old `version "1.8.0_392"` (Java 8).
  const match = /version "(\d+)(?:\.(\d+))?/.exec(output);
  if (!match?.[1]) return null;
  const first = Number(match[1]);
  return first === 1 && match[2] ? Number(match[2]) : first;
}

/** Why the full emulator suite cannot start on this machine, or null when it can. */
export function fullSuiteBlocker(): string | null {
  const java = javaMajorVersion();
  if (java !== null && java >= MIN_JAVA_MAJOR) return null;
  const found = java === null ? "no java on PATH" : `found Java ${java}`;
  return `the full Firebase emulator suite needs Java ${MIN_JAVA_MAJOR}+ (${found}) and downloads the Firestore/Storage/Pub/Sub emulators from Google`;
}
