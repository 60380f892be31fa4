// `npm run ops -- <command>`: the operator's commands, against the emulators (FIRESTORE_EMULATOR_HOST)
// or a real project (Application Default Credentials). Parses arguments, runs a command from this
// folder, prints text or `--json`, and returns an exit code scripts can use (EXIT, documented in
// docs/runbook.md). Not imported by the deployed functions.

import { readFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { parseArgs } from "node:util";
import { applicationDefault } from "firebase-admin/app";
import type { Pipeline } from "../pipeline.js";
import { currentTime } from "../runtime-hooks.js";
import { VisitDocumentInvalidError } from "../store/visits.js";
import { VISIT_STATUSES } from "../visit/status.js";
import type { VisitStatus } from "../visit/status.js";
import { parseDurationSeconds, formatSeconds } from "./duration.js";
import { applyMonitoring, loadMonitoringFile, MonitoringFileError, GoogleApiError } from "./monitoring.js";
import { listVisits, showVisit } from "./show.js";
import { collectStats } from "./stats.js";
import { DEFAULT_STUCK_THRESHOLDS, findStuckVisits } from "./stuck.js";
import type { StuckThresholds } from "./stuck.js";
import type { ActionOutcome } from "./visit-actions.js";
import type * as VisitActions from "./visit-actions.js";

export const EXIT = {
  ok: 0,
  /** The command found something: stuck visits, a breaker not closed. */
  findings: 1,
  usage: 2,
  notFound: 3,
  /** The state machine (or the resume rules) refused the change. */
  refused: 4,
  /** Something failed: Firestore, a Google API, the configuration. */
  failed: 5,
} as const;

export const USAGE = `Usage: npm run ops -- <command> [options]

Commands:
  stuck [--older-than 30m] [--grace 5m]      unfinished visits past their thresholds, oldest first
  stats [--since 24h]                        outcomes, stage times, retries, cost of visits created since
  list --status s [--code c] [--since 24h] [--ids]
                                             visits created since, in a status (and error code); --ids: ids only
  show <visitId>                             one visit: history, attempts, lease, errors, cost, audit
  requeue <visitId> [--reason text]          resume the due stage of a failed or partial visit
  fail <visitId> --reason text               end an unfinished visit (failed, or partial once transcribed)
  breaker [--reset assemblyai|openai]        the provider outage breakers; --reset closes one
  delete <visitId> --yes                     delete the visit and everything stored about it
  monitoring check [--file path]             validate the monitoring file
  monitoring apply --project id [--dry-run] [--notification-channel name]... [--file path]
                                             create or update the log-based metrics and alert policies

Options: --json (machine-readable stdout), --project id (the Firebase project; else the
environment's), --actor name (who, for the audit; else the credential's account or the OS user),
--verbose (the functions' own log lines on stderr).
Exit codes: 0 ok, 1 findings (stuck visits, a breaker not closed), 2 usage error, 3 not found,
4 refused by the state machine, 5 failure (Firestore, Google API, configuration).
`;

export interface OpsIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

const OPTIONS = {
  json: { type: "boolean" },
  verbose: { type: "boolean" },
  project: { type: "string" },
  actor: { type: "string" },
  reason: { type: "string" },
  since: { type: "string" },
  "older-than": { type: "string" },
  grace: { type: "string" },
  reset: { type: "string" },
  status: { type: "string" },
  code: { type: "string" },
  ids: { type: "boolean" },
  yes: { type: "boolean" },
  "dry-run": { type: "boolean" },
  file: { type: "string" },
  "notification-channel": { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

interface Context {
  io: OpsIo;
  values: Values;
  positionals: string[];
  json: boolean;
}

export async function runOps(argv: readonly string[], io: OpsIo): Promise<number> {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    io.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === "help" || command === undefined) {
    (command === undefined && !parsed.values.help ? io.stderr : io.stdout).write(USAGE);
    return command === undefined && !parsed.values.help ? EXIT.usage : EXIT.ok;
  }
  if (parsed.values.project) {
    io.env.GCLOUD_PROJECT = parsed.values.project;
    io.env.GOOGLE_CLOUD_PROJECT = parsed.values.project;
  }
  const context: Context = { io, values: parsed.values, positionals: rest, json: parsed.values.json ?? false };
  try {
    return await runCommand(command, context);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`${error.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    return reportFailure(context, error);
  }
}

function reportFailure(context: Context, error: unknown): number {
  const code =
    error instanceof VisitDocumentInvalidError
      ? "visit_document_invalid"
      : error instanceof MonitoringFileError || error instanceof GoogleApiError
        ? error.code
        : typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
          ? error.code
          : "failed";
  const message = error instanceof Error ? error.message : String(error);
  if (context.json) context.io.stdout.write(`${JSON.stringify({ ok: false, error: { code, message } })}\n`);
  context.io.stderr.write(`ops: ${code}: ${message}\n`);
  return EXIT.failed;
}

function runCommand(command: string, context: Context): Promise<number> {
  switch (command) {
    case "stuck":
      return stuckCommand(context);
    case "stats":
      return statsCommand(context);
    case "list":
      return listCommand(context);
    case "show":
      return showCommand(context);
    case "requeue":
      return requeueCommand(context);
    case "fail":
      return failCommand(context);
    case "breaker":
      return breakerCommand(context);
    case "delete":
      return deleteCommand(context);
    case "monitoring":
      return monitoringCommand(context);
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

function print(context: Context, json: unknown, text: () => string): void {
  context.io.stdout.write(context.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
}

function duration(context: Context, option: "since" | "older-than" | "grace", fallback: number): number {
  const text = context.values[option];
  if (text === undefined) return fallback;
  const seconds = parseDurationSeconds(text);
  if (seconds === null) throw new UsageError(`--${option} must be a duration such as 90s, 15m, 24h or 7d (got ${JSON.stringify(text)})`);
  return seconds;
}

function visitIdArgument(context: Context): string {
  const [visitId, ...extra] = context.positionals;
  if (!visitId) throw new UsageError("a visit id is required");
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  return visitId;
}

function noPositionals(context: Context): void {
  if (context.positionals.length > 0) throw new UsageError(`unexpected arguments: ${context.positionals.join(" ")}`);
}

/** A progress bar on stderr, only on a terminal (never in stdout, never in a pipe or CI log). */
function progressBar(context: Context, label: string): { update: (read: number, total: number) => void; done: () => void } {
  if (!context.io.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  const width = 30;
  let drawn = false;
  return {
    update: (read, total) => {
      const fraction = total > 0 ? Math.min(1, read / total) : 1;
      const filled = Math.round(fraction * width);
      context.io.stderr.write(`\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${read}/${total}`);
      drawn = true;
    },
    done: () => {
      if (drawn) context.io.stderr.write("\n");
    },
  };
}

async function stuckCommand(context: Context): Promise<number> {
  noPositionals(context);
  const olderThan = context.values["older-than"] === undefined ? null : duration(context, "older-than", 0);
  const thresholds: StuckThresholds = {
    statusAgeSeconds: olderThan === null ? DEFAULT_STUCK_THRESHOLDS.statusAgeSeconds : { pending: olderThan, transcribing: olderThan, summarizing: olderThan },
    graceSeconds: duration(context, "grace", DEFAULT_STUCK_THRESHOLDS.graceSeconds),
  };
  const bar = progressBar(context, "scanning unfinished visits");
  const report = await findStuckVisits(currentTime(), { thresholds, progress: bar.update });
  bar.done();
  print(context, report, () => {
    if (report.stuck.length === 0) return `No stuck visits (${report.scanned} unfinished scanned).`;
    const lines = report.stuck.map(
      (visit) =>
        `${visit.visitId}  ${visit.status.padEnd(12)} for ${visit.statusAgeSeconds === null ? "?" : formatSeconds(visit.statusAgeSeconds)}  ${visit.reasons.join(",")}`,
    );
    return [`${report.stuck.length} stuck of ${report.scanned} unfinished visits (oldest first):`, ...lines].join("\n");
  });
  if (report.invalidIds.length > 0) context.io.stderr.write(`unreadable visit documents: ${report.invalidIds.join(", ")}\n`);
  return report.stuck.length > 0 ? EXIT.findings : EXIT.ok;
}

async function statsCommand(context: Context): Promise<number> {
  noPositionals(context);
  const now = currentTime();
  const since = new Date(now.getTime() - duration(context, "since", 86_400) * 1000);
  const bar = progressBar(context, "scanning visits");
  const report = await collectStats(since, now, { progress: bar.update });
  bar.done();
  print(context, report, () => {
    const stage = (name: keyof typeof report.stageSeconds) => {
      const p = report.stageSeconds[name];
      return `  ${name.padEnd(13)} n=${p.count}  p50 ${p.p50Seconds === null ? "-" : formatSeconds(p.p50Seconds)}  p95 ${p.p95Seconds === null ? "-" : formatSeconds(p.p95Seconds)}`;
    };
    const pct = (value: number | null) => (value === null ? "-" : `${(value * 100).toFixed(1)}%`);
    return [
      `Visits created since ${report.since}: ${report.visits}`,
      `  by status: ${Object.entries(report.byStatus).map(([status, count]) => `${status} ${count}`).join(", ")}`,
      `  of ${report.rates.terminal} finished: completed ${pct(report.rates.completed)}, partial ${pct(report.rates.partial)}, failed ${pct(report.rates.failed)}`,
      "Time per stage:",
      stage("pending"),
      stage("transcribing"),
      stage("summarizing"),
      stage("endToEnd"),
      `Retries: ${report.retries.retryRounds} rounds on ${report.retries.visitsRetried} visits; ${report.retries.extraAttempts} extra automatic attempts`,
      `Cost: ${report.cost.totalUsd.toFixed(4)} USD over ${report.cost.visitsWithCost} visits (${report.cost.perVisitUsd === null ? "-" : report.cost.perVisitUsd.toFixed(4)} per visit), ${report.cost.visitsCostUnknown} unknown; paid calls ${report.cost.paidCalls}, wasted ${report.cost.discardedPaidCalls}`,
      `Top error codes: ${report.topErrorCodes.map((entry) => `${entry.code} ${entry.count}`).join(", ") || "none"}`,
    ].join("\n");
  });
  return EXIT.ok;
}

async function listCommand(context: Context): Promise<number> {
  noPositionals(context);
  const status = context.values.status;
  if (!status || !isVisitStatus(status)) throw new UsageError(`list needs --status, one of ${VISIT_STATUSES.join(", ")}`);
  const now = currentTime();
  const since = new Date(now.getTime() - duration(context, "since", 86_400) * 1000);
  const bar = progressBar(context, "scanning visits");
  const visits = await listVisits({ status, code: context.values.code ?? null, since }, { progress: bar.update });
  bar.done();
  if (context.values.ids) {
    context.io.stdout.write(visits.map((visit) => `${visit.visitId}\n`).join(""));
    return EXIT.ok;
  }
  print(context, { since: since.toISOString(), visits }, () =>
    visits.length === 0
      ? `No ${status} visits created since ${since.toISOString()}.`
      : visits.map((visit) => `${visit.visitId}  ${visit.status.padEnd(12)} ${visit.errorCode ?? ""}  created ${visit.createdAt}`).join("\n"),
  );
  return EXIT.ok;
}

async function showCommand(context: Context): Promise<number> {
  const visitId = visitIdArgument(context);
  const view = await showVisit(visitId);
  if (!view) return notFound(context, visitId);
  print(context, view, () =>
    [
      `Visit ${view.visitId} (user ${view.userId}): ${view.status}${view.error ? ` — ${view.error.code} (${view.error.stage}, ${view.error.retryable ? "retryable" : "not retryable"})` : ""}`,
      `  created ${view.createdAt}, updated ${view.updatedAt}, next check ${view.nextCheckAt ?? "-"}, deadline ${view.deadlineAt ?? "-"}`,
      `  attempts: transcription ${view.attempts.transcription}, summarization ${view.attempts.summarization}; retries ${view.retryCount}; checks ${view.checks}; summary dispatches ${view.summaryDispatches}`,
      `  lease: ${view.lease ? `${view.lease.stage} attempt ${view.lease.attempt} by ${view.lease.owner} until ${view.lease.expiresAt}` : "none"}`,
      `  cost: ${view.cost ? `${view.cost.estimatedUsd} USD, ${view.cost.paidCalls} paid calls (${view.cost.discardedPaidCalls} discarded)` : "unknown"}`,
      "  history:",
      ...view.history.map((entry) => `    ${entry.at}  ${entry.status.padEnd(12)} ${entry.event}${entry.code ? ` (${entry.code})` : ""}`),
      ...(view.audit.length > 0 ? ["  audit:", ...view.audit.map((entry) => `    ${entry.at}  ${entry.action} by ${entry.actor}${entry.reason ? `: ${entry.reason}` : ""}`)] : []),
    ].join("\n"),
  );
  return EXIT.ok;
}

function notFound(context: Context, visitId: string): number {
  print(context, { ok: false, error: { code: "visit_not_found", visitId } }, () => `No visit ${visitId}.`);
  return EXIT.notFound;
}

function outcomeExit<T>(context: Context, outcome: ActionOutcome<T>, text: (result: T) => string): number {
  switch (outcome.kind) {
    case "not_found":
      return notFound(context, outcome.visitId);
    case "refused":
      print(context, { ok: false, error: { code: outcome.code, visitId: outcome.visitId, status: outcome.status } }, () =>
        `Refused: visit ${outcome.visitId} is ${outcome.status ?? "gone"} (${outcome.code}).`,
      );
      return EXIT.refused;
    case "done":
      print(context, { ok: true, ...outcome.result }, () => text(outcome.result));
      return EXIT.ok;
  }
}

/** Who runs the command: --actor, else the service account of the credentials file, else the OS user. */
export function resolveActor(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag?.trim()) return flag.trim().slice(0, 200);
  const keyFile = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (keyFile) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(keyFile, "utf8"));
      if (typeof parsed === "object" && parsed !== null && "client_email" in parsed && typeof parsed.client_email === "string") return parsed.client_email;
    } catch {
      // Not readable: fall back to the OS user.
    }
  }
  return `os:${userInfo().username}@${hostname()}`;
}

const OPERATOR_DEADLINE_MS = 120_000;

/**
 * The commands that change things need the pipeline (providers, stages): loaded only for them, so
 * the read-only commands start quickly.
 */
async function actions(): Promise<{ p: Pipeline; actions: typeof VisitActions }> {
  const [{ pipeline }, loaded] = await Promise.all([import("../pipeline.js"), import("./visit-actions.js")]);
  return { p: pipeline(), actions: loaded };
}

async function requeueCommand(context: Context): Promise<number> {
  const visitId = visitIdArgument(context);
  const { p, actions: { requeueVisit } } = await actions();
  const operator = { actor: resolveActor(context.values.actor, context.io.env), reason: context.values.reason ?? null };
  // Without the AssemblyAI key here, the deployed checker does the provider work (the visit is due now).
  const inProcess = Boolean(context.io.env.ASSEMBLYAI_API_KEY);
  const outcome = await requeueVisit(p, visitId, operator, { deadlineMs: Date.now() + OPERATOR_DEADLINE_MS, inProcess });
  return outcomeExit(context, outcome, (result) => `Requeued ${result.visitId}: resumed ${result.resumedStage}, now ${result.status} (round ${result.retryCount}).`);
}

async function failCommand(context: Context): Promise<number> {
  const visitId = visitIdArgument(context);
  const reason = context.values.reason?.trim();
  if (!reason) throw new UsageError("fail needs --reason (it is stored in the visit's audit)");
  const operator = { actor: resolveActor(context.values.actor, context.io.env), reason };
  const { p, actions: { failVisit } } = await actions();
  const outcome = await failVisit(p, visitId, operator);
  return outcomeExit(context, outcome, (result) => `Ended ${result.visitId}: ${result.from} → ${result.status} (${result.errorCode}).`);
}

async function deleteCommand(context: Context): Promise<number> {
  const visitId = visitIdArgument(context);
  if (!context.values.yes) throw new UsageError("delete removes the visit and all its data for good: add --yes");
  const { p, actions: { deleteVisitAsOperator } } = await actions();
  const outcome = await deleteVisitAsOperator(p, visitId, Date.now() + OPERATOR_DEADLINE_MS);
  return outcomeExit(context, outcome, (result) =>
    `${result.alreadyDeleted ? "Already deleted" : "Deleted"} ${result.visitId}: ${Object.entries(result.removed).map(([kind, count]) => `${kind} ${count}`).join(", ")}; ${result.pendingProviderDeletes} provider deletes pending (the checker retries them).`,
  );
}

async function breakerCommand(context: Context): Promise<number> {
  noPositionals(context);
  const { p, actions: { breakerStates, isProviderName, resetProviderBreaker } } = await actions();
  const provider = context.values.reset;
  if (provider !== undefined) {
    if (!isProviderName(provider)) throw new UsageError(`--reset takes assemblyai or openai (got ${JSON.stringify(provider)})`);
    const reset = await resetProviderBreaker(p, provider);
    print(context, { ok: true, provider, ...reset }, () => `Breaker ${provider}: ${reset.before.state} → ${reset.after.state}.`);
    return EXIT.ok;
  }
  const states = await breakerStates(p);
  print(context, { breakers: states }, () =>
    states.map((state) => `${state.provider.padEnd(10)} ${state.state}${state.openUntil ? ` until ${state.openUntil}` : ""} (failures ${state.failures})`).join("\n"),
  );
  return states.some((state) => state.state !== "closed") ? EXIT.findings : EXIT.ok;
}

const DEFAULT_MONITORING_FILE = "monitoring/alerts.json";

async function monitoringCommand(context: Context): Promise<number> {
  const [action, ...extra] = context.positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const file = await loadMonitoringFile(context.values.file ?? DEFAULT_MONITORING_FILE);
  if (action === "check") {
    print(context, { ok: true, metrics: file.metrics.length, alertPolicies: file.alertPolicies.length }, () =>
      `${file.metrics.length} metrics and ${file.alertPolicies.length} alert policies: valid.`,
    );
    return EXIT.ok;
  }
  if (action !== "apply") throw new UsageError("monitoring takes check or apply");
  const project = context.values.project;
  if (!project) throw new UsageError("monitoring apply needs --project");
  const env = context.io.env;
  const changes = await applyMonitoring(file, {
    project,
    dryRun: context.values["dry-run"] ?? false,
    notificationChannels: context.values["notification-channel"] ?? [],
    loggingBaseUrl: (env.OPS_LOGGING_API_URL ?? "https://logging.googleapis.com").replace(/\/+$/, ""),
    monitoringBaseUrl: (env.OPS_MONITORING_API_URL ?? "https://monitoring.googleapis.com").replace(/\/+$/, ""),
    // OPS_ACCESS_TOKEN (e.g. from `gcloud auth print-access-token`) overrides ADC.
    accessToken: async () => env.OPS_ACCESS_TOKEN ?? (await applicationDefault().getAccessToken()).access_token,
  });
  print(context, { ok: true, project, dryRun: context.values["dry-run"] ?? false, changes }, () =>
    changes.map((change) => `${change.applied ? "" : "(dry run) would "}${change.action} ${change.kind.replace("_", " ")} ${change.name}`).join("\n"),
  );
  return EXIT.ok;
}

function isVisitStatus(value: string): value is VisitStatus {
  return (VISIT_STATUSES as readonly string[]).includes(value);
}
