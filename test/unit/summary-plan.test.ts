// Cutting a transcript for the summary model: the token estimate, prompt lines, chunks that fit
// the budget, splits, and the per-model default budgets.

import { describe, expect, it } from "vitest";
import {
  CHARS_PER_TOKEN,
  MAX_LINE_CHARS,
  chunkText,
  contextBudget,
  defaultContextTokens,
  estimateTokens,
  estimatedChunkCount,
  maxLineCharsFor,
  planChunks,
  splitRange,
  transcriptLines,
  UNKNOWN_MODEL_CONTEXT_TOKENS,
} from "../../functions/src/visit/summary-plan.js";
import type { PromptUtterance } from "../../functions/src/visit/summary-plan.js";

const WORDS = "the patient reports chest tightness after climbing stairs and the doctor orders an ECG and bloods".split(" ");

/** `hours` of speech at ~150 words a minute, in turns of 20–60 words. */
function multiHourUtterances(hours: number): PromptUtterance[] {
  const utterances: PromptUtterance[] = [];
  let ms = 0;
  for (let turn = 0; ms < hours * 3_600_000; turn++) {
    const count = 20 + ((turn * 17) % 41);
    const text = Array.from({ length: count }, (_, w) => `${WORDS[(turn + w) % WORDS.length]}${w === count - 1 ? "." : ""}`).join(" ");
    utterances.push({ speaker: turn % 2 === 0 ? "A" : "B", startMs: ms, text: `t${turn} ${text}` });
    ms += count * 400 + 500;
  }
  return utterances;
}

describe("estimateTokens", () => {
  it("counts a narrow character as a third of a token and a wide one as a whole token", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abc")).toBe(1);
    expect(estimateTokens("abcd")).toBe(2);
    expect(estimateTokens("a".repeat(3_000))).toBe(3_000 / CHARS_PER_TOKEN);
    expect(estimateTokens("診察室")).toBe(3);
    expect(estimateTokens("ñá")).toBe(1);
  });

  it("overestimates real English text (about 4 characters a token)", () => {
    const text = multiHourUtterances(0.1).map((u) => u.text).join(" ");
    expect(estimateTokens(text)).toBeGreaterThanOrEqual(Math.ceil(text.length / 4));
  });
});

describe("transcriptLines", () => {
  it("formats each utterance as a speaker-labelled, timed line", () => {
    const lines = transcriptLines({ text: "", utterances: [{ speaker: "A", startMs: 65_400, text: "Hello." }, { speaker: null, startMs: 0, text: "Hi." }] });
    expect(lines).toEqual(["[01:05] Speaker A: Hello.", "[00:00] Speaker: Hi."]);
  });

  it("puts an utterance longer than a line on continuation lines, losing no word", () => {
    const long = Array.from({ length: 3_000 }, (_, i) => `w${i}`).join(" ");
    const lines = transcriptLines({ text: "", utterances: [{ speaker: "B", startMs: 0, text: long }] }, 500);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(line.length).toBeLessThanOrEqual(500);
      expect(line.startsWith("[00:00] Speaker B: ")).toBe(true);
    }
    expect(lines.map((line) => line.slice("[00:00] Speaker B: ".length)).join(" ")).toBe(long);
  });

  it("cuts a line with no space at the limit, keeping every character", () => {
    const lines = transcriptLines({ text: "", utterances: [{ speaker: "A", startMs: 0, text: "x".repeat(1_000) }] }, 300);
    expect(lines.map((line) => line.replace("[00:00] Speaker A: ", "")).join("")).toBe("x".repeat(1_000));
  });

  it("uses the plain text when there are no utterances", () => {
    expect(transcriptLines({ text: " just text ", utterances: [] })).toEqual(["just text"]);
    expect(transcriptLines({ text: "  ", utterances: [] })).toEqual([]);
  });
});

describe("planChunks over a multi-hour transcript with a small budget", () => {
  const budget = 2_000;
  const utterances = multiHourUtterances(3);
  const lines = transcriptLines({ text: "", utterances }, maxLineCharsFor(budget));
  const chunks = planChunks(lines, budget);

  it("makes many chunks, each within the budget", () => {
    expect(chunks.length).toBeGreaterThan(20);
    for (const chunk of chunks) expect(estimateTokens(chunkText(lines, chunk))).toBeLessThanOrEqual(budget);
  });

  it("covers every line exactly once, in order, on utterance boundaries", () => {
    expect(chunks[0]?.from).toBe(0);
    expect(chunks.at(-1)?.to).toBe(lines.length);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]?.from).toBe(chunks[i - 1]?.to);
    expect(chunks.map((chunk) => chunkText(lines, chunk)).join("\n")).toBe(lines.join("\n"));
    // Every utterance's text is in the chunks (nothing truncated).
    const all = chunks.map((chunk) => chunkText(lines, chunk)).join("\n");
    for (const u of utterances) expect(all).toContain(u.text);
  });

  it("is deterministic", () => {
    expect(planChunks(lines, budget)).toEqual(chunks);
  });

  it("keeps a transcript that fits in one chunk", () => {
    expect(planChunks(lines.slice(0, 3), budget)).toEqual([{ from: 0, to: 3 }]);
    expect(planChunks([], budget)).toEqual([]);
  });

  it("fits lines of any script: a line of wide characters is no longer than the budget", () => {
    const wide = transcriptLines({ text: "", utterances: [{ speaker: "A", startMs: 0, text: "診".repeat(5_000) }] }, maxLineCharsFor(300));
    for (const chunk of planChunks(wide, 300)) expect(estimateTokens(chunkText(wide, chunk))).toBeLessThanOrEqual(300);
  });

  it("estimates the chunk count from the visit's counts at least as high as the plan", () => {
    const characterCount = utterances.map((u) => u.text).join(" ").length;
    expect(estimatedChunkCount({ characterCount, utteranceCount: utterances.length }, budget)).toBeGreaterThanOrEqual(chunks.length);
  });
});

describe("splitRange", () => {
  it("halves a range on a line boundary and stops at one line", () => {
    expect(splitRange({ from: 4, to: 9 })).toEqual([{ from: 4, to: 6 }, { from: 6, to: 9 }]);
    expect(splitRange({ from: 4, to: 6 })).toEqual([{ from: 4, to: 5 }, { from: 5, to: 6 }]);
    expect(splitRange({ from: 4, to: 5 })).toBeNull();
  });
});

describe("context budgets", () => {
  it("has a default per model family, the longest prefix winning", () => {
    expect(defaultContextTokens("gpt-4.1-mini")).toBe(1_000_000);
    expect(defaultContextTokens("gpt-4o-mini-2024-07-18")).toBe(120_000);
    expect(defaultContextTokens("some-new-model")).toBe(UNKNOWN_MODEL_CONTEXT_TOKENS);
  });

  it("uses the configured budget, else the smaller default of the primary and the fallback", () => {
    expect(contextBudget(3_000, "gpt-4.1-mini", "gpt-4o-mini")).toBe(3_000);
    expect(contextBudget(0, "gpt-4.1-mini", null)).toBe(1_000_000);
    expect(contextBudget(0, "gpt-4.1-mini", "gpt-4o-mini")).toBe(120_000);
  });

  it("never plans a line longer than the line limit", () => {
    expect(maxLineCharsFor(1_000_000)).toBe(MAX_LINE_CHARS);
    expect(maxLineCharsFor(300)).toBe(299);
  });
});
