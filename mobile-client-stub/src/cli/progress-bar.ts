// Upload progress for a terminal: a bar redrawn in place on a TTY, a plain line per 10 % in a pipe or CI log.

import type { UploadProgress } from "../upload.js";

const MIB = 1024 * 1024;
const BAR_WIDTH = 30;

export function renderProgressBar(progress: UploadProgress, width = BAR_WIDTH): string {
  const filled = Math.round(progress.fraction * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percentOf(progress).toString().padStart(3)}%  ${amount(progress)}`;
}

export function renderProgressLine(progress: UploadProgress): string {
  return `Uploaded ${percentOf(progress)}% (${amount(progress)})`;
}

export interface ProgressOutput {
  isTTY: boolean;
  write(text: string): void;
}

export interface ProgressPrinter {
  update(progress: UploadProgress): void;
  /** Ends the bar's line; call once the upload has finished or failed. */
  finish(): void;
}

export function createProgressPrinter(output: ProgressOutput): ProgressPrinter {
  return output.isTTY ? ttyPrinter(output) : linePrinter(output);
}

function ttyPrinter(output: ProgressOutput): ProgressPrinter {
  let previous = "";
  return {
    update(progress) {
      const bar = renderProgressBar(progress);
      if (bar === previous) return;
      // Pad over whatever a longer previous bar left on the line.
      output.write(`\r${bar.padEnd(previous.length)}`);
      previous = bar;
    },
    finish() {
      if (previous !== "") output.write("\n");
      previous = "";
    },
  };
}

function linePrinter(output: ProgressOutput): ProgressPrinter {
  let lastTenth = -1;
  return {
    update(progress) {
      const tenth = Math.floor(percentOf(progress) / 10);
      if (tenth <= lastTenth) return;
      lastTenth = tenth;
      output.write(`${renderProgressLine(progress)}\n`);
    },
    finish() {
      lastTenth = -1;
    },
  };
}

/** Rounded down, so 100 % means every byte is stored. */
function percentOf(progress: UploadProgress): number {
  return Math.floor(progress.fraction * 100);
}

function amount(progress: UploadProgress): string {
  return `${(progress.bytesTransferred / MIB).toFixed(1)} / ${(progress.totalBytes / MIB).toFixed(1)} MiB`;
}
