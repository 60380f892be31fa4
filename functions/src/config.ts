// All configuration in one place: Firebase params (declared here so `firebase deploy` prompts for
// them and records their values), secrets, and the provider endpoint overrides. Read once per
// instance, validated with zod, typed.

import { defineBoolean, defineInt, defineSecret, defineString } from "firebase-functions/params";
import type { BooleanParam, IntParam, StringParam } from "firebase-functions/params";
import type { PiiPolicy } from "assemblyai";
import { z } from "zod";
import { SUMMARY_FORMATS } from "./visit/clinician-note.js";
import type { SummaryFormat } from "./visit/clinician-note.js";
import type { UnitPrices } from "./visit/cost.js";
import { PipelineError } from "./visit/errors.js";

export const assemblyAiApiKey = defineSecret("ASSEMBLYAI_API_KEY");
export const openAiApiKey = defineSecret("OPENAI_API_KEY");

/** Deploy-time only: where the functions run. Must be compatible with the bucket's location. */
export const functionsRegion = defineString("FUNCTIONS_REGION", {
  default: "us-central1",
  description: "Region of all functions; choose one compatible with the storage bucket's location.",
});

// Each tunable: the param `firebase deploy` knows, its default and its valid range. At runtime a
// param is just an environment variable, and a local run (tests, demo) may have none set, so the
// default is applied here as well as declared to the CLI.
interface Tunable<T extends number | string | boolean> {
  param: T extends number ? IntParam : T extends boolean ? BooleanParam : StringParam;
  defaultValue: T;
  schema: z.ZodType<T>;
}

function intTunable(name: string, defaultValue: number, min: number, max: number, description: string): Tunable<number> {
  return {
    param: defineInt(name, { default: defaultValue, description }),
    defaultValue,
    schema: z.coerce.number().int().min(min).max(max),
  };
}

function boolTunable(name: string, defaultValue: boolean, description: string): Tunable<boolean> {
  return {
    param: defineBoolean(name, { default: defaultValue, description }),
    defaultValue,
    // Params reach the runtime as environment strings.
    schema: z.union([z.boolean(), z.enum(["true", "false"]).transform((value) => value === "true")]),
  };
}

function stringTunable(name: string, defaultValue: string, schema: z.ZodType<string>, description: string): Tunable<string> {
  return { param: defineString(name, { default: defaultValue, description }), defaultValue, schema };
}

const MIB = 1024 * 1024;

/**
 * AssemblyAI's PII policies (checked against the SDK's PiiPolicy type). The medical ones (drug,
 * medical_condition, medical_process, injury, blood_type) are valid too, but redacting them would
 * take out what the summary is for.
 */
const PII_POLICIES = [
  "account_number", "banking_information", "blood_type", "credit_card_cvv", "credit_card_expiration",
  "credit_card_number", "date", "date_interval", "date_of_birth", "drivers_license", "drug", "duration",
  "email_address", "event", "filename", "gender_sexuality", "healthcare_number", "injury", "ip_address",
  "language", "location", "marital_status", "medical_condition", "medical_process", "money_amount",
  "nationality", "number_sequence", "occupation", "organization", "passport_number", "password",
  "person_age", "person_name", "phone_number", "physical_attribute", "political_affiliation", "religion",
  "statistics", "time", "url", "us_social_security_number", "username", "vehicle_id", "zodiac_sign",
] as const satisfies readonly PiiPolicy[];
const PII_POLICY_SET: ReadonlySet<string> = new Set(PII_POLICIES);

/** Identifiers, not clinical content: what a patient-facing summary can do without. */
const DEFAULT_REDACTED_POLICIES =
  "person_name,phone_number,email_address,date_of_birth,us_social_security_number,healthcare_number,account_number,credit_card_number,drivers_license,passport_number";
// Unit prices are decimals, which Firebase int params cannot hold: a string param with a plain
// decimal (no exponent, at most 6 places), read as micro-dollars so sums are exact integers.
const UsdDecimalSchema = z.string().regex(/^\d{1,6}(\.\d{1,6})?$/, "a decimal amount of US dollars, e.g. 0.23");

function usdTunable(name: string, defaultValue: string, description: string): Tunable<string> {
  return stringTunable(name, defaultValue, UsdDecimalSchema, description);
}

/**
 * SUMMARY_FORMATS as a list, or null when it is not one: known formats, each once, and always
 * `patient` (the summary the visit's status, action items and notifications rest on).
 */
export function parseSummaryFormats(value: string): SummaryFormat[] | null {
  const listed = value.split(",").map((format) => format.trim());
  const known = listed.filter((format): format is SummaryFormat => (SUMMARY_FORMATS as readonly string[]).includes(format));
  if (known.length !== listed.length || new Set(known).size !== known.length || !known.includes("patient")) return null;
  return known;
}

/** A validated decimal USD amount as whole micro-dollars (0.23 → 230000), without float rounding. */
export function microUsd(decimal: string): number {
  const [whole = "0", fraction = ""] = decimal.split(".");
  return Number(whole) * 1_000_000 + Number(fraction.padEnd(6, "0"));
}

export const tunables = {
  maxUploadBytes: intTunable("MAX_UPLOAD_BYTES", 250 * MIB, 1, 5 * 1024 * MIB, "Largest accepted recording, in bytes."),
  signedUrlTtlHours: intTunable(
    "SIGNED_URL_TTL_HOURS",
    3,
    1,
    168,
    "Lifetime of the read URL given to AssemblyAI; it must outlive AssemblyAI's queue time (an expired one fails the job retryably).",
  ),
  deleteProviderTranscripts: boolTunable(
    "DELETE_PROVIDER_TRANSCRIPTS",
    true,
    "Delete each transcript at AssemblyAI once it is saved in Firestore (retried by the checker if the delete fails).",
  ),
  audioRetentionDays: intTunable(
    "AUDIO_RETENTION_DAYS",
    30,
    0,
    3650,
    "Days a recording is kept in Storage after its upload; 0 keeps it forever.",
  ),
  bookkeepingRetentionDays: intTunable(
    "BOOKKEEPING_RETENTION_DAYS",
    30,
    1,
    3650,
    "Days work claims, tombstones and account-deletion records are kept before Firestore's TTL policy may delete them.",
  ),
  speechModels: stringTunable(
    "ASSEMBLYAI_SPEECH_MODELS",
    "universal-3-pro,universal-2",
    z.string().regex(/^[a-z0-9._-]+(,[a-z0-9._-]+)*$/, "a comma-separated list of model names"),
    "AssemblyAI speech models, best first (the later ones are fallbacks, e.g. for broader language coverage).",
  ),
  medicalMode: boolTunable(
    "ASSEMBLYAI_MEDICAL_MODE",
    false,
    "Transcribe with AssemblyAI's Medical Mode (domain medical-v1, a paid add-on; English, Spanish, German and French — other languages are transcribed without it).",
  ),
  redactPii: boolTunable(
    "ASSEMBLYAI_REDACT_PII",
    false,
    "Have AssemblyAI replace the ASSEMBLYAI_REDACT_PII_POLICIES entities in transcripts with their type (e.g. [PERSON_NAME]) before anything is stored or summarized.",
  ),
  redactPiiPolicies: stringTunable(
    "ASSEMBLYAI_REDACT_PII_POLICIES",
    DEFAULT_REDACTED_POLICIES,
    z
      .string()
      .refine(
        (value) => value.split(",").every((policy) => PII_POLICY_SET.has(policy)),
        "a comma-separated list of AssemblyAI PII policies (e.g. person_name,phone_number)",
      ),
    "PII policies redacted when ASSEMBLYAI_REDACT_PII is on.",
  ),
  speakersExpected: intTunable(
    "ASSEMBLYAI_SPEAKERS_EXPECTED",
    0,
    0,
    10,
    "Speakers AssemblyAI should tell apart in a recording; 0 lets it decide.",
  ),
  openAiModel: stringTunable(
    "OPENAI_MODEL",
    "gpt-4.1-mini",
    z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/),
    "OpenAI model for summaries; it must support structured outputs.",
  ),
  checkBatchSize: intTunable("CHECK_BATCH_SIZE", 50, 1, 500, "Visits the checker reads per batch."),
  checkConcurrency: intTunable(
    "CHECK_CONCURRENCY",
    48,
    1,
    64,
    "Most visits one checker run works on at once; below it, concurrency follows the request budget and the measured latency.",
  ),
  assemblyAiRequestsPerMinute: intTunable(
    "ASSEMBLYAI_REQUESTS_PER_MINUTE",
    3300,
    10,
    100_000,
    "AssemblyAI requests all callers together may send per minute (published limit 20,000 per 5 minutes; 6 × 3,300 stays under it).",
  ),
  checkTimeBudgetSeconds: intTunable(
    "CHECK_TIME_BUDGET_SECONDS",
    55,
    5,
    500,
    "How long one checker run keeps taking new work; keep it under the schedule interval.",
  ),
  pollInitialDelaySeconds: intTunable(
    "POLL_INITIAL_DELAY_SECONDS",
    30,
    0,
    3600,
    "Wait before the first status check of a new transcript.",
  ),
  pollMaxDelaySeconds: intTunable("POLL_MAX_DELAY_SECONDS", 600, 1, 86_400, "Longest wait between status checks."),
  attemptBackoffSeconds: intTunable(
    "ATTEMPT_BACKOFF_SECONDS",
    60,
    0,
    3600,
    "Base wait before another attempt of a stage after a retryable failure (doubles per attempt).",
  ),
  summaryWatchdogSeconds: intTunable(
    "SUMMARY_WATCHDOG_SECONDS",
    1200,
    1,
    86_400,
    "How long a visit may wait in summarizing without a live attempt before the checker dispatches it again.",
  ),
  visitDeadlineHours: intTunable(
    "VISIT_DEADLINE_HOURS",
    24,
    1,
    720,
    "A visit not finished this long after its upload (or its last retry) ends failed/partial with deadline_exceeded.",
  ),
  breakerFailureThreshold: intTunable(
    "BREAKER_FAILURE_THRESHOLD",
    5,
    1,
    1000,
    "Provider failures within the window that open the outage breaker.",
  ),
  breakerWindowSeconds: intTunable("BREAKER_WINDOW_SECONDS", 60, 1, 3600, "Window in which breaker failures are counted."),
  breakerCooldownSeconds: intTunable(
    "BREAKER_COOLDOWN_SECONDS",
    120,
    1,
    3600,
    "How long an open breaker defers work before one probe call is let through.",
  ),
  retryCooldownSeconds: intTunable("RETRY_COOLDOWN_SECONDS", 30, 0, 86_400, "Minimum time between two retries of one visit."),
  retryQuotaPerHour: intTunable("RETRY_QUOTA_PER_HOUR", 10, 1, 10_000, "Retries one user may ask for per hour."),
  assemblyAiTimeoutSeconds: intTunable("ASSEMBLYAI_TIMEOUT_SECONDS", 30, 1, 300, "Timeout of one AssemblyAI request."),
  openAiTimeoutSeconds: intTunable("OPENAI_TIMEOUT_SECONDS", 180, 1, 1500, "Timeout of one OpenAI request."),
  providerRetryMinDelayMs: intTunable(
    "PROVIDER_RETRY_MIN_DELAY_MS",
    500,
    0,
    60_000,
    "First wait of the in-call retries of a provider request (doubles, with jitter, up to 3 retries).",
  ),
  transcriptionMaxAttempts: intTunable(
    "TRANSCRIPTION_MAX_ATTEMPTS",
    3,
    1,
    20,
    "Submissions tried before a visit's transcription is given up.",
  ),
  summaryMaxAttempts: intTunable(
    "SUMMARY_MAX_ATTEMPTS",
    3,
    1,
    20,
    "Summarization attempts before a visit ends partial.",
  ),
  uploadQuotaPerDay: intTunable(
    "UPLOAD_QUOTA_PER_DAY",
    10,
    1,
    10_000,
    "Recordings one user may have processed per UTC day (re-uploads count); more end failed with upload_quota_exceeded.",
  ),
  maxConcurrentVisitsPerUser: intTunable(
    "MAX_CONCURRENT_VISITS_PER_USER",
    3,
    1,
    1_000,
    "Visits one user may have in pending/transcribing/summarizing at once; more end failed with too_many_active_visits.",
  ),
  allowAnonymousUploads: boolTunable(
    "ALLOW_ANONYMOUS_UPLOADS",
    false,
    "Process recordings from anonymous Firebase Auth accounts (off: they end failed with anonymous_upload_refused).",
  ),
  enforceAppCheck: boolTunable(
    "ENFORCE_APP_CHECK",
    false,
    "Require a valid Firebase App Check token (X-Firebase-AppCheck) on the api's user endpoints; consumed on state-changing calls.",
  ),
  maxPaidCallsPerVisit: intTunable(
    "MAX_PAID_CALLS_PER_VISIT",
    15,
    2,
    200,
    "Paid provider calls (AssemblyAI submissions, OpenAI summaries) one visit may use across attempts, rounds and retries.",
  ),
  summaryMaxAudioSeconds: intTunable(
    "SUMMARY_MAX_AUDIO_SECONDS",
    28_800,
    60,
    86_400,
    "Longest recording that is summarized (in parts when its transcript does not fit one request); longer ones end partial with transcript_too_long.",
  ),
  summaryContextTokens: {
    param: defineInt("SUMMARY_CONTEXT_TOKENS", {
      default: 0,
      description: "Prompt tokens one summary request may carry (estimated); 0 = the model's default. Longer transcripts are summarized in parts.",
    }),
    defaultValue: 0,
    schema: z.coerce
      .number()
      .int()
      .refine((tokens) => tokens === 0 || (tokens >= 1_000 && tokens <= 2_000_000), "0, or 1000 to 2000000"),
  } satisfies Tunable<number>,
  openAiFallbackModel: stringTunable(
    "OPENAI_FALLBACK_MODEL",
    "",
    z.string().regex(/^(?:[A-Za-z0-9._:-]{1,100})?$/),
    "OpenAI model used when the primary one cannot write a summary (not found or retired, context exceeded, repeated invalid output); empty: none.",
  ),
  summaryFormats: stringTunable(
    "SUMMARY_FORMATS",
    "patient",
    z
      .string()
      .refine((value) => parseSummaryFormats(value) !== null, `a comma-separated list of ${SUMMARY_FORMATS.join(", ")}, each once, with patient`),
    "What each visit's summarization writes: patient (the patient summary, always) and soap (a SOAP note for the care team, its own artifact).",
  ),
  webhookBaseUrl: stringTunable(
    "WEBHOOK_BASE_URL",
    "",
    z.string().regex(/^(https?:\/\/[^\s?#]+)?$/, "empty, or the api function's URL"),
    "The api function's public URL; set, AssemblyAI calls POST {it}/webhooks/assemblyai when a job ends (empty: off, the checker polls).",
  ),
  webhookSafetyPollSeconds: intTunable(
    "WEBHOOK_SAFETY_POLL_SECONDS",
    900,
    1,
    86_400,
    "With webhooks on, the checker's wait between checks of a transcript AssemblyAI will announce (the safety net for a lost delivery).",
  ),
  // Defaults are the providers' published list prices as of 2026-12 (docs/cost.md has the sources).
  assemblyAiUsdPerAudioHour: usdTunable(
    "ASSEMBLYAI_USD_PER_AUDIO_HOUR",
    "0.23",
    "AssemblyAI price per hour of audio transcribed, in USD (the speech model plus the speaker-labels add-on), for the visit's estimated cost.",
  ),
  openAiUsdPerMillionInputTokens: usdTunable(
    "OPENAI_USD_PER_MILLION_INPUT_TOKENS",
    "0.40",
    "OpenAI price per million prompt tokens of OPENAI_MODEL, in USD, for the visit's estimated cost.",
  ),
  openAiUsdPerMillionOutputTokens: usdTunable(
    "OPENAI_USD_PER_MILLION_OUTPUT_TOKENS",
    "1.60",
    "OpenAI price per million completion tokens of OPENAI_MODEL, in USD, for the visit's estimated cost.",
  ),
  notifyOnOutcome: boolTunable(
    "NOTIFY_ON_OUTCOME",
    false,
    "Send a push notification (FCM) to the user's registered devices when a visit ends completed, partial or failed.",
  ),
  stuckVisitMinutes: intTunable(
    "STUCK_VISIT_MINUTES",
    120,
    1,
    43_200,
    "A visit not terminal this long after its last status change counts as stuck in GET /health/ready.",
  ),
} as const;

type TunableValues = { [K in keyof typeof tunables]: (typeof tunables)[K]["defaultValue"] };

// Transcripts and API keys travel to these URLs: https only, except to this machine (the local
// fakes) or under the Firebase emulators.
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

function providerUrlSchema(env: Env) {
  return z
    .string()
    .url()
    .refine((url) => {
      if (!URL.canParse(url)) return false;
      const parsed = new URL(url);
      if (parsed.protocol === "https:") return true;
      return parsed.protocol === "http:" && (LOOPBACK_HOSTS.has(parsed.hostname) || env.FUNCTIONS_EMULATOR === "true");
    }, "must be an https:// URL (http:// only to this machine or under the emulators)")
    .optional();
}

export interface Config extends TunableValues {
  region: string;
  assemblyAiBaseUrl: string | undefined;
  openAiBaseUrl: string | undefined;
  /** A loopback `host:port` speaking FCM's HTTP v1 API, for local runtimes (FCM has no emulator). */
  fcmEmulatorHost: string | undefined;
  speechModelList: string[];
  /** What every submission asks of AssemblyAI beyond the speech models. */
  transcription: TranscriptionRequest;
  /** The unit-price params as micro-dollars. */
  unitPrices: UnitPrices;
  /** SUMMARY_FORMATS, parsed: whether a SOAP note is written beside the patient summary. */
  clinicianNote: boolean;
}

export interface TranscriptionRequest {
  medicalMode: boolean;
  /** Null: no redaction. */
  redactPiiPolicies: string[] | null;
  /** Null: AssemblyAI decides. */
  speakersExpected: number | null;
}

type Env = Record<string, string | undefined>;

/** Parses configuration from an environment (process.env at runtime). Throws config_invalid. */
export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [key, tunable] of Object.entries(tunables)) {
    const raw = env[tunable.param.name];
    const parsed = (tunable.schema as z.ZodType<unknown>).safeParse(raw === undefined || raw === "" ? tunable.defaultValue : raw);
    if (parsed.success) values[key] = parsed.data;
    else problems.push(`${tunable.param.name}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  }
  const ProviderUrlSchema = providerUrlSchema(env);
  const assemblyAiBaseUrl = ProviderUrlSchema.safeParse(env.ASSEMBLYAI_BASE_URL || undefined);
  const openAiBaseUrl = ProviderUrlSchema.safeParse(env.OPENAI_BASE_URL || undefined);
  // The webhook URL carries the per-visit secret's header to it: the same https rule.
  const webhookBaseUrl = ProviderUrlSchema.safeParse(values.webhookBaseUrl || undefined);
  const urlProblem = (result: typeof assemblyAiBaseUrl) => result.error?.issues[0]?.message ?? "invalid";
  if (!assemblyAiBaseUrl.success) problems.push(`ASSEMBLYAI_BASE_URL: ${urlProblem(assemblyAiBaseUrl)}`);
  if (!openAiBaseUrl.success) problems.push(`OPENAI_BASE_URL: ${urlProblem(openAiBaseUrl)}`);
  if (!webhookBaseUrl.success) problems.push(`WEBHOOK_BASE_URL: ${urlProblem(webhookBaseUrl)}`);
  const region = env[functionsRegion.name] || "us-central1";
  if (!/^[a-z]+-[a-z]+\d+$/.test(region)) problems.push(`${functionsRegion.name}: not a region name`);
  if (env.FCM_EMULATOR_HOST && !/^(127\.0\.0\.1|localhost):\d{1,5}$/.test(env.FCM_EMULATOR_HOST)) {
    problems.push("FCM_EMULATOR_HOST: must be a loopback host:port (local runtimes only)");
  }
  if (problems.length > 0) {
    throw new PipelineError("config_invalid", { detail: problems.join("; ") });
  }
  const tunableValues = values as TunableValues;
  return {
    ...tunableValues,
    region,
    speechModelList: tunableValues.speechModels.split(","),
    transcription: {
      medicalMode: tunableValues.medicalMode,
      redactPiiPolicies: tunableValues.redactPii ? tunableValues.redactPiiPolicies.split(",") : null,
      speakersExpected: tunableValues.speakersExpected > 0 ? tunableValues.speakersExpected : null,
    },
    unitPrices: {
      audioHour: microUsd(tunableValues.assemblyAiUsdPerAudioHour),
      millionInputTokens: microUsd(tunableValues.openAiUsdPerMillionInputTokens),
      millionOutputTokens: microUsd(tunableValues.openAiUsdPerMillionOutputTokens),
    },
    clinicianNote: parseSummaryFormats(tunableValues.summaryFormats)?.includes("soap") ?? false,
    fcmEmulatorHost: env.FCM_EMULATOR_HOST || undefined,
    assemblyAiBaseUrl: assemblyAiBaseUrl.data?.replace(/\/+$/, ""),
    openAiBaseUrl: openAiBaseUrl.data?.replace(/\/+$/, ""),
    webhookBaseUrl: webhookBaseUrl.data?.replace(/\/+$/, "") ?? "",
  };
}

let cached: Config | undefined;

/** The instance's configuration, parsed on first use (params are not readable at deploy time). */
export function getConfig(): Config {
  cached ??= loadConfig(process.env);
  return cached;
}

/** Forget the parsed configuration; for local runtimes that change the environment between runs. */
export function reloadConfig(): Config {
  cached = undefined;
  return getConfig();
}

/** A secret's value, or config_invalid when it is missing, so no provider call is made without it. */
export function requireSecret(secret: { name: string; value(): string }): string {
  const value = process.env[secret.name] ? secret.value() : "";
  if (!value) throw new PipelineError("config_invalid", { detail: `secret ${secret.name} is not set` });
  return value;
}
