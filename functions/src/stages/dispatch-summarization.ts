// Fires summarization for a visit as its own unit of work: one Cloud Tasks task per dispatch,
// named after the dispatch number so a repeated enqueue is deduped by the queue.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import { failpoint } from "../runtime-hooks.js";
import { updateVisit } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import type { Visit } from "../visit/model.js";

// When the queue cannot be reached, the checker tries again this soon.
const ENQUEUE_RETRY_SECONDS = 60;

export type DispatchOutcome = "dispatched" | "enqueue_failed";

export async function dispatchSummarization(p: Pipeline, visit: Visit): Promise<DispatchOutcome> {
  const dispatch = visit.summaryDispatches + 1;
  await failpoint("before_summarization_enqueue");
  try {
    const result = await p.enqueueSummarization({ visitId: visit.id, dispatch });
    logs.summarizationEnqueued(visit.id, dispatch, result);
  } catch (error) {
    logs.summarizationEnqueueFailed(visit.id, dispatch, error instanceof Error ? error.message : String(error));
    const now = p.now();
    await updateVisit(visit.id, { nextCheckAt: addSeconds(now, ENQUEUE_RETRY_SECONDS) }, { now, guard: { statuses: ["summarizing"] } });
    return "enqueue_failed";
  }
  const now = p.now();
  await updateVisit(
    visit.id,
    { summaryDispatches: dispatch, nextCheckAt: addSeconds(now, p.config.summaryWatchdogSeconds) },
    { now, guard: { statuses: ["summarizing"] } },
  );
  return "dispatched";
}
