import { describe, expect, it } from "vitest";
import { exitCodeForRetry, exitCodeForStatus, parseCliArgs } from "../src/cli/args.js";
import { nextStepHint, retryOutcomeText } from "../src/cli/messages.js";
import { createProgressPrinter, renderProgressBar, renderProgressLine } from "../src/cli/progress-bar.js";
import { clockTime, timelineLine } from "../src/cli/timeline.js";
import { visitContentText } from "../src/cli/visit-content-text.js";
import { describeVisitContent } from "../src/visit-content.js";
import { describeVisit } from "../src/describe-visit.js";
import type { VisitDocument } from "../src/visit-document.js";
import { progressOf } from "../src/upload.js";

const MIB = 1024 * 1024;

function output(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, printer: createProgressPrinter({ isTTY, write: (text) => writes.push(text) }) };
}

describe("progress bar", () => {
  it("renders a bar, a percentage rounded down and the amount", () => {
    expect(renderProgressBar(progressOf(0, 4 * MIB), 10)).toBe("[----------]   0%  0.0 / 4.0 MiB");
    expect(renderProgressBar(progressOf(1.5 * MIB, 4 * MIB), 10)).toBe("[####------]  37%  1.5 / 4.0 MiB");
    expect(renderProgressBar(progressOf(4 * MIB - 1, 4 * MIB), 10)).toBe("[##########]  99%  4.0 / 4.0 MiB");
    expect(renderProgressBar(progressOf(4 * MIB, 4 * MIB), 10)).toBe("[##########] 100%  4.0 / 4.0 MiB");
  });

  it("on a TTY, redraws one line in place and ends it when finished", () => {
    const { writes, printer } = output(true);
    printer.update(progressOf(0, 4 * MIB));
    printer.update(progressOf(0, 4 * MIB));
    printer.update(progressOf(2 * MIB, 4 * MIB));
    printer.update(progressOf(4 * MIB, 4 * MIB));
    printer.finish();
    expect(writes).toEqual([
      `\r${renderProgressBar(progressOf(0, 4 * MIB))}`,
      `\r${renderProgressBar(progressOf(2 * MIB, 4 * MIB))}`,
      `\r${renderProgressBar(progressOf(4 * MIB, 4 * MIB))}`,
      "\n",
    ]);
    expect(writes.join("")).not.toMatch(/\n.*\r/);
  });

  it("on a TTY, pads over a longer previous line", () => {
    const { writes, printer } = output(true);
    printer.update(progressOf(10 * MIB, 10 * MIB));
    printer.update(progressOf(0, 1 * MIB));
    const [first = "", second = ""] = writes;
    expect(second.length).toBe(first.length);
    expect(second.trimEnd()).toBe(`\r${renderProgressBar(progressOf(0, 1 * MIB))}`);
  });

  it("prints nothing on finish when nothing was drawn", () => {
    const { writes, printer } = output(true);
    printer.finish();
    expect(writes).toEqual([]);
  });

  it("elsewhere, prints plain lines, one per 10 %, without carriage returns", () => {
    const { writes, printer } = output(false);
    for (let bytes = 0; bytes <= 100; bytes += 4) printer.update(progressOf(bytes * MIB, 100 * MIB));
    printer.finish();
    expect(writes).toEqual([0, 12, 20, 32, 40, 52, 60, 72, 80, 92, 100].map((percent) => `${renderProgressLine(progressOf(percent * MIB, 100 * MIB))}\n`));
    expect(writes[1]).toBe("Uploaded 12% (12.0 / 100.0 MiB)\n");
    expect(writes.join("")).not.toContain("\r");
  });
});

describe("status timeline", () => {
  const at = new Date(2026, 2, 1, 12, 0, 3);
  const doc = (fields: Partial<VisitDocument> & Pick<VisitDocument, "status">): VisitDocument => ({
    error: null,
    hasTranscript: false,
    updatedAt: at,
    statusEnteredAt: at,
    ...fields,
  });

  it("prints local time, status and label", () => {
    expect(timelineLine(describeVisit(doc({ status: "transcribing" }), at), at)).toBe("12:00:03  transcribing  Transcribing the recording…");
    expect(clockTime(new Date(2026, 0, 2, 7, 5, 9))).toBe("07:05:09");
  });

  it("prints the stuck warning with how long nothing has changed", () => {
    const later = new Date(at.getTime() + 61 * 60_000 + 2_000);
    expect(timelineLine(describeVisit(doc({ status: "transcribing" }), later), later)).toBe(
      "13:01:05  transcribing  ⚠ No change for 1:01:02. Transcription is taking longer than usual.",
    );
    const waiting = describeVisit(null, later, { waitingSince: at });
    expect(timelineLine(waiting, later)).toMatch(/^13:01:05 {2}waiting_for_upload_processing {2}⚠ No change for 1:01:02\. The visit has not been created yet: is the functions emulator running/);
  });

  it("prints failures with their message", () => {
    const failed = describeVisit(doc({ status: "failed", error: { stage: "transcription", code: "no_speech_detected", message: "No speech was found in the recording.", retryable: false } }), at);
    expect(timelineLine(failed, at)).toBe("12:00:03  failed  Processing failed: No speech was found in the recording.");
  });
});

describe("next-step hints", () => {
  const view = (fields: Partial<VisitDocument> & Pick<VisitDocument, "status">) =>
    describeVisit({ error: null, hasTranscript: false, updatedAt: null, statusEnteredAt: null, ...fields }, new Date());

  it("offers the retry command for a partial or retryable failed visit", () => {
    expect(nextStepHint(view({ status: "partial" }), "v1")).toBe("The transcript is available. Retry the summary with: npm run stub -- retry v1");
    expect(nextStepHint(view({ status: "failed", error: { stage: "transcription", code: "transcription_failed", message: "x", retryable: true } }), "v1")).toBe(
      "Retry with: npm run stub -- retry v1",
    );
  });

  it("offers a new upload when retrying cannot help", () => {
    expect(nextStepHint(view({ status: "failed", error: { stage: "upload", code: "empty_audio", message: "x", retryable: false } }), "v1")).toBe(
      "Retrying cannot help; upload a new recording into the visit: npm run stub -- upload <file> --visit v1",
    );
  });

  it("has nothing to add for a completed or in-progress visit", () => {
    expect(nextStepHint(view({ status: "completed" }), "v1")).toBeNull();
    expect(nextStepHint(view({ status: "summarizing" }), "v1")).toBeNull();
  });
});

describe("retry outcome text", () => {
  it("describes each outcome, with the countdown for a wait", () => {
    expect(retryOutcomeText({ kind: "accepted", status: "summarizing", resumedStage: "summarization" }, "v1")).toBe(
      "Retry accepted: resuming summarization (status summarizing). Watch it: npm run stub -- watch v1",
    );
    expect(retryOutcomeText({ kind: "disabled", reason: "already_processing" }, "v1")).toBe("Nothing to retry yet: the visit is still being processed.");
    expect(retryOutcomeText({ kind: "disabled", reason: "nothing_to_retry" }, "v1")).toBe("Nothing to retry: the visit is complete.");
    expect(retryOutcomeText({ kind: "wait", retryAfterSeconds: 27, reason: "retry_too_soon" }, "v1", () => 0)).toBe(
      "This visit was retried a moment ago. Try again in 0:27",
    );
    expect(retryOutcomeText({ kind: "wait", retryAfterSeconds: 1800, reason: "retry_quota_exceeded" }, "v1", () => 0)).toBe(
      "Too many retries in the last hour. Try again in 30:00",
    );
    expect(retryOutcomeText({ kind: "error", code: "visit_not_found", message: "No such visit.", requestId: "r-9" }, "v1")).toBe(
      "Retry failed (visit_not_found): No such visit. [request r-9]",
    );
    expect(retryOutcomeText({ kind: "error", code: "network", message: "Offline.", requestId: null }, "v1")).toBe("Retry failed (network): Offline.");
  });
});

describe("command line", () => {
  it("parses each command", () => {
    expect(parseCliArgs(["upload", "test/fixtures/visit-en.m4a"])).toEqual({ ok: true, command: { kind: "upload", file: "test/fixtures/visit-en.m4a", visitId: undefined } });
    expect(parseCliArgs(["upload", "a.m4a", "--visit", "v1"])).toEqual({ ok: true, command: { kind: "upload", file: "a.m4a", visitId: "v1" } });
    expect(parseCliArgs(["watch", "v1"])).toEqual({ ok: true, command: { kind: "watch", visitId: "v1" } });
    expect(parseCliArgs(["retry", "v1"])).toEqual({ ok: true, command: { kind: "retry", visitId: "v1" } });
    expect(parseCliArgs(["show", "v1"])).toEqual({ ok: true, command: { kind: "show", visitId: "v1", original: false } });
    expect(parseCliArgs(["show", "v1", "--original"])).toEqual({ ok: true, command: { kind: "show", visitId: "v1", original: true } });
    expect(parseCliArgs(["language", "es"])).toEqual({ ok: true, command: { kind: "language", language: "es" } });
    expect(parseCliArgs(["language", "none"])).toEqual({ ok: true, command: { kind: "language", language: null } });
  });

  it("shows help for --help, -h and no command", () => {
    for (const argv of [["--help"], ["-h"], [], ["watch", "v1", "--help"]]) expect(parseCliArgs(argv)).toEqual({ ok: true, command: { kind: "help" } });
  });

  it("says what is wrong with a command line", () => {
    expect(parseCliArgs(["upload"])).toEqual({ ok: false, message: "upload needs a file" });
    expect(parseCliArgs(["retry"])).toEqual({ ok: false, message: "retry needs a visit id" });
    expect(parseCliArgs(["watch", "v1", "v2"])).toEqual({ ok: false, message: "Unexpected arguments: v2" });
    expect(parseCliArgs(["watch", "v1", "--visit", "v2"])).toEqual({ ok: false, message: "--visit only applies to upload" });
    expect(parseCliArgs(["download", "v1"])).toEqual({ ok: false, message: "Unknown command: download" });
    expect(parseCliArgs(["show"])).toEqual({ ok: false, message: "show needs a visit id" });
    expect(parseCliArgs(["language"])).toEqual({ ok: false, message: "language needs a language code, or none" });
    expect(parseCliArgs(["watch", "v1", "--original"])).toEqual({ ok: false, message: "--original only applies to show" });
    expect(parseCliArgs(["watch", "v1", "--verbose"])).toMatchObject({ ok: false, message: expect.stringContaining("--verbose") });
  });

  it("exits 0 when completed, 2 when partial, 1 when failed", () => {
    expect([exitCodeForStatus("completed"), exitCodeForStatus("partial"), exitCodeForStatus("failed")]).toEqual([0, 2, 1]);
    expect(exitCodeForRetry({ kind: "accepted", status: "pending", resumedStage: "transcription" })).toBe(0);
    expect(exitCodeForRetry({ kind: "wait", retryAfterSeconds: 5, reason: "retry_too_soon" })).toBe(1);
  });
});

describe("show: a visit's content as text", () => {
  const summary = (language: string, overview: string) => ({
    language,
    speakers: [
      { speaker: "A", role: "clinician", certainty: "stated" },
      { speaker: "B", role: "patient", certainty: "inferred" },
    ],
    overview,
    keyPoints: [],
    diagnoses: [],
    medications: [{ name: "Lisinopril", dose: "10 mg", change: "started", instructions: null }],
    testsOrdered: [],
    actionItems: [{ description: overview.startsWith("[es]") ? "[es] Take it daily" : "Take it daily", owner: "patient", dueDate: null, timing: null }],
    followUp: null,
    warningSigns: [],
  });
  const documents = {
    visit: { status: "completed", summary: summary("en", "Blood pressure follow-up."), summaryTranslation: { language: "es", state: "saved" }, clinicianNote: { format: "soap", state: "saved" } },
    transcript: { storage: "inline", utterances: [{ speaker: "A", text: "Good morning." }, { speaker: "B", text: "Hello, doctor." }] },
    translation: { language: "es", summary: summary("es", "[es] Blood pressure follow-up.") },
    clinicianNote: { note: { chiefComplaint: "Headaches", subjective: ["Headaches for two weeks"], objective: [], assessment: ["Hypertension"], plan: ["Start lisinopril"] } },
  };

  it("prints the preferred-language summary with the command to switch, the speakers by role, the transcript and the note", () => {
    expect(visitContentText(describeVisitContent(documents), "v1")).toBe(
      [
        "[Show the original (English): npm run stub -- show v1 --original]",
        "Summary (es)",
        "[es] Blood pressure follow-up.",
        "",
        "Medications:",
        "  - Lisinopril 10 mg (started)",
        "",
        "To do:",
        "  - [es] Take it daily [patient]",
        "",
        "Speakers:",
        "  - A = Clinician",
        "  - B = Patient (likely)",
        "",
        "Transcript:",
        "  - Clinician: Good morning.",
        "  - Patient (likely): Hello, doctor.",
        "",
        "Clinician's note (SOAP)",
        "Chief complaint: Headaches",
        "",
        "Subjective:",
        "  - Headaches for two weeks",
        "",
        "Objective:",
        "  - —",
        "",
        "Assessment:",
        "  - Hypertension",
        "",
        "Plan:",
        "  - Start lisinopril",
        "",
      ].join("\n"),
    );
  });

  it("prints the original with the command to switch back", () => {
    const text = visitContentText(describeVisitContent(documents, "original"), "v1");
    expect(text.split("\n").slice(0, 3)).toEqual(["[Show in Spanish: npm run stub -- show v1]", "Summary (en)", "Blood pressure follow-up."]);
  });

  it("says when there is no summary yet", () => {
    expect(visitContentText(describeVisitContent({ visit: { status: "transcribing" }, transcript: null, translation: null, clinicianNote: null }), "v1")).toBe("No summary yet.\n");
  });
});
