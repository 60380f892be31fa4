// OpenAI behind one narrow interface: turn a transcript into a VisitSummary. Strict structured
// output from the zod schema; every way the answer can go wrong (refusal, cut off, filtered,
// not matching the schema) becomes its own error code. The SDK's own retries are off: retries
// are ours (p-retry, bounded by the function's remaining time).

import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import { PipelineError } from "../visit/errors.js";
import { VisitSummarySchema } from "../visit/summary.js";
import type { VisitSummary } from "../visit/summary.js";
import type { SummaryRequest, SummaryResult, Summarizer } from "./ports.js";
import { classifyTransportError, codeForHttpStatus, parseRetryAfter } from "./http-errors.js";

export interface OpenAiOptions {
  apiKey: string;
  baseUrl: string | undefined;
  model: string;
  timeoutMs: number;
}

const RESPONSE_FORMAT = zodResponseFormat(VisitSummarySchema, "visit_summary");
// Long enough for a full summary of a long visit; a cut-off answer is reported, not stored.
const MAX_COMPLETION_TOKENS = 8_000;

// The parts of a chat completion we rely on, checked before use: a 200 with an unexpected
// body is a provider fault, not a crash.
const CompletionSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        finish_reason: z.string().nullish(),
        message: z.object({ content: z.string().nullish(), refusal: z.string().nullish() }),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).nullish(),
});

export function createOpenAi(options: OpenAiOptions): Summarizer {
  const client = new OpenAI({
    apiKey: options.apiKey,
    ...(options.baseUrl ? { baseURL: options.baseUrl } : {}),
    maxRetries: 0,
    timeout: options.timeoutMs,
  });

  return {
    async summarize(request, signal) {
      let raw: unknown;
      try {
        raw = await client.chat.completions.create(
          {
            model: options.model,
            messages: buildMessages(request),
            response_format: RESPONSE_FORMAT,
            max_completion_tokens: MAX_COMPLETION_TOKENS,
          },
          signal ? { signal } : undefined,
        );
      } catch (error) {
        throw classifyOpenAiError(error);
      }
      return readCompletion(raw, options.model);
    },
  };
}

export function buildMessages(request: SummaryRequest): OpenAI.Chat.ChatCompletionMessageParam[] {
  const language = request.languageCode
    ? `language code: ${request.languageCode}`
    : "the same language as the transcript";
  return [
    {
      role: "system",
      content: [
        "You write structured summaries of recorded clinical visits for the patient and the care team.",
        "Use only what is said in the transcript; never add diagnoses, medications or advice that were not stated.",
        "Speakers are labelled by letter; work out from context who is the clinician and who is the patient.",
        `Write every text field in the visit's language (${language}) and set "language" to that ISO 639-1 code.`,
        "Use empty lists when nothing of a kind was discussed.",
      ].join("\n"),
    },
    { role: "user", content: `Visit ${language}\n\nTranscript:\n${request.transcriptText}` },
  ];
}

function readCompletion(raw: unknown, requestedModel: string): SummaryResult {
  const completion = CompletionSchema.safeParse(raw);
  if (!completion.success) {
    throw new PipelineError("provider_bad_response", { detail: "chat completion did not have the expected shape" });
  }
  const choice = completion.data.choices[0]!;
  if (choice.message.refusal) throw new PipelineError("summary_refused", { detail: "model refused" });
  if (choice.finish_reason === "length") throw new PipelineError("summary_truncated", { detail: "finish_reason length" });
  if (choice.finish_reason === "content_filter") {
    throw new PipelineError("summary_content_filtered", { detail: "finish_reason content_filter" });
  }
  const summary = parseSummaryContent(choice.message.content);
  const usage = completion.data.usage;
  return {
    summary,
    model: completion.data.model ?? requestedModel,
    usage: usage ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } : null,
  };
}

function parseSummaryContent(content: string | null | undefined): VisitSummary {
  if (!content) throw new PipelineError("summary_invalid", { detail: "empty message content" });
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch {
    throw new PipelineError("summary_invalid", { detail: "message content is not JSON" });
  }
  const parsed = VisitSummarySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // Report where the answer deviated, never the content itself.
    throw new PipelineError("summary_invalid", { detail: `schema mismatch at ${issue?.path.join(".") || "(root)"}: ${issue?.code ?? ""}` });
  }
  return parsed.data;
}

/**
 * By status and error type: 429 `insufficient_quota` is a billing problem that waiting does not
 * fix; any other 429 is a rate limit to wait out (Retry-After honoured).
 */
export function classifyOpenAiError(error: unknown): PipelineError {
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new PipelineError("provider_timeout", { detail: "OpenAI request timed out", cause: error });
  }
  if (error instanceof OpenAI.APIUserAbortError) {
    return new PipelineError("provider_timeout", { detail: "OpenAI request aborted (time budget)", cause: error });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new PipelineError("provider_network_error", { detail: error.message, cause: error });
  }
  if (error instanceof OpenAI.APIError && typeof error.status === "number") {
    const quota = error.code === "insufficient_quota" || error.type === "insufficient_quota";
    return new PipelineError(quota ? "provider_quota_exhausted" : codeForHttpStatus(error.status), {
      httpStatus: error.status,
      retryAfterMs: parseRetryAfter(error.headers as Headers | undefined, Date.now()),
      detail: `OpenAI HTTP ${error.status} ${error.code ?? error.type ?? ""}`.trim(),
      cause: error,
    });
  }
  return classifyTransportError(error);
}
