// docs/runbook.md's commands work as written: every `npm run ops -- …` line in its code blocks is
// run through a shell, as a reader would type it (with RUNBOOK_REAL_NPM=1 through the real npm
// and CLI entry; otherwise npm's `run ops` is answered by this process — see startOpsShell — so
// that the test does not start Node and TypeScript 30 times; ops-commands.test.ts runs the real
// entry as a child process), against the embedded Firestore, seeded through the real pipeline with visits in the states the section is about,
// and must exit as the runbook's exit-code table says. Lines that need a real project (firebase
// deploy, secrets, gcloud, git) are listed as not runnable here, never counted as passing.

import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FakeGoogleMonitoring } from "../fakes/google-monitoring.js";
import { supportDocumentIdCursors } from "../support/embedded-firestore-cursors.js";
import { PROJECT_ID, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";
import { REPO_ROOT, UID, runShell, seedCompleted, seedFailedTranscription, seedTranscribing, startOpsShell } from "./ops-harness.js";
import type { OpsShell } from "./ops-harness.js";

interface RunbookLine {
  section: string;
  block: number;
  line: string;
}

const OPS_COMMAND = /\bnpm run (?:-s |--silent )?ops -- /;
const NEEDS_REAL_PROJECT = /^(npx firebase|gcloud|git) /;

/** The command lines of the runbook's bash code blocks, with the section they are in. */
function runbookLines(): RunbookLine[] {
  const text = readFileSync(path.join(REPO_ROOT, "docs/runbook.md"), "utf8");
  const lines: RunbookLine[] = [];
  let section = "";
  let block = -1;
  let inBlock = false;
  for (const raw of text.split("\n")) {
    const trimmed = raw.trim();
    if (!inBlock && /^#{2,3} /.test(trimmed)) section = trimmed.replace(/^#+ /, "");
    if (trimmed.startsWith("```")) {
      inBlock = !inBlock;
      if (inBlock) block += 1;
      continue;
    }
    if (inBlock && trimmed !== "") lines.push({ section, block, line: trimmed });
  }
  return lines;
}

// Commands whose exit code 1 reports findings (stuck visits, a breaker not closed): 0 or 1 is right.
const FINDINGS_COMMANDS = /ops -- (stuck|breaker)(\s|$)(?!.*--reset)/;

let runtime: LocalRuntime;
let google: FakeGoogleMonitoring;
let shell: OpsShell | null = null;

beforeAll(async () => {
  supportDocumentIdCursors();
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
  google = await FakeGoogleMonitoring.start();
  if (process.env.RUNBOOK_REAL_NPM !== "1") shell = await startOpsShell();
});

afterAll(async () => {
  await shell?.close();
  await google.close();
  await runtime.close();
});

/** A visit whose summary failed for lack of OpenAI quota. */
async function seedQuotaExhausted(): Promise<string> {
  const visitId = newVisitId("quota");
  runtime.openai.faults.enqueue("chat", { kind: "insufficientQuota" }, 10);
  await runtime.upload({ uid: UID, visitId });
  await runtime.runUntilSettled([visitId]);
  runtime.openai.faults.clear();
  return visitId;
}

it("every ops command in docs/runbook.md runs as written and exits as documented", { timeout: 900_000 }, async () => {
  const lines = runbookLines();
  const opsLines = lines.filter((entry) => OPS_COMMAND.test(entry.line));
  const notRunnable = lines.filter((entry) => NEEDS_REAL_PROJECT.test(entry.line));
  const unclassified = lines.filter((entry) => !OPS_COMMAND.test(entry.line) && !NEEDS_REAL_PROJECT.test(entry.line));
  expect(unclassified, "every runbook command is either an ops command or a real-project step").toEqual([]);
  expect(opsLines.length).toBeGreaterThan(15);
  console.log(`not runnable here (they need a real project), not counted:\n${notRunnable.map((entry) => `  [${entry.section}] ${entry.line}`).join("\n")}`);

  // The states the runbook's sections are about.
  const quota = await seedQuotaExhausted();
  const failedTranscription = await seedFailedTranscription(runtime);
  expect((await readVisit(quota)).error?.code).toBe("provider_quota_exhausted");
  await seedCompleted(runtime);

  const baseEnv = {
    ...process.env,
    PROJECT_ID,
    OPS_ACCESS_TOKEN: google.token,
    OPS_LOGGING_API_URL: google.baseUrl,
    OPS_MONITORING_API_URL: google.baseUrl,
  };
  const blockVisit = new Map<number, string>();
  const results: { line: string; code: number }[] = [];
  const ranAlready = new Set<string>();
  for (const entry of opsLines) {
    // The same read-only line in another section behaves the same: run once (the machine is shared).
    if (!entry.line.includes("$VISIT_ID") && ranAlready.has(entry.line)) continue;
    ranAlready.add(entry.line);
    // One visit per code block, in the state its commands need: `fail` a running one, `show`/`delete` any.
    let visitId = blockVisit.get(entry.block);
    if (!visitId && entry.line.includes("$VISIT_ID")) {
      const blockLines = opsLines.filter((other) => other.block === entry.block).map((other) => other.line);
      visitId = blockLines.some((line) => line.includes("ops -- fail ")) ? await seedTranscribing(runtime) : await seedCompleted(runtime);
      blockVisit.set(entry.block, visitId);
    }
    const env = { ...baseEnv, VISIT_ID: visitId ?? "" };
    const run = shell ? await shell.run(entry.line, env) : await runShell(entry.line, env);
    const allowed = FINDINGS_COMMANDS.test(entry.line) ? [0, 1] : [0];
    expect(allowed, `[${entry.section}] ${entry.line}\nexit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toContain(run.code);
    results.push({ line: entry.line, code: run.code });
  }
  console.log(`ran ${results.length} runbook commands:\n${results.map((result) => `  exit ${result.code}  ${result.line}`).join("\n")}`);

  // The loops really resumed the visits their sections are about.
  expect((await readVisit(quota)).audit.map((audit) => audit.reason)).toContain("OpenAI quota raised");
  expect((await readVisit(failedTranscription)).audit.map((audit) => audit.reason)).toContain("transcription outage over");
  // The monitoring section applied the file to the (fake) project.
  expect(google.policies.size).toBeGreaterThan(0);
});
