// `npm run test:emulators`: the full-suite tier, or — where the Firebase emulators that need Java 21 cannot run — a clear "not run" and exit code 3, which never counts as passing.

import { spawnSync } from "node:child_process";
import path from "node:path";
import { REPO_ROOT, fullSuiteBlocker } from "./emulator-env.js";

/** Exit code meaning "this tier did not run": distinct from 0 (passed) and 1 (failed). */
const NOT_RUN_EXIT_CODE = 3;

const blocker = fullSuiteBlocker();
if (blocker !== null) {
  console.error(`not run: ${blocker}. This tier runs in CI (.github/workflows/ci.yml); here, npm run test:functions-emulator covers functions + auth + tasks.`);
  process.exit(NOT_RUN_EXIT_CODE);
}

const vitest = spawnSync(
  process.execPath,
  [path.join(REPO_ROOT, "node_modules/vitest/vitest.mjs"), "run", "--config", "test/emulators/vitest.emulators.config.ts", ...process.argv.slice(2)],
  { cwd: REPO_ROOT, stdio: "inherit" },
);
process.exit(vitest.status ?? 1);
