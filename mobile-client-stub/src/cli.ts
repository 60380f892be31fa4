// `npm run stub -- upload|watch|retry …`: the app's flow from a terminal, against the emulators or a real project.

import { openAsBlob } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { checkAudioFile } from "./audio-file.js";
import { exitCodeForRetry, exitCodeForStatus, parseCliArgs, USAGE } from "./cli/args.js";
import type { CliCommand } from "./cli/args.js";
import { nextStepHint, retryOutcomeText } from "./cli/messages.js";
import { createProgressPrinter } from "./cli/progress-bar.js";
import { timelineLine } from "./cli/timeline.js";
import { visitContentText } from "./cli/visit-content-text.js";
import { createVisitPipelineClient } from "./client.js";
import type { VisitPipelineClient } from "./client.js";
import { loadStubConfig, StubConfigError } from "./config.js";
import type { StubConfig } from "./config.js";
import { UploadError } from "./upload.js";
import type { UploadedVisit, VisitAudioFile } from "./upload.js";

const INTERRUPTED = 130;

async function main(argv: readonly string[]): Promise<number> {
  const args = parseCliArgs(argv);
  if (!args.ok) {
    process.stderr.write(`${args.message}\n\n${USAGE}`);
    return 1;
  }
  const command = args.command;
  if (command.kind === "help") {
    process.stdout.write(USAGE);
    return 0;
  }

  let config: StubConfig;
  try {
    config = loadStubConfig(process.env);
  } catch (error) {
    if (error instanceof StubConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  let task: Task;
  try {
    task = await prepare(command);
  } catch (error) {
    process.stderr.write(`${messageOf(error)}\n`);
    return 1;
  }

  process.stdout.write(`${describeTarget(config)}\n`);
  const client = createVisitPipelineClient(config);
  try {
    const user = await client.signIn();
    const who = config.signIn.method === "email" ? config.signIn.email : "an anonymous user";
    process.stdout.write(`Signed in as ${who} (uid ${user.uid}${user.created ? ", account created" : ""})\n`);
    switch (task.kind) {
      case "upload":
        return await upload(client, task.recording, task.visitId);
      case "watch":
        return await watch(client, task.visitId);
      case "retry": {
        const outcome = await client.retryVisit(task.visitId);
        process.stdout.write(`${retryOutcomeText(outcome, task.visitId)}\n`);
        return exitCodeForRetry(outcome);
      }
      case "show":
        process.stdout.write(visitContentText(await client.readVisitContent(task.visitId, task.original ? "original" : "preferred"), task.visitId));
        return 0;
      case "language": {
        const outcome = await client.setPreferredLanguage(task.language);
        const text = outcome.kind === "saved" ? outcome.message : `Not saved (${outcome.code}): ${outcome.message}`;
        process.stdout.write(`${text}\n`);
        return outcome.kind === "saved" ? 0 : 1;
      }
    }
  } catch (error) {
    process.stderr.write(`${messageOf(error)}\n`);
    return error instanceof UploadError && error.code === "cancelled" ? INTERRUPTED : 1;
  } finally {
    await client.close();
  }
}

/** A command with its local inputs ready. */
type Task =
  | { kind: "upload"; recording: VisitAudioFile; visitId: string | undefined }
  | Exclude<CliCommand, { kind: "help" | "upload" }>;

/** Opens the recording before signing in, so a missing or unsupported file fails at once. */
async function prepare(command: Exclude<CliCommand, { kind: "help" }>): Promise<Task> {
  return command.kind === "upload" ? { kind: "upload", recording: await openRecording(command.file), visitId: command.visitId } : command;
}

/** The file as a file-backed Blob: the SDK reads it chunk by chunk instead of holding 250 MiB in memory. */
async function openRecording(filePath: string): Promise<VisitAudioFile> {
  const stats = await stat(filePath).catch((error: unknown) => {
    throw new Error(`Cannot read ${filePath}: ${messageOf(error)}`);
  });
  if (!stats.isFile()) throw new Error(`${filePath} is not a file.`);
  const name = basename(filePath);
  const check = checkAudioFile(name, stats.size);
  if (!check.ok) throw new Error(check.message);
  return { name, data: await openAsBlob(filePath) };
}

async function upload(client: VisitPipelineClient, recording: VisitAudioFile, visitId: string | undefined): Promise<number> {
  const progress = createProgressPrinter({ isTTY: process.stdout.isTTY === true, write: (text) => process.stdout.write(text) });
  const cancel = new AbortController();
  const onInterrupt = () => cancel.abort();
  process.once("SIGINT", onInterrupt);
  let uploaded: UploadedVisit;
  try {
    uploaded = await client.uploadVisitAudio(recording, {
      ...(visitId === undefined ? {} : { visitId }),
      onProgress: (update) => progress.update(update),
      signal: cancel.signal,
    });
  } finally {
    progress.finish();
    process.off("SIGINT", onInterrupt);
  }
  process.stdout.write(`Uploaded ${uploaded.path}\nVisit ${uploaded.visitId}\n`);
  return watch(client, uploaded.visitId);
}

/** Prints the timeline until the visit is terminal; resolves with the exit code. */
function watch(client: VisitPipelineClient, visitId: string): Promise<number> {
  return new Promise((resolve) => {
    let finished = false;
    let stopWatching: (() => void) | null = null;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      stopWatching?.();
      process.off("SIGINT", onInterrupt);
      resolve(code);
    };
    const onInterrupt = () => finish(INTERRUPTED);
    process.once("SIGINT", onInterrupt);
    stopWatching = client.watchVisit(
      visitId,
      (view) => {
        process.stdout.write(`${timelineLine(view, new Date())}\n`);
        if (!view.isTerminal) return;
        const hint = nextStepHint(view, visitId);
        if (hint !== null) process.stdout.write(`${hint}\n`);
        finish(exitCodeForStatus(view.status));
      },
      {
        onError: (error) => {
          process.stderr.write(`${error.message}\n`);
          // An unreadable snapshot is reported but watching goes on; anything else ends it.
          if (error.code !== "unreadable_visit") finish(1);
        },
      },
    );
    if (finished) stopWatching();
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeTarget(config: StubConfig): string {
  const emulators = config.emulators;
  if (emulators === null) return `Project ${config.projectId} (real), API ${config.apiBaseUrl}`;
  return (
    `Emulators on ${emulators.host} (project ${config.projectId}): auth :${emulators.authPort}, ` +
    `firestore :${emulators.firestorePort}, storage :${emulators.storagePort}, API ${config.apiBaseUrl}`
  );
}

const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
// The SDK may keep a timer (e.g. token refresh) alive after close(); do not hang on it.
setTimeout(() => process.exit(exitCode), 1_000).unref();
