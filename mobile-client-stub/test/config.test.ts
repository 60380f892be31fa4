import { describe, expect, it } from "vitest";
import { loadStubConfig, StubConfigError } from "../src/config.js";

const REAL = {
  STUB_USE_EMULATORS: "false",
  STUB_PROJECT_ID: "acme-visits",
  STUB_API_KEY: "AIza-test",
  STUB_STORAGE_BUCKET: "acme-visits.firebasestorage.app",
  STUB_EMAIL: "tester@acme.test",
  STUB_PASSWORD: "secret",
};

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadStubConfig(env);
  } catch (error) {
    if (error instanceof StubConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a StubConfigError");
}

describe("loadStubConfig", () => {
  it("defaults to the emulator suite of firebase.json with the demo project", () => {
    expect(loadStubConfig({})).toEqual({
      projectId: "demo-visit-pipeline",
      region: "us-central1",
      apiBaseUrl: "http://127.0.0.1:5001/demo-visit-pipeline/us-central1/api",
      emulators: { host: "127.0.0.1", authPort: 9099, firestorePort: 8080, storagePort: 9199, functionsPort: 5001 },
      firebase: {
        projectId: "demo-visit-pipeline",
        apiKey: "demo-api-key",
        authDomain: "demo-visit-pipeline.firebaseapp.com",
        storageBucket: "demo-visit-pipeline.appspot.com",
      },
      signIn: { method: "email", email: "stub-user@example.com", password: "stub-user-password", createIfMissing: true },
    });
  });

  it("treats blank variables as unset", () => {
    expect(loadStubConfig({ STUB_PROJECT_ID: " ", STUB_USE_EMULATORS: "" }).projectId).toBe("demo-visit-pipeline");
  });

  it("builds the emulator API URL from host, port, project and region", () => {
    const config = loadStubConfig({ STUB_EMULATOR_HOST: "localhost", STUB_FUNCTIONS_EMULATOR_PORT: "5002", STUB_REGION: "europe-west1" });
    expect(config.apiBaseUrl).toBe("http://localhost:5002/demo-visit-pipeline/europe-west1/api");
  });

  it("uses an explicit API base URL without its trailing slash", () => {
    expect(loadStubConfig({ STUB_API_BASE_URL: "http://127.0.0.1:8000/api/" }).apiBaseUrl).toBe("http://127.0.0.1:8000/api");
  });

  it("targets a real project's region-specific function URL, without emulators", () => {
    const config = loadStubConfig({ ...REAL, STUB_REGION: "europe-west1", STUB_AUTH_DOMAIN: "login.acme.test" });
    expect(config.emulators).toBeNull();
    expect(config.apiBaseUrl).toBe("https://europe-west1-acme-visits.cloudfunctions.net/api");
    expect(config.firebase).toEqual({
      projectId: "acme-visits",
      apiKey: "AIza-test",
      authDomain: "login.acme.test",
      storageBucket: "acme-visits.firebasestorage.app",
    });
    // Accounts are never created on a real project.
    expect(config.signIn).toEqual({ method: "email", email: "tester@acme.test", password: "secret", createIfMissing: false });
  });

  it("accepts anonymous sign-in anywhere", () => {
    expect(loadStubConfig({ STUB_SIGN_IN: "anonymous" }).signIn).toEqual({ method: "anonymous" });
    const { STUB_EMAIL: _email, STUB_PASSWORD: _password, ...realWithoutAccount } = REAL;
    expect(loadStubConfig({ ...realWithoutAccount, STUB_SIGN_IN: "anonymous" }).signIn).toEqual({ method: "anonymous" });
  });

  it("refuses a demo- project outside the emulators, so a demo setup never reaches production", () => {
    expect(problemsOf({ ...REAL, STUB_PROJECT_ID: "demo-visit-pipeline" })).toEqual([
      expect.stringContaining("STUB_PROJECT_ID=\"demo-visit-pipeline\": demo- projects exist only in the emulators"),
    ]);
  });

  it("lists every missing real-project setting at once", () => {
    expect(problemsOf({ STUB_USE_EMULATORS: "no", STUB_PROJECT_ID: "acme-visits", STUB_API_BASE_URL: "http://api.acme.test" })).toEqual([
      expect.stringMatching(/^STUB_API_KEY: required/),
      expect.stringMatching(/^STUB_STORAGE_BUCKET: required/),
      "STUB_API_BASE_URL: must be an https URL for a real project",
      expect.stringMatching(/^STUB_EMAIL and STUB_PASSWORD: required/),
    ]);
  });

  it("names each malformed variable with its value and what is expected", () => {
    expect(
      problemsOf({
        STUB_PROJECT_ID: "Bad_Project",
        STUB_USE_EMULATORS: "maybe",
        STUB_REGION: "central",
        STUB_AUTH_EMULATOR_PORT: "99999",
        STUB_FIRESTORE_EMULATOR_PORT: "abc",
        STUB_API_BASE_URL: "ftp://x",
        STUB_SIGN_IN: "google",
        STUB_EMAIL: "not-an-email",
      }),
    ).toEqual([
      'STUB_PROJECT_ID="Bad_Project": must be a Firebase project id (6–30 of a–z, 0–9, -)',
      'STUB_USE_EMULATORS="maybe": must be true or false',
      'STUB_REGION="central": must be a region name such as us-central1',
      'STUB_AUTH_EMULATOR_PORT="99999": must be 1–65535',
      'STUB_FIRESTORE_EMULATOR_PORT="abc": must be a port number',
      'STUB_API_BASE_URL="ftp://x": must be an http(s) URL',
      'STUB_SIGN_IN="google": must be "email" or "anonymous"',
      'STUB_EMAIL="not-an-email": must be an email address',
    ]);
  });

  it("puts the problems in the error message", () => {
    expect(() => loadStubConfig({ STUB_REGION: "x" })).toThrow(/Invalid stub configuration:\n {2}- STUB_REGION="x"/);
  });
});
