// The ops commands stay out of the deployed functions' import graph: nothing reachable from
// functions/src/index.ts imports functions/src/ops/ (they load provider SDKs lazily, print, exit).

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { REPO_ROOT } from "./ops-harness.js";

const SRC = path.join(REPO_ROOT, "functions/src");

function localImports(file: string): string[] {
  const source = readFileSync(file, "utf8");
  const specifiers = [...source.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g)].map((match) => match[1] ?? match[2] ?? "");
  return specifiers.map((specifier) => path.resolve(path.dirname(file), specifier.replace(/\.js$/, ".ts"))).filter((resolved) => existsSync(resolved));
}

it("nothing the deployed functions import reaches functions/src/ops", () => {
  const seen = new Set<string>();
  const queue = [path.join(SRC, "index.ts")];
  while (queue.length > 0) {
    const file = queue.pop() ?? "";
    if (seen.has(file)) continue;
    seen.add(file);
    queue.push(...localImports(file));
  }
  expect(seen.size).toBeGreaterThan(30);
  expect(seen.has(path.join(SRC, "stages/retry-visit.ts"))).toBe(true);
  expect([...seen].filter((file) => file.startsWith(path.join(SRC, "ops") + path.sep))).toEqual([]);
  // And the walk does find ops modules when it starts from the CLI.
  expect(localImports(path.join(SRC, "ops/cli.ts")).some((file) => file.endsWith("ops/stuck.ts"))).toBe(true);
});
