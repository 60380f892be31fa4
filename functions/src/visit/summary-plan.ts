// How a transcript is cut for the summary model: prompt lines (`[mm:ss] Speaker A: text`), a
// conservative token estimate (no tokenizer), and chunks of consecutive lines that each fit the
// model's context budget. Pure: no Firebase, no provider. Nothing is ever dropped — an utterance
// too long for one line goes on continuation lines, and every line lands in exactly one chunk.

/**
 * The estimate: a character below U+0800 (Latin, Greek, Cyrillic, Hebrew, Arabic…) counts as a
 * third of a token, anything above (CJK, Thai, emoji…) as a whole one. Real tokenizers average
 * about 4 Latin characters a token and rarely less than 1 per CJK character, so this overestimates.
 */
export const CHARS_PER_TOKEN = 3;

export function estimateTokens(text: string): number {
  let narrow = 0;
  let wide = 0;
  for (const char of text) {
    if ((char.codePointAt(0) ?? 0) < 0x0800) narrow += 1;
    else wide += 1;
  }
  return Math.ceil(narrow / CHARS_PER_TOKEN) + wide;
}

/**
 * The most tokens one answer may have (sent as `max_completion_tokens`): long enough for a full
 * summary of a long visit; an answer cut off there is reported (`summary_truncated`), never stored.
 */
export const MAX_COMPLETION_TOKENS = 8_000;

// The longest prompt line: long monologues become continuation lines, so a chunk can always be
// split further on a line boundary.
export const MAX_LINE_CHARS = 2_000;
/** A chunk budget below this (after the prompt's fixed part) is a configuration error. */
export const MIN_CHUNK_TOKENS = 250;

/**
 * Prompt tokens one request may carry (instructions, schema and transcript), by model family:
 * the context window less room for the answer (MAX_COMPLETION_TOKENS), rounded down. Longest
 * prefix wins; an unknown model gets the smallest common window.
 */
const CONTEXT_TOKENS_BY_MODEL: readonly (readonly [prefix: string, tokens: number])[] = [
  ["gpt-4.1", 1_000_000],
  ["gpt-5", 260_000],
  ["gpt-4o", 120_000],
  ["o4-mini", 190_000],
  ["o3", 190_000],
];
export const UNKNOWN_MODEL_CONTEXT_TOKENS = 120_000;

export function defaultContextTokens(model: string): number {
  const matches = CONTEXT_TOKENS_BY_MODEL.filter(([prefix]) => model.startsWith(prefix));
  matches.sort((a, b) => b[0].length - a[0].length);
  return matches[0]?.[1] ?? UNKNOWN_MODEL_CONTEXT_TOKENS;
}

/**
 * The budget chunks are planned with: the configured one (`SUMMARY_CONTEXT_TOKENS`, 0 = the
 * model's default), and with a fallback model the smaller of the two models' defaults, so a chunk
 * the fallback has to take over fits it too.
 */
export function contextBudget(configured: number, model: string, fallbackModel: string | null): number {
  if (configured > 0) return configured;
  const primary = defaultContextTokens(model);
  return fallbackModel ? Math.min(primary, defaultContextTokens(fallbackModel)) : primary;
}

export interface PromptUtterance {
  speaker: string | null;
  startMs: number;
  text: string;
}

/**
 * The transcript as prompt lines. An utterance longer than `maxLineChars` is split at whitespace
 * (or, with none, at the limit) onto continuation lines carrying the same time and speaker.
 */
export function transcriptLines(
  transcript: { text: string; utterances: readonly PromptUtterance[] },
  maxLineChars: number = MAX_LINE_CHARS,
): string[] {
  if (transcript.utterances.length === 0) {
    return transcript.text.trim() === "" ? [] : splitText(transcript.text.trim(), maxLineChars);
  }
  return transcript.utterances.flatMap((u) => {
    const prefix = `[${clock(u.startMs)}] ${u.speaker ? `Speaker ${u.speaker}` : "Speaker"}: `;
    return splitText(u.text, Math.max(1, maxLineChars - prefix.length)).map((piece) => `${prefix}${piece}`);
  });
}

function splitText(text: string, limit: number): string[] {
  const pieces: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    const space = rest.lastIndexOf(" ", limit);
    const cut = space > 0 ? space : limit;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(space > 0 ? cut + 1 : cut);
  }
  pieces.push(rest);
  return pieces;
}

export function clock(ms: number): string {
  const totalSeconds = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(totalSeconds / 60);
  return `${String(minutes).padStart(2, "0")}:${String(totalSeconds % 60).padStart(2, "0")}`;
}

/** Consecutive prompt lines `[from, to)`: a chunk's identity within one recording's transcript. */
export interface LineRange {
  from: number;
  to: number;
}

export function chunkText(lines: readonly string[], range: LineRange): string {
  return lines.slice(range.from, range.to).join("\n");
}

/** A line's share of a chunk: its tokens plus one for the newline that joins it. */
function lineCost(line: string): number {
  return estimateTokens(line) + 1;
}

/**
 * Greedy, in order: each chunk takes lines while their estimate stays within `chunkTokens` (the
 * budget left after the prompt's fixed part). Lines must each fit (see maxLineCharsFor).
 */
export function planChunks(lines: readonly string[], chunkTokens: number): LineRange[] {
  const ranges: LineRange[] = [];
  let from = 0;
  let used = 0;
  lines.forEach((line, index) => {
    const cost = lineCost(line);
    if (index > from && used + cost > chunkTokens) {
      ranges.push({ from, to: index });
      from = index;
      used = 0;
    }
    used += cost;
  });
  if (lines.length > from) ranges.push({ from, to: lines.length });
  return ranges;
}

/** The longest line that fits a chunk whatever its script (a character is at most one token). */
export function maxLineCharsFor(chunkTokens: number): number {
  return Math.max(1, Math.min(MAX_LINE_CHARS, chunkTokens - 1));
}

/** Halves a chunk on a line boundary; null for a single line (the smallest split). */
export function splitRange(range: LineRange): [LineRange, LineRange] | null {
  if (range.to - range.from < 2) return null;
  const middle = range.from + Math.floor((range.to - range.from) / 2);
  return [
    { from: range.from, to: middle },
    { from: middle, to: range.to },
  ];
}

/**
 * Chunks expected for a transcript of this size (from the visit's counts, before it is loaded):
 * what the paid-call budget makes room for. Each utterance adds its `[mm:ss] Speaker A: ` prefix.
 */
export function estimatedChunkCount(counts: { characterCount: number; utteranceCount: number }, chunkTokens: number): number {
  const tokens = Math.ceil((counts.characterCount + counts.utteranceCount * 24) / CHARS_PER_TOKEN) + counts.utteranceCount;
  return Math.max(1, Math.ceil(tokens / Math.max(1, chunkTokens)));
}
