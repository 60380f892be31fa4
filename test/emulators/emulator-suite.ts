// The real Firebase CLI (`firebase emulators:start --only …`) for a test: a throwaway project folder running the built functions on free ports; stop() ends every process it started.

import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../support/embedded-firestore.js";
import { FIREBASE_CLI, FUNCTIONS_DIR, PROJECT_ID, REPO_ROOT, defaultRegion, dotenv, paramDefaults } from "./emulator-env.js";
import { descendantPids, killAll, signalGroup } from "../support/processes.js";
import { runScheduledFunction } from "./scheduled-functions.js";
import type { ScheduledRun } from "./scheduled-functions.js";

export type EmulatorName = "auth" | "functions" | "tasks" | "firestore" | "storage" | "pubsub";

export interface EmulatorSuiteOptions {
  only: readonly EmulatorName[];
  /** Environment of the functions beyond every param's default; written to the suite's functions/.env.local. */
  functionsEnv?: Readonly<Record<string, string>>;
  /** Written to the suite's functions/.secret.local, where the Functions emulator reads secrets. */
  secrets?: Readonly<Record<string, string>>;
  /**
   * Environment of the CLI itself. The functions runtime inherits it (emulator/functionsEmulator.js
   * `startNode` spreads process.env), so FIRESTORE_EMULATOR_HOST here points the functions at a
   * Firestore that is not one of the suite's emulators.
   */
  cliEnv?: Readonly<Record<string, string>>;
  /** Default 120 s: the first run of a Java emulator downloads it. */
  startTimeoutMs?: number;
}

export interface EmulatorSuite {
  projectId: string;
  region: string;
  /** host:port of each running emulator, as the *_EMULATOR_HOST variables name them. */
  hosts: Partial<Record<EmulatorName, string>>;
  /** http://host:port of the Functions emulator. */
  functionsOrigin: string;
  /** The `api` function's base URL, shaped like the deployed one (`…/<project>/<region>/api`). */
  apiBaseUrl: string;
  /** The last lines the CLI printed (functions' logs included), colours removed. */
  logTail(lines?: number): string;
  /** Runs a scheduled function once, as Cloud Scheduler would; throws unless it answered 200. */
  runScheduled(name: string): Promise<ScheduledRun>;
  stop(): Promise<void>;
}

const READY_LINE = "All emulators ready";
const KEPT_OUTPUT_CHARS = 400_000;
const STOP_GRACE_MS = 15_000;
// Variables of this (test) process that must not reach the CLI or, through it, the functions.
const NOT_INHERITED = [
  "FIRESTORE_EMULATOR_HOST",
  "FIREBASE_AUTH_EMULATOR_HOST",
  "FIREBASE_STORAGE_EMULATOR_HOST",
  "STORAGE_EMULATOR_HOST",
  "CLOUD_TASKS_EMULATOR_HOST",
  "PUBSUB_EMULATOR_HOST",
  "FIREBASE_EMULATOR_HUB",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "FIREBASE_CONFIG",
  "GCLOUD_PROJECT",
];

export async function startEmulatorSuite(options: EmulatorSuiteOptions): Promise<EmulatorSuite> {
  const region = options.functionsEnv?.FUNCTIONS_REGION ?? defaultRegion();
  const workDir = mkdtempSync(path.join(tmpdir(), "visit-pipeline-emulators-"));
  const ports = await choosePorts();
  writeProject(workDir, options, ports);

  const child = spawn(process.execPath, [FIREBASE_CLI, "emulators:start", "--only", options.only.join(","), "--project", PROJECT_ID], {
    cwd: workDir,
    // Its own process group, so stop() can signal the CLI and its functions workers together.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: cliEnvironment(workDir, options.cliEnv),
  });
  let output = "";
  let onOutput: (() => void) | null = null;
  const echo = process.env.EMULATORS_VERBOSE === "1";
  const keep = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    if (echo) process.stderr.write(text);
    output = (output + text).slice(-KEPT_OUTPUT_CHARS);
    onOutput?.();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const logTail = (lines = 120) =>
    stripColours(output)
      .split("\n")
      .filter((line) => line.trim() !== "")
      .slice(-lines)
      .join("\n");

  // Last resort if the test process ends without stop(): nothing it started may outlive it.
  const killOnExit = () => {
    if (child.pid !== undefined) killAll([child.pid, ...descendantPids(child.pid)]);
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", killOnExit);
    const pid = child.pid;
    if (pid !== undefined) {
      const started = new Set(descendantPids(pid));
      if (child.exitCode === null && child.signalCode === null) {
        // A clean shutdown stops the Java emulators too; give it time before killing.
        signalGroup(pid, "SIGTERM");
        await Promise.race([exited, sleep(STOP_GRACE_MS)]);
      }
      for (const later of descendantPids(pid)) started.add(later);
      killAll([pid, ...started]);
      await Promise.race([exited, sleep(2_000)]);
    }
    rmSync(workDir, { recursive: true, force: true });
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = options.startTimeoutMs ?? 120_000;
      const timer = setTimeout(() => reject(new Error(`the emulators were not ready within ${timeoutMs} ms`)), timeoutMs);
      const settle = (error?: Error) => {
        clearTimeout(timer);
        onOutput = null;
        if (error) reject(error);
        else resolve();
      };
      onOutput = () => {
        if (output.includes(READY_LINE)) settle();
      };
      child.once("exit", (code, signal) => settle(new Error(`firebase emulators:start exited (${signal ?? code}) before it was ready`)));
      child.once("error", (error) => settle(error));
      onOutput();
    });
  } catch (error) {
    await stop();
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- firebase emulators:start --only ${options.only.join(",")} (last lines) ---\n${logTail(80)}`,
    );
  }

  const host = (port: number) => `127.0.0.1:${port}`;
  const hosts: Partial<Record<EmulatorName, string>> = {};
  for (const name of options.only) hosts[name] = host(ports[name]);
  const functionsOrigin = `http://${host(ports.functions)}`;
  return {
    projectId: PROJECT_ID,
    region,
    hosts,
    functionsOrigin,
    apiBaseUrl: `${functionsOrigin}/${PROJECT_ID}/${region}/api`,
    logTail,
    async runScheduled(name) {
      const run = await runScheduledFunction({ functionsOrigin, projectId: PROJECT_ID, region, name });
      if (run.status !== 200) {
        throw new Error(`scheduled function ${name} answered ${run.status} ${run.body}\n--- emulator log (last lines) ---\n${logTail(60)}`);
      }
      return run;
    },
    stop,
  };
}

type Ports = Record<EmulatorName | "hub" | "logging" | "eventarc" | "firestoreWebsocket", number>;

/** Every port the CLI would otherwise take from firebase.json or its defaults (4400, 4500, 9299, …). */
async function choosePorts(): Promise<Ports> {
  const names = ["auth", "functions", "tasks", "firestore", "storage", "pubsub", "hub", "logging", "eventarc", "firestoreWebsocket"] as const;
  const ports = {} as Ports;
  // freePort never hands out the same port twice in one process.
  for (const name of names) ports[name] = await freePort();
  return ports;
}

/**
 * A project folder of its own: firebase.json (the repository's, with this suite's ports), the
 * repository's rules, and a functions folder holding a copy of functions/package.json with links
 * to the built code (lib) and the installed modules. Its dotenv and secret files are this suite's
 * alone, so a suite never touches functions/.env.local or functions/.secret.local in the
 * repository (`npm run emulators` uses those) and two suites can run at once.
 */
function writeProject(workDir: string, options: EmulatorSuiteOptions, ports: Ports): void {
  const repoConfig = JSON.parse(readFileSync(path.join(REPO_ROOT, "firebase.json"), "utf8")) as {
    functions: Record<string, unknown>[];
    firestore: { rules: string; indexes: string };
    storage: { rules: string };
  };
  const localhost = (port: number) => ({ host: "127.0.0.1", port });
  const emulators: Record<string, unknown> = {
    hub: localhost(ports.hub),
    logging: localhost(ports.logging),
    eventarc: localhost(ports.eventarc),
    ui: { enabled: false },
    singleProjectMode: true,
  };
  for (const name of options.only) emulators[name] = localhost(ports[name]);
  // The Functions emulator starts the Tasks emulator whenever it runs (emulator/controller.js).
  emulators.tasks = localhost(ports.tasks);
  if (options.only.includes("firestore")) {
    emulators.firestore = { ...localhost(ports.firestore), websocketPort: ports.firestoreWebsocket };
  }
  for (const file of [repoConfig.firestore.rules, repoConfig.firestore.indexes, repoConfig.storage.rules]) {
    copyFileSync(path.join(REPO_ROOT, file), path.join(workDir, file));
  }
  writeFileSync(
    path.join(workDir, "firebase.json"),
    JSON.stringify({ functions: repoConfig.functions, firestore: repoConfig.firestore, storage: repoConfig.storage, emulators }, null, 2),
  );

  if (!options.only.includes("functions")) return;
  if (!existsSync(path.join(FUNCTIONS_DIR, "lib/index.js"))) {
    throw new Error("functions/lib/index.js is missing: build the functions first (npm run build)");
  }
  const functionsDir = path.join(workDir, "functions");
  mkdirSync(functionsDir);
  copyFileSync(path.join(FUNCTIONS_DIR, "package.json"), path.join(functionsDir, "package.json"));
  // Node resolves a module from its real path, so lib/index.js finds the repository's node_modules
  // and the functions run exactly as built. The emulator's file watcher skips node_modules.
  symlinkSync(path.join(FUNCTIONS_DIR, "lib"), path.join(functionsDir, "lib"), "dir");
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(functionsDir, "node_modules"), "dir");
  writeFileSync(path.join(functionsDir, ".env.local"), dotenv({ ...paramDefaults(), ...options.functionsEnv }));
  writeFileSync(path.join(functionsDir, ".secret.local"), dotenv(options.secrets ?? {}), { mode: 0o600 });
}

function cliEnvironment(workDir: string, extra: Readonly<Record<string, string>> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of NOT_INHERITED) delete env[name];
  for (const name of Object.keys(env)) {
    if (name.startsWith("VITEST") || name.startsWith("__VITEST") || name.startsWith("TINYPOOL")) delete env[name];
  }
  // The hub writes its locator file to $TMPDIR/hub-<project>.json; a private TMPDIR keeps two
  // suites (or a developer's `npm run emulators`) from finding each other's.
  return { ...env, TMPDIR: workDir, ...extra };
}

function stripColours(text: string): string {
  return text.replace(/\u001b\[[0-9;]*m/g, "");
}

/** A wait that does not by itself keep the process alive (stop() races it against the CLI's exit). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
