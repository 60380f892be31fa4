// Log hygiene through the real handlers: what a client or a provider sends (a hostile content
// type, an error message quoting the signed URL and the object name) reaches the logs only
// normalized, bounded and stripped. (The setup file test/setup/phi-log-scan.ts scans every log
// line of this file as well.)

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import type { LoggedEvent } from "../../functions/src/runtime-hooks.js";
import { ERROR_CODES } from "../../functions/src/visit/errors.js";
import { startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { findPhi, knownPhiPhrases } from "../support/phi-scan.js";
import { newVisitId, readVisit } from "../support/visits.js";

let runtime: LocalRuntime;
let events: LoggedEvent[] = [];

beforeAll(async () => {
  runtime = await startLocalRuntime({ assemblyai: { queuedMs: 0, processingMs: 0 } });
});

afterAll(async () => {
  installRuntimeHooks({ onLog: undefined });
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  events = [];
  installRuntimeHooks({ onLog: (entry) => events.push(entry) });
});

const eventsNamed = (event: string): LoggedEvent[] => events.filter((entry) => entry.event === event);
const leaks = (): string[] => findPhi(JSON.stringify(events), { phrases: knownPhiPhrases() }).map((finding) => finding.rule);

describe("a client-supplied content type", () => {
  it.each([
    // An audio type, so rejected for its size.
    ["with parameters, an object name and a NUL", `Audio/X; name="users/u1/visits/v1/secret name.m4a"${"y".repeat(10_000)}\u0000`, 0, "empty_audio", "audio/x"],
    ["with control characters and no parameters", `\u0000Text/\u001bHTML${"z".repeat(10_000)}\r\n`, 1200, "invalid_content_type", `text/html${"z".repeat(91)}`],
    ["that is an object name", `users/u1/visits/v1/secret name.m4a${"q".repeat(10_000)}`, 1200, "invalid_content_type", "<object>"],
  ] as const)("%s is logged as a bounded, normalized media type", async (_what, contentType, sizeBytes, code, logged) => {
    const visitId = newVisitId();
    await runtime.upload({ uid: "user-1", visitId, contentType, fileName: "Jane Doe.m4a", sizeBytes });

    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.error).toEqual({ stage: "upload", code, message: ERROR_CODES[code].message, retryable: false });
    const [rejected] = eventsNamed("upload_rejected");
    expect(rejected?.fields).toMatchObject({ visitId, code, contentType: logged });
    expect(String(rejected?.fields.contentType).length).toBeLessThanOrEqual(100);
    expect(String(rejected?.fields.contentType)).not.toMatch(/[\u0000-\u001f\u007f;]/);
    expect(leaks()).toEqual([]);
  });
});

describe("a provider error quoting the signed URL and the object name", () => {
  it("reaches the logs and the visit stripped", async () => {
    const visitId = newVisitId();
    const objectName = `users/user-1/visits/${visitId}/Jane Doe.m4a`;
    const signedUrl = `http://127.0.0.1:9199/demo-visit-pipeline.appspot.com/${encodeURI(objectName)}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=${"ab12".repeat(32)}`;
    runtime.assemblyai.registerAudio("Jane", {
      kind: "error",
      error:
        `Download error, unable to download ${signedUrl}. ` +
        `Details: {"audio_url":"${signedUrl.replaceAll("/", "\\/")}","name":"${encodeURIComponent(objectName)}"}`,
    });
    await runtime.upload({ uid: "user-1", visitId, fileName: "Jane Doe.m4a" });
    await runtime.runUntilSettled([visitId]);

    const visit = await readVisit(visitId);
    expect(visit.error?.code).toBe("audio_download_failed");
    expect(visit.error?.message).toBe(ERROR_CODES.audio_download_failed.message);
    const [failed] = eventsNamed("transcription_failed");
    expect(failed?.fields.detail).toMatch(/^Download error, unable to download <url>/);
    expect(JSON.stringify(events)).not.toContain("Jane");
    expect(leaks()).toEqual([]);
  });
});
