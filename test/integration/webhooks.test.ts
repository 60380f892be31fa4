// The AssemblyAI webhook fast path, through the real `api` handler over HTTP: the fake AssemblyAI
// (real SDK submits to it) posts `{ transcript_id, status }` with the visit's secret when a job
// ends, the route authenticates it and checks the visit as the checker would. Authentication,
// duplicates and concurrent deliveries, unknown and deleted visits, a delivery racing the
// checker, malformed and oversize bodies, and the checker's slower safety-net cadence.

import { createHash } from "node:crypto";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pipeline } from "../../functions/src/pipeline.js";
import { WEBHOOK_AUTH_HEADER, WEBHOOK_PATH } from "../../functions/src/providers/assemblyai-webhook.js";
import { installRuntimeHooks } from "../../functions/src/runtime-hooks.js";
import { deleteVisit } from "../../functions/src/stages/delete-visit.js";
import { db } from "../../functions/src/store/db.js";
import type { Visit } from "../../functions/src/visit/model.js";
import { ASSEMBLYAI_ERROR_MESSAGES } from "../fakes/assemblyai.js";
import { sendRaw, serveHttpFunction } from "../support/http-function.js";
import type { ServedFunction } from "../support/http-function.js";
import { sleep, startLocalRuntime } from "../support/local-runtime.js";
import type { LocalRuntime } from "../support/local-runtime.js";
import { newVisitId, readVisit, visitExists } from "../support/visits.js";

const SAFETY_POLL_SECONDS = 900;
// The fake's jobs end 90 ms after their submit (30 ms queued, 60 ms processing).
const JOB_DONE_MS = 150;

let runtime: LocalRuntime;
let api: ServedFunction;
let events: { event: string; visitId: unknown; outcome: unknown }[] = [];

beforeAll(async () => {
  runtime = await startLocalRuntime();
  api = await serveHttpFunction(runtime.functions.api);
});

afterAll(async () => {
  await api.close();
  await runtime.close();
});

beforeEach(async () => {
  await runtime.reset();
  await runtime.setEnv({ WEBHOOK_BASE_URL: api.baseUrl, WEBHOOK_SAFETY_POLL_SECONDS: String(SAFETY_POLL_SECONDS) });
  events = [];
  installRuntimeHooks({ onLog: ({ event, fields }) => events.push({ event, visitId: fields.visitId, outcome: fields.outcome }) });
});

afterEach(() => {
  installRuntimeHooks({ onLog: undefined, clock: undefined, failpoint: undefined });
});

interface Submitted {
  webhook_url?: string;
  webhook_auth_header_name?: string;
  webhook_auth_header_value?: string;
  audio_url: string;
}

/** What the fake AssemblyAI holds for the visit's job: the webhook URL and secret it was given. */
function submittedFor(visitId: string): Submitted {
  const bodies = runtime.assemblyai.submittedBodies() as Submitted[];
  const body = bodies.find((b) => b.audio_url.includes(`/visits/${visitId}/`));
  if (!body) throw new Error(`no submission for ${visitId}`);
  return body;
}

async function uploadAndFinishJob(uid = "user-w"): Promise<{ visitId: string; secret: string; transcriptId: string }> {
  const visitId = newVisitId("wh");
  await runtime.upload({ uid, visitId });
  await sleep(JOB_DONE_MS);
  const visit = await readVisit(visitId);
  return { visitId, secret: submittedFor(visitId).webhook_auth_header_value ?? "", transcriptId: visit.transcriptId ?? "" };
}

interface Answer {
  status: number;
  json: { received?: boolean; outcome?: string; error?: { code: string } } | null;
}

async function deliver(
  visitId: string,
  options: { secret?: string | null; body?: string; contentType?: string; query?: string },
): Promise<Answer> {
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json" };
  if (options.secret) headers[WEBHOOK_AUTH_HEADER] = options.secret;
  const answer = await sendRaw(api.baseUrl, {
    method: "POST",
    path: `${WEBHOOK_PATH}${options.query ?? `?visit=${encodeURIComponent(visitId)}`}`,
    headers,
    body: Buffer.from(options.body ?? "{}"),
  });
  let json: Answer["json"] = null;
  try {
    json = JSON.parse(answer.text) as Answer["json"];
  } catch {
    json = null;
  }
  return { status: answer.status, json };
}

const bodyFor = (transcriptId: string, status = "completed") => JSON.stringify({ transcript_id: transcriptId, status });

/** The fields a delivery must not touch when it changes nothing. */
function pipelineState(visit: Visit) {
  return {
    status: visit.status,
    transcriptId: visit.transcriptId,
    checks: visit.checks,
    nextCheckAt: visit.nextCheckAt?.getTime() ?? null,
    summaryDispatches: visit.summaryDispatches,
    history: visit.history.length,
  };
}

function transcriptGets(transcriptId: string): number {
  return runtime.assemblyai.requests.filter((r) => r.method === "GET" && r.path === `/v2/transcript/${transcriptId}`).length;
}

function countEvents(event: string, visitId: string): number {
  return events.filter((e) => e.event === event && e.visitId === visitId).length;
}

/** Exactly one checkpoint of the transcript and one summary, whatever raced. */
async function expectOneCheckpointOneSummary(visitId: string): Promise<void> {
  await runtime.tasks.drain();
  const visit = await readVisit(visitId);
  expect(visit.status).toBe("completed");
  expect(visit.history.filter((entry) => entry.status === "summarizing")).toHaveLength(1);
  expect(visit.summaryDispatches).toBe(1);
  expect(countEvents("transcript_saved", visitId)).toBe(1);
  expect(runtime.openai.completionCount()).toBe(1);
  expect((await db().collection("actions").where("visitId", "==", visitId).get()).size).toBe(visit.actionItemCount);
}

describe("submission with the webhook on", () => {
  it("gives AssemblyAI the api's webhook URL and the visit's secret, and stores only the secret's hash", async () => {
    const visitId = newVisitId("wh");
    const before = Date.now();
    await runtime.upload({ uid: "user-w", visitId });
    const sent = submittedFor(visitId);
    expect(sent.webhook_url).toBe(`${api.baseUrl}${WEBHOOK_PATH}?visit=${visitId}`);
    expect(sent.webhook_auth_header_name).toBe(WEBHOOK_AUTH_HEADER);
    expect(sent.webhook_auth_header_value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const secret = sent.webhook_auth_header_value ?? "";

    const visit = await readVisit(visitId);
    expect(visit.webhookSecretSha256).toBe(createHash("sha256").update(secret).digest("hex"));
    const stored = JSON.stringify((await db().doc(`visits/${visitId}`).get()).data());
    expect(stored).not.toContain(secret);
    // The checker only looks at it at the safety net's cadence.
    expect(visit.nextCheckAt!.getTime()).toBeGreaterThanOrEqual(before + SAFETY_POLL_SECONDS * 1000);
  });

  it("sends the same secret on every submission of the visit (a retried or adopted job holds it too)", async () => {
    const visitId = newVisitId("wh");
    runtime.assemblyai.registerAudio(`/visits/${visitId}/`, { kind: "error", error: "Internal server error, please try again later." });
    await runtime.upload({ uid: "user-w", visitId });
    await sleep(JOB_DONE_MS);
    await runtime.assemblyai.deliverWebhooks();
    const failed = await readVisit(visitId);
    expect(failed.status).toBe("failed");
    const { retryVisit } = await import("../../functions/src/stages/retry-visit.js");
    await runtime.setEnv({ RETRY_COOLDOWN_SECONDS: "0" });
    const retried = await retryVisit(pipeline(), { visitId, uid: "user-w" }, Date.now() + 30_000);
    expect(retried.kind).toBe("accepted");
    const secrets = (runtime.assemblyai.submittedBodies() as Submitted[])
      .filter((body) => body.audio_url.includes(`/visits/${visitId}/`))
      .map((body) => body.webhook_auth_header_value);
    expect(secrets).toHaveLength(2);
    expect(secrets[1]).toBe(secrets[0]);
    expect((await readVisit(visitId)).webhookSecretSha256).toBe(failed.webhookSecretSha256);
    await runtime.setEnv({ RETRY_COOLDOWN_SECONDS: undefined });
  });

  it("is off with WEBHOOK_BASE_URL empty: no webhook is asked for and the checker polls at its own cadence", async () => {
    await runtime.setEnv({ WEBHOOK_BASE_URL: "" });
    const visitId = newVisitId("wh");
    await runtime.upload({ uid: "user-w", visitId });
    const sent = submittedFor(visitId);
    expect(sent.webhook_url).toBeUndefined();
    expect(sent.webhook_auth_header_value).toBeUndefined();
    const visit = await readVisit(visitId);
    expect(visit.webhookSecretSha256).toBeNull();
    await runtime.runUntilSettled([visitId]);
    expect((await readVisit(visitId)).status).toBe("completed");
    expect(runtime.assemblyai.webhookDeliveries).toHaveLength(0);
  });
});

describe("a delivery", () => {
  it("moves the visit on at once through the checker's path: transcript saved, summarization dispatched", async () => {
    const { visitId, transcriptId } = await uploadAndFinishJob();
    const records = await runtime.assemblyai.deliverWebhooks();
    expect(records).toEqual([expect.objectContaining({ transcriptId, status: "completed", auth: "secret", answer: 200 })]);
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("summarizing");
    expect(events.find((e) => e.event === "webhook_handled" && e.visitId === visitId)?.outcome).toBe("transcript_saved");
    await expectOneCheckpointOneSummary(visitId);
    // AssemblyAI records our answer on the transcript (until it is deleted there).
    expect(runtime.assemblyai.pendingWebhookCount()).toBe(0);
  });

  it("of a failed job fails the visit with the provider's reason", async () => {
    const visitId = newVisitId("wh");
    runtime.assemblyai.registerAudio(`/visits/${visitId}/`, { kind: "error", error: ASSEMBLYAI_ERROR_MESSAGES.audioTooShort });
    await runtime.upload({ uid: "user-w", visitId });
    await sleep(JOB_DONE_MS);
    const [record] = await runtime.assemblyai.deliverWebhooks();
    expect(record).toMatchObject({ status: "error", answer: 200 });
    const visit = await readVisit(visitId);
    expect(visit.status).toBe("failed");
    expect(visit.error?.code).toBe("audio_too_short");
  });

  it("that arrives before the job has ended (out of order) only re-schedules the check at the safety cadence", async () => {
    runtime.assemblyai.setTiming({ queuedMs: 60_000 });
    const visitId = newVisitId("wh");
    await runtime.upload({ uid: "user-w", visitId });
    const visit = await readVisit(visitId);
    const before = Date.now();
    const answer = await deliver(visitId, { secret: submittedFor(visitId).webhook_auth_header_value, body: bodyFor(visit.transcriptId!) });
    expect(answer).toMatchObject({ status: 200, json: { received: true, outcome: "still_processing" } });
    const after = await readVisit(visitId);
    expect(after.status).toBe("transcribing");
    expect(after.checks).toBe(1);
    expect(after.nextCheckAt!.getTime()).toBeGreaterThanOrEqual(before + SAFETY_POLL_SECONDS * 1000);
  });
});

describe("authentication", () => {
  it("refuses a delivery without the secret or with a wrong one (401) and changes nothing; the right one is used", async () => {
    const { visitId, secret, transcriptId } = await uploadAndFinishJob();
    const before = pipelineState(await readVisit(visitId));
    const wrong = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    for (const presented of [null, wrong, "x", secret.slice(0, 20), secret.toLowerCase()]) {
      const answer = await deliver(visitId, { secret: presented, body: bodyFor(transcriptId) });
      expect(answer.status, String(presented?.length)).toBe(401);
      expect(answer.json?.error?.code).toBe("webhook_unauthenticated");
    }
    // Another visit's secret does not open this one.
    const other = await uploadAndFinishJob();
    expect((await deliver(visitId, { secret: other.secret, body: bodyFor(transcriptId) })).status).toBe(401);
    expect(pipelineState(await readVisit(visitId))).toEqual(before);
    expect(transcriptGets(transcriptId)).toBe(0);
    expect(countEvents("webhook_rejected", visitId)).toBe(6);

    const answer = await deliver(visitId, { secret, body: bodyFor(transcriptId) });
    expect(answer).toMatchObject({ status: 200, json: { received: true, outcome: "transcript_saved" } });
  });

  it("refuses the fake's unauthenticated and wrong-secret deliveries, and still uses the real one", async () => {
    const { visitId } = await uploadAndFinishJob();
    runtime.assemblyai.setWebhookBehaviour({ unauthenticatedRate: 1, wrongSecretRate: 1 });
    const records = await runtime.assemblyai.deliverWebhooks();
    expect(records.map((r) => [r.auth, r.answer]).sort()).toEqual([
      ["missing", 401],
      ["secret", 200],
      ["wrong", 401],
    ]);
    await expectOneCheckpointOneSummary(visitId);
  });

  it("refuses a delivery whose visit id is missing or malformed", async () => {
    const { visitId, secret, transcriptId } = await uploadAndFinishJob();
    for (const query of ["", "?visit=", "?visit=a/b", "?visit=..", `?visit=${"v".repeat(200)}`, `?visit=${visitId}&visit=${visitId}`]) {
      const answer = await deliver(visitId, { secret, body: bodyFor(transcriptId), query });
      expect(answer.status, query).toBe(401);
    }
    expect((await readVisit(visitId)).status).toBe("transcribing");
  });
});

describe("deliveries that cannot be used answer 200 and change nothing", () => {
  it("an unknown visit: 200 with its secret (nothing is created), 401 without", async () => {
    const visitId = newVisitId("never");
    const secret = pipeline().webhookSecret(visitId);
    const answer = await deliver(visitId, { secret, body: bodyFor("5551f0e2-8a1c-4a1e-9b0f-2d7f6c2b8c11") });
    expect(answer).toMatchObject({ status: 200, json: { received: true, outcome: "visit_not_found" } });
    expect((await deliver(visitId, { secret: pipeline().webhookSecret("someone-else"), body: "{}" })).status).toBe(401);
    expect(await visitExists(visitId)).toBe(false);
    expect(runtime.assemblyai.requests.filter((r) => r.method === "GET")).toHaveLength(0);
  });

  it("a deleted visit: AssemblyAI's late delivery is acknowledged and the visit does not come back", async () => {
    const { visitId, transcriptId } = await uploadAndFinishJob();
    const deleted = await deleteVisit(pipeline(), { visitId, uid: "user-w", reason: "user" }, Date.now() + 30_000);
    expect(deleted.kind).toBe("deleted");
    const records = await runtime.assemblyai.deliverWebhooks();
    expect(records).toEqual([expect.objectContaining({ transcriptId, answer: 200 })]);
    expect(events.find((e) => e.event === "webhook_handled" && e.visitId === visitId)?.outcome).toBe("visit_not_found");
    expect(await visitExists(visitId)).toBe(false);
    expect((await db().doc(`visits/${visitId}/artifacts/transcript`).get()).exists).toBe(false);
    expect(runtime.openai.completionCount()).toBe(0);
  });

  it("an already-saved transcript, another job's id, and a body without a transcript id", async () => {
    const { visitId, secret, transcriptId } = await uploadAndFinishJob();
    expect((await deliver(visitId, { secret, body: bodyFor(transcriptId) })).json?.outcome).toBe("transcript_saved");
    await runtime.tasks.drain();
    const saved = pipelineState(await readVisit(visitId));
    const cases: [string, string][] = [
      [bodyFor(transcriptId), "not_transcribing"],
      [bodyFor("5551f0e2-8a1c-4a1e-9b0f-2d7f6c2b8c11"), "other_job"],
      [JSON.stringify({ status: "completed" }), "malformed_delivery"],
      [JSON.stringify({ transcript_id: "../../x", status: "completed" }), "malformed_delivery"],
    ];
    for (const [body, outcome] of cases) {
      expect(await deliver(visitId, { secret, body })).toMatchObject({ status: 200, json: { received: true, outcome } });
    }
    expect(pipelineState(await readVisit(visitId))).toEqual(saved);
    expect(runtime.openai.completionCount()).toBe(1);
  });

  it("malformed JSON: the platform's 400 for application/json; as other text, 401 without the secret and 200 with it", async () => {
    const { visitId, secret } = await uploadAndFinishJob();
    const before = pipelineState(await readVisit(visitId));
    expect((await deliver(visitId, { secret, body: "{not json" })).status).toBe(400);
    expect((await deliver(visitId, { secret: null, body: "{not json", contentType: "text/plain" })).status).toBe(401);
    const answer = await deliver(visitId, { secret, body: "{not json", contentType: "text/plain" });
    expect(answer).toMatchObject({ status: 200, json: { outcome: "malformed_delivery" } });
    expect(pipelineState(await readVisit(visitId))).toEqual(before);
  });

  it("an oversize body is refused unread (413), with or without the secret", async () => {
    const { visitId, secret, transcriptId } = await uploadAndFinishJob();
    const before = pipelineState(await readVisit(visitId));
    const body = JSON.stringify({ transcript_id: transcriptId, status: "completed", padding: "x".repeat(4096) });
    for (const presented of [secret, null]) {
      const answer = await deliver(visitId, { secret: presented, body });
      expect(answer.status).toBe(413);
      expect(answer.json?.error?.code).toBe("payload_too_large");
    }
    expect(pipelineState(await readVisit(visitId))).toEqual(before);
    expect(transcriptGets(transcriptId)).toBe(0);
  });

  it("another method than POST is 405", async () => {
    const answer = await sendRaw(api.baseUrl, { method: "GET", path: `${WEBHOOK_PATH}?visit=x` });
    expect(answer.status).toBe(405);
    expect(answer.headers.get("allow")).toBe("POST");
  });
});

describe("duplicates and races", () => {
  it("a duplicated delivery and 6 concurrent ones make one checkpoint and one summary", async () => {
    const { visitId, secret, transcriptId } = await uploadAndFinishJob();
    runtime.assemblyai.setWebhookBehaviour({ duplicateRate: 1 });
    const [fake, ...direct] = await Promise.all([
      runtime.assemblyai.deliverWebhooks(),
      ...Array.from({ length: 6 }, () => deliver(visitId, { secret, body: bodyFor(transcriptId) })),
    ]);
    expect(fake.map((r) => r.answer)).toEqual([200, 200]);
    expect(direct.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(direct.filter((a) => a.json?.outcome === "transcript_saved").length).toBeLessThanOrEqual(1);
    await expectOneCheckpointOneSummary(visitId);
    // A later redelivery of the same announcement changes nothing either.
    expect((await deliver(visitId, { secret, body: bodyFor(transcriptId) })).json?.outcome).toBe("not_transcribing");
  });

  it("deliveries racing two checker runs make one checkpoint and one summary", async () => {
    const { visitId, secret, transcriptId } = await uploadAndFinishJob();
    // Due now, so the checker runs take it too.
    await db().doc(`visits/${visitId}`).update({ nextCheckAt: new Date(Date.now() - 1000) });
    runtime.assemblyai.setWebhookBehaviour({ duplicateRate: 1 });
    const [, , fake, ...direct] = await Promise.all([
      runtime.runChecker(),
      runtime.runChecker(),
      runtime.assemblyai.deliverWebhooks(),
      ...Array.from({ length: 4 }, () => deliver(visitId, { secret, body: bodyFor(transcriptId) })),
    ]);
    expect([...fake.map((r) => r.answer), ...direct.map((a) => a.status)]).toEqual([200, 200, 200, 200, 200, 200]);
    await expectOneCheckpointOneSummary(visitId);
  });

  it("a delivery that finds a check already running waits for it, and checks again if the job ended meanwhile", async () => {
    runtime.assemblyai.setTiming({ queuedMs: 400, processingMs: 0 });
    const visitId = newVisitId("wh");
    await runtime.upload({ uid: "user-w", visitId });
    const secret = submittedFor(visitId).webhook_auth_header_value;
    const { transcriptId } = await readVisit(visitId);
    await db().doc(`visits/${visitId}`).update({ nextCheckAt: new Date(Date.now() - 1000) });
    // The checker's status read answers "queued" but arrives late; the job ends while it is on its way.
    runtime.assemblyai.faults.enqueue("get", { kind: "hang", ms: 600, afterCommit: true });
    const checker = runtime.runChecker();
    await sleep(420);
    const answer = await deliver(visitId, { secret, body: bodyFor(transcriptId!) });
    await checker;
    expect(answer.status).toBe(200);
    expect(answer.json?.outcome).toBe("transcript_saved");
    // The checker's check read "queued"; the delivery's own check, after it, found the end.
    expect(countEvents("transcript_pending", visitId)).toBe(1);
    expect(transcriptGets(transcriptId!)).toBe(2);
    await expectOneCheckpointOneSummary(visitId);
  });
});

describe("a job adopted by recovery", () => {
  it("whose delivery came before the visit knew it is polled at the usual cadence, not the safety net's", async () => {
    let crashed = false;
    installRuntimeHooks({
      failpoint: (name) => {
        if (name !== "after_transcription_submit" || crashed) return null;
        crashed = true;
        return "crash";
      },
    });
    const visitId = newVisitId("wh");
    void runtime.upload({ uid: "user-w", visitId }); // crashes after the submit: never settles
    for (let i = 0; i < 200 && !crashed; i++) await sleep(20);
    expect(crashed).toBe(true);
    await sleep(JOB_DONE_MS);
    const [record] = await runtime.assemblyai.deliverWebhooks();
    expect(record?.answer).toBe(200);
    expect(events.find((e) => e.event === "webhook_handled" && e.visitId === visitId)?.outcome).toBe("other_job");
    expect((await readVisit(visitId)).status).toBe("pending");

    // Past the crashed attempt's lease, the checker adopts the job (no second submit)...
    const aheadMs = 200_000;
    installRuntimeHooks({ clock: () => new Date(Date.now() + aheadMs) });
    await runtime.runChecker();
    const adopted = await readVisit(visitId);
    expect(adopted.status).toBe("transcribing");
    expect(runtime.assemblyai.submitCount()).toBe(1);
    expect(adopted.webhookSecretSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(adopted.nextCheckAt!.getTime()).toBeLessThan(Date.now() + aheadMs + 60_000);
    // ...and its next run finds the transcript, without waiting for the safety net.
    await runtime.runChecker();
    await expectOneCheckpointOneSummary(visitId);
  });
});

describe("the checker as safety net", () => {
  it("finds a job whose delivery was lost, at the slower cadence", async () => {
    const { visitId, transcriptId } = await uploadAndFinishJob();
    await runtime.runChecker();
    expect((await readVisit(visitId)).status).toBe("transcribing");
    expect(transcriptGets(transcriptId)).toBe(0);
    const aheadMs = (SAFETY_POLL_SECONDS + 5) * 1000;
    installRuntimeHooks({ clock: () => new Date(Date.now() + aheadMs) });
    await runtime.runChecker();
    await expectOneCheckpointOneSummary(visitId);
  });
});
