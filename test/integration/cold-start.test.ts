// What a cold instance loads: importing the functions entry in a fresh Node process must not load
// the provider SDKs or express (they load on first use: providers/lazy-adapters.ts, the api in
// index.ts). The time this saves is a benchmark figure (`npm run bench`), not a test.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// A module resolution hook that writes down every module the import resolves.
const RECORDING_HOOKS = `import { appendFileSync } from "node:fs";
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + "\\n");
  return result;
}`;

/** The packages (under node_modules) whose modules `code` (an ES module body) resolves, run in a fresh process. */
function packagesLoadedBy(code: string): Set<string> {
  const dir = mkdtempSync(path.join(tmpdir(), "cold-start-"));
  const file = path.join(dir, "resolved.txt");
  try {
    const script = `import { register } from "node:module";
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(RECORDING_HOOKS)}`)}, { data: { file: ${JSON.stringify(file)} } });
${code}`;
    // tsx compiles the TypeScript source, as the other tests run it; vitest's env supplies FIREBASE_CONFIG.
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(child.status, child.stderr).toBe(0);
    const urls = readFileSync(file, "utf8").split("\n").filter(Boolean);
    return new Set(urls.map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1]).filter((name): name is string => name !== undefined));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const source = (file: string) => JSON.stringify(pathToFileURL(path.join(ROOT, "functions/src", file)).href);

describe("the functions entry on a cold instance", () => {
  it("loads firebase-functions, firebase-admin and zod, but no provider SDK and not express", () => {
    const loaded = packagesLoadedBy(`await import(${source("index.ts")});`);
    // The recording works: what the entry needs at once is there.
    for (const needed of ["firebase-functions", "firebase-admin", "zod"]) expect(loaded, needed).toContain(needed);
    for (const lazy of ["assemblyai", "openai", "express"]) expect(loaded, lazy).not.toContain(lazy);
  });

  it("loads each provider SDK with its adapter's first use", () => {
    const loaded = packagesLoadedBy(`const { speechToTextOnFirstUse, summarizerOnFirstUse } = await import(${source("providers/lazy-adapters.ts")});
const settings = { apiKey: "k", baseUrl: "http://127.0.0.1:9", timeoutMs: 100 };
const speech = speechToTextOnFirstUse({ ...settings, speechModels: ["universal-2"], transcription: {} });
// An id that cannot be valid: refused before any request, after the adapter loaded.
await speech.check("not a transcript id").catch(() => {});
await summarizerOnFirstUse({ ...settings, model: "gpt-4.1-mini" }).promptOverheadTokens();`);
    expect(loaded).toContain("assemblyai");
    expect(loaded).toContain("openai");
  });
});
