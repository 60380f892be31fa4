// Cold import, for `npm run bench`: how long a fresh Node process takes to import the built functions
// entry (functions/lib/index.js, what every new instance of every function loads before its first
// event) against a bare `firebase-functions` import, median of several runs of each, interleaved so
// a busy machine weighs on both alike. Then, in the same fresh process after the entry, what the
// parts loaded on first use cost when they are first needed: the AssemblyAI and OpenAI adapters
// (with their SDKs) and the api's routes (with express).

import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import buildFunctions from "../emulators/build-functions.js";
import { percentile } from "./stats.js";

const FUNCTIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../functions");
const lib = (file: string) => pathToFileURL(path.join(FUNCTIONS_DIR, "lib", file)).href;

/** What the parts loaded on first use cost when first needed, imported after the entry (ms). */
export const FIRST_USE = {
  "AssemblyAI adapter": lib("providers/assemblyai.js"),
  "OpenAI adapter": lib("providers/openai.js"),
  "api routes": lib("http/api.js"),
} as const;

export interface ColdImportFigures {
  runs: number;
  entryMs: number;
  bareMs: number;
  ratio: number;
  firstUseMs: Record<keyof typeof FIRST_USE, number>;
}

// Each child times its own import (not Node's start) and prints the figures as JSON.
const BARE_SCRIPT = `const started = performance.now();
await import("firebase-functions");
console.log(JSON.stringify({ importMs: performance.now() - started }));`;

const ENTRY_SCRIPT = `const started = performance.now();
await import(${JSON.stringify(lib("index.js"))});
const importMs = performance.now() - started;
const firstUseMs = {};
for (const [name, url] of Object.entries(${JSON.stringify(FIRST_USE)})) {
  const begun = performance.now();
  await import(url);
  firstUseMs[name] = performance.now() - begun;
}
console.log(JSON.stringify({ importMs, firstUseMs }));`;

/** Builds functions/lib from the current source, then measures `runs` fresh processes of each kind. */
export function measureColdImport(runs: number): ColdImportFigures {
  buildFunctions();
  const entry: number[] = [];
  const bare: number[] = [];
  const firstUse: Record<string, number[]> = {};
  for (let run = 0; run < runs; run++) {
    bare.push(runChild(BARE_SCRIPT).importMs);
    const measured = runChild(ENTRY_SCRIPT);
    entry.push(measured.importMs);
    for (const [name, ms] of Object.entries(measured.firstUseMs ?? {})) (firstUse[name] ??= []).push(ms);
  }
  const entryMs = percentile(entry, 50);
  const bareMs = percentile(bare, 50);
  const firstUseMs = Object.fromEntries(Object.keys(FIRST_USE).map((name) => [name, percentile(firstUse[name] ?? [], 50)])) as ColdImportFigures["firstUseMs"];
  return { runs, entryMs, bareMs, ratio: entryMs / bareMs, firstUseMs };
}

function runChild(script: string): { importMs: number; firstUseMs?: Record<string, number> } {
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: FUNCTIONS_DIR,
    encoding: "utf8",
    env: deployedEnvironment(),
  });
  if (child.status !== 0) throw new Error(`cold import child failed (exit ${child.status}): ${child.stderr.slice(0, 500)}`);
  return JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}") as { importMs: number; firstUseMs?: Record<string, number> };
}

/**
 * What the runtime gives a deployed instance that the import needs (onObjectFinalized reads the
 * default bucket at import), and nothing of this process: no loader of the bench's own (tsx), no
 * emulator addresses.
 */
function deployedEnvironment(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GCLOUD_PROJECT: "demo-visit-pipeline",
    FIREBASE_CONFIG: JSON.stringify({ projectId: "demo-visit-pipeline", storageBucket: "demo-visit-pipeline.appspot.com" }),
  };
}
