// Vitest setup file (vitest.config.ts `setupFiles`): in every test file's process, captures every
// structured log line the functions emit and, after the file's last hook, fails the file if any
// of them holds transcript or summary text, a URL or signed-URL parameter, a JWT or an object
// name (test/support/phi-scan.ts). "Logs hold no PHI" is then checked over the whole run — the
// pipeline suites, the chaos run, the API tests — not only where a test thinks to look.
//
// Where: firebase-functions' logger writes each entry as one JSON line through the console
// methods it saved when it loaded (UNPATCHED_CONSOLE in lib/esm/logger/common.mjs). Those are
// wrapped here, so only the logger's lines are seen — not what test code prints — and whatever a
// test does with `installRuntimeHooks({ onLog })` or console spies changes nothing. A canary entry
// written through the public `firebase-functions/logger` module proves the wrapping is live; if
// firebase-functions' internals change, this file throws instead of silently scanning nothing.

import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll } from "vitest";
import { describeFindings, findPhi, knownPhiPhrases } from "../support/phi-scan.js";
import type { Finding } from "../support/phi-scan.js";

const CANARY_EVENT = "__phi_log_scan_canary__";
const CONSOLE_METHODS = ["debug", "info", "log", "warn", "error"] as const;
const MAX_REPORTED = 25;

interface ScanState {
  /** The JSON log lines with `severity` and `event` written while the current file runs. */
  lines: string[];
  canarySeen: boolean;
}

// On globalThis: if a worker ever ran several files, the logger module (and the wrapping) would
// be shared, and each file must start with its own lines.
const scope = globalThis as typeof globalThis & { __visitPipelinePhiLogScan?: ScanState };
const alreadyInstalled = scope.__visitPipelinePhiLogScan !== undefined;
const state: ScanState = (scope.__visitPipelinePhiLogScan ??= { lines: [], canarySeen: false });
state.lines = [];

if (!alreadyInstalled) await wrapLoggerConsole(state);

afterAll(() => {
  const lines = state.lines;
  if (lines.length === 0) return;
  const findings = findPhi(lines.join("\n"), { phrases: knownPhiPhrases() });
  if (findings.length === 0) return;
  throw new Error(
    `PHI log scan: ${findings.length} finding(s) in the ${lines.length} log lines the functions emitted during this file` +
      ` (rules: test/support/phi-scan.ts):\n${summarize(findings, lines)}`,
  );
});

async function wrapLoggerConsole(scan: ScanState): Promise<void> {
  const require = createRequire(import.meta.url);
  // lib/logger/index.js (the CommonJS build) → lib/esm/logger/common.mjs, the module the ESM
  // logger (the one functions/src imports) writes through.
  const commonPath = path.join(path.dirname(require.resolve("firebase-functions/logger")), "../esm/logger/common.mjs");
  const common = (await import(pathToFileURL(commonPath).href)) as { UNPATCHED_CONSOLE?: Record<string, unknown> };
  const unpatched = common.UNPATCHED_CONSOLE;
  if (!unpatched || CONSOLE_METHODS.some((method) => typeof unpatched[method] !== "function")) {
    throw new Error(`phi-log-scan: firebase-functions' logger no longer writes through UNPATCHED_CONSOLE (${commonPath}); update this setup file`);
  }
  for (const method of CONSOLE_METHODS) {
    const original = unpatched[method] as (...args: unknown[]) => void;
    unpatched[method] = function capture(this: unknown, ...args: unknown[]): void {
      const first = args[0];
      if (typeof first === "string" && first.startsWith("{")) {
        if (first.includes(CANARY_EVENT)) {
          scan.canarySeen = true;
          return;
        }
        if (isEventLine(first)) scan.lines.push(first);
      }
      Reflect.apply(original, this, args);
    };
  }
  const { logger } = await import("firebase-functions/logger");
  logger.write({ severity: "DEBUG", event: CANARY_EVENT });
  if (!scan.canarySeen) {
    throw new Error("phi-log-scan: a line written through firebase-functions/logger was not captured; update this setup file");
  }
}

/** A structured line from functions/src/logs.ts: a JSON object with string `severity` and `event`. */
function isEventLine(line: string): boolean {
  if (!line.includes('"severity"') || !line.includes('"event"')) return false;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    return typeof entry.severity === "string" && typeof entry.event === "string";
  } catch {
    return false;
  }
}

/** One line per rule and excerpt: how often, in which events, first on which line. */
function summarize(findings: readonly Finding[], lines: readonly string[]): string {
  const lineOf = lineLocator(lines);
  const groups = new Map<string, { finding: Finding; count: number; firstLine: number; events: Set<string> }>();
  for (const finding of findings) {
    const { line, event } = lineOf(finding.index);
    const key = `${finding.rule}\u0000${finding.excerpt}`;
    const group = groups.get(key) ?? { finding, count: 0, firstLine: line, events: new Set<string>() };
    group.count += 1;
    group.events.add(event);
    groups.set(key, group);
  }
  const shown = [...groups.values()].slice(0, MAX_REPORTED);
  const text = describeFindings(
    shown.map((group) => group.finding),
    (finding) => {
      const group = groups.get(`${finding.rule}\u0000${finding.excerpt}`)!;
      const events = [...group.events].slice(0, 6).join(", ") + (group.events.size > 6 ? ", …" : "");
      return ` — ${group.count}×, first in log line ${group.firstLine}; events: ${events}`;
    },
  );
  return groups.size > shown.length ? `${text}\n  … and ${groups.size - shown.length} more kinds` : text;
}

/** The 1-based line, and its event, holding an offset of the joined text. */
function lineLocator(lines: readonly string[]): (index: number) => { line: number; event: string } {
  const starts: number[] = [];
  let offset = 0;
  for (const line of lines) {
    starts.push(offset);
    offset += line.length + 1;
  }
  return (index) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if ((starts[mid] ?? 0) <= index) low = mid;
      else high = mid - 1;
    }
    const event = /"event":"([^"]{1,80})"/.exec(lines[low] ?? "")?.[1] ?? "?";
    return { line: low + 1, event };
  };
}
