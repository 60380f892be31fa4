// A local Cloud Tasks endpoint speaking the protocol firebase-admin uses under
// CLOUD_TASKS_EMULATOR_HOST (POST …/queues/{queue}/tasks, 409 for a task name already used), that
// delivers each task to the real task handler (`summarizeVisit.run`) the way Cloud Tasks does:
// at its schedule time, retried with backoff when the handler throws.

import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TaskRequestLike {
  data: unknown;
  queueName: string;
  id: string;
  retryCount: number;
  executionCount: number;
  scheduledTime: string;
  headers: Record<string, string>;
}

export interface TaskTarget {
  run(request: TaskRequestLike): Promise<unknown>;
  retryConfig?: { maxAttempts?: number; minBackoffSeconds?: number; maxBackoffSeconds?: number };
}

export interface EnqueuedTask {
  queue: string;
  id: string;
  data: unknown;
  scheduledAtMs: number;
}

export interface Delivery {
  queue: string;
  id: string;
  attempt: number;
  ok: boolean;
  error?: string;
}

export interface FakeCloudTasksOptions {
  /** Multiplies retry backoff; local runs use a small factor so retries take milliseconds. */
  backoffScale?: number;
}

export class FakeCloudTasks {
  readonly enqueued: EnqueuedTask[] = [];
  readonly deliveries: Delivery[] = [];
  readonly rejectedDuplicates: string[] = [];
  private readonly targets = new Map<string, TaskTarget>();
  private readonly names = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private paused = false;
  private heldWhilePaused: (() => void)[] = [];

  private constructor(
    private readonly server: http.Server,
    private readonly options: Required<FakeCloudTasksOptions>,
  ) {}

  static async start(options: FakeCloudTasksOptions = {}): Promise<FakeCloudTasks> {
    const server = http.createServer();
    const tasks = new FakeCloudTasks(server, { backoffScale: options.backoffScale ?? 0.001 });
    server.on("request", (req, res) => void tasks.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return tasks;
  }

  /** host:port, for CLOUD_TASKS_EMULATOR_HOST. */
  get host(): string {
    const { port } = this.server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  register(queue: string, target: TaskTarget): void {
    this.targets.set(queue, target);
  }

  /** Hold deliveries (tasks still enqueue) until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.heldWhilePaused;
    this.heldWhilePaused = [];
    held.forEach((deliver) => deliver());
  }

  /** Resolves when no task is scheduled, held or running. */
  async drain(): Promise<void> {
    if (this.pendingCount() === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  pendingCount(): number {
    return this.inFlight + this.timers.size + this.heldWhilePaused.length;
  }

  async close(): Promise<void> {
    this.timers.forEach((timer) => clearTimeout(timer));
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const match = req.url?.match(/^\/projects\/[^/]+\/locations\/[^/]+\/queues\/([^/]+)\/tasks(?:\/([^/?]+))?$/);
    if (!match || (req.method !== "POST" && req.method !== "DELETE")) {
      return reply(res, 404, { error: { code: 404, message: "Not found", status: "NOT_FOUND" } });
    }
    const queue = decodeURIComponent(match[1] ?? "");
    if (req.method === "DELETE") return reply(res, 200, {});
    const body = JSON.parse(await readBody(req)) as { task: TaskPayload };
    const id = body.task.name?.split("/").pop() ?? `auto-${this.enqueued.length + 1}`;
    const fullName = `${queue}/${id}`;
    if (this.names.has(fullName)) {
      this.rejectedDuplicates.push(fullName);
      return reply(res, 409, { error: { code: 409, message: "Requested entity already exists", status: "ALREADY_EXISTS" } });
    }
    this.names.add(fullName);
    const data = (JSON.parse(Buffer.from(body.task.httpRequest.body, "base64").toString("utf8")) as { data: unknown }).data;
    const scheduledAtMs = body.task.scheduleTime ? Date.parse(body.task.scheduleTime) : Date.now();
    const task = { queue, id, data, scheduledAtMs };
    this.enqueued.push(task);
    this.schedule(task, 0, Math.max(0, scheduledAtMs - Date.now()));
    reply(res, 200, { name: body.task.name ?? fullName });
  }

  private schedule(task: EnqueuedTask, retryCount: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.paused) this.heldWhilePaused.push(() => void this.deliver(task, retryCount));
      else void this.deliver(task, retryCount);
    }, delayMs);
    this.timers.add(timer);
  }

  private async deliver(task: EnqueuedTask, retryCount: number): Promise<void> {
    const target = this.targets.get(task.queue);
    this.inFlight++;
    try {
      if (!target) throw new Error(`no handler registered for queue ${task.queue}`);
      await target.run({
        data: task.data,
        queueName: task.queue,
        id: task.id,
        retryCount,
        executionCount: retryCount,
        scheduledTime: new Date(task.scheduledAtMs).toISOString(),
        headers: {},
      });
      this.deliveries.push({ queue: task.queue, id: task.id, attempt: retryCount + 1, ok: true });
    } catch (error) {
      this.deliveries.push({ queue: task.queue, id: task.id, attempt: retryCount + 1, ok: false, error: String(error) });
      const config = target?.retryConfig ?? {};
      if (retryCount + 1 < (config.maxAttempts ?? 3)) {
        const backoffSeconds = Math.min((config.minBackoffSeconds ?? 1) * 2 ** retryCount, config.maxBackoffSeconds ?? 3600);
        this.schedule(task, retryCount + 1, backoffSeconds * 1000 * this.options.backoffScale);
      }
    } finally {
      this.inFlight--;
      this.notifyIfIdle();
    }
  }

  private notifyIfIdle(): void {
    if (this.pendingCount() > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((resolve) => resolve());
  }
}

interface TaskPayload {
  name?: string;
  scheduleTime?: string;
  httpRequest: { body: string };
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
