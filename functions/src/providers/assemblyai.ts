// AssemblyAI behind one narrow interface: submit a recording, check a transcript. Uses the
// `assemblyai` SDK, but keeps what the SDK drops: the HTTP status and Retry-After of failures
// (its errors are plain `Error(message)`), and a per-request timeout (it has none).

import { FileService, TranscriptService } from "assemblyai";
import type { PiiPolicy } from "assemblyai";
import { z } from "zod";
import { PipelineError } from "../visit/errors.js";
import type { ErrorCode } from "../visit/errors.js";
import { audioUrlHash } from "./ports.js";
import type { TranscriptionRequest } from "../config.js";
import type { CompletedTranscript, SpeechToText, TranscriptCheck, TranscriptionSettings, Utterance } from "./ports.js";
import { certainlyNotCreated, classifyTransportError, codeForHttpStatus, parseRetryAfter } from "./http-errors.js";

export interface AssemblyAiOptions {
  apiKey: string;
  baseUrl: string | undefined;
  timeoutMs: number;
  speechModels: string[];
  transcription: TranscriptionRequest;
  /** Runs before every HTTP request (the shared request budget takes its token here); may throw. */
  beforeRequest?: () => Promise<void>;
}

const MEDICAL_DOMAIN = "medical-v1";

const DEFAULT_BASE_URL = "https://api.assemblyai.com";
const TRANSCRIPT_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** The SDK's transcript service with typed errors and a timeout on every request. */
class ClassifyingTranscriptService extends TranscriptService {
  constructor(
    params: { apiKey: string; baseUrl: string },
    private readonly timeoutMs: number,
    private readonly beforeRequest: (() => Promise<void>) | undefined,
  ) {
    super(params, new FileService(params));
  }

  protected override async fetch(input: string, init?: RequestInit): Promise<Response> {
    await this.beforeRequest?.();
    let response: Response;
    try {
      response = await this.fetchResponse(input, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw classifyTransportError(error);
    }
    if (response.status >= 400) throw await httpFailure(response);
    return response;
  }
}

async function httpFailure(response: Response): Promise<PipelineError> {
  const body = await response.text().catch(() => "");
  return new PipelineError(codeForHttpStatus(response.status), {
    httpStatus: response.status,
    retryAfterMs: parseRetryAfter(response.headers, Date.now()),
    detail: `AssemblyAI HTTP ${response.status}: ${errorMessageOf(body)}`,
  });
}

function errorMessageOf(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === "object" && "error" in parsed && typeof parsed.error === "string") {
      return parsed.error;
    }
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return body.slice(0, 200);
}

// Parsed leniently: only what we use, and every optional field may be null or absent.
const UtteranceSchema = z.object({
  speaker: z.string().nullish(),
  start: z.number(),
  end: z.number(),
  text: z.string(),
  confidence: z.number().nullish(),
});

const TranscriptSchema = z.object({
  id: z.string().regex(TRANSCRIPT_ID_PATTERN),
  status: z.string(),
  text: z.string().nullish(),
  utterances: z.array(UtteranceSchema).nullish(),
  language_code: z.string().nullish(),
  language_confidence: z.number().nullish(),
  audio_duration: z.number().nullish(),
  error: z.string().nullish(),
  speech_model_used: z.string().nullish(),
  audio_url: z.string().nullish(),
  // Echoed request options, and what AssemblyAI says it did with them.
  domain: z.string().nullish(),
  metadata: z
    .object({
      domain_used: z.string().nullish(),
      warning: z.string().nullish(),
      warnings: z.array(z.object({ message: z.string() })).nullish(),
    })
    .nullish(),
  redact_pii: z.boolean().nullish(),
  redact_pii_policies: z.array(z.string()).nullish(),
  speakers_expected: z.number().nullish(),
});

type TranscriptResponse = z.infer<typeof TranscriptSchema>;

function parseTranscript(body: unknown): TranscriptResponse {
  const parsed = TranscriptSchema.safeParse(body);
  if (!parsed.success) {
    throw new PipelineError("provider_bad_response", {
      detail: `AssemblyAI transcript did not match the expected shape: ${parsed.error.issues[0]?.path.join(".") ?? "?"}`,
    });
  }
  return parsed.data;
}

export function createAssemblyAi(options: AssemblyAiOptions): SpeechToText {
  const service = new ClassifyingTranscriptService(
    { apiKey: options.apiKey, baseUrl: options.baseUrl ?? DEFAULT_BASE_URL },
    options.timeoutMs,
    options.beforeRequest,
  );

  return {
    async submit(audioUrl, webhook) {
      try {
        const body = await callSdk(() =>
          service.submit({
            audio_url: audioUrl,
            // Best first; AssemblyAI routes to the first one available for the audio's language.
            speech_models: options.speechModels,
            speaker_labels: true,
            language_detection: true,
            ...transcriptionParams(options.transcription),
            ...(webhook
              ? {
                  webhook_url: webhook.url,
                  webhook_auth_header_name: webhook.authHeaderName,
                  webhook_auth_header_value: webhook.authHeaderValue,
                }
              : {}),
          }),
        );
        return { transcriptId: parseTranscript(body).id };
      } catch (thrown) {
        const error = classifyTransportError(thrown);
        throw certainlyNotCreated(error) ? error : error.withOutcomeUnknown();
      }
    },

    findTranscriptByAudioUrl: (hashes, since) => findByAudioUrl(service, hashes, since),

    findTranscriptsReadingObjects: (objectPrefix, since) => findByObjectPrefix(service, objectPrefix, since),

    deleteTranscript: (transcriptId) => deleteJob(service, transcriptId),

    async check(transcriptId) {
      if (!TRANSCRIPT_ID_PATTERN.test(transcriptId)) {
        throw new PipelineError("transcript_not_found", { detail: "stored transcript id is not a valid id" });
      }
      try {
        return toCheck(parseTranscript(await callSdk(() => service.get(transcriptId))));
      } catch (error) {
        if (error instanceof PipelineError && error.httpStatus === 404) {
          throw new PipelineError("transcript_not_found", { httpStatus: 404, detail: error.detail, cause: error });
        }
        throw error;
      }
    },
  };
}

const ListSchema = z.object({
  transcripts: z.array(
    z.object({
      id: z.string(),
      audio_url: z.string().nullish(),
      // The SDK turns `created` into a Date (parsed as local time; Cloud Functions run in UTC).
      created: z.union([z.date(), z.string()]).nullish(),
      status: z.string().nullish(),
    }),
  ),
});

// Bounded look-back: 5 pages of 200 jobs. Recovery runs within minutes of the interrupted
// submission, so the job is near the top of the list unless the account is very busy.
const RECOVERY_PAGES = 5;
const RECOVERY_PAGE_SIZE = 200;
// AssemblyAI's `created` is UTC without a zone designator; allow for clock skew.
const RECOVERY_SKEW_MS = 10 * 60 * 1000;

async function findByAudioUrl(
  service: ClassifyingTranscriptService,
  hashes: ReadonlySet<string>,
  since: Date,
): Promise<string | null> {
  let beforeId: string | undefined;
  for (let page = 0; page < RECOVERY_PAGES; page++) {
    const items = await listPage(service, beforeId);
    const sent = items.filter((item) => item.audio_url && hashes.has(audioUrlHash(item.audio_url)));
    // A job that already failed is not worth adopting (submitting again is the right move then),
    // nor worth keeping: no claim knows its id, so nothing else would ever delete it, and it holds
    // the signed audio URL. It is deleted here; a delete that fails fails the search (retried).
    for (const failed of sent.filter((item) => item.status === "error")) await deleteJob(service, failed.id);
    const match = sent.find((item) => item.status !== "error");
    if (match) return match.id;
    const oldest = items.at(-1);
    if (!oldest || items.length < RECOVERY_PAGE_SIZE || createdBefore(oldest.created, since)) return null;
    beforeId = oldest.id;
  }
  return null;
}

/** Every job since `since` (newest first, bounded) whose audio URL reads an object under `objectPrefix`. */
async function findByObjectPrefix(service: ClassifyingTranscriptService, objectPrefix: string, since: Date): Promise<string[]> {
  const found: string[] = [];
  let beforeId: string | undefined;
  for (let page = 0; page < RECOVERY_PAGES; page++) {
    const items = await listPage(service, beforeId);
    for (const item of items) if (item.audio_url && readsObjectUnder(item.audio_url, objectPrefix)) found.push(item.id);
    const oldest = items.at(-1);
    if (!oldest || items.length < RECOVERY_PAGE_SIZE || createdBefore(oldest.created, since)) break;
    beforeId = oldest.id;
  }
  return found;
}

async function listPage(service: ClassifyingTranscriptService, beforeId: string | undefined) {
  const body = await callSdk(() => service.list({ limit: RECOVERY_PAGE_SIZE, ...(beforeId ? { before_id: beforeId } : {}) }));
  const parsed = ListSchema.safeParse(body);
  if (!parsed.success) throw new PipelineError("provider_bad_response", { detail: "transcript list shape" });
  return parsed.data.transcripts;
}

/** A signed URL (or the emulator's media URL) names the object in its path; a deleted job's names none. */
function readsObjectUnder(audioUrl: string, objectPrefix: string): boolean {
  if (!URL.canParse(audioUrl)) return false;
  try {
    return decodeURIComponent(new URL(audioUrl).pathname).includes(`/${objectPrefix}`);
  } catch {
    return false;
  }
}

async function deleteJob(service: ClassifyingTranscriptService, transcriptId: string): Promise<"deleted" | "already_gone"> {
  // An id we could not have stored, or a job AssemblyAI no longer has: nothing is left there.
  if (!TRANSCRIPT_ID_PATTERN.test(transcriptId)) return "already_gone";
  try {
    await callSdk(() => service.delete(transcriptId));
    return "deleted";
  } catch (error) {
    if (error instanceof PipelineError && error.httpStatus === 404) return "already_gone";
    throw error;
  }
}

function createdBefore(created: Date | string | null | undefined, since: Date): boolean {
  if (!created) return false;
  const ms =
    created instanceof Date
      ? created.getTime()
      : Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(created) ? created : `${created}Z`);
  return !Number.isNaN(ms) && ms < since.getTime() - RECOVERY_SKEW_MS;
}

/** Any SDK failure as a PipelineError (a 200 with a non-JSON body surfaces as SyntaxError). */
async function callSdk<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw classifyTransportError(error);
  }
}

// What AssemblyAI puts in place of the audio URL once a transcript was deleted: its text is then
// "Deleted by user." and must never be taken for the visit's transcript.
const DELETED_AUDIO_URL = "http://deleted_by_user";

function toCheck(transcript: TranscriptResponse): TranscriptCheck {
  if (transcript.audio_url === DELETED_AUDIO_URL) {
    return { state: "error", code: "transcript_not_found", providerMessage: "the transcript was deleted at AssemblyAI" };
  }
  switch (transcript.status) {
    case "completed":
      return { state: "completed", transcript: toCompleted(transcript) };
    case "error": {
      const providerMessage = transcript.error ?? "";
      return { state: "error", code: codeForTranscriptError(providerMessage), providerMessage };
    }
    case "queued":
      return { state: "queued" };
    default:
      // "processing", and any status added later: keep waiting rather than fail a paid job.
      return { state: "processing" };
  }
}

function toCompleted(transcript: TranscriptResponse): CompletedTranscript {
  const text = transcript.text ?? "";
  const utterances: Utterance[] = (transcript.utterances ?? []).map((u) => ({
    speaker: u.speaker ?? null,
    startMs: Math.round(u.start),
    endMs: Math.round(u.end),
    text: u.text,
    confidence: u.confidence ?? null,
  }));
  return {
    transcriptId: transcript.id,
    text,
    // Speaker labels can come back empty (e.g. a single speaker on some models): keep the text
    // usable as one unlabelled utterance rather than lose it.
    utterances: utterances.length > 0 || text.trim() === "" ? utterances : [{ speaker: null, startMs: 0, endMs: 0, text, confidence: null }],
    languageCode: transcript.language_code ?? null,
    languageConfidence: transcript.language_confidence ?? null,
    audioDurationSeconds: transcript.audio_duration ?? null,
    speechModel: transcript.speech_model_used ?? null,
    settings: settingsOf(transcript),
  };
}

function transcriptionParams(request: TranscriptionRequest) {
  return {
    ...(request.medicalMode ? { domain: MEDICAL_DOMAIN } : {}),
    // entity_name: "[PERSON_NAME]" reads better in a patient's transcript than a hash.
    ...(request.redactPiiPolicies
      ? { redact_pii: true, redact_pii_policies: request.redactPiiPolicies as PiiPolicy[], redact_pii_sub: "entity_name" as const }
      : {}),
    ...(request.speakersExpected ? { speakers_expected: request.speakersExpected } : {}),
  };
}

/** From the job itself, not from today's configuration: the settings may have changed since it was submitted. */
function settingsOf(transcript: TranscriptResponse): TranscriptionSettings {
  const asked = transcript.domain === MEDICAL_DOMAIN;
  const used = transcript.metadata?.domain_used;
  const warned = Boolean(transcript.metadata?.warning) || (transcript.metadata?.warnings?.length ?? 0) > 0;
  return {
    medicalMode: !asked ? "off" : used === MEDICAL_DOMAIN ? "applied" : warned || transcript.metadata ? "skipped" : "unknown",
    redactedPiiPolicies: transcript.redact_pii ? (transcript.redact_pii_policies ?? []) : [],
    speakersExpected: transcript.speakers_expected ?? null,
  };
}

/**
 * The single exception to classifying by status/type (http-errors.ts), because a failed job
 * carries nothing else: AssemblyAI answers 200 with `status: "error"` and a free-text `error`,
 * with no error code or type to read. So this is the one place in the project that classifies by
 * message text, by lower-cased fragment, first match wins (the families are listed in
 * docs/errors.md). Anything unrecognised is `transcription_failed` (retryable: a fresh submission
 * may succeed), so a message AssemblyAI rewords costs a retry rather than a permanent failure.
 * The message can embed the signed audio URL: it reaches logs only through sanitizeDetail.
 */
export function codeForTranscriptError(message: string): ErrorCode {
  const text = message.toLowerCase();
  if (text.includes("no spoken audio") || text.includes("no speech")) return "no_speech_detected";
  if (text.includes("does not appear to contain audio") || text.includes("transcoding failed")) {
    return "unsupported_audio_format";
  }
  if (text.includes("too short")) return "audio_too_short";
  if (text.includes("download")) return "audio_download_failed";
  if (text.includes("language") && (text.includes("not supported") || text.includes("not available"))) {
    return "language_not_supported";
  }
  return "transcription_failed";
}
