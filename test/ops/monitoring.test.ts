// Monitoring as code: monitoring/alerts.json is built on log events logs.ts really emits (and on
// fields those events carry), and `ops monitoring apply` creates, then updates, every metric and
// alert policy through the Cloud Logging and Cloud Monitoring REST APIs — here a local fake of
// them that records the requests.

import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applyMonitoring, eventsInFilter, fieldsOfMetric, loadMonitoringFile } from "../../functions/src/ops/monitoring.js";
import type { ApplyOptions, MonitoringFile } from "../../functions/src/ops/monitoring.js";
import { ERROR_CODES } from "../../functions/src/visit/errors.js";
import { FakeGoogleMonitoring } from "../fakes/google-monitoring.js";
import { REPO_ROOT, parseJson, runChild, runInProcess } from "./ops-harness.js";

const ALERTS_FILE = path.join(REPO_ROOT, "monitoring/alerts.json");
const LOGS_SOURCE = readFileSync(path.join(REPO_ROOT, "functions/src/logs.ts"), "utf8");
const ERROR_FIELD_NAMES = ["code", "transient", "httpStatus", "retryAfterMs", "detail"];

/** Each event logs.ts can emit, with the source of the logs entry that emits it (to find its fields). */
function emittedEvents(): Map<string, string> {
  const events = new Map<string, string>();
  const entries = LOGS_SOURCE.slice(LOGS_SOURCE.indexOf("export const logs = {")).split(/\n {2}(?=[a-zA-Z]+: )/);
  for (const entry of entries) {
    for (const match of entry.matchAll(/emit\([^,]+, "([a-z_]+)"/g)) if (match[1]) events.set(match[1], entry);
  }
  // attemptFailed names its event through ATTEMPT_FAILED_EVENT.
  const attemptEntry = entries.find((entry) => entry.startsWith("attemptFailed:")) ?? "";
  const table = /const ATTEMPT_FAILED_EVENT[^{]*\{([^}]*)\}/.exec(LOGS_SOURCE)?.[1] ?? "";
  for (const match of table.matchAll(/"([a-z_]+)"/g)) if (match[1]) events.set(match[1], attemptEntry);
  return events;
}

function carriesField(entrySource: string, field: string): boolean {
  if (new RegExp(`\\b${field}\\b`).test(entrySource)) return true;
  return entrySource.includes("errorFields(") && ERROR_FIELD_NAMES.includes(field);
}

let file: MonitoringFile;
beforeAll(async () => {
  file = await loadMonitoringFile(ALERTS_FILE);
});

describe("monitoring/alerts.json", () => {
  it("every metric's filter names log events logs.ts emits, and only fields those events carry", () => {
    const events = emittedEvents();
    expect(events.size).toBeGreaterThan(30);
    expect(events.has("checker_run_finished")).toBe(true);
    expect(events.has("summarization_failed")).toBe(true);
    for (const metric of file.metrics) {
      const named = eventsInFilter(metric.filter);
      expect(named.length, metric.name).toBeGreaterThan(0);
      for (const event of named) {
        expect(events.has(event), `${metric.name}: ${event} is not emitted by logs.ts`).toBe(true);
        for (const field of fieldsOfMetric(metric)) {
          expect(carriesField(events.get(event) ?? "", field), `${metric.name}: ${event} has no field ${field}`).toBe(true);
        }
      }
    }
  });

  it("error codes in filters are real codes; every policy reads a metric defined here and names a runbook section", () => {
    const runbook = readFileSync(path.join(REPO_ROOT, "docs/runbook.md"), "utf8");
    for (const metric of file.metrics) {
      for (const match of metric.filter.matchAll(/jsonPayload\.code="([a-z_]+)"/g)) expect(Object.keys(ERROR_CODES)).toContain(match[1]);
    }
    const names = new Set(file.metrics.map((metric) => metric.name));
    const used = new Set<string>();
    for (const policy of file.alertPolicies) {
      expect(runbook, `runbook section ${policy.runbook}`).toContain(`<a id="${policy.runbook}"></a>`);
      const text = JSON.stringify(policy.conditions);
      const referenced = [
        ...[...text.matchAll(/logging\.googleapis\.com\/user\/([a-z_/]+)/g)].map((match) => match[1] ?? ""),
        ...[...text.matchAll(/logging_googleapis_com:user_([a-z_]+?)_sum\b/g)].map((match) => (match[1] ?? "").replace(/^visit_pipeline_/, "visit_pipeline/")),
      ];
      expect(referenced.length, policy.displayName).toBeGreaterThan(0);
      for (const metric of referenced) {
        expect(names.has(metric), `${policy.displayName} reads ${metric}`).toBe(true);
        used.add(metric);
      }
    }
    // The six alerts the operators asked for.
    expect(file.alertPolicies.map((policy) => policy.runbook).sort()).toEqual(
      ["breaker-open", "checker-time-budget", "cost-per-day", "failed-visits", "quota-exhausted", "stuck-visits"].sort(),
    );
    expect([...names].filter((name) => !used.has(name))).toEqual([]);
  });
});

describe("ops monitoring apply", () => {
  let google: FakeGoogleMonitoring;
  let options: ApplyOptions;

  beforeAll(async () => {
    google = await FakeGoogleMonitoring.start();
  });
  afterAll(async () => google.close());
  beforeEach(() => {
    google.requests.length = 0;
    google.metrics.clear();
    google.policies.clear();
    options = {
      project: "demo-visit-pipeline",
      dryRun: false,
      notificationChannels: ["projects/demo-visit-pipeline/notificationChannels/42"],
      loggingBaseUrl: google.baseUrl,
      monitoringBaseUrl: google.baseUrl,
      accessToken: () => Promise.resolve(google.token),
    };
  });

  it("creates every metric and policy in a fresh project, then updates them in place (no duplicates)", async () => {
    const first = await applyMonitoring(file, options);
    expect(first.filter((change) => change.action === "create")).toHaveLength(file.metrics.length + file.alertPolicies.length);
    expect(google.metrics.size).toBe(file.metrics.length);
    expect(google.policies.size).toBe(file.alertPolicies.length);
    const created = google.requests.filter((request) => request.method === "POST");
    expect(created.map((request) => request.path)).toEqual([
      ...file.metrics.map(() => "/v2/projects/demo-visit-pipeline/metrics"),
      ...file.alertPolicies.map(() => "/v3/projects/demo-visit-pipeline/alertPolicies"),
    ]);
    expect(google.requests.every((request) => request.headers.authorization === `Bearer ${google.token}`)).toBe(true);
    const policy = [...google.policies.values()][0];
    expect(policy).toMatchObject({
      notificationChannels: ["projects/demo-visit-pipeline/notificationChannels/42"],
      userLabels: { managed_by: "visit-pipeline-ops" },
      documentation: { mimeType: "text/markdown", content: expect.stringContaining("docs/runbook.md#failed-visits") },
    });
    expect(policy).not.toHaveProperty("runbook");

    google.requests.length = 0;
    const second = await applyMonitoring(file, options);
    expect(second.every((change) => change.action === "update" && change.applied)).toBe(true);
    expect(google.metrics.size).toBe(file.metrics.length);
    expect(google.policies.size).toBe(file.alertPolicies.length);
    expect(google.requests.filter((request) => request.method === "PUT")).toHaveLength(file.metrics.length);
    expect(google.requests.filter((request) => request.method === "PATCH")).toHaveLength(file.alertPolicies.length);
    // A metric name's slash is sent encoded, as the Logging API wants it in the path.
    expect(google.requests.map((request) => request.path)).toContain("/v2/projects/demo-visit-pipeline/metrics/visit_pipeline%2Fchecker_runs");
  });

  it("--dry-run only reads", async () => {
    const changes = await applyMonitoring(file, { ...options, dryRun: true });
    expect(changes.every((change) => change.action === "create" && !change.applied)).toBe(true);
    expect(google.requests.every((request) => request.method === "GET")).toBe(true);
    expect(google.metrics.size + google.policies.size).toBe(0);
  });

  it("the CLI applies the file (exit 0, --json), reports an API refusal (exit 5) and needs --project (exit 2)", async () => {
    const env = { ...process.env, OPS_ACCESS_TOKEN: google.token, OPS_LOGGING_API_URL: google.baseUrl, OPS_MONITORING_API_URL: google.baseUrl };
    const applied = await runChild(["monitoring", "apply", "--project", "demo-visit-pipeline", "--json"], env);
    expect(applied.code, applied.stderr).toBe(0);
    const report = parseJson(applied) as { changes: { action: string; applied: boolean }[] };
    expect(report.changes).toHaveLength(file.metrics.length + file.alertPolicies.length);
    expect(google.policies.size).toBe(file.alertPolicies.length);

    google.failNextWrites = [403];
    const refused = await runInProcess(["monitoring", "apply", "--project", "demo-visit-pipeline", "--json"], { env });
    expect(refused.code).toBe(5);
    expect(parseJson(refused)).toMatchObject({ ok: false, error: { code: "google_api_error", message: expect.stringContaining("403") } });

    expect((await runInProcess(["monitoring", "apply"], { env })).code).toBe(2);
    const check = await runInProcess(["monitoring", "check", "--json"]);
    expect(parseJson(check)).toEqual({ ok: true, metrics: file.metrics.length, alertPolicies: file.alertPolicies.length });
    const broken = await runInProcess(["monitoring", "check", "--file", "package.json", "--json"]);
    expect(broken.code).toBe(5);
    expect(parseJson(broken)).toMatchObject({ ok: false, error: { code: "monitoring_file_invalid" } });
  });
});
