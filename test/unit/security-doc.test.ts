// docs/security.md's table of hostile inputs must stay true: at least 30 rows, and every test a row
// names must exist — its file, and its describe chain and test name as the string literals of the
// describe()/it()/test() calls that declare them (an it.each/describe.each test by its template;
// skipped and todo tests do not count). The files are parsed with the TypeScript compiler, so a
// name in a comment or in some other string does not count either.

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DOC = "docs/security.md";
const MIN_ROWS = 30;
const SEPARATOR = " › ";

interface TestReference {
  file: string;
  /** The describe names, outermost first, then the test name. */
  names: string[];
}

interface Row {
  input: string;
  happens: string;
  tests: TestReference[];
}

/** The rows of the table under `## Hostile inputs` (header `| input | what happens | test |`). */
function hostileInputRows(markdown: string): Row[] {
  const lines = markdown.split("\n");
  const section = lines.findIndex((line) => /^## Hostile inputs\s*$/.test(line));
  if (section < 0) throw new Error(`${DOC} has no "## Hostile inputs" section`);
  const header = lines.findIndex((line, index) => index > section && /^\|\s*input\s*\|\s*what happens\s*\|\s*test\s*\|\s*$/.test(line));
  if (header < 0) throw new Error(`${DOC} has no "| input | what happens | test |" table under "## Hostile inputs"`);
  const rows: Row[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    const cells = splitCells(line);
    if (cells.length !== 3) throw new Error(`${DOC}: a row without exactly 3 cells: ${line.slice(0, 120)}`);
    const [input = "", happens = "", tests = ""] = cells;
    rows.push({ input, happens, tests: tests.split(/<br\s*\/?>/).map((cell) => parseReference(cell.trim())).filter((ref) => ref.file !== "") });
  }
  return rows;
}

/** Cells of a Markdown table row; `\|` is a literal bar. */
function splitCells(line: string): string[] {
  const cells = line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/);
  return cells.map((cell) => cell.replaceAll("\\|", "|").trim());
}

function parseReference(text: string): TestReference {
  const [file = "", ...names] = text.split(SEPARATOR).map((part) => part.trim());
  return { file, names };
}

type CallKind = "describe" | "test" | "skipped" | null;

const DECLARERS: Record<string, "describe" | "test"> = { describe: "describe", suite: "describe", it: "test", test: "test" };
const RUNNING_MODIFIERS = new Set(["only", "concurrent", "sequential", "shuffle"]);
const SKIPPING_MODIFIERS = new Set(["skip", "todo", "skipIf", "fails"]);

/** What a callee declares: `it`, a focused or skipped variant of it, or `it.each(rows)`. */
function kindOf(callee: ts.Expression): CallKind {
  if (ts.isIdentifier(callee)) return DECLARERS[callee.text] ?? null;
  if (ts.isPropertyAccessExpression(callee)) {
    const base = kindOf(callee.expression);
    if (base === null || base === "skipped") return base;
    if (SKIPPING_MODIFIERS.has(callee.name.text)) return "skipped";
    return RUNNING_MODIFIERS.has(callee.name.text) ? base : null;
  }
  // it.each(rows)("name", fn), describe.for(cases)("name", fn)
  if (ts.isCallExpression(callee) && ts.isPropertyAccessExpression(callee.expression)) {
    const { name, expression } = callee.expression;
    if (name.text === "each" || name.text === "for") return kindOf(expression);
    if (name.text === "skipIf") return kindOf(expression) === null ? null : "skipped";
  }
  return null;
}

function literalText(node: ts.Node | undefined): string | null {
  return node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : null;
}

/** Every test a source file declares (and does not skip), as its describe chain plus its name. */
export function declaredTests(source: string, fileName = "test.ts"): Set<string> {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const declared = new Set<string>();
  const visit = (node: ts.Node, chain: readonly string[]): void => {
    if (ts.isCallExpression(node)) {
      const kind = kindOf(node.expression);
      const name = literalText(node.arguments[0]);
      if (kind === "skipped") return;
      if (kind === "test" && name !== null) {
        declared.add([...chain, name].join(SEPARATOR));
        return;
      }
      if (kind === "describe" && name !== null) {
        for (const argument of node.arguments.slice(1)) visit(argument, [...chain, name]);
        return;
      }
    }
    ts.forEachChild(node, (child) => visit(child, chain));
  };
  visit(file, []);
  return declared;
}

/** What is wrong with the table; empty when it is right. */
function tableProblems(markdown: string, readSource: (file: string) => string | null): string[] {
  const rows = hostileInputRows(markdown);
  const problems: string[] = [];
  if (rows.length < MIN_ROWS) problems.push(`only ${rows.length} rows; at least ${MIN_ROWS} are required`);
  const cache = new Map<string, Set<string> | null>();
  rows.forEach((row, index) => {
    const where = `row ${index + 1} (${row.input.slice(0, 50)})`;
    if (row.input === "" || row.happens === "") problems.push(`${where}: an empty cell`);
    if (row.tests.length === 0) problems.push(`${where}: names no test`);
    for (const ref of row.tests) {
      if (!cache.has(ref.file)) {
        const source = readSource(ref.file);
        cache.set(ref.file, source === null ? null : declaredTests(source, ref.file));
      }
      const declared = cache.get(ref.file);
      if (declared === null || declared === undefined) problems.push(`${where}: no file ${ref.file}`);
      else if (ref.names.length === 0) problems.push(`${where}: ${ref.file} names no test`);
      else if (!declared.has(ref.names.join(SEPARATOR))) problems.push(`${where}: ${ref.file} declares no test ${JSON.stringify(ref.names.join(SEPARATOR))}`);
    }
  });
  return problems;
}

function readRepoFile(file: string): string | null {
  const absolute = path.resolve(ROOT, file);
  if (!absolute.startsWith(`${ROOT}${path.sep}`) || !existsSync(absolute)) return null;
  return readFileSync(absolute, "utf8");
}

const doc = readFileSync(path.join(ROOT, DOC), "utf8");

describe("docs/security.md", () => {
  it(`has at least ${MIN_ROWS} hostile inputs, each naming a test`, () => {
    const rows = hostileInputRows(doc);
    expect(rows.length).toBeGreaterThanOrEqual(MIN_ROWS);
    for (const row of rows) expect([row.input, row.tests.length > 0]).toEqual([row.input, true]);
  });

  it("names only tests that exist: the file, its describe chain and the test name (an it.each test by its template)", () => {
    expect(tableProblems(doc, readRepoFile)).toEqual([]);
  });

  it("notices a misspelled test name, a wrong describe, a missing file and a short table", () => {
    const rows = hostileInputRows(doc);
    const first = rows[0]!.tests[0]!;
    const firstName = first.names.at(-1)!;
    const misspelled = doc.replace(firstName, `${firstName.slice(0, -3)}xyz`);
    expect(tableProblems(misspelled, readRepoFile)).toEqual([
      expect.stringMatching(new RegExp(`^row 1 .*: ${first.file.replaceAll(".", "\\.")} declares no test `)),
    ]);

    const wrongDescribe = doc.replace(`${first.file}${SEPARATOR}${first.names[0]!}${SEPARATOR}`, `${first.file}${SEPARATOR}${first.names[0]!}s${SEPARATOR}`);
    expect(tableProblems(wrongDescribe, readRepoFile)).toHaveLength(1);

    const missingFile = doc.replace(`${first.file}${SEPARATOR}`, `${first.file.replace(".test.ts", "-gone.test.ts")}${SEPARATOR}`);
    expect(tableProblems(missingFile, readRepoFile)).toEqual([expect.stringMatching(/^row 1 .*: no file test\/.*-gone\.test\.ts$/)]);

    const lines = doc.split("\n");
    const firstRow = lines.findIndex((line) => line.startsWith("| upload: "));
    const short = [...lines.slice(0, firstRow + MIN_ROWS - 1), "", ...lines.slice(firstRow + rows.length)].join("\n");
    expect(hostileInputRows(short)).toHaveLength(MIN_ROWS - 1);
    expect(tableProblems(short, readRepoFile)).toEqual([`only ${MIN_ROWS - 1} rows; at least ${MIN_ROWS} are required`]);
  });
});

describe("declaredTests", () => {
  const source = `
    describe("outer", () => {
      it("plain", () => {});
      it.each([[1], [2]])("templated %i", () => {});
      test.concurrent('quoted "name"', () => {});
      describe("inner", () => {
        it(\`template literal\`, () => {});
        it(\`with \${"substitution"}\`, () => {});
      });
      it.${"skip"}("skipped", () => {});
      it.${"todo"}("todo");
      describe.${"skip"}("skipped block", () => { it("hidden", () => {}); });
      it.${"skipIf"}(true)("conditional", () => {});
      // it("in a comment", () => {});
      const label = "a string, not a test";
    });
    it("top level", () => {});
  `;

  it("reads describe chains and names, including it.each templates; not skipped tests, comments or other strings", () => {
    expect([...declaredTests(source)].sort()).toEqual(
      ["outer › plain", "outer › templated %i", 'outer › quoted "name"', "outer › inner › template literal", "top level"].sort(),
    );
  });
});
