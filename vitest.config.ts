import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "mobile-client-stub/test/**/*.test.ts"],
    // Each test file runs in its own process with its own embedded Firestore and fakes.
    pool: "forks",
    // Three at a time on the 2-core machines CI runs on (vitest's default is cores - 1): the files
    // spend part of their time waiting on local servers and timers, and the suite takes about
    // 3 minutes instead of 6 with one.
    maxWorkers: 3,
    // Fails any test file whose function logs hold transcript text, URLs, tokens or object names.
    setupFiles: ["test/setup/phi-log-scan.ts"],
    testTimeout: 60_000,
    // The functions log every step as JSON; show it only for tests that fail.
    silent: "passed-only",
    hookTimeout: 60_000,
    env: {
      // onObjectFinalized needs a default bucket at import time (ESM imports are hoisted, so
      // setting it inside a test file would be too late).
      FIREBASE_CONFIG: JSON.stringify({ projectId: "demo-visit-pipeline", storageBucket: "demo-visit-pipeline.appspot.com" }),
      GCLOUD_PROJECT: "demo-visit-pipeline",
      // Otherwise the Google client probes the GCE metadata server even when pointed at emulators.
      METADATA_SERVER_DETECTION: "none",
    },
  },
});
