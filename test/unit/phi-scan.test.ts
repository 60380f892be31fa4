// The PHI scanner the whole test run is checked with (test/setup/phi-log-scan.ts): each rule, in
// each encoding, must fire on a leak and stay quiet on what logs legitimately hold.

import { describe, expect, it } from "vitest";
import { loadVisitScript } from "../fakes/scripts.js";
import { describeFindings, findPhi, knownPhiPhrases, MIN_PHRASE_LENGTH } from "../support/phi-scan.js";
import type { PhiRule } from "../support/phi-scan.js";

const phrases = knownPhiPhrases();
const rulesIn = (text: string): PhiRule[] => [...new Set(findPhi(text, { phrases }).map((finding) => finding.rule))].sort();

const SIGNATURE = "5f1e0c3a9b7d".repeat(8);
const SIGNED_QUERY = `X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40demo.iam.gserviceaccount.com%2F20240501%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20240501T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=${SIGNATURE}`;
const SIGNED_URL = `https://storage.googleapis.com/demo-visit-pipeline.appspot.com/recording-1?${SIGNED_QUERY}`;
// An unsigned emulator ID token: header {"alg":"none","typ":"JWT"}, an empty signature.
const ID_TOKEN =
  "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL3NlY3VyZXRva2VuLmdvb2dsZS5jb20vZGVtbyIsInN1YiI6InVzZXItMSJ9.";
const SIGNED_JWT = `${ID_TOKEN}c2lnbmF0dXJlLWJ5dGVzLWhlcmU`;

/** A structured log line the way firebase-functions writes it. */
const logLine = (fields: Record<string, unknown>): string => JSON.stringify({ ...fields, severity: "INFO", message: "x" });

describe("findPhi: transcript and summary text", () => {
  it("finds a fixture sentence, whole or as a fragment, in a log line", () => {
    const sentence = "I'd also like to start lisinopril, ten milligrams once a day in the morning.";
    expect(rulesIn(logLine({ event: "x", detail: sentence }))).toEqual(["phrase"]);
    expect(rulesIn(logLine({ event: "x", detail: `summary_invalid: ${sentence.slice(9, 60)}` }))).toEqual(["phrase"]);
  });

  it("finds Spanish text and ignores case", () => {
    expect(rulesIn("Le voy a recetar amoxicilina, quinientos miligramos")).toEqual(["phrase"]);
    expect(rulesIn("IBUPROFEN CAN RAISE BLOOD PRESSURE, SO LET'S STOP IT")).toEqual(["phrase"]);
  });

  it("finds the fake OpenAI's fallback summary string", () => {
    expect(rulesIn(logLine({ event: "x", overview: "No content was provided." }))).toEqual(["phrase"]);
  });

  it("covers every fixture script with phrases of at least the minimum length", () => {
    expect(phrases.every((phrase) => phrase.length >= MIN_PHRASE_LENGTH)).toBe(true);
    for (const script of ["visit-en", "visit-es"]) {
      const longTurns = loadVisitScript(script).filter((turn) => turn.text.length >= 48);
      expect(longTurns.length).toBeGreaterThan(0);
      for (const turn of longTurns) expect(rulesIn(turn.text)).toEqual(["phrase"]);
    }
  });

  it("does not fire on short common words the scripts also contain", () => {
    expect(rulesIn(logLine({ event: "summarization_completed", model: "gpt-4o-mini", note: "Good morning. Thank you, doctor." }))).toEqual([]);
    expect(rulesIn("blood pressure")).toEqual([]);
  });
});

describe("findPhi: URLs and signed-URL parameters", () => {
  it.each([
    ["plain", SIGNED_URL],
    ["JSON-escaped", SIGNED_URL.replaceAll("/", "\\/")],
    ["double JSON-escaped", SIGNED_URL.replaceAll("/", "\\\\/")],
    ["percent-encoded", encodeURIComponent(SIGNED_URL)],
    ["double percent-encoded", encodeURIComponent(encodeURIComponent(SIGNED_URL))],
  ])("finds a %s signed URL", (_encoding, url) => {
    const text = logLine({ event: "transcription_failed", detail: `Download error, unable to download ${url}` });
    expect(rulesIn(text)).toEqual(["signed-url-param", "url"]);
  });

  it.each([
    ["a storage host", `storage.googleapis.com/demo-visit-pipeline.appspot.com/recording-1?${SIGNED_QUERY}`],
    ["an emulator host and port", `127.0.0.1:9199/demo-visit-pipeline.appspot.com/recording-1?${SIGNED_QUERY}`],
    ["only the query", `?X-Goog-Signature=${SIGNATURE}`],
    ["a V2 signed URL's parameters", `GoogleAccessId=sa%40demo.iam.gserviceaccount.com&Expires=1714521600&Signature=${SIGNATURE}`],
    ["percent-encoded parameters", `X-Goog-Signature%3D${SIGNATURE}`],
  ])("finds a signed URL without a scheme: %s", (_what, url) => {
    expect(rulesIn(logLine({ event: "x", detail: url }))).toEqual(["signed-url-param"]);
  });

  it("finds any http(s) URL, in each encoding", () => {
    expect(rulesIn("see http://127.0.0.1:4010/v2/transcript")).toEqual(["url"]);
    expect(rulesIn(String.raw`{"url":"https:\/\/api.assemblyai.com"}`)).toEqual(["url"]);
    expect(rulesIn("https%3A%2F%2Fapi.openai.com")).toEqual(["url"]);
  });

  it("does not fire on what logs legitimately hold", () => {
    const ordinary = [
      logLine({ event: "upload_ignored", reason: "not_a_visit_path", bucket: "demo-visit-pipeline.appspot.com", generation: "1714521600123456" }),
      logLine({ event: "provider_retry", provider: "assemblyai", operation: "submit", code: "provider_unavailable", httpStatus: 503, waitMs: 250 }),
      logLine({ event: "transcription_failed", code: "audio_download_failed", detail: "Download error, unable to download <url>. Please make sure the file exists." }),
      logLine({ event: "work_deferred_provider_outage", retryAt: "2024-05-01T12:34:56.789Z" }),
      logLine({ event: "x", detail: "connect ECONNREFUSED 127.0.0.1:4010; the signature of the response was invalid" }),
      logLine({ event: "x", detail: "file:///work/main/functions/src/logs.ts:17:19 signatures: 3" }),
    ];
    expect(rulesIn(ordinary.join("\n"))).toEqual([]);
  });
});

describe("findPhi: tokens", () => {
  it("finds an unsigned emulator ID token and a signed JWT", () => {
    expect(rulesIn(logLine({ event: "x", detail: `Bearer ${ID_TOKEN}` }))).toEqual(["jwt"]);
    expect(rulesIn(`authorization=${SIGNED_JWT}`)).toEqual(["jwt"]);
  });

  it("does not fire on ids, request ids or base64-ish words", () => {
    expect(rulesIn(logLine({ event: "x", requestId: "req-eyJ2", transcriptId: "5551f0e2-8a1c-4a1e-9b0f-2d7f6c2b8c11", word: "eyJhbGciOiJ" }))).toEqual([]);
  });
});

describe("findPhi: object names", () => {
  it.each([
    ["plain", "users/user-1/visits/visit-9/Jane Doe 2024-05-01.m4a"],
    ["JSON-escaped", String.raw`users\/user-1\/visits\/visit-9\/Jane Doe.m4a`],
    ["double JSON-escaped", String.raw`users\\/user-1\\/visits\\/visit-9\\/Jane Doe.m4a`],
    ["percent-encoded", "users%2Fuser-1%2Fvisits%2Fvisit-9%2FJane%20Doe.m4a"],
    ["percent-encoded, lower-case", "users%2fuser-1%2fvisits%2fvisit-9%2fa.m4a"],
    ["inside a gs:// path", "gs://demo-visit-pipeline.appspot.com/users/u1/visits/v1/a.m4a"],
  ])("finds a %s object name", (_encoding, name) => {
    expect(rulesIn(logLine({ event: "x", detail: `No such object: ${name}` }))).toContain("object-name");
    expect(rulesIn(logLine({ event: "x", detail: `No such object: ${name.replace(/\.m4a$/, "")}` }))).toEqual(["object-name"]);
  });

  it("does not fire on the word users, ids, codes, counts or dates", () => {
    const ordinary = [
      logLine({ event: "checker_run_finished", due: 3, handled: 3, durationMs: 41, outcomes: { polled: 2, users: 1 } }),
      logLine({ event: "x", detail: "users and visits: 2 users, 3 visits" }),
      logLine({ event: "x", detail: "users/user-1 has no visits" }),
      logLine({ event: "x", detail: "users/user-1/visits/visit-9" }),
      logLine({ event: "x", detail: "users/user-1/visits/visit-9/" }),
      logLine({ event: "retry_rejected", visitId: "visit-81234-lx3k9a-1", code: "not_retryable" }),
      logLine({ event: "x", at: "2024-05-01T00:00:00.000Z", date: "2024-05-01", count: 12345 }),
    ];
    expect(rulesIn(ordinary.join("\n"))).toEqual([]);
  });
});

describe("findPhi: recording file names", () => {
  it.each(["visit-en.m4a", "Jane%20Doe.M4A", "Jane Doe (2).wav", "clip_1.webm"])("finds %j on its own", (name) => {
    expect(rulesIn(logLine({ event: "x", detail: `could not read ${name}` }))).toEqual(["file-name"]);
  });

  it("does not fire on media types or bare extensions", () => {
    expect(rulesIn(logLine({ event: "upload_accepted", contentType: "audio/mp4", other: "audio/x-m4a", ext: "m4a", note: ".m4a files" }))).toEqual([]);
  });
});

describe("findPhi on webhook secrets", () => {
  const secret = "q3J0Yk9-vL_2mXc8RZp1wQeT5uHn7sDf4gA6bKjLoPi";

  it("finds the secret next to its header or submit field, redacted", () => {
    expect(rulesIn(`X-Visit-Webhook-Secret: ${secret}`)).toEqual(["webhook-secret"]);
    expect(rulesIn(logLine({ event: "x", headers: { "x-visit-webhook-secret": secret } }))).toEqual(["webhook-secret"]);
    expect(rulesIn(logLine({ event: "x", body: JSON.stringify({ webhook_auth_header_value: secret }) }))).toEqual(["webhook-secret"]);
    const report = describeFindings(findPhi(`X-Visit-Webhook-Secret=${secret}`, { phrases }));
    expect(report).toContain("[webhook-secret]");
    expect(report).not.toContain(secret.slice(0, 8));
  });

  it("does not fire on the header's name alone or on the events that mention webhooks", () => {
    expect(rulesIn(logLine({ event: "webhook_rejected", reason: "secret_missing", header: "X-Visit-Webhook-Secret" }))).toEqual([]);
    expect(rulesIn(logLine({ event: "webhook_handled", outcome: "transcript_saved", transcriptId: "5551f0e2-8a1c-4a1e-9b0f-2d7f6c2b8c11" }))).toEqual([]);
  });
});

describe("findPhi findings", () => {
  it("say which rule matched where, and redact the secret", () => {
    const text = [
      `a ${SIGNED_URL}`,
      `b ${SIGNED_JWT}`,
      "c users/user-1/visits/visit-9/Jane Doe.m4a",
      "d Ibuprofen can raise blood pressure, so let's stop it.",
    ].join("\n");
    const findings = findPhi(text, { phrases });
    expect([...new Set(findings.map((finding) => finding.rule))]).toEqual(["url", "signed-url-param", "jwt", "object-name", "file-name", "phrase"]);
    expect(findings.filter((finding) => finding.rule === "signed-url-param")).toHaveLength(6);
    expect(findings.map((finding) => finding.index)).toEqual([...findings.map((finding) => finding.index)].sort((a, b) => a - b));
    expect(text.slice(findings.find((finding) => finding.rule === "jwt")!.index)).toMatch(/^eyJ/);
    const report = describeFindings(findings);
    for (const secret of [SIGNATURE.slice(0, 12), "storage.googleapis.com", SIGNED_JWT.slice(10, 40), "Jane", "user-1", "blood pressure"]) {
      expect(report).not.toContain(secret);
    }
    expect(report).toContain("[jwt]");
    expect(report).toContain("[object-name]");
  });

  it("are found in one pass over a large text, quickly", () => {
    const lines = Array.from({ length: 20_000 }, (_, i) =>
      logLine({ event: "transcript_pending", visitId: `visit-${i}`, state: "processing", checks: i, nextCheckInSeconds: 5 }),
    );
    lines.push(logLine({ event: "x", detail: "users/u1/visits/v1/recording" }));
    const started = performance.now();
    const findings = findPhi(lines.join("\n"), { phrases });
    expect(findings.map((finding) => finding.rule)).toEqual(["object-name"]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
