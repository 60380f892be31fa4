// Checks a recording before upload, as storage.rules would: audio extension → content type, file name, 1 byte – 250 MiB.

import { MAX_UPLOAD_BYTES, isValidFileName } from "./contract.js";

/** Extensions the app records or imports, and the content type each is uploaded with. */
export const AUDIO_CONTENT_TYPES = {
  m4a: "audio/mp4",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  webm: "audio/webm",
  ogg: "audio/ogg",
  aac: "audio/aac",
  flac: "audio/flac",
} as const satisfies Record<string, `audio/${string}`>;

export type AudioFileProblem = "unsupported_file_type" | "invalid_file_name" | "empty_file" | "file_too_large";

export type AudioFileCheck =
  | { ok: true; contentType: string }
  | { ok: false; problem: AudioFileProblem; message: string };

/** The content type for a file name's extension (case-insensitive), or null for anything else. */
export function contentTypeForFileName(fileName: string): string | null {
  const extension = /\.([^.]+)$/.exec(fileName)?.[1]?.toLowerCase();
  if (extension === undefined || !Object.hasOwn(AUDIO_CONTENT_TYPES, extension)) return null;
  return AUDIO_CONTENT_TYPES[extension as keyof typeof AUDIO_CONTENT_TYPES];
}

export function checkAudioFile(fileName: string, sizeBytes: number): AudioFileCheck {
  const contentType = contentTypeForFileName(fileName);
  if (contentType === null) {
    const supported = Object.keys(AUDIO_CONTENT_TYPES).map((extension) => `.${extension}`).join(", ");
    return { ok: false, problem: "unsupported_file_type", message: `"${fileName}" is not a supported recording; use one of ${supported}.` };
  }
  if (!isValidFileName(fileName)) {
    return { ok: false, problem: "invalid_file_name", message: `"${fileName}" cannot be used as a file name (no "/" or control characters, at most 255 characters).` };
  }
  if (sizeBytes <= 0) return { ok: false, problem: "empty_file", message: `"${fileName}" is empty.` };
  if (sizeBytes > MAX_UPLOAD_BYTES) {
    return {
      ok: false,
      problem: "file_too_large",
      message: `"${fileName}" is ${formatMiB(sizeBytes)}; recordings can be at most ${formatMiB(MAX_UPLOAD_BYTES)}.`,
    };
  }
  return { ok: true, contentType };
}

function formatMiB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MiB`;
}
