#!/usr/bin/env node
// functions/ is deployed on its own: Cloud Build installs it from functions/package-lock.json.
// That lockfile is generated from functions/package.json alone (outside the workspace).
//   node .ci/functions-lock.mjs --write   refresh it after changing functions' dependencies
//   node .ci/functions-lock.mjs --check   fail if it is out of step (CI)
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lockPath = path.join(root, "functions", "package-lock.json");
const mode = process.argv[2];
if (mode !== "--write" && mode !== "--check") {
  console.error("usage: node .ci/functions-lock.mjs --write|--check");
  process.exit(2);
}

const work = mkdtempSync(path.join(tmpdir(), "functions-lock-"));
try {
  copyFileSync(path.join(root, "functions", "package.json"), path.join(work, "package.json"));
  try {
    copyFileSync(lockPath, path.join(work, "package-lock.json"));
  } catch {
    // No lockfile yet: --write creates it, --check reports it missing below.
  }
  execFileSync("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: work,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const fresh = readFileSync(path.join(work, "package-lock.json"), "utf8");
  if (mode === "--write") {
    writeFileSync(lockPath, fresh);
    console.log(`wrote ${path.relative(root, lockPath)}`);
  } else {
    let current = "";
    try {
      current = readFileSync(lockPath, "utf8");
    } catch {
      // reported below
    }
    if (current !== fresh) {
      console.error("functions/package-lock.json is out of step with functions/package.json: run `npm run lock:functions`.");
      process.exit(1);
    }
    console.log("functions/package-lock.json is in step with functions/package.json");
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
