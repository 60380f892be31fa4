// Long conversations for the fake AssemblyAI, and the prompt text the fake OpenAI was sent: what
// the tests of summaries and translations in parts build their visits from and check.

import type { ChatRequestBody } from "../fakes/openai.js";

const WORDS = "the patient describes chest tightness when climbing stairs and the doctor explains the plan for tests".split(" ");

/** About `minutes` of speech (0.4 s a word in the fake), each turn starting with its marker `tN`. */
export function spokenTurns(minutes: number): { speaker: string; text: string }[] {
  const result: { speaker: string; text: string }[] = [];
  let seconds = 0;
  for (let i = 0; seconds < minutes * 60; i++) {
    const count = 25 + ((i * 13) % 30);
    const words = Array.from({ length: count }, (_, w) => WORDS[(i + w) % WORDS.length]);
    result.push({ speaker: i % 2 === 0 ? "clinician" : "patient", text: `t${i} ${words.join(" ")}.` });
    seconds += count * 0.4 + 0.5;
  }
  return result;
}

/** The text of a chat request's user message. */
export function userText(body: ChatRequestBody): string {
  const user = body.messages.find((message) => message.role === "user");
  return typeof user?.content === "string" ? user.content : "";
}
