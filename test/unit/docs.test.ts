// Docs that are contracts must say what the code does.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { tunables } from "../../functions/src/config.js";
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

describe("README", () => {
  const readme = read("README.md");

  it("documents every tunable param with its default", () => {
    for (const tunable of Object.values(tunables)) {
      expect(readme).toContain(`\`${tunable.param.name}\``);
      expect(readme).toContain(String(tunable.defaultValue));
    }
  });

  it("names every status", () => {
    for (const status of VISIT_STATUSES) expect(readme).toContain(status);
  });
});
