// Docs that are contracts must say what the code does.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { functionsRegion, tunables } from "../../functions/src/config.js";
import { ERROR_CODES } from "../../functions/src/visit/errors.js";
import { VISIT_STATUSES } from "../../functions/src/visit/status.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (file: string) => readFileSync(path.join(root, file), "utf8");

describe("docs/errors.md", () => {
  const rows = new Map(
    [...read("docs/errors.md").matchAll(/^\| `([a-z_]+)` \| (yes|no) \| (yes|no) \|/gm)].map((m) => [
      m[1],
      { transient: m[2] === "yes", retryable: m[3] === "yes" },
    ]),
  );

  it("lists every error code with both retry flags, and no others", () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      expect([code, rows.get(code)]).toEqual([code, { transient: spec.transient, retryable: spec.retryable }]);
    }
  });
});

/** The rows `| \`NAME\` | default | meaning |` of the README's params table, as name → default cell. */
function paramsTable(readme: string): Map<string, string> {
  const section = /^## Configuration and secrets$([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? "";
  const table = new Map<string, string>();
  for (const [, name = "", defaultCell = ""] of section.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]*?) \| [^|]* \|$/gm)) {
    if (table.has(name)) throw new Error(`the params table lists ${name} twice`);
    table.set(name, defaultCell);
  }
  return table;
}

// Every param config.ts declares, with the default it declares: the tunables, and FUNCTIONS_REGION,
// which is declared apart from them (deploy-time only) but is in the same table.
function declaredParams(): Map<string, string> {
  const region = functionsRegion.options.default;
  if (typeof region !== "string") throw new Error("FUNCTIONS_REGION has no literal default");
  const declared = new Map([[functionsRegion.name, region]]);
  for (const tunable of Object.values(tunables)) declared.set(tunable.param.name, String(tunable.defaultValue));
  return declared;
}

/** How the README's params table differs from config.ts; empty when they agree. */
function paramsTableProblems(readme: string): string[] {
  const table = paramsTable(readme);
  const declared = declaredParams();
  const problems: string[] = [];
  for (const [name, defaultValue] of declared) {
    const cell = table.get(name);
    if (cell === undefined) problems.push(`${name}: no row`);
    else if (cell !== defaultValue) problems.push(`${name}: default ${JSON.stringify(cell)}, config.ts says ${JSON.stringify(defaultValue)}`);
  }
  for (const name of table.keys()) if (!declared.has(name)) problems.push(`${name}: not a param`);
  return problems;
}

describe("README", () => {
  const readme = read("README.md");

  it("documents every param with its exact default, and no other param", () => {
    expect(paramsTableProblems(readme)).toEqual([]);
  });

  it("notices a wrong default, a missing row and an unknown param in the params table", () => {
    const wrongDefault = readme.replace("| `SUMMARY_MAX_ATTEMPTS` | 3 |", "| `SUMMARY_MAX_ATTEMPTS` | 30 |");
    expect(paramsTableProblems(wrongDefault)).toEqual(['SUMMARY_MAX_ATTEMPTS: default "30", config.ts says "3"']);
    const missingRow = readme.replace(/^\| `FUNCTIONS_REGION` \|.*\n/m, "");
    expect(paramsTableProblems(missingRow)).toEqual(["FUNCTIONS_REGION: no row"]);
    const header = "| param | default | meaning |\n|---|---|---|\n";
    const unknownParam = readme.replace(header, `${header}| \`NOT_A_PARAM\` | 1 | Nothing. |\n`);
    expect(paramsTableProblems(unknownParam)).toEqual(["NOT_A_PARAM: not a param"]);
  });

  it("names every status", () => {
    for (const status of VISIT_STATUSES) expect(readme).toContain(status);
  });
});
