// Smoke test of `npm run demo`: the same command a new user runs, as a child process.

import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const run = promisify(execFile);

interface DemoResult {
  status: string;
  timeline: { kind: string; status?: string; text: string }[];
  summary: { overview: string; actionItems: unknown[]; language: string; speakers: { speaker: string; role: string; certainty: string | null }[] } | null;
  actionItems: { id: string; description: string }[];
  transcript: { utterances: number; languageCode: string } | null;
  providers: { assemblyai: string; openai: string };
}

async function demo(...args: string[]): Promise<DemoResult> {
  const env = { ...process.env };
  // The demo must pick its own local providers, whatever the developer's shell has.
  for (const key of ["ASSEMBLYAI_API_KEY", "OPENAI_API_KEY", "ASSEMBLYAI_BASE_URL", "OPENAI_BASE_URL", "FIRESTORE_EMULATOR_HOST"]) {
    delete env[key];
  }
  const { stdout } = await run(process.execPath, ["--import", "tsx", "test/demo/run-demo.ts", "--json", ...args], {
    cwd: root,
    env,
    timeout: 90_000,
  });
  return JSON.parse(stdout) as DemoResult;
}

describe("npm run demo --json", () => {
  it("completes the English sample with the four statuses in order, a summary and action items", async () => {
    const result = await demo();
    expect(result.status).toBe("completed");
    expect(result.timeline.filter((entry) => entry.kind === "status").map((entry) => entry.status)).toEqual([
      "pending",
      "transcribing",
      "summarizing",
      "completed",
    ]);
    expect(result.summary?.overview.length).toBeGreaterThan(0);
    expect(result.actionItems.length).toBe(result.summary?.actionItems.length);
    expect(result.actionItems.length).toBeGreaterThan(0);
    expect(result.transcript).toMatchObject({ utterances: 14, languageCode: "en" });
    // Who spoke: the sample's two speakers by role, inferred (nobody introduces themselves).
    expect(result.summary?.speakers).toEqual([
      { speaker: "A", role: "clinician", certainty: "inferred" },
      { speaker: "B", role: "patient", certainty: "inferred" },
    ]);
    expect(result.providers.openai).toContain("local fake");
  });

  it("summarizes the Spanish sample in Spanish", async () => {
    const result = await demo("--file", "visit-es.m4a");
    expect(result.status).toBe("completed");
    expect(result.transcript?.languageCode).toBe("es");
    expect(result.summary?.language).toBe("es");
  });
});
