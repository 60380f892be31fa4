// Dotfiles in functions/ that `npm run emulators` takes over while it runs (.env.local, .secret.local) and puts back as they were.
//
// The file keeps the developer's own lines (so their settings still apply), then ours, which win
// (firebase-tools' dotenv parser keeps the last value of a key). Its first lines record who wrote
// it and, base64-encoded, the original, so a run that was killed can be undone by the next one.

import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isAlive } from "../support/processes.js";

const MARKER = "# written by `npm run emulators`";
const ORIGINAL_PREFIX = "# original: ";
const ABSENT = "(none)";

export interface OwnedDotfile {
  path: string;
  /** The content the file had before (null: it did not exist). */
  original: string | null;
  /** Puts the original back (or removes the file). Safe to call more than once. */
  restore(): void;
}

export type LeftoverCheck =
  | { kind: "none" }
  | { kind: "restored"; pid: number }
  | { kind: "in_use"; pid: number };

/** Undoes what an interrupted run left behind; reports a run that is still going. */
export function recoverLeftover(filePath: string): LeftoverCheck {
  if (!existsSync(filePath)) return { kind: "none" };
  const lines = readFileSync(filePath, "utf8").split("\n");
  const pid = lines[0]?.startsWith(MARKER) ? Number(/pid (\d+)/.exec(lines[0])?.[1]) : NaN;
  if (Number.isNaN(pid)) return { kind: "none" };
  if (pid !== process.pid && isAlive(pid)) return { kind: "in_use", pid };
  writeBack(filePath, decodeOriginal(lines[1] ?? ""));
  return { kind: "restored", pid };
}

export function takeOver(filePath: string, ours: string, options: { mode?: number } = {}): OwnedDotfile {
  const original = existsSync(filePath) ? readFileSync(filePath, "utf8") : null;
  const header = `${MARKER} (pid ${process.pid}) for the Functions emulator; put back when it exits.\n`;
  const encoded = `${ORIGINAL_PREFIX}${original === null ? ABSENT : Buffer.from(original, "utf8").toString("base64")}\n`;
  const kept = original === null ? "" : `${original}${original.endsWith("\n") ? "" : "\n"}`;
  writeFileSync(filePath, `${header}${encoded}${kept}# --- npm run emulators ---\n${ours}`, { mode: options.mode ?? 0o644 });
  let restored = false;
  return {
    path: filePath,
    original,
    restore() {
      if (restored) return;
      restored = true;
      writeBack(filePath, original);
    },
  };
}

function decodeOriginal(line: string): string | null {
  const value = line.startsWith(ORIGINAL_PREFIX) ? line.slice(ORIGINAL_PREFIX.length).trim() : ABSENT;
  return value === ABSENT ? null : Buffer.from(value, "base64").toString("utf8");
}

function writeBack(filePath: string, original: string | null): void {
  if (original === null) rmSync(filePath, { force: true });
  else writeFileSync(filePath, original);
}

/** A path relative to the repository, for messages. */
export function shown(filePath: string, root: string): string {
  return path.relative(root, filePath);
}
