// The watch command's output: one timestamped line per change of the visit's view.

import type { VisitView, VisitViewStatus } from "../describe-visit.js";
import { formatDuration } from "../duration.js";

const STUCK_HINTS: Partial<Record<VisitViewStatus, string>> = {
  waiting_for_upload_processing:
    "The visit has not been created yet: is the functions emulator running, and did the upload reach the storage trigger?",
  pending: "The recording has not been submitted for transcription yet.",
  transcribing: "Transcription is taking longer than usual.",
  summarizing: "The summary is taking longer than usual.",
};

/** `12:00:03  transcribing  Transcribing the recording…`, or the stuck warning. */
export function timelineLine(view: VisitView, at: Date): string {
  const text = view.stuck
    ? `⚠ No change for ${formatDuration(view.stuckForMs / 1000)}. ${STUCK_HINTS[view.status] ?? ""}`.trimEnd()
    : view.label;
  return `${clockTime(at)}  ${view.status}  ${text}`;
}

/** Local wall-clock time, HH:MM:SS. */
export function clockTime(at: Date): string {
  return [at.getHours(), at.getMinutes(), at.getSeconds()].map((part) => String(part).padStart(2, "0")).join(":");
}
