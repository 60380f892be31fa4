// What the pipeline needs from its providers, apart from any vendor: the stages, the store and
// the tests depend on these interfaces, and only pipeline.ts knows which adapter implements them.

import { createHash } from "node:crypto";
import type { ErrorCode } from "../visit/errors.js";
import type { WebhookRequest } from "./assemblyai-webhook.js";
import type { ClinicianNote } from "../visit/clinician-note.js";
import type { VisitSummary } from "../visit/summary.js";

export interface Utterance {
  speaker: string | null;
  startMs: number;
  endMs: number;
  text: string;
  confidence: number | null;
}

export interface CompletedTranscript {
  transcriptId: string;
  text: string;
  utterances: Utterance[];
  languageCode: string | null;
  languageConfidence: number | null;
  audioDurationSeconds: number | null;
  speechModel: string | null;
  /** What the job was asked for and did, as AssemblyAI reports it. */
  settings: TranscriptionSettings;
}

export interface TranscriptionSettings {
  /**
   * Medical Mode: "applied" (AssemblyAI reports the medical domain used), "skipped" (asked for,
   * but not applied — e.g. a language it does not serve; not charged), "off" (not asked for),
   * "unknown" (asked for; AssemblyAI did not say).
   */
  medicalMode: "applied" | "skipped" | "off" | "unknown";
  /** PII policies AssemblyAI redacted; empty: no redaction. */
  redactedPiiPolicies: string[];
  speakersExpected: number | null;
}

export type TranscriptCheck =
  | { state: "queued" | "processing" }
  | { state: "completed"; transcript: CompletedTranscript }
  | { state: "error"; code: ErrorCode; providerMessage: string };

export interface SpeechToText {
  /**
   * Starts a transcription job. Paid, and AssemblyAI has no idempotency key: a failure whose
   * outcome is unknown (timeout, reset, 5xx) is thrown with `outcomeUnknown` set and must not be
   * repeated blindly — look for the job with findTranscriptByAudioUrl first. With `webhook`,
   * AssemblyAI posts `{ transcript_id, status }` to its URL, with its auth header, when the job ends.
   */
  submit(audioUrl: string, webhook?: WebhookRequest | null): Promise<{ transcriptId: string }>;
  /** Reads a job's state. Free and idempotent. */
  check(transcriptId: string): Promise<TranscriptCheck>;
  /**
   * Finds a job created since `since` whose audio URL hashes (audioUrlHash) to one of
   * `audioUrlHashes` — the job an interrupted submission may have created. Pages back through
   * the account's transcript list, newest first, for a bounded number of pages.
   */
  findTranscriptByAudioUrl(audioUrlHashes: ReadonlySet<string>, since: Date): Promise<string | null>;
  /**
   * Every job created since `since`, whatever its status, whose audio URL reads an object under
   * `objectPrefix` (a visit's folder, `users/{uid}/visits/{visitId}/`): the jobs that work racing
   * a deletion created and no record names. The same bounded look-back as findTranscriptByAudioUrl.
   */
  findTranscriptsReadingObjects(objectPrefix: string, since: Date): Promise<string[]>;
  /**
   * Deletes a transcript's data at AssemblyAI (text, audio URL, everything derived). Idempotent:
   * a job AssemblyAI no longer knows is "already_gone". Free.
   */
  deleteTranscript(transcriptId: string): Promise<"deleted" | "already_gone">;
}

/** How a submitted audio URL is remembered: the URL itself is a credential and is never stored. */
export function audioUrlHash(audioUrl: string): string {
  return createHash("sha256").update(audioUrl).digest("hex");
}

export interface SummaryRequest {
  /** The transcript as prompt text (speaker-labelled lines). */
  transcriptText: string;
  /** ISO 639-1 code of the recording's language, when known. */
  languageCode: string | null;
  /** The model to ask; null: the adapter's default (OPENAI_MODEL). */
  model?: string | null;
  /** The text is one consecutive part of a longer transcript, summarized on its own and merged after. */
  part?: boolean;
}

export type TokenCount = { promptTokens: number; completionTokens: number };

export interface SummaryResult {
  summary: VisitSummary;
  model: string;
  usage: TokenCount | null;
}

export interface ClinicianNoteResult {
  note: ClinicianNote;
  model: string;
  usage: TokenCount | null;
}

export interface TranslationRequest {
  /** The patient summary as written in the recording's language. */
  summary: VisitSummary;
  /** ISO 639-1 code of the language to write it in. */
  targetLanguage: string;
  /** The model to ask; null: the adapter's default (OPENAI_MODEL). */
  model?: string | null;
  /** The summary holds only some items of a longer one, translated in parts and put back together. */
  part?: boolean;
}

/** Every method is paid: each call goes through the step runner's `pay`. */
export interface Summarizer {
  summarize(request: SummaryRequest, signal?: AbortSignal): Promise<SummaryResult>;
  /** A SOAP note of the same transcript text (SUMMARY_FORMATS with `soap`). */
  writeClinicianNote(request: SummaryRequest, signal?: AbortSignal): Promise<ClinicianNoteResult>;
  /** The summary in another language, item for item (see visit/summary-translation.ts). */
  translateSummary(request: TranslationRequest, signal?: AbortSignal): Promise<SummaryResult>;
  /**
   * Estimated prompt tokens of a transcript-carrying request (summary or note, whichever is
   * larger) apart from its transcript text: instructions, schema. Async: the schemas are compiled
   * by the adapter, which is loaded on first use.
   */
  promptOverheadTokens(): Promise<number>;
}

/** A push notification: fixed, PHI-free words and ids only (see stages/notify-outcome.ts). */
export interface PushMessage {
  title: string;
  body: string;
  /** Delivered to the app with the notification (ids for it to open the right screen). */
  data: Record<string, string>;
}

export interface PushSender {
  /**
   * Sends one notification to one device. `token_unregistered`: the push service says the token is
   * no longer valid (the app was uninstalled, the token rotated) — the caller removes it. Any
   * other failure is thrown as a PipelineError.
   */
  send(token: string, message: PushMessage): Promise<"sent" | "token_unregistered">;
}
