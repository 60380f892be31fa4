// Hooks that only local runtimes (the tests, the demo, the chaos suite) install: a clock that can
// be moved forward (to expire leases without waiting) and failpoints that crash or stall a handler
// between a provider call and the checkpoint that records it. In production nothing is installed
// and each hook costs one property lookup.

export type FailpointName =
  | "after_transcription_submit"
  | "after_transcript_fetch"
  | "after_summary_call"
  | "before_summarization_enqueue";

/**
 * What a failpoint does: `crash` never returns (the invocation is dead: nothing after it runs,
 * no catch block, no cleanup — like a killed instance); a stall resumes later, like an instance
 * that outlived its timeout and wakes up as a zombie.
 */
export type FailpointAction = "crash" | { stallUntil: Promise<void> } | null;

export interface LoggedEvent {
  severity: string;
  event: string;
  fields: Readonly<Record<string, unknown>>;
}

export interface RuntimeHooks {
  clock?: () => Date;
  failpoint?: (name: FailpointName) => FailpointAction;
  /** Sees every named log event (as well as the log itself). */
  onLog?: (entry: LoggedEvent) => void;
  /** Runs inside a guarded visit write, between its read and its commit (to race a deletion there). */
  beforeVisitCommit?: (visitId: string) => Promise<void>;
}

let installed: RuntimeHooks = {};

/** Replaces the given hooks; `undefined` removes one. */
export function installRuntimeHooks(hooks: RuntimeHooks): void {
  installed = { ...installed, ...hooks };
}

export function notifyLog(entry: LoggedEvent): void {
  installed.onLog?.(entry);
}

export function currentTime(): Date {
  return installed.clock ? installed.clock() : new Date();
}

export async function failpoint(name: FailpointName): Promise<void> {
  const action = installed.failpoint?.(name) ?? null;
  if (action === "crash") await new Promise<never>(() => {});
  else if (action) await action.stallUntil;
}

export async function beforeVisitCommit(visitId: string): Promise<void> {
  await installed.beforeVisitCommit?.(visitId);
}
