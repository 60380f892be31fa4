// sanitizeDetail and PipelineError: provider and library text is stripped of URLs (every
// encoding), object names and tokens, and bounded, before it can reach a log line, an Error's
// message or a stack trace. The log functions apply it to every string field.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { logs } from "../../functions/src/logs.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { asPipelineError, PipelineError, sanitizeDetail } from "../../functions/src/visit/errors.js";
import { findPhi } from "../support/phi-scan.js";

const SIGNATURE = "9c0ffee1".repeat(16);
const OBJECT = "users/user-1/visits/visit-9/Jane Doe 2024-05-01.m4a";
const SIGNED_URL = `https://storage.googleapis.com/demo-visit-pipeline.appspot.com/${encodeURI(OBJECT)}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40demo.iam.gserviceaccount.com%2F20240501%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Signature=${SIGNATURE}`;
const ID_TOKEN = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1c2VyLTEiLCJhdWQiOiJkZW1vIn0.";

/** What the PHI scan would report about a value (no known phrases: this is about the patterns). */
const leaks = (text: string): string[] => findPhi(text, { phrases: [] }).map((finding) => finding.rule);

describe("sanitizeDetail", () => {
  it.each([
    ["a plain URL", `Download error, unable to download ${SIGNED_URL}. Please make sure the file exists.`],
    ["a JSON-escaped URL", `{"error":"unable to download ${SIGNED_URL.replaceAll("/", "\\/")}","status":"error"}`],
    ["a percent-encoded URL", `audio_url=${encodeURIComponent(SIGNED_URL)}&speaker_labels=true`],
    ["a double percent-encoded URL", `next=${encodeURIComponent(encodeURIComponent(SIGNED_URL))}`],
    ["a scheme-less storage URL", `GET storage.googleapis.com/b/audio.m4a?X-Goog-Signature=${SIGNATURE} failed`],
    ["a scheme-less emulator URL", `GET 127.0.0.1:9199/b/audio.m4a?X-Goog-Credential=sa&X-Goog-Signature=${SIGNATURE} failed`],
    ["a V2 signed query", `GoogleAccessId=sa%40demo.iam&Expires=1714521600&Signature=${SIGNATURE}`],
    ["a plain object name", `No such object: demo-visit-pipeline.appspot.com/${OBJECT}`],
    ["a JSON-escaped object name", `{"name":"${OBJECT.replaceAll("/", "\\/")}","code":404}`],
    ["a percent-encoded object name", `No such object: ${encodeURIComponent(OBJECT)}`],
    ["an ID token", `Firebase ID token has expired: ${ID_TOKEN}`],
  ])("strips %s", (_what, detail) => {
    const sanitized = sanitizeDetail(detail);
    expect(leaks(detail).length).toBeGreaterThan(0);
    expect(leaks(sanitized)).toEqual([]);
    for (const secret of [SIGNATURE.slice(0, 16), "Jane", "Doe", ID_TOKEN.slice(0, 20)]) expect(sanitized).not.toContain(secret);
  });

  it("strips a URL and the object name in its path as one", () => {
    expect(sanitizeDetail(`Download error, unable to download ${SIGNED_URL}. Please make sure the file exists.`)).toBe(
      "Download error, unable to download <url> Please make sure the file exists.",
    );
  });

  it("keeps what helps diagnose: codes, hosts without a signed query, counts", () => {
    expect(sanitizeDetail("connect ECONNREFUSED 127.0.0.1:4010")).toBe("connect ECONNREFUSED 127.0.0.1:4010");
    expect(sanitizeDetail("Download error, unable to download https://x.example/a.m4a. Please retry.")).toBe(
      "Download error, unable to download <url> Please retry.",
    );
    expect(sanitizeDetail("429 Too Many Requests (users: 3, visits: 4)")).toBe("429 Too Many Requests (users: 3, visits: 4)");
  });

  it("takes a file name with spaces and quotes whole", () => {
    expect(sanitizeDetail(`object users/u1/visits/v1/John "Jack" Smith.m4a`)).toBe("object <object>");
    expect(sanitizeDetail("a users/u1/visits/v1/x.m4a\nnext line")).toBe("a <object>\nnext line");
  });

  it("bounds the length after stripping, and is idempotent", () => {
    const long = `${"x".repeat(1_000)} ${SIGNED_URL}`;
    const once = sanitizeDetail(long);
    expect(once.length).toBe(301);
    expect(once.endsWith("…")).toBe(true);
    expect(sanitizeDetail(once)).toBe(once);
    // Stripped first: fifty long URLs still fit.
    expect(sanitizeDetail(`${SIGNED_URL} `.repeat(50))).toBe("<url> ".repeat(50));
  });

  it("stays fast on hostile input", () => {
    const started = performance.now();
    for (const input of ["users/".repeat(50_000), "users/u/visits/".repeat(20_000), "a".repeat(500_000), "X-Goog-".repeat(50_000), "eyJa.".repeat(50_000)]) {
      expect(sanitizeDetail(input).length).toBeLessThanOrEqual(301);
    }
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("PipelineError", () => {
  it("builds its message and detail from the sanitized detail", () => {
    const error = new PipelineError("audio_download_failed", { detail: `unable to download ${SIGNED_URL} (${OBJECT})` });
    expect(error.detail).toBe("unable to download <url> (<object>");
    expect(error.message).toBe(`audio_download_failed: ${error.detail}`);
    expect(leaks(error.message)).toEqual([]);
    expect(leaks(error.stack ?? "")).toEqual([]);
    expect(leaks(error.withOutcomeUnknown().message)).toEqual([]);
  });

  it("wraps foreign errors the same way", () => {
    const error = asPipelineError(new Error(`Request failed for ${ID_TOKEN} at ${encodeURIComponent(SIGNED_URL)}`));
    expect(error.code).toBe("internal_error");
    expect(error.message).toBe("internal_error: Error: Request failed for <token> at <url>");
    expect(leaks(error.stack ?? "")).toEqual([]);
  });

  it("without detail, the message is the code", () => {
    expect(new PipelineError("provider_timeout").message).toBe("provider_timeout");
  });
});

describe("log fields", () => {
  let logged: LoggedEvent[] = [];
  beforeAll(() => installRuntimeHooks({ onLog: (entry) => logged.push(entry) }));
  afterAll(() => installRuntimeHooks({ onLog: undefined }));
  afterEach(() => {
    logged = [];
  });

  it("every string field is sanitized and bounded, not only detail", () => {
    logs.transcriptPending("visit-1", `processing ${SIGNED_URL} ${OBJECT}`, 1, 5);
    const state = String(logged[0]?.fields.state);
    expect(state).toBe("processing <url> <object>");
    logs.uploadAccepted("visit-1", `audio/${"x".repeat(10_000)}`, 10);
    expect(String(logged[1]?.fields.contentType).length).toBe(301);
  });

  it("a rejected upload's client content type is logged as a bounded media type", () => {
    const hostile = `Audio/X; name="users/u1/visits/v1/secret name.m4a"${"y".repeat(10_000)}\u0000`;
    logs.uploadRejected("visit-1", "invalid_content_type", hostile, 10);
    expect(logged[0]?.fields.contentType).toBe("audio/x");

    logs.uploadRejected("visit-1", "invalid_content_type", `\u0000Text/\u0007HTML${"z".repeat(10_000)}\r\n`, 10);
    const bounded = String(logged[1]?.fields.contentType);
    expect(bounded).toBe(`text/html${"z".repeat(91)}`);

    logs.uploadRejected("visit-1", "invalid_content_type", `users/u1/visits/v1/secret name.m4a${"q".repeat(10_000)}`, 10);
    expect(logged[2]?.fields.contentType).toBe("<object>");

    logs.uploadRejected("visit-1", "invalid_content_type", undefined, 10);
    expect(logged[3]?.fields.contentType).toBeUndefined();
    expect(leaks(JSON.stringify(logged))).toEqual([]);
  });
});
