// vitest globalSetup of the emulator tiers: the Functions emulator runs the built functions (functions/lib), so build them first.

import { spawnSync } from "node:child_process";
import { REPO_ROOT } from "./emulator-env.js";

export default function buildFunctions(): void {
  const startedMs = Date.now();
  const build = spawnSync("npm", ["run", "build", "-w", "functions"], { cwd: REPO_ROOT, encoding: "utf8" });
  if (build.error || build.status !== 0) {
    throw new Error(`npm run build -w functions failed (${build.error?.message ?? `exit ${build.status}`}):\n${build.stdout}${build.stderr}`);
  }
  console.log(`functions built (functions/lib) in ${((Date.now() - startedMs) / 1000).toFixed(1)} s`);
}
