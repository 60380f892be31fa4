// Small statistics for the benchmark's figures.

/** Nearest-rank percentile (`percentile(xs, 50)` is the median's lower middle for an even count); NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** `12.3 / 20.1 / 35.0 ms`: p50, p95 and the largest value. */
export function spread(values: readonly number[], unit = "ms", digits = 1): string {
  return `${[50, 95, 100].map((p) => percentile(values, p).toFixed(digits)).join(" / ")} ${unit}`;
}
