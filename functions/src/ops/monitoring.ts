// Monitoring as code: monitoring/alerts.json holds the log-based metrics (built on the named log
// events of logs.ts) and the alert policies; `ops monitoring apply` creates or updates them in a
// project through the Cloud Logging and Cloud Monitoring REST APIs. Metrics are matched by name,
// policies by display name, so applying twice changes nothing the second time.

import { readFile } from "node:fs/promises";
import { z } from "zod";

const MetricSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_./-]+$/),
    description: z.string(),
    filter: z.string().min(1),
    metricDescriptor: z.record(z.string(), z.unknown()),
    labelExtractors: z.record(z.string(), z.string()).optional(),
    valueExtractor: z.string().optional(),
    bucketOptions: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const PolicySchema = z
  .object({
    displayName: z.string().min(1),
    /** The anchor in docs/runbook.md that says what to do (written into the policy's documentation). */
    runbook: z.string().regex(/^[a-z0-9-]+$/),
    combiner: z.enum(["OR", "AND", "AND_WITH_MATCHING_RESOURCE"]),
    conditions: z.array(z.object({ displayName: z.string() }).catchall(z.unknown())).min(1),
  })
  .strict();

export const MonitoringFileSchema = z.object({
  $comment: z.string().optional(),
  metrics: z.array(MetricSchema).min(1),
  alertPolicies: z.array(PolicySchema).min(1),
});
export type MonitoringFile = z.infer<typeof MonitoringFileSchema>;
export type LogMetric = z.infer<typeof MetricSchema>;
export type AlertPolicy = z.infer<typeof PolicySchema>;

export class MonitoringFileError extends Error {
  readonly code = "monitoring_file_invalid";
}

export async function loadMonitoringFile(path: string): Promise<MonitoringFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new MonitoringFileError(`${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = MonitoringFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MonitoringFileError(`${path}: ${issue?.path.join(".") ?? ""} ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

/** The log events a metric filter names (`jsonPayload.event="x"` or `jsonPayload.event=("x" OR "y")`). */
export function eventsInFilter(filter: string): string[] {
  const events: string[] = [];
  for (const match of filter.matchAll(/jsonPayload\.event\s*=\s*(?:"([a-z_]+)"|\(([^)]*)\))/g)) {
    if (match[1]) events.push(match[1]);
    if (match[2]) events.push(...[...match[2].matchAll(/"([a-z_]+)"/g)].map((inner) => inner[1] ?? ""));
  }
  return events;
}

/** The log fields a metric reads: in its filter, label and value extractors. */
export function fieldsOfMetric(metric: LogMetric): string[] {
  const text = [metric.filter, metric.valueExtractor ?? "", ...Object.values(metric.labelExtractors ?? {})].join(" ");
  return [...new Set([...text.matchAll(/jsonPayload\.([A-Za-z]+)/g)].map((match) => match[1] ?? ""))].filter((field) => field !== "event");
}

export const RUNBOOK_URL_PATH = "docs/runbook.md";
const MANAGED_BY = { managed_by: "visit-pipeline-ops" };

export interface ApplyOptions {
  project: string;
  dryRun: boolean;
  notificationChannels: string[];
  loggingBaseUrl: string;
  monitoringBaseUrl: string;
  accessToken: () => Promise<string>;
}

export interface AppliedChange {
  kind: "metric" | "alert_policy";
  name: string;
  action: "create" | "update";
  applied: boolean;
}

/** A Google API call that failed: the method, the path and what the API said. */
export class GoogleApiError extends Error {
  readonly code = "google_api_error";
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    body: string,
  ) {
    super(`${method} ${url} answered ${status}: ${body.slice(0, 500)}`);
  }
}

/** The alert policy as Cloud Monitoring takes it. */
export function policyBody(policy: AlertPolicy, notificationChannels: readonly string[]): Record<string, unknown> {
  const { runbook, ...fields } = policy;
  return {
    ...fields,
    documentation: {
      content: `Runbook: ${RUNBOOK_URL_PATH}#${runbook} (in the visit-pipeline repository). First: \`npm run ops -- stuck\` and \`npm run ops -- stats --since 1h\`.`,
      mimeType: "text/markdown",
    },
    userLabels: MANAGED_BY,
    notificationChannels,
    enabled: true,
  };
}

export function metricBody(metric: LogMetric): Record<string, unknown> {
  return { ...metric };
}

export async function applyMonitoring(file: MonitoringFile, options: ApplyOptions): Promise<AppliedChange[]> {
  const token = await options.accessToken();
  const call = async (method: string, url: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "x-goog-user-project": options.project },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok && !(method === "GET" && response.status === 404)) throw new GoogleApiError(method, url, response.status, text);
    return { status: response.status, json: text ? (JSON.parse(text) as unknown) : {} };
  };
  const project = encodeURIComponent(options.project);
  const changes: AppliedChange[] = [];

  const metricsUrl = `${options.loggingBaseUrl}/v2/projects/${project}/metrics`;
  for (const metric of file.metrics) {
    const url = `${metricsUrl}/${encodeURIComponent(metric.name)}`;
    const existing = await call("GET", url);
    const action = existing.status === 404 ? "create" : "update";
    if (!options.dryRun) {
      if (action === "create") await call("POST", metricsUrl, metricBody(metric));
      else await call("PUT", url, metricBody(metric));
    }
    changes.push({ kind: "metric", name: metric.name, action, applied: !options.dryRun });
  }

  const policiesUrl = `${options.monitoringBaseUrl}/v3/projects/${project}/alertPolicies`;
  const existingPolicies = await listPolicies(call, policiesUrl);
  for (const policy of file.alertPolicies) {
    const existing = existingPolicies.get(policy.displayName);
    const action = existing ? "update" : "create";
    if (!options.dryRun) {
      const body = policyBody(policy, options.notificationChannels);
      if (existing) await call("PATCH", `${options.monitoringBaseUrl}/v3/${existing}`, { ...body, name: existing });
      else await call("POST", policiesUrl, body);
    }
    changes.push({ kind: "alert_policy", name: policy.displayName, action, applied: !options.dryRun });
  }
  return changes;
}

const PolicyListSchema = z.object({
  alertPolicies: z.array(z.object({ name: z.string(), displayName: z.string() })).default([]),
  nextPageToken: z.string().optional(),
});

/** The project's alert policies by display name → resource name. */
async function listPolicies(
  call: (method: string, url: string) => Promise<{ status: number; json: unknown }>,
  policiesUrl: string,
): Promise<Map<string, string>> {
  const byName = new Map<string, string>();
  let pageToken: string | undefined;
  do {
    const url = `${policiesUrl}?pageSize=500${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ""}`;
    const page = PolicyListSchema.parse((await call("GET", url)).json);
    for (const policy of page.alertPolicies) byName.set(policy.displayName, policy.name);
    pageToken = page.nextPageToken || undefined;
  } while (pageToken);
  return byName;
}
