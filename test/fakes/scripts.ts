// Loads visit scripts (test/fixtures/*.script.txt: one turn per line, "D|text" clinician, "P|text" patient) into turns.
import { readFileSync } from "node:fs";

export type ScriptRole = "clinician" | "patient";

export interface ScriptTurn {
  speaker: ScriptRole;
  text: string;
}

const ROLE_BY_PREFIX: Readonly<Record<string, ScriptRole>> = { D: "clinician", P: "patient" };

const FIXTURES_DIR = new URL("../fixtures/", import.meta.url);

const cache = new Map<string, readonly ScriptTurn[]>();

/** Turns of `test/fixtures/<name>.script.txt`, e.g. loadVisitScript("visit-es"); read once per process. */
export function loadVisitScript(name: string): readonly ScriptTurn[] {
  let turns = cache.get(name);
  if (turns === undefined) {
    turns = parseVisitScript(readFileSync(new URL(`${name}.script.txt`, FIXTURES_DIR), "utf8"), name);
    cache.set(name, turns);
  }
  return turns;
}

/** Blank lines are skipped; anything else must be "D|text" or "P|text". */
export function parseVisitScript(source: string, sourceName = "script"): ScriptTurn[] {
  return source.split(/\r?\n/).flatMap((line, index) => {
    if (line.trim() === "") return [];
    return [parseTurn(line, `${sourceName}:${index + 1}`)];
  });
}

function parseTurn(line: string, where: string): ScriptTurn {
  const separator = line.indexOf("|");
  const speaker = ROLE_BY_PREFIX[line.slice(0, separator).trim()];
  const text = line.slice(separator + 1).trim();
  if (separator < 0 || speaker === undefined || text === "") {
    throw new Error(`${where}: expected "D|text" or "P|text", got ${JSON.stringify(line)}`);
  }
  return { speaker, text };
}
