// `npm run test:functions-emulator`: the built functions under the real Functions, Auth and Cloud Tasks emulators, with the embedded Firestore.

import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // The repository root, whichever folder vitest was started from.
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    // Tier files end in .tier.ts so the default `npm test` (test/**/*.test.ts) never picks them up.
    include: ["test/emulators/functions-emulator.tier.ts"],
    globalSetup: ["test/emulators/build-functions.ts"],
    pool: "forks",
    testTimeout: 90_000,
    // Starting the Auth emulator alone takes ~13 s here.
    hookTimeout: 150_000,
    silent: "passed-only",
    env: {
      GCLOUD_PROJECT: "demo-visit-pipeline",
      FIREBASE_CONFIG: JSON.stringify({ projectId: "demo-visit-pipeline", storageBucket: "demo-visit-pipeline.appspot.com" }),
      // Otherwise the Google client probes the GCE metadata server even when pointed at emulators.
      METADATA_SERVER_DETECTION: "none",
    },
  },
});
