// The command line: what `npm run stub -- …` accepts, and which exit code each outcome gets.

import { parseArgs } from "node:util";
import type { VisitViewStatus } from "../describe-visit.js";
import type { RetryOutcome } from "../retry.js";

export const USAGE = `Usage: npm run stub -- <command> [options]

Commands:
  upload <file> [--visit <id>]  Upload a recording (.m4a .mp3 .wav .webm .ogg .aac .flac) into a
                                new visit (or into visit <id>), then watch it until it finishes
  watch <visitId>               Print the visit's status timeline until it finishes
  retry <visitId>               Ask the pipeline to retry a failed or partial visit
  show <visitId> [--original]   Print the summary (in your preferred language when there is one;
                                --original: the recording's), the speakers by role, the
                                transcript and the clinician's note
  language <code|none>          Set your preferred language (ISO 639-1, e.g. es), or none

Options:
  --original                    show: the summary in the recording's language
  -h, --help                    Show this help

Exit codes: 0 completed (retry: accepted; show, language: done), 2 partial, 1 failed or any error,
130 interrupted.

Configuration (environment): by default the emulator suite from firebase.json with project
demo-visit-pipeline. STUB_PROJECT_ID, STUB_USE_EMULATORS, STUB_EMULATOR_HOST,
STUB_{AUTH,FIRESTORE,STORAGE,FUNCTIONS}_EMULATOR_PORT, STUB_REGION, STUB_API_BASE_URL,
STUB_API_KEY, STUB_AUTH_DOMAIN, STUB_STORAGE_BUCKET, STUB_SIGN_IN (email|anonymous),
STUB_EMAIL, STUB_PASSWORD. See mobile-client-stub/README.md.
`;

export type CliCommand =
  | { kind: "help" }
  | { kind: "upload"; file: string; visitId: string | undefined }
  | { kind: "watch"; visitId: string }
  | { kind: "retry"; visitId: string }
  | { kind: "show"; visitId: string; original: boolean }
  /** `language: null` clears the preference (`language none`). */
  | { kind: "language"; language: string | null };

export type CliArgs = { ok: true; command: CliCommand } | { ok: false; message: string };

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let values: { visit?: string | undefined; original?: boolean | undefined; help?: boolean | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: { visit: { type: "string" }, original: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  if (values.help || positionals.length === 0) return { ok: true, command: { kind: "help" } };

  const [name, argument, ...extra] = positionals;
  if (extra.length > 0) return { ok: false, message: `Unexpected arguments: ${extra.join(" ")}` };
  if (name !== "upload" && values.visit !== undefined) return { ok: false, message: "--visit only applies to upload" };
  if (name !== "show" && values.original !== undefined) return { ok: false, message: "--original only applies to show" };
  switch (name) {
    case "upload":
      return argument === undefined
        ? { ok: false, message: "upload needs a file" }
        : { ok: true, command: { kind: "upload", file: argument, visitId: values.visit } };
    case "watch":
    case "retry":
      return argument === undefined
        ? { ok: false, message: `${name} needs a visit id` }
        : { ok: true, command: { kind: name, visitId: argument } };
    case "show":
      return argument === undefined
        ? { ok: false, message: "show needs a visit id" }
        : { ok: true, command: { kind: "show", visitId: argument, original: values.original === true } };
    case "language":
      return argument === undefined
        ? { ok: false, message: "language needs a language code, or none" }
        : { ok: true, command: { kind: "language", language: argument === "none" ? null : argument } };
    default:
      return { ok: false, message: `Unknown command: ${name}` };
  }
}

/** For upload and watch, which end when the visit reaches a terminal status. */
export function exitCodeForStatus(status: VisitViewStatus): number {
  switch (status) {
    case "completed":
      return 0;
    case "partial":
      return 2;
    default:
      return 1;
  }
}

export function exitCodeForRetry(outcome: RetryOutcome): number {
  return outcome.kind === "accepted" ? 0 : 1;
}
