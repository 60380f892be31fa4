import { describe, expect, it } from "vitest";
import { retryVisit } from "../src/retry.js";
import type { RetryOutcome, RetryTransport } from "../src/retry.js";

const API = "http://127.0.0.1:5001/demo-visit-pipeline/us-central1/api";

interface Request {
  url: string;
  init: RequestInit;
}

function transport(answer: (request: Request) => Promise<Response> | Response, overrides: Partial<RetryTransport> = {}) {
  const requests: Request[] = [];
  const value: RetryTransport = {
    apiBaseUrl: API,
    getIdToken: () => Promise.resolve("id-token-1"),
    fetch: async (url, init) => {
      requests.push({ url, init });
      return answer({ url, init });
    },
    ...overrides,
  };
  return { transport: value, requests };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

const apiError = (status: number, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: `message for ${code}`, requestId: "req-1", ...extra } }, headers);

async function outcomeFor(response: Response): Promise<RetryOutcome> {
  return retryVisit(transport(() => response).transport, "visit1");
}

describe("retryVisit", () => {
  it("POSTs to the visit's retry endpoint with the ID token and no body", async () => {
    const { transport: t, requests } = transport(() =>
      json(202, { visitId: "visit1", status: "pending", resumedStage: "transcription", retryCount: 1 }),
    );
    await expect(retryVisit(t, "visit1")).resolves.toEqual({ kind: "accepted", status: "pending", resumedStage: "transcription" });
    expect(requests).toHaveLength(1);
    expect(requests[0]?.url).toBe(`${API}/visits/visit1/retry`);
    expect(requests[0]?.init.method).toBe("POST");
    expect(requests[0]?.init.headers).toEqual({ Authorization: "Bearer id-token-1" });
    expect(requests[0]?.init.body).toBeUndefined();
  });

  it.each([
    ["transcription", "pending"],
    ["transcript_checkpoint", "transcribing"],
    ["summarization", "summarizing"],
  ] as const)("accepts a retry resuming %s", async (resumedStage, status) => {
    expect(await outcomeFor(json(202, { visitId: "visit1", status, resumedStage, retryCount: 2 }))).toEqual({ kind: "accepted", status, resumedStage });
  });

  it.each([
    ["already_processing"],
    ["nothing_to_retry"],
    ["not_retryable"],
  ] as const)("409 %s disables the button", async (code) => {
    expect(await outcomeFor(apiError(409, code))).toEqual({ kind: "disabled", reason: code });
  });

  it.each([
    ["retry_too_soon", 27],
    ["retry_quota_exceeded", 1800],
  ] as const)("429 %s asks to wait retryAfterSeconds", async (code, seconds) => {
    expect(await outcomeFor(apiError(429, code, { retryAfterSeconds: seconds }, { "Retry-After": String(seconds) }))).toEqual({
      kind: "wait",
      retryAfterSeconds: seconds,
      reason: code,
    });
  });

  it("429 falls back to the Retry-After header when the body has no retryAfterSeconds", async () => {
    expect(await outcomeFor(apiError(429, "retry_too_soon", {}, { "Retry-After": "12" }))).toEqual({ kind: "wait", retryAfterSeconds: 12, reason: "retry_too_soon" });
  });

  it("429 without any wait time cannot drive a countdown: bad_response", async () => {
    expect(await outcomeFor(apiError(429, "retry_too_soon", {}, { "Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT" }))).toMatchObject({
      kind: "error",
      code: "bad_response",
    });
  });

  it.each([
    [400, "invalid_visit_id"],
    [404, "visit_not_found"],
    [405, "method_not_allowed"],
    [413, "payload_too_large"],
    [500, "internal"],
    [503, "internal"],
  ])("%i %s is an error carrying the API's code, message and request id", async (status, code) => {
    expect(await outcomeFor(apiError(status, code))).toEqual({ kind: "error", code, message: `message for ${code}`, requestId: "req-1" });
  });

  it("passes on a code it does not map under a status that usually means something else", async () => {
    expect(await outcomeFor(apiError(409, "conflict"))).toEqual({ kind: "error", code: "conflict", message: "message for conflict", requestId: "req-1" });
    expect(await outcomeFor(apiError(429, "too_many_requests", { retryAfterSeconds: 5 }))).toMatchObject({ kind: "error", code: "too_many_requests" });
  });

  it("401 asks the user to sign in again, keeping the request id", async () => {
    expect(await outcomeFor(apiError(401, "unauthenticated"))).toEqual({
      kind: "error",
      code: "sign_in_again",
      message: "Please sign in again.",
      requestId: "req-1",
    });
  });

  it("401 from in front of the function (no JSON) still means sign in again", async () => {
    expect(await outcomeFor(new Response("<html>Unauthorized</html>", { status: 401 }))).toEqual({
      kind: "error",
      code: "sign_in_again",
      message: "Please sign in again.",
      requestId: null,
    });
  });

  it("asks to sign in again without a request when there is no user to get a token for", async () => {
    const { transport: t, requests } = transport(() => json(202, {}), { getIdToken: () => Promise.reject(new Error("Nobody is signed in.")) });
    expect(await retryVisit(t, "visit1")).toMatchObject({ kind: "error", code: "sign_in_again" });
    expect(requests).toEqual([]);
  });

  it("reports a token refresh that could not reach Auth as a network problem", async () => {
    const offline = Object.assign(new Error("Firebase: Error (auth/network-request-failed)."), { code: "auth/network-request-failed" });
    const { transport: t } = transport(() => json(202, {}), { getIdToken: () => Promise.reject(offline) });
    expect(await retryVisit(t, "visit1")).toMatchObject({ kind: "error", code: "network" });
  });

  it("refuses a malformed visit id without a request", async () => {
    const { transport: t, requests } = transport(() => json(202, {}));
    expect(await retryVisit(t, "a/b")).toEqual({ kind: "error", code: "invalid_visit_id", message: '"a/b" is not a visit id.', requestId: null });
    expect(requests).toEqual([]);
  });

  describe("malformed answers are bad_response", () => {
    it.each([
      ["202 without resumedStage", json(202, { visitId: "visit1", status: "pending", retryCount: 1 })],
      ["202 with an unknown stage", json(202, { visitId: "visit1", status: "pending", resumedStage: "upload", retryCount: 1 })],
      ["202 with an unknown status", json(202, { visitId: "visit1", status: "queued", resumedStage: "transcription", retryCount: 1 })],
      ["202 that is not JSON", new Response("Accepted", { status: 202 })],
      ["202 with an empty body", new Response(null, { status: 202 })],
      ["an error without the error object", json(409, { code: "already_processing" })],
      ["an error without a request id", json(404, { error: { code: "visit_not_found", message: "Not found." } })],
      ["an error with an empty code", json(500, { error: { code: "", message: "x", requestId: "r" } })],
      ["a proxy's HTML error page", new Response("<html>Bad Gateway</html>", { status: 502 })],
      ["a negative wait", apiError(429, "retry_too_soon", { retryAfterSeconds: -1 })],
    ])("%s", async (_name, response) => {
      const outcome = await outcomeFor(response);
      expect(outcome).toEqual({ kind: "error", code: "bad_response", message: expect.stringContaining(`HTTP ${response.status}`), requestId: null });
    });
  });

  describe("network failures", () => {
    it("reports a failed request as network", async () => {
      const { transport: t } = transport(() => Promise.reject(new TypeError("fetch failed")));
      expect(await retryVisit(t, "visit1")).toEqual({
        kind: "error",
        code: "network",
        message: "The server could not be reached. Check the connection and try again.",
        requestId: null,
      });
    });

    it("reports a connection lost while reading the answer as network", async () => {
      const broken = new ReadableStream({
        start(controller) {
          controller.error(new TypeError("terminated"));
        },
      });
      expect(await outcomeFor(new Response(broken, { status: 202 }))).toMatchObject({ kind: "error", code: "network" });
    });

    it("gives up on a server that does not answer in time", async () => {
      const { transport: t } = transport(
        ({ init }) =>
          new Promise<Response>((_resolve, reject) => {
            const signal = init.signal;
            // Like fetch: reject with the signal's reason once it aborts.
            signal?.addEventListener("abort", () => reject(signal.reason instanceof Error ? signal.reason : new Error("aborted")));
          }),
        { timeoutMs: 20 },
      );
      expect(await retryVisit(t, "visit1")).toEqual({
        kind: "error",
        code: "network",
        message: "The server did not answer in time. Check the connection and try again.",
        requestId: null,
      });
    });
  });
});
