// Ending the Firebase CLI and everything it started: its own process group, and the Java emulators it starts in groups of their own.

import { execFileSync } from "node:child_process";

/**
 * Every process below `rootPid` (children, grandchildren, …). firebase-tools starts the Firestore,
 * Storage and Pub/Sub emulators with `detached: true` (emulator/downloadableEmulators.js), so they
 * are not in the CLI's process group: killing the group alone would leave them running.
 */
export function descendantPids(rootPid: number): number[] {
  let table: string;
  try {
    // `ps -A -o pid=,ppid=` works on Linux and macOS alike.
    table = execFileSync("ps", ["-A", "-o", "pid=,ppid="], { encoding: "utf8" });
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const line of table.split("\n")) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (!pid || ppid === undefined || Number.isNaN(ppid)) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return typeof error === "object" && error !== null && "code" in error && error.code === "EPERM";
  }
}

/** SIGKILL for each process (and the group it leads, if it leads one); ones already gone are skipped. */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    signalGroup(pid, "SIGKILL");
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** Signals the process group `pgid` leads; false when there is no such group any more. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
