// A local stand-in for the two Google REST APIs `ops monitoring apply` calls: Cloud Logging's
// log-based metrics (v2 projects.metrics get/create/update) and Cloud Monitoring's alert policies
// (v3 projects.alertPolicies list/create/patch). It keeps what was written, so a second apply sees
// the first one's resources, records every request, and checks the bearer token.

import type { IncomingMessage, ServerResponse } from "node:http";
import { readJsonBody, recordRequest, sendJson, startLoopbackServer } from "./http.js";
import type { LoopbackServer, RecordedRequest } from "./http.js";

export class FakeGoogleMonitoring {
  readonly requests: RecordedRequest[] = [];
  readonly metrics = new Map<string, Record<string, unknown>>();
  readonly policies = new Map<string, Record<string, unknown>>();
  /** Answer the next writes with this HTTP status (e.g. 403), once each. */
  failNextWrites: number[] = [];
  private policyCounter = 0;

  private constructor(
    private readonly server: LoopbackServer,
    readonly token: string,
  ) {}

  static async start(token = "test-access-token"): Promise<FakeGoogleMonitoring> {
    let fake: FakeGoogleMonitoring | undefined;
    const server = await startLoopbackServer((req, res) => {
      if (!fake) throw new Error("request before the fake finished starting");
      return fake.handle(req, res);
    });
    fake = new FakeGoogleMonitoring(server, token);
    return fake;
  }

  get baseUrl(): string {
    return this.server.origin;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    this.requests.push(recordRequest(req, body, Date.now()));
    if (req.headers.authorization !== `Bearer ${this.token}`) return sendJson(res, { status: 401, body: { error: { code: 401, message: "no token" } } });
    const method = req.method ?? "GET";
    if (method !== "GET" && this.failNextWrites.length > 0) {
      const status = this.failNextWrites.shift() ?? 500;
      return sendJson(res, { status, body: { error: { code: status, message: "The caller does not have permission" } } });
    }
    const url = new URL(req.url ?? "/", this.baseUrl);
    const json = body.kind === "json" && typeof body.value === "object" && body.value !== null ? (body.value as Record<string, unknown>) : {};

    const metric = /^\/v2\/projects\/([^/]+)\/metrics(?:\/([^/]+))?$/.exec(url.pathname);
    if (metric) {
      const [, project, encodedName] = metric;
      const name = encodedName === undefined ? undefined : decodeURIComponent(encodedName);
      if (method === "POST" && name === undefined) {
        const created = String(json.name);
        if (this.metrics.has(created)) return sendJson(res, { status: 409, body: { error: { code: 409, message: "exists" } } });
        this.metrics.set(created, json);
        return sendJson(res, { status: 200, body: json });
      }
      if (name !== undefined && method === "GET") {
        const found = this.metrics.get(name);
        return found ? sendJson(res, { status: 200, body: found }) : sendJson(res, { status: 404, body: { error: { code: 404, message: `metric ${name} not found in ${project}` } } });
      }
      if (name !== undefined && method === "PUT") {
        if (!this.metrics.has(name)) return sendJson(res, { status: 404, body: { error: { code: 404, message: "not found" } } });
        this.metrics.set(name, json);
        return sendJson(res, { status: 200, body: json });
      }
    }

    const policies = /^\/v3\/projects\/([^/]+)\/alertPolicies(?:\/([^/]+))?$/.exec(url.pathname);
    if (policies) {
      const [, project, id] = policies;
      if (method === "GET" && id === undefined) {
        return sendJson(res, { status: 200, body: { alertPolicies: [...this.policies.values()] } });
      }
      if (method === "POST" && id === undefined) {
        this.policyCounter += 1;
        const name = `projects/${project}/alertPolicies/${this.policyCounter}`;
        const created = { ...json, name };
        this.policies.set(name, created);
        return sendJson(res, { status: 200, body: created });
      }
      if (method === "PATCH" && id !== undefined) {
        const name = `projects/${project}/alertPolicies/${id}`;
        if (!this.policies.has(name)) return sendJson(res, { status: 404, body: { error: { code: 404, message: "not found" } } });
        this.policies.set(name, { ...json, name });
        return sendJson(res, { status: 200, body: { ...json, name } });
      }
    }
    return sendJson(res, { status: 404, body: { error: { code: 404, message: `no route ${method} ${url.pathname}` } } });
  }
}
