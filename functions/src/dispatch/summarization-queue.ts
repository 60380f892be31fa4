// The enqueueing side of summarizeVisit (the handling side is stages/summarize.ts). Cloud Tasks
// dedupes by task id, so enqueueing the same dispatch twice is harmless.

import { getFunctions } from "firebase-admin/functions";
import { adminApp } from "../store/db.js";

const SUMMARIZE_FUNCTION_NAME = "summarizeVisit";

export interface SummarizeTask {
  visitId: string;
  /** Which dispatch of this visit's summarization this is (names the task id). */
  dispatch: number;
}

function summarizeTaskId(task: SummarizeTask): string {
  return `summarize-${task.visitId}-${task.dispatch}`;
}

export type EnqueueResult = "enqueued" | "already_enqueued";

export async function enqueueSummarization(
  task: SummarizeTask,
  options: { region: string; dispatchDeadlineSeconds: number },
): Promise<EnqueueResult> {
  const queue = getFunctions(adminApp()).taskQueue(`locations/${options.region}/functions/${SUMMARIZE_FUNCTION_NAME}`);
  try {
    await queue.enqueue(task, { id: summarizeTaskId(task), dispatchDeadlineSeconds: options.dispatchDeadlineSeconds });
    return "enqueued";
  } catch (error) {
    if (isTaskAlreadyExists(error)) return "already_enqueued";
    throw error;
  }
}

function isTaskAlreadyExists(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    error.code === "functions/task-already-exists"
  );
}
