// `npm run chaos -- --visits 200 --fault-rate 0.25 [--seed 7] [--delete-rate 0.12] [--visits-per-user 5]
// [--limits on|off] [--upload-quota <n>] [--max-active <n>] [--no-webhooks] [--no-companions]
// [--summary-context-tokens <n>] [--json]`: runs the chaos
// suite and prints its figures and invariants. Exit code 0 only if every invariant holds.

import { captureLogs } from "../support/log-capture.js";
import { runChaos } from "./chaos.js";
import type { ChaosReport } from "./chaos.js";
import { readCommandOptions } from "../support/command-options.js";

const USAGE =
  "usage: npm run chaos -- --visits <n ≥ 1> --fault-rate <0..1> [--seed <int>] [--delete-rate <0..1>] [--visits-per-user <n ≥ 1>] [--limits on|off] [--upload-quota <n ≥ 1>] [--max-active <n ≥ 1>] [--no-webhooks] [--no-companions] [--summary-context-tokens <n>] [--json]";

const OPTIONS = {
  visits: { type: "string", default: "200" },
  "fault-rate": { type: "string", default: "0.25" },
  seed: { type: "string", default: "7" },
  "delete-rate": { type: "string" },
  "visits-per-user": { type: "string", default: "5" },
  limits: { type: "string", default: "on" },
  "upload-quota": { type: "string" },
  "max-active": { type: "string" },
  json: { type: "boolean", default: false },
  "no-webhooks": { type: "boolean", default: false },
  "no-companions": { type: "boolean", default: false },
  "summary-context-tokens": { type: "string", default: "0" },
} as const;

async function main(): Promise<number> {
  const values = readCommandOptions(OPTIONS, USAGE);
  if (!values) return 2;
  const visits = Number(values.visits);
  const faultRate = Number(values["fault-rate"]);
  const seed = Number(values.seed);
  const deleteRate = values["delete-rate"] === undefined ? undefined : Number(values["delete-rate"]);
  const visitsPerUser = Number(values["visits-per-user"]);
  const uploadQuotaPerDay = values["upload-quota"] === undefined ? undefined : Number(values["upload-quota"]);
  const maxConcurrentVisitsPerUser = values["max-active"] === undefined ? undefined : Number(values["max-active"]);
  const positive = (value: number | undefined) => value === undefined || (Number.isInteger(value) && value >= 1);
  if (
    !Number.isInteger(visits) ||
    visits < 1 ||
    !(faultRate >= 0 && faultRate <= 1) ||
    !Number.isInteger(seed) ||
    (deleteRate !== undefined && !(deleteRate >= 0 && deleteRate <= 1)) ||
    !Number.isInteger(visitsPerUser) ||
    visitsPerUser < 1 ||
    (values.limits !== "on" && values.limits !== "off") ||
    !positive(uploadQuotaPerDay) ||
    !positive(maxConcurrentVisitsPerUser) ||
    !Number.isInteger(Number(values["summary-context-tokens"]))
  ) {
    console.error(USAGE);
    return 2;
  }
  // The functions log every step as JSON; keep the terminal to progress and figures.
  const capture = captureLogs();
  let report: ChaosReport;
  try {
    report = await runChaos({
      visits,
      faultRate,
      seed,
      ...(deleteRate === undefined ? {} : { deleteRate }),
      visitsPerUser,
      limits:
        values.limits === "off"
          ? false
          : {
              ...(uploadQuotaPerDay === undefined ? {} : { uploadQuotaPerDay }),
              ...(maxConcurrentVisitsPerUser === undefined ? {} : { maxConcurrentVisitsPerUser }),
            },
      webhooks: !values["no-webhooks"],
      companions: !values["no-companions"],
      summaryContextTokens: Number(values["summary-context-tokens"]),
      onProgress: values.json ? undefined : (line) => capture.print(`${line}\n`),
    });
  } finally {
    capture.stop();
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else printReport(report);
  return report.invariants.every((invariant) => invariant.ok) ? 0 : 1;
}

function printReport(report: ChaosReport): void {
  const o = report.options;
  const d = report.deletions;
  const r = report.reuploads;
  const l = report.limits;
  const lines = [
    "",
    `Chaos run: ${report.visits} visits, fault rate ${o.faultRate}, seed ${o.seed}, crash ${o.crashRate}, stall ${o.stallRate}, delete ${o.deleteRate}, re-upload ${o.reuploadRate}, bad recordings ${o.badRecordingRate}, webhooks ${o.webhooks ? "on" : "off"}`,
    `  drained in ${report.drainSeconds} s (${report.rounds} checker rounds + ${report.sweeps.finalRounds} housekeeping rounds, ${report.virtualMinutes} virtual minutes)`,
    `  terminal: ${report.terminal}/${report.existing} existing visits — ${formatCounts(report.byStatus)}; deleted: ${report.deleted}`,
    `  final error codes: ${formatCounts(report.errorCodes) || "none"}`,
    `  summaries in parts: ${report.summariesInParts.visits} visits (at most ${report.summariesInParts.maxParts} parts)`,
    `  beside the summaries: ${o.companions ? `${report.companions.notes} clinician's notes, ${report.companions.translations} summaries also in the users' preferred language` : "off (--no-companions)"}`,
    `  transcripts lost: ${report.transcriptsLost}; completed provider jobs not used: ${report.orphanedProviderJobs}`,
    `  AssemblyAI jobs: max per (visit, generation, attempt) ${report.maxSubmitsPerAttempt}; per visit max ${report.submitsPerVisit.max}, mean ${report.submitsPerVisit.mean}`,
    `  submits while a completed transcript existed: ${report.submitsWhileTranscriptExisted}`,
    `  OpenAI attempts per visit (with in-call retries): max ${report.openAiCallsPerVisit.max}, mean ${report.openAiCallsPerVisit.mean}; summaries written per visit: max ${report.summariesWrittenPerVisit.max}`,
    `  duplicate action items: ${report.duplicateActionItems}; backwards status moves: ${report.backwardsStatusMoves}`,
    `  deliveries: ${report.deliveries.uploads} uploads (${report.deliveries.duplicateUploads} duplicates, ${report.deliveries.redelivered} redelivered after throwing), ${report.deliveries.checkerRuns} checker runs (overlapping pairs), ${report.deliveries.retryClicks} retry clicks (${report.deliveries.retriesAccepted} accepted)`,
    `  deletions: ${d.visitsDeleted} visits deleted by ${d.calls} calls (${d.concurrentPairs} concurrent pairs; answers: ${d.alreadyDeletedAnswers} already deleted, ${d.notFoundAnswers} not found, ${d.errors} errors)`,
    `    ${d.ofVisitsInFlight} of visits in flight, ${d.whileZombiesPending} while zombies were pending (${d.ofZombieVisits} of the zombie's own visit), ${d.racingFirstUploads} racing the first upload, ${d.racingReuploads} racing a re-upload; ${d.lateDeliveriesAfterDeletion} deliveries after the deletion`,
    `  re-uploads: ${r.recordings} new recordings into failed visits (${r.accepted} replaced the earlier one; ${r.duplicateDeliveries} delivered twice at once, ${r.lateDuplicates} again later); ${r.badFirstRecordings} bad first recordings; ${r.visitsOnLaterRecording} visits end on a later recording`,
    `  visits whose recording is gone from Storage without being marked deleted: ${report.recordingsMissing.length}${report.recordingsMissing.length > 0 ? ` — ${report.recordingsMissing.join(", ")}` : ""}`,
    l
      ? `  limits: ${l.users} users (${o.visitsPerUser} visits each), UPLOAD_QUOTA_PER_DAY ${l.uploadQuotaPerDay}, MAX_CONCURRENT_VISITS_PER_USER ${l.maxConcurrentVisitsPerUser}; refusals: ${formatCounts(l.refusals) || "none"}; ${l.limitRetryClicks} retry clicks after Retry-After (${l.limitRetriesAccepted} accepted); at most ${l.maxInFlightPerUser} in flight and ${l.maxPaidRecordingsPerUser} recordings transcribed for one user`
      : `  limits: off (${o.visitsPerUser} visits per user)`,
    `  sweeps: ${report.sweeps.tombstones} tombstones, ${report.sweeps.sweepsRun} sweeps run, ${report.sweeps.unsettled} unsettled; deleted visits seen again: ${report.reappeared} (${report.reappearanceChecks} checks)`,
    `  failpoints: ${report.failpoints.crashes} crashes, ${report.failpoints.stalls} stalls (zombies); stale writes rejected: ${report.failpoints.zombieWritesRejected}`,
    `  webhooks: ${o.webhooks ? `${report.webhooks.byAuth.secret ?? 0} deliveries with the secret, ${report.webhooks.byAuth.missing ?? 0} without, ${report.webhooks.byAuth.wrong ?? 0} with a wrong one — answers ${formatCounts(report.webhooks.byAnswer)}; outcomes ${formatCounts(report.webhooks.outcomes) || "none"}; slowest answer ${report.webhooks.slowestAnswerMs} ms${report.webhooks.unansweredAfterMs.length > 0 ? `; no answer after ${report.webhooks.unansweredAfterMs.join(", ")} ms` : ""}` : "off"}`,
    `  faults injected: AssemblyAI ${report.faultsInjected.assemblyai}, OpenAI ${report.faultsInjected.openai} — ${formatCounts(report.faultsInjected.byKind)}`,
    "",
    "Invariants:",
    ...report.invariants.map((i) => `  ${i.ok ? "PASS" : "FAIL"}  ${i.name} (${i.detail})`),
    ...(report.stuck.length > 0 ? ["", "Not finished:", ...report.stuck.map((line) => `  ${line}`)] : []),
    ...(report.leftovers.length > 0 ? ["", "Left over:", ...report.leftovers.map((line) => `  ${line}`)] : []),
  ];
  console.log(lines.join("\n"));
}

function formatCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([key, count]) => `${key} ${count}`)
    .join(", ");
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`chaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
