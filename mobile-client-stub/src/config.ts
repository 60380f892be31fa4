// Stub configuration from STUB_* environment variables, validated with zod; the emulators and a demo- project by default.

import { z } from "zod";
import type { SignInMethod } from "./sign-in.js";

export interface EmulatorSettings {
  host: string;
  authPort: number;
  firestorePort: number;
  storagePort: number;
  functionsPort: number;
}

/** What `initializeApp` needs. */
export interface FirebaseOptions {
  projectId: string;
  apiKey: string;
  authDomain: string;
  storageBucket: string;
}

export interface StubConfig {
  projectId: string;
  region: string;
  /** Base URL of the `api` function, without a trailing slash. */
  apiBaseUrl: string;
  /** Null when talking to a real project. */
  emulators: EmulatorSettings | null;
  firebase: FirebaseOptions;
  signIn: SignInMethod;
}

export class StubConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid stub configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "StubConfigError";
  }
}

// Each CLI run is a new process, so an anonymous user would be a new uid every time and could not
// watch or retry the visit it uploaded. The emulator default is a fixed test account instead,
// created on first use (the Auth emulator accepts any address).
const EMULATOR_TEST_EMAIL = "stub-user@example.com";
const EMULATOR_TEST_PASSWORD = "stub-user-password";

const port = (fallback: number) =>
  z.coerce
    .number({ error: "must be a port number" })
    .int("must be a port number")
    .min(1, "must be 1–65535")
    .max(65535, "must be 1–65535")
    .default(fallback);

const flag = (fallback: boolean) =>
  z
    .string()
    .toLowerCase()
    .pipe(z.enum(["true", "false", "1", "0", "yes", "no"], { error: "must be true or false" }))
    .transform((value) => value === "true" || value === "1" || value === "yes")
    .default(fallback);

// Defaults: project from .firebaserc, ports from firebase.json.
const EnvSchema = z.object({
  STUB_PROJECT_ID: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, "must be a Firebase project id (6–30 of a–z, 0–9, -)")
    .default("demo-visit-pipeline"),
  STUB_USE_EMULATORS: flag(true),
  STUB_REGION: z.string().regex(/^[a-z]+-[a-z]+\d+$/, "must be a region name such as us-central1").default("us-central1"),
  STUB_EMULATOR_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:]+\]$/, "must be a host name or IP address")
    .default("127.0.0.1"),
  STUB_AUTH_EMULATOR_PORT: port(9099),
  STUB_FIRESTORE_EMULATOR_PORT: port(8080),
  STUB_STORAGE_EMULATOR_PORT: port(9199),
  STUB_FUNCTIONS_EMULATOR_PORT: port(5001),
  STUB_API_BASE_URL: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
  STUB_API_KEY: z.string().optional(),
  STUB_AUTH_DOMAIN: z.string().optional(),
  STUB_STORAGE_BUCKET: z.string().optional(),
  STUB_SIGN_IN: z.enum(["email", "anonymous"], { error: 'must be "email" or "anonymous"' }).default("email"),
  STUB_EMAIL: z.email("must be an email address").optional(),
  STUB_PASSWORD: z.string().optional(),
});
type StubEnv = z.infer<typeof EnvSchema>;

/** Reads `process.env`-like input. Throws StubConfigError listing every problem. */
export function loadStubConfig(env: Record<string, string | undefined>): StubConfig {
  const input = withoutBlankValues(env);
  const parsed = EnvSchema.safeParse(input);
  if (!parsed.success) {
    throw new StubConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? "environment");
        const value = input[name];
        return `${name}${value === undefined ? "" : `=${JSON.stringify(value)}`}: ${issue.message}`;
      }),
    );
  }
  const settings = parsed.data;
  const problems = settings.STUB_USE_EMULATORS ? [] : realProjectProblems(settings);
  const signIn = signInMethod(settings, problems);
  if (problems.length > 0 || signIn === undefined) throw new StubConfigError(problems);

  const projectId = settings.STUB_PROJECT_ID;
  const region = settings.STUB_REGION;
  const emulators = settings.STUB_USE_EMULATORS
    ? {
        host: settings.STUB_EMULATOR_HOST,
        authPort: settings.STUB_AUTH_EMULATOR_PORT,
        firestorePort: settings.STUB_FIRESTORE_EMULATOR_PORT,
        storagePort: settings.STUB_STORAGE_EMULATOR_PORT,
        functionsPort: settings.STUB_FUNCTIONS_EMULATOR_PORT,
      }
    : null;
  const defaultApiBaseUrl = emulators
    ? `http://${emulators.host}:${emulators.functionsPort}/${projectId}/${region}/api`
    : `https://${region}-${projectId}.cloudfunctions.net/api`;
  return {
    projectId,
    region,
    apiBaseUrl: (settings.STUB_API_BASE_URL ?? defaultApiBaseUrl).replace(/\/+$/, ""),
    emulators,
    firebase: {
      projectId,
      // The emulators accept any API key; a real project needs its web app's key.
      apiKey: settings.STUB_API_KEY ?? "demo-api-key",
      authDomain: settings.STUB_AUTH_DOMAIN ?? `${projectId}.firebaseapp.com`,
      // The storage emulator's default bucket, which the upload trigger listens on.
      storageBucket: settings.STUB_STORAGE_BUCKET ?? `${projectId}.appspot.com`,
    },
    signIn,
  };
}

function realProjectProblems(settings: StubEnv): string[] {
  const problems: string[] = [];
  if (settings.STUB_PROJECT_ID.startsWith("demo-")) {
    problems.push(
      `STUB_PROJECT_ID=${JSON.stringify(settings.STUB_PROJECT_ID)}: demo- projects exist only in the emulators; name a real project or set STUB_USE_EMULATORS=true`,
    );
  }
  if (settings.STUB_API_KEY === undefined) problems.push("STUB_API_KEY: required for a real project (the web app's apiKey)");
  if (settings.STUB_STORAGE_BUCKET === undefined) {
    problems.push("STUB_STORAGE_BUCKET: required for a real project (e.g. <project>.firebasestorage.app)");
  }
  if (settings.STUB_API_BASE_URL !== undefined && !settings.STUB_API_BASE_URL.startsWith("https://")) {
    problems.push("STUB_API_BASE_URL: must be an https URL for a real project");
  }
  return problems;
}

function signInMethod(settings: StubEnv, problems: string[]): SignInMethod | undefined {
  if (settings.STUB_SIGN_IN === "anonymous") return { method: "anonymous" };
  const { STUB_EMAIL: email, STUB_PASSWORD: password } = settings;
  if (settings.STUB_USE_EMULATORS) {
    // Creating accounts on demand is for the emulator only; a real project's users sign up in the app.
    return { method: "email", email: email ?? EMULATOR_TEST_EMAIL, password: password ?? EMULATOR_TEST_PASSWORD, createIfMissing: true };
  }
  if (email === undefined || password === undefined) {
    problems.push("STUB_EMAIL and STUB_PASSWORD: required to sign in to a real project (or set STUB_SIGN_IN=anonymous)");
    return undefined;
  }
  return { method: "email", email, password, createIfMissing: false };
}

/** An empty variable means "not set", as in a shell `VAR= command`. */
function withoutBlankValues(env: Record<string, string | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== "") result[name] = value;
  }
  return result;
}
