// `npm run test:emulators` (through run-full-suite.ts, which checks for Java 21 first): the full emulator suite end to end, and the security rules.

import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // The repository root, whichever folder vitest was started from.
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    // Tier files end in .tier.ts so the default `npm test` (test/**/*.test.ts) never picks them up.
    include: ["test/emulators/full-suite.tier.ts", "test/emulators/rules.tier.ts"],
    globalSetup: ["test/emulators/build-functions.ts"],
    pool: "forks",
    // One suite at a time: on a machine's first run both would download the same Java emulators
    // into ~/.cache/firebase/emulators at once.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    silent: "passed-only",
    env: {
      GCLOUD_PROJECT: "demo-visit-pipeline",
      FIREBASE_CONFIG: JSON.stringify({ projectId: "demo-visit-pipeline", storageBucket: "demo-visit-pipeline.appspot.com" }),
      // Otherwise the Google client probes the GCE metadata server even when pointed at emulators.
      METADATA_SERVER_DETECTION: "none",
    },
  },
});
