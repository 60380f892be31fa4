// Durations as operators type them: `90s`, `15m`, `24h`, `7d`.

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** Seconds in `text`, or null when it is not a duration. */
export function parseDurationSeconds(text: string): number | null {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match?.[1] || !match[2]) return null;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : null;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86_400).toFixed(1)}d`;
}
