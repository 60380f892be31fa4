// The fake AssemblyAI's webhook deliveries, as the real service makes them: a POST of
// `{ transcript_id, status }` with the auth header given at submit once the job has ended,
// retried after a 5xx or no answer (up to 10 tries), never after a 4xx; and its switches for
// duplicated, late, redelivered, unauthenticated and wrong-secret deliveries.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FakeAssemblyAI } from "./assemblyai.js";

interface Received {
  secret: string | undefined;
  body: unknown;
}

let fake: FakeAssemblyAI;
let receiver: http.Server;
let receiverUrl: string;
let received: Received[] = [];
let answers: number[] = [];

beforeAll(async () => {
  fake = await FakeAssemblyAI.start({ queuedMs: 0, processingMs: 0 });
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({ secret: req.headers["x-test-secret"] as string | undefined, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.statusCode = answers.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook?visit=v1`;
});

afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  await fake.close();
});

beforeEach(() => {
  fake.reset();
  received = [];
  answers = [];
});

async function submit(withWebhook = true): Promise<string> {
  const response = await fetch(`${fake.baseUrl}/v2/transcript`, {
    method: "POST",
    headers: { authorization: "test-assemblyai-key", "content-type": "application/json" },
    body: JSON.stringify({
      audio_url: "https://storage.test/users/u/visits/v1/visit-en.m4a",
      speech_models: ["universal-2"],
      ...(withWebhook ? { webhook_url: receiverUrl, webhook_auth_header_name: "X-Test-Secret", webhook_auth_header_value: "s3cret-value" } : {}),
    }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { id: string }).id;
}

async function webhookStatusCode(id: string): Promise<unknown> {
  const response = await fetch(`${fake.baseUrl}/v2/transcript/${id}`, { headers: { authorization: "test-assemblyai-key" } });
  return ((await response.json()) as { webhook_status_code: unknown }).webhook_status_code;
}

describe("fake AssemblyAI webhooks", () => {
  it("post { transcript_id, status } with the auth header once the job ended, once, and record the answer on the transcript", async () => {
    const id = await submit();
    await submit(false);
    const records = await fake.deliverWebhooks();
    expect(records).toEqual([expect.objectContaining({ transcriptId: id, status: "completed", auth: "secret", answer: 200 })]);
    expect(received).toEqual([{ secret: "s3cret-value", body: { transcript_id: id, status: "completed" } }]);
    expect(await webhookStatusCode(id)).toBe(200);
    expect(await fake.deliverWebhooks()).toEqual([]);
    expect(fake.pendingWebhookCount()).toBe(0);
  });

  it("send a delivery still waiting for its answer only once, however many calls overlap it", async () => {
    const id = await submit();
    const calls = await Promise.all([fake.deliverWebhooks(), fake.deliverWebhooks(), fake.deliverWebhooks()]);
    expect(calls.flat().map((r) => [r.transcriptId, r.answer])).toEqual([[id, 200]]);
    expect(received).toHaveLength(1);
  });

  it("deliver nothing before the job ended", async () => {
    fake.setTiming({ queuedMs: 60_000 });
    await submit();
    expect(await fake.deliverWebhooks()).toEqual([]);
    expect(fake.pendingWebhookCount()).toBe(1);
  });

  it("try again after a 5xx, never after a 4xx", async () => {
    const id = await submit();
    answers = [503];
    expect((await fake.deliverWebhooks()).map((r) => r.answer)).toEqual([503]);
    expect(await webhookStatusCode(id)).toBe(503);
    expect((await fake.deliverWebhooks()).map((r) => r.answer)).toEqual([200]);
    const other = await submit();
    answers = [404];
    expect((await fake.deliverWebhooks()).map((r) => [r.transcriptId, r.answer])).toEqual([[other, 404]]);
    expect(await fake.deliverWebhooks()).toEqual([]);
  });

  it("duplicate, hold back, redeliver and forge deliveries when switched on", async () => {
    await submit();
    fake.setWebhookBehaviour({ lateRate: 1 });
    expect(await fake.deliverWebhooks()).toEqual([]);
    fake.setWebhookBehaviour({ duplicateRate: 1, unauthenticatedRate: 1, wrongSecretRate: 1, redeliveryRate: 1 });
    let records: Awaited<ReturnType<FakeAssemblyAI["deliverWebhooks"]>> = [];
    for (let call = 0; call < 3 && records.length === 0; call++) records = await fake.deliverWebhooks();
    expect(records.map((r) => r.auth).sort()).toEqual(["missing", "secret", "secret", "wrong"]);
    expect(received.map((r) => r.secret).sort()).toEqual(["s3cret-vAAAA", "s3cret-value", "s3cret-value", undefined]);
    // The redelivery comes one call later.
    expect((await fake.deliverWebhooks()).filter((r) => r.auth === "secret").length).toBeGreaterThan(0);
  });
});
