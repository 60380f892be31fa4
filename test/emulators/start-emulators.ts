// `npm run emulators`: the full Firebase emulator suite of firebase.json with the local fake AssemblyAI and OpenAI wired into the functions, offline; Ctrl-C stops everything and puts functions/ back as it was.
//
//   npm run emulators                        # auth, functions, firestore, storage, pubsub, tasks, UI
//   npm run emulators -- --checker-every=0   # do not run the scheduled checker (see below)
//   npm run emulators -- --import=./seed     # anything else is passed to `firebase emulators:start`

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { FakeAssemblyAI } from "../fakes/assemblyai.js";
import { FakeOpenAI } from "../fakes/openai.js";
import {
  FAKE_PROVIDER_SECRETS,
  FIREBASE_CLI,
  FUNCTIONS_DIR,
  PROJECT_ID,
  REPO_ROOT,
  defaultRegion,
  dotenv,
  dotenvKeys,
  fullSuiteBlocker,
  paramDefaults,
} from "./emulator-env.js";
import { recoverLeftover, shown, takeOver } from "./owned-dotfiles.js";
import type { OwnedDotfile } from "./owned-dotfiles.js";
import { runScheduledFunction } from "./scheduled-functions.js";
import type { ScheduledFunctionTarget } from "./scheduled-functions.js";

/** Quick polling for a developer watching one visit; production waits 30 s before the first check. */
const LOCAL_TUNABLES: Record<string, string> = {
  POLL_INITIAL_DELAY_SECONDS: "5",
  POLL_MAX_DELAY_SECONDS: "15",
  ATTEMPT_BACKOFF_SECONDS: "5",
};
const DEFAULT_CHECKER_EVERY_SECONDS = 10;

interface EmulatorPorts {
  functions: number;
  ui: number;
}

function log(message: string): void {
  console.log(`emulators: ${message}`);
}

function fail(message: string): never {
  console.error(`emulators: ${message}`);
  process.exit(1);
}

function parseArguments(argv: readonly string[]): { checkerEverySeconds: number; cliArguments: string[] } {
  let checkerEverySeconds = DEFAULT_CHECKER_EVERY_SECONDS;
  const cliArguments: string[] = [];
  for (const argument of argv) {
    const checker = /^--checker-every=(\d+)$/.exec(argument);
    if (checker?.[1] !== undefined) checkerEverySeconds = Number(checker[1]);
    else if (argument.startsWith("--checker-every")) fail(`expected --checker-every=<seconds>, got ${argument}`);
    else cliArguments.push(argument);
  }
  return { checkerEverySeconds, cliArguments };
}

function emulatorPorts(): EmulatorPorts {
  const config = JSON.parse(readFileSync(path.join(REPO_ROOT, "firebase.json"), "utf8")) as {
    emulators?: { functions?: { port?: number }; ui?: { port?: number } };
  };
  return { functions: config.emulators?.functions?.port ?? 5001, ui: config.emulators?.ui?.port ?? 4000 };
}

/** Params a developer already set for this project keep their value; every other param gets its default. */
function paramsNotSetElsewhere(): Record<string, string> {
  const alreadySet = new Set<string>();
  for (const file of [".env", `.env.${PROJECT_ID}`, ".env.default", ".env.local"]) {
    const filePath = path.join(FUNCTIONS_DIR, file);
    if (existsSync(filePath)) for (const key of dotenvKeys(readFileSync(filePath, "utf8"))) alreadySet.add(key);
  }
  return Object.fromEntries(Object.entries(paramDefaults()).filter(([key]) => !alreadySet.has(key)));
}

async function main(): Promise<void> {
  const blocker = fullSuiteBlocker();
  if (blocker !== null) {
    fail(`${blocker}; use npm run demo, or npm run test:functions-emulator (functions + auth + tasks, runs here)`);
  }
  const { checkerEverySeconds, cliArguments } = parseArguments(process.argv.slice(2));

  const envPath = path.join(FUNCTIONS_DIR, ".env.local");
  const secretPath = path.join(FUNCTIONS_DIR, ".secret.local");
  for (const filePath of [envPath, secretPath]) {
    const leftover = recoverLeftover(filePath);
    if (leftover.kind === "in_use") fail(`another npm run emulators (pid ${leftover.pid}) is running; it owns ${shown(filePath, REPO_ROOT)}`);
    if (leftover.kind === "restored") log(`put back ${shown(filePath, REPO_ROOT)} as an interrupted run (pid ${leftover.pid}) had found it`);
  }

  log("building the functions (npm run build -w functions)");
  const build = spawnSync("npm", ["run", "build", "-w", "functions"], { cwd: REPO_ROOT, stdio: "inherit" });
  if (build.status !== 0) fail("the functions did not build");

  const assemblyai = await FakeAssemblyAI.start();
  const openai = await FakeOpenAI.start();
  const owned: OwnedDotfile[] = [];
  const cleanUp = () => {
    for (const file of owned) file.restore();
  };
  // Whatever ends this process, functions/ is put back.
  process.on("exit", cleanUp);
  owned.push(
    takeOver(
      envPath,
      dotenv({
        ...paramsNotSetElsewhere(),
        ...LOCAL_TUNABLES,
        ASSEMBLYAI_BASE_URL: assemblyai.baseUrl,
        OPENAI_BASE_URL: openai.baseUrl,
      }),
    ),
    takeOver(secretPath, dotenv(FAKE_PROVIDER_SECRETS), { mode: 0o600 }),
  );
  log(`fake AssemblyAI at ${assemblyai.baseUrl}, fake OpenAI at ${openai.baseUrl} (keys and URLs in functions/.env.local and functions/.secret.local until exit)`);

  const child = spawn(process.execPath, [FIREBASE_CLI, "emulators:start", "--project", PROJECT_ID, ...cliArguments], {
    cwd: REPO_ROOT,
    // A group of its own: Ctrl-C reaches this process only, which passes it on once, so the CLI
    // makes its clean shutdown (a second signal would make it stop at once).
    detached: true,
    // No terminal on stdin: the CLI then never waits for an answer to a prompt.
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    });
  }

  const ports = emulatorPorts();
  const functionsOrigin = `http://127.0.0.1:${ports.functions}`;
  const stopScheduler = startLocalScheduler(checkerEverySeconds, { functionsOrigin, projectId: PROJECT_ID, name: "checkPendingTranscripts" }, (region) => {
    log(`UI http://127.0.0.1:${ports.ui} · api ${functionsOrigin}/${PROJECT_ID}/${region}/api`);
    log("try it: npm run stub -- upload test/fixtures/visit-en.m4a   (Ctrl-C here stops the emulators)");
  });

  const exitCode = await new Promise<number>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
    child.once("error", (error) => {
      console.error(`emulators: could not start the Firebase CLI: ${error.message}`);
      resolve(1);
    });
  });
  stopScheduler();
  await assemblyai.close();
  await openai.close();
  cleanUp();
  process.exit(exitCode);
}

/**
 * Stands in for Cloud Scheduler, which the emulators do not have: runs the scheduled checker
 * every `everySeconds` (production: every minute) once the functions are loaded. Without it an
 * uploaded visit would wait in `transcribing` forever.
 */
function startLocalScheduler(
  everySeconds: number,
  target: ScheduledFunctionTarget,
  onFirstRun: (region: string) => void,
): () => void {
  if (everySeconds === 0) {
    log("the scheduled checker will not run (--checker-every=0): visits stop at transcribing");
    onFirstRun(defaultRegion());
    return () => {};
  }
  let stopped = false;
  let ranOnce = false;
  let lastProblem = "";
  const tick = async () => {
    if (stopped) return;
    try {
      const run = await runScheduledFunction(target);
      if (run.status === 200 && !ranOnce) {
        ranOnce = true;
        log(`running ${target.name} every ${everySeconds} s, as Cloud Scheduler would (--checker-every=<seconds> to change, 0 to stop)`);
        onFirstRun(run.region);
      }
      const problem = run.status === 200 ? "" : `${target.name} answered ${run.status} ${run.body.slice(0, 200)}`;
      if (problem && problem !== lastProblem) log(problem);
      lastProblem = problem;
    } catch (error) {
      // Not listening yet, or the functions are still loading: say nothing until it has run once.
      const problem = error instanceof Error ? error.message : String(error);
      if (ranOnce && problem !== lastProblem) log(`could not run ${target.name}: ${problem}`);
      lastProblem = problem;
    }
    if (!stopped) timer = setTimeout(() => void tick(), (ranOnce ? everySeconds : 2) * 1000);
  };
  let timer = setTimeout(() => void tick(), 2000);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

await main();
