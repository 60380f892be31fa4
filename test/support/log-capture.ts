// Captures the functions' structured log lines (firebase-functions' logger writes one JSON
// object per line to stdout/stderr), so the demo can show them as progress and tests can check
// what reached the logs.

export interface CapturedLog {
  severity: string;
  event: string | undefined;
  fields: Record<string, unknown>;
  raw: string;
}

export interface LogCapture {
  readonly lines: CapturedLog[];
  /** Everything written while capturing, log lines or not (for "what reached the logs" checks). */
  text(): string;
  onLog(listener: (log: CapturedLog) => void): void;
  /** Writes to the real stdout, bypassing the capture. */
  print(text: string): void;
  stop(): void;
}

export function captureLogs(options: { passThrough?: boolean } = {}): LogCapture {
  const originalOut = process.stdout.write.bind(process.stdout);
  const originalErr = process.stderr.write.bind(process.stderr);
  const lines: CapturedLog[] = [];
  const chunks: string[] = [];
  const listeners: ((log: CapturedLog) => void)[] = [];

  const intercept = (original: typeof process.stdout.write) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
      chunks.push(text);
      for (const line of text.split("\n")) {
        const log = parseLogLine(line);
        if (log) {
          lines.push(log);
          listeners.forEach((listener) => listener(log));
        }
      }
      if (options.passThrough) return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
      return true;
    }) as typeof process.stdout.write;

  process.stdout.write = intercept(originalOut);
  process.stderr.write = intercept(originalErr);
  return {
    lines,
    text: () => chunks.join(""),
    onLog: (listener) => listeners.push(listener),
    print: (text) => void originalOut(text),
    stop: () => {
      process.stdout.write = originalOut;
      process.stderr.write = originalErr;
    },
  };
}

function parseLogLine(line: string): CapturedLog | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    const fields = JSON.parse(trimmed) as Record<string, unknown>;
    if (typeof fields.severity !== "string") return undefined;
    return {
      severity: fields.severity,
      event: typeof fields.event === "string" ? fields.event : undefined,
      fields,
      raw: trimmed,
    };
  } catch {
    return undefined;
  }
}
