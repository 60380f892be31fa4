// `npm run demo`: one visit through the real exported functions on the local runtime — a bundled
// sample recording is "uploaded" (storage event), the checker runs on a short interval, the
// enqueued summarization runs — printing a timestamped status timeline, the summary and the
// action items. `--json` prints the same as one JSON document. Exit code 0 only if completed.

import { statSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { db } from "../../functions/src/store/db.js";
import type { VisitSummary } from "../../functions/src/visit/summary.js";
import { captureLogs } from "../support/log-capture.js";
import { responseFormatName } from "../fakes/openai.js";
import { extractiveSummary } from "./extractive-summary.js";
import type { CapturedLog } from "../support/log-capture.js";
import { FIXTURES_DIR, sleep, startLocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readActionItems, readTranscriptArtifact, readVisit } from "../support/visits.js";

interface TimelineEntry {
  atMs: number;
  kind: "status" | "progress";
  status?: string;
  text: string;
}

const USAGE = `Usage: npm run demo -- [--json] [--file <recording>] [--verbose]
  --file     a recording in test/fixtures (default visit-en.m4a; visit-es.m4a is Spanish)
  --json     print the result as one JSON document
  --verbose  also print the functions' own structured log lines`;

const CHECKER_INTERVAL_MS = 1_000;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      file: { type: "string", default: "visit-en.m4a" },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const fileName = path.basename(values.file);
  const recording = path.join(FIXTURES_DIR, fileName);
  const sizeBytes = statSync(recording, { throwIfNoEntry: false })?.size;
  if (sizeBytes === undefined) {
    console.error(`No recording named ${fileName} in test/fixtures.\n${USAGE}`);
    return 2;
  }

  const providers = chooseProviders();
  const logs = captureLogs({ passThrough: values.verbose && !values.json });
  const startedMs = Date.now();
  const timeline: TimelineEntry[] = [];
  const say = (entry: TimelineEntry) => {
    timeline.push(entry);
    if (!values.json) logs.print(`${formatElapsed(entry.atMs)}  ${(entry.status ?? "").padEnd(12)}  ${entry.text}\n`);
  };

  const runtime = await startLocalRuntime({
    // Long enough to watch the job go queued → processing → completed.
    assemblyai: { queuedMs: 1_500, processingMs: 2_500 },
    env: { POLL_INITIAL_DELAY_SECONDS: "1", POLL_MAX_DELAY_SECONDS: "2", SUMMARY_WATCHDOG_SECONDS: "120" },
    realProviders: { assemblyai: false, openai: providers.openai === "OpenAI (real service)" },
  });
  // The visit summary reads sensibly from the extractive stand-in; anything else (a note, a translation) the fake answers itself.
  runtime.openai.respondWith((body) => (responseFormatName(body) === "visit_summary" ? extractiveSummary(body) : undefined));
  try {
    if (!values.json) {
      logs.print(
        [
          "Visit pipeline demo — the real functions on the local runtime",
          `  Firestore   ${runtime.firestore.embedded ? "embedded" : "external"} emulator at ${runtime.firestore.host}`,
          `  AssemblyAI  ${providers.assemblyai}`,
          `  OpenAI      ${providers.openai}`,
          `  Cloud Tasks local endpoint at ${runtime.tasks.host}`,
          ...providers.notes.map((note) => `  note: ${note}`),
          `  Recording   test/fixtures/${fileName} (${Math.round(sizeBytes / 1024)} KB)`,
          "",
        ].join("\n") + "\n",
      );
    }
    const visitId = newVisitId("demo");
    let lastStatus: string | undefined;
    const stopWatching = db()
      .collection("visits")
      .doc(visitId)
      .onSnapshot((snapshot) => {
        const status = snapshot.get("status") as string | undefined;
        if (status && status !== lastStatus) {
          lastStatus = status;
          const code = snapshot.get("error.code") as string | undefined;
          say({ atMs: Date.now() - startedMs, kind: "status", status, text: `status → ${status}${code ? ` (${code})` : ""}` });
        }
      });
    logs.onLog((log) => {
      const text = describeLog(log);
      if (text && log.fields.visitId === visitId) say({ atMs: Date.now() - startedMs, kind: "progress", text });
    });

    say({ atMs: Date.now() - startedMs, kind: "progress", text: `upload: storage event for users/demo-user/visits/${visitId}/${fileName}` });
    await runtime.upload({ uid: "demo-user", visitId, fileName, contentType: "audio/mp4", sizeBytes });

    const deadlineMs = Date.now() + (providers.openai.startsWith("OpenAI (real") ? 600_000 : 120_000);
    while (!isTerminal(lastStatus) && Date.now() < deadlineMs) {
      await sleep(CHECKER_INTERVAL_MS);
      await runtime.runChecker();
      await runtime.tasks.drain();
    }
    await sleep(50); // let the last snapshot arrive
    stopWatching();

    const visit = await readVisit(visitId);
    const actions = await readActionItems(visitId);
    const artifact = await readTranscriptArtifact(visitId);
    logs.stop();
    const result = {
      visitId,
      status: visit.status,
      error: visit.error,
      providers,
      durationMs: Date.now() - startedMs,
      timeline,
      transcript: visit.transcript && {
        ...visit.transcript,
        transcriptId: visit.transcriptId,
        utterances: (artifact?.utterances as unknown[] | undefined)?.length ?? 0,
      },
      summary: visit.summary,
      actionItems: actions.map(({ id, description, owner, dueDate, timing }) => ({ id, description, owner, dueDate, timing })),
    };
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else printResult(result.status, visit.summary, result.actionItems, visit.error?.code);
    return visit.status === "completed" ? 0 : 1;
  } finally {
    logs.stop();
    await runtime.close();
  }
}

function chooseProviders(): { assemblyai: string; openai: string; notes: string[] } {
  const notes: string[] = [];
  const realOpenAi = Boolean(process.env.OPENAI_API_KEY) && !process.env.OPENAI_BASE_URL;
  if (process.env.ASSEMBLYAI_API_KEY) {
    notes.push(
      "ASSEMBLYAI_API_KEY is set, but AssemblyAI cannot download a recording from this machine's local storage; " +
        "transcription uses the local fake here (deploy, or run the emulator suite, to use the real service).",
    );
  }
  return {
    assemblyai: "local fake (speaks AssemblyAI's v2 transcript API)",
    openai: realOpenAi
      ? "OpenAI (real service)"
      : "local fake (speaks OpenAI's chat completions API; answers with a keyword-picked extractive summary, not a model's)",
    notes,
  };
}

function describeLog(log: CapturedLog): string | undefined {
  const f = log.fields;
  switch (log.event) {
    case "upload_accepted":
      return `upload accepted (${String(f.contentType)}, ${Math.round(Number(f.sizeBytes) / 1024)} KB)`;
    case "transcription_submitted":
      return `submitted to AssemblyAI (transcript ${String(f.transcriptId)}) — the trigger returns now`;
    case "transcript_pending":
      return `checker: transcript ${String(f.state)}, next check in ${String(f.nextCheckInSeconds)} s`;
    case "transcript_saved":
      return `checker: transcript saved first (${String(f.utteranceCount)} utterances, language ${String(f.languageCode)}, ${String(f.audioDurationSeconds)} s of audio)`;
    case "summarization_enqueued":
      return `checker: summarization task enqueued (dispatch ${String(f.dispatch)}, ${String(f.result)})`;
    case "summarization_started":
      return `summarizeVisit: attempt ${String(f.attempt)} started`;
    case "summarization_completed":
      return `summarizeVisit: summary and ${String(f.actionItemCount)} action items written (${String(f.model)})`;
    default:
      return log.severity === "WARNING" || log.severity === "ERROR"
        ? `${log.event ?? "log"}: ${typeof f.code === "string" ? f.code : ""}`
        : undefined;
  }
}

function printResult(
  status: string,
  summary: VisitSummary | null,
  actions: { description: unknown; owner: unknown; dueDate: unknown; timing: unknown }[],
  errorCode: string | undefined,
): void {
  const lines: string[] = [""];
  if (!summary) {
    lines.push(`The visit ended ${status}${errorCode ? ` with ${errorCode}` : ""}; no summary.`);
    console.log(lines.join("\n"));
    return;
  }
  lines.push(`Summary (${summary.language})`, `  ${summary.overview}`);
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    lines.push(`  ${title}:`);
    items.forEach((item) => lines.push(`    - ${item}`));
  };
  list(
    "Speakers",
    summary.speakers.map((s) => `${s.speaker}: ${s.role}${s.role === "unknown" ? "" : ` (${s.certainty === "stated" ? "said so in the recording" : "inferred"})`}`),
  );
  list("Key points", summary.keyPoints);
  list("Diagnoses", summary.diagnoses.map((d) => `${d.name} (${d.certainty})`));
  list("Medications", summary.medications.map((m) => `${m.name}${m.dose ? ` ${m.dose}` : ""} — ${m.change}${m.instructions ? `; ${m.instructions}` : ""}`));
  list("Tests ordered", summary.testsOrdered.map((t) => `${t.name}${t.timing ? ` (${t.timing})` : ""}`));
  if (summary.followUp) lines.push(`  Follow-up: ${[summary.followUp.timing, summary.followUp.reason].filter(Boolean).join(" — ")}`);
  list("Warning signs", summary.warningSigns);
  lines.push("", `Action items (${actions.length})`);
  actions.forEach((a, i) => {
    const when = [a.dueDate, a.timing].filter(Boolean).join(", ");
    lines.push(`  ${i + 1}. [${String(a.owner)}] ${String(a.description)}${when ? ` (${when})` : ""}`);
  });
  lines.push("", `The visit completed.`);
  console.log(lines.join("\n"));
}

function isTerminal(status: string | undefined): boolean {
  return status === "completed" || status === "partial" || status === "failed";
}

function formatElapsed(ms: number): string {
  return `+${(ms / 1000).toFixed(2).padStart(6)}s`;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
