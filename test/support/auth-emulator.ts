// The real Firebase Auth emulator (firebase-tools) for tests: real ID tokens, real revocation.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getAuth } from "firebase-admin/auth";
import { adminApp } from "../../functions/src/store/db.js";
import { freePort } from "./embedded-firestore.js";
import { signalGroup } from "./processes.js";

export interface AuthEmulator {
  /** host:port, as in FIREBASE_AUTH_EMULATOR_HOST. */
  host: string;
  /** A real ID token for `uid` (the user is created, or updated, first). */
  createUserToken(uid: string, email?: string): Promise<string>;
  /** Revokes every token issued to `uid` so far. */
  revokeTokens(uid: string): Promise<void>;
  /** Stops the emulator's whole process group and removes its directory. */
  stop(): Promise<void>;
}

export interface AuthEmulatorOptions {
  projectId?: string;
  /** How long to wait for the emulator to answer (it takes ~13 s here). */
  startTimeoutMs?: number;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PASSWORD = "test-password-1234";
const OUTPUT_TAIL_CHARS = 20_000;

/** Ports are picked before the CLI binds them; another process can take one in between. */
const START_ATTEMPTS = 3;

export async function startAuthEmulator(options: AuthEmulatorOptions = {}): Promise<AuthEmulator> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(options);
    } catch (error) {
      const portTaken = error instanceof Error && /port taken|EADDRINUSE/i.test(error.message);
      if (!portTaken || attempt >= START_ATTEMPTS) throw error;
    }
  }
}

async function startOnce(options: AuthEmulatorOptions): Promise<AuthEmulator> {
  const projectId = options.projectId ?? "demo-visit-pipeline";
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  // firebase-admin decides per call whether it talks to the emulator; set it before any call.
  process.env.FIREBASE_AUTH_EMULATOR_HOST = host;

  // Its own firebase.json (free port, no UI) and its own TMPDIR, so the hub's locator file
  // (`$TMPDIR/hub-<project>.json`) cannot collide with another emulator on this machine.
  const workDir = mkdtempSync(path.join(tmpdir(), "auth-emulator-"));
  // The hub and logging ports too: several test files start an Auth emulator at once, and the
  // CLI's fixed defaults (4400, 4500) would collide.
  const [hubPort, loggingPort] = [await freePort(), await freePort()];
  writeFileSync(
    path.join(workDir, "firebase.json"),
    JSON.stringify({
      emulators: {
        auth: { host: "127.0.0.1", port },
        hub: { host: "127.0.0.1", port: hubPort },
        logging: { host: "127.0.0.1", port: loggingPort },
        ui: { enabled: false },
        singleProjectMode: true,
      },
    }),
  );
  const cli = realpathSync(path.join(REPO_ROOT, "node_modules/.bin/firebase"));
  const child = spawn(process.execPath, [cli, "emulators:start", "--only", "auth", "--project", projectId, "--non-interactive"], {
    cwd: workDir,
    // Its own process group, so stop() (or this process exiting) can end everything it started.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: childEnv(workDir),
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // Last resort if a test run dies without calling stop(): no emulator may outlive it.
  const killOnExit = () => {
    killGroup(child, "SIGKILL");
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once("exit", killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child, "SIGTERM");
      const graceful = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!graceful) killGroup(child, "SIGKILL");
    }
    // Anything the CLI left in its group goes too.
    killGroup(child, "SIGKILL");
    await Promise.race([exited, sleep(2_000)]);
    rmSync(workDir, { recursive: true, force: true });
  };

  try {
    await waitUntilAnswering(host, options.startTimeoutMs ?? 60_000, () => child.exitCode ?? child.signalCode);
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- firebase emulators:start output ---\n${output}`);
  }

  const lastIssuedMs = new Map<string, number>();
  const auth = () => getAuth(adminApp());

  return {
    host,
    async createUserToken(uid, email = `${uid.replace(/[^A-Za-z0-9._-]/g, "_")}@users.test`) {
      try {
        await auth().createUser({ uid, email, password: PASSWORD });
      } catch (error) {
        if (errorCode(error) !== "auth/uid-already-exists") throw error;
        await auth().updateUser(uid, { email, password: PASSWORD });
      }
      const response = await fetch(
        `http://${host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=fake-api-key`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ email, password: PASSWORD, returnSecureToken: true }),
        },
      );
      const body = (await response.json()) as { idToken?: string; error?: { message?: string } };
      if (!response.ok || !body.idToken) {
        throw new Error(`signInWithPassword for ${uid} failed: ${response.status} ${body.error?.message ?? ""}`);
      }
      lastIssuedMs.set(uid, Date.now());
      return body.idToken;
    },
    async revokeTokens(uid) {
      // Revocation compares whole seconds (auth_time < validSince): a token issued in the same
      // second as the revocation would stay valid, so let that second pass first.
      const issuedMs = lastIssuedMs.get(uid);
      if (issuedMs !== undefined) {
        const waitMs = (Math.floor(issuedMs / 1000) + 1) * 1000 - Date.now() + 50;
        if (waitMs > 0) await sleep(waitMs);
      }
      await auth().revokeRefreshTokens(uid);
    },
    stop,
  };
}

function childEnv(workDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: workDir };
  // The CLI must not pick up the test process's emulator wiring or its fake service account.
  for (const name of ["FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"]) {
    delete env[name];
  }
  return env;
}

async function waitUntilAnswering(host: string, timeoutMs: number, exitStatus: () => number | string | null): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (Date.now() < giveUpAt) {
    const status = exitStatus();
    if (status !== null) throw new Error(`the Auth emulator exited (${status}) before it answered on ${host}`);
    try {
      const response = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(200);
  }
  throw new Error(`the Auth emulator did not answer on ${host} within ${timeoutMs} ms`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid !== undefined) signalGroup(child.pid, signal);
}

function errorCode(error: unknown): string {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
