// Shared by the ops tests: runs the ops CLI (in process through runOps, or as the real entry in a
// child process), and seeds visits in known states through the real pipeline on the local runtime.

import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runOps } from "../../functions/src/ops/cli.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit } from "../support/visits.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TSX_CLI = path.join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** runOps in this process, with captured output (stderr not a terminal unless asked). */
export async function runInProcess(args: string[], options: { tty?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await runOps(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: options.tty ?? false },
    env: options.env ?? { ...process.env },
  });
  return { code, stdout, stderr };
}

/** The real entry (`tsx ops/cli.ts`, what `npm run ops` runs) as a child process. */
export function runChild(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliRun> {
  return runProcess(process.execPath, [TSX_CLI, "ops/cli.ts", ...args], env);
}

/** A shell command line, as a runbook reader would type it. */
export function runShell(commandLine: string, env: NodeJS.ProcessEnv): Promise<CliRun> {
  return runProcess("sh", ["-c", commandLine], env);
}

/**
 * Shell lines as written, with `npm run ops -- …` answered by this process: a small `npm` first
 * on the shell's PATH hands the arguments (and the shell's environment) to runOps here and
 * prints what it wrote, with its exit code — loops, `$(…)` and pipes work as typed, without a
 * Node and TypeScript start per command. Any other npm command goes to the real npm.
 */
export interface OpsShell {
  run(commandLine: string, env: NodeJS.ProcessEnv): Promise<CliRun>;
  close(): Promise<void>;
}

const NPM_SHIM = `#!/usr/bin/env node
const args = process.argv.slice(2);
const at = args.indexOf("--");
const head = at < 0 ? args : args.slice(0, at);
if (head[0] === "run" && head[head.length - 1] === "ops" && head.slice(1, -1).every((flag) => flag === "-s" || flag === "--silent")) {
  fetch(process.env.OPS_SHIM_URL, { method: "POST", body: JSON.stringify({ argv: at < 0 ? [] : args.slice(at + 1), env: process.env }) })
    .then((response) => response.json())
    .then((run) => { process.stdout.write(run.stdout); process.stderr.write(run.stderr); process.exitCode = run.code; });
} else {
  const child = require("node:child_process").spawnSync(process.env.OPS_SHIM_REAL_NPM, args, { stdio: "inherit" });
  process.exitCode = child.status ?? 1;
}
`;

export async function startOpsShell(): Promise<OpsShell> {
  const realNpm = execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim();
  const dir = mkdtempSync(path.join(tmpdir(), "ops-shim-"));
  const shim = path.join(dir, "npm");
  writeFileSync(shim, NPM_SHIM.replace("#!/usr/bin/env node", `#!${process.execPath}`));
  chmodSync(shim, 0o755);
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const { argv, env } = JSON.parse(body) as { argv: string[]; env: NodeJS.ProcessEnv };
      runInProcess(argv, { env }).then(
        (run) => response.end(JSON.stringify(run)),
        (error: unknown) => response.end(JSON.stringify({ code: 5, stdout: "", stderr: String(error) })),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    run: (commandLine, env) =>
      runShell(commandLine, { ...env, PATH: `${dir}:${env.PATH ?? ""}`, OPS_SHIM_URL: url, OPS_SHIM_REAL_NPM: realNpm }),
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function parseJson(run: CliRun): Record<string, unknown> {
  try {
    return JSON.parse(run.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

export const UID = "ops-test-user";

/** A visit that completed (transcript, summary, action items). */
export async function seedCompleted(runtime: LocalRuntime): Promise<string> {
  const visitId = newVisitId("done");
  await runtime.upload({ uid: UID, visitId });
  await runtime.runUntilSettled([visitId]);
  return visitId;
}

/** A visit whose summary was refused: `partial`, transcript saved, retryable. */
export async function seedPartial(runtime: LocalRuntime): Promise<string> {
  const visitId = newVisitId("partial");
  runtime.openai.faults.enqueue("chat", { kind: "refusal" }, 10);
  await runtime.upload({ uid: UID, visitId });
  await runtime.runUntilSettled([visitId]);
  runtime.openai.faults.clear();
  return visitId;
}

/** A visit whose AssemblyAI job ended in error: `failed`, no transcript, retryable. */
export async function seedFailedTranscription(runtime: LocalRuntime): Promise<string> {
  const visitId = newVisitId("failed");
  runtime.assemblyai.registerAudio(visitId, { kind: "error", error: "The job ran into an internal problem" });
  await runtime.upload({ uid: UID, visitId });
  await runtime.runUntilSettled([visitId]);
  return visitId;
}

/** A visit AssemblyAI is still working on (`transcribing`) that nothing checks until the caller does. */
export async function seedTranscribing(runtime: LocalRuntime): Promise<string> {
  const visitId = newVisitId("busy");
  runtime.assemblyai.setTiming({ queuedMs: 3_600_000, processingMs: 0 });
  await runtime.upload({ uid: UID, visitId });
  runtime.assemblyai.setTiming({ queuedMs: 0, processingMs: 0 });
  const visit = await readVisit(visitId);
  if (visit.status !== "transcribing") throw new Error(`seeded visit is ${visit.status}, not transcribing`);
  return visitId;
}
