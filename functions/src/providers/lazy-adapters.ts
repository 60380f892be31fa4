// The provider adapters, loaded on first use. Their SDKs (assemblyai, openai with its zod helpers)
// cost tens of milliseconds each to import, and every cold instance of every function would pay
// that at start even if it never calls them: the checker never summarizes, the summarizer never
// transcribes, the api's health check calls neither. Dynamic import(), not top-level await: the
// Functions emulator loads the build with require().

import type { AssemblyAiOptions } from "./assemblyai.js";
import type { OpenAiOptions } from "./openai.js";
import type { SpeechToText, Summarizer } from "./ports.js";
import { loadOnFirstUse } from "../load-on-first-use.js";

/** AssemblyAI behind the SpeechToText port; the SDK is imported by the first call. */
export function speechToTextOnFirstUse(options: AssemblyAiOptions): SpeechToText {
  const adapter = loadOnFirstUse(async () => (await import("./assemblyai.js")).createAssemblyAi(options));
  return {
    submit: async (audioUrl, webhook) => (await adapter()).submit(audioUrl, webhook),
    check: async (transcriptId) => (await adapter()).check(transcriptId),
    findTranscriptByAudioUrl: async (hashes, since) => (await adapter()).findTranscriptByAudioUrl(hashes, since),
    findTranscriptsReadingObjects: async (prefix, since) => (await adapter()).findTranscriptsReadingObjects(prefix, since),
    deleteTranscript: async (transcriptId) => (await adapter()).deleteTranscript(transcriptId),
  };
}

/** OpenAI behind the Summarizer port; the SDK (and the response schema it compiles) is imported by the first call. */
export function summarizerOnFirstUse(options: OpenAiOptions): Summarizer {
  const adapter = loadOnFirstUse(async () => (await import("./openai.js")).createOpenAi(options));
  return {
    summarize: async (request, signal) => (await adapter()).summarize(request, signal),
    writeClinicianNote: async (request, signal) => (await adapter()).writeClinicianNote(request, signal),
    translateSummary: async (request, signal) => (await adapter()).translateSummary(request, signal),
    promptOverheadTokens: async () => (await adapter()).promptOverheadTokens(),
  };
}
