// What the CLI tells the user after a visit finishes and after a retry request.

import type { VisitView } from "../describe-visit.js";
import type { RetryOutcome } from "../retry.js";
import { RetryCountdown } from "../retry-countdown.js";

/** The command to run next for a finished visit, if there is one. */
export function nextStepHint(view: VisitView, visitId: string): string | null {
  if (!view.isTerminal) return null;
  if (view.canRetry) {
    const what = view.status === "partial" ? "The transcript is available. Retry the summary with" : "Retry with";
    return `${what}: npm run stub -- retry ${visitId}`;
  }
  if (view.retryDisabledReason === "needs_new_recording") {
    return `Retrying cannot help; upload a new recording into the visit: npm run stub -- upload <file> --visit ${visitId}`;
  }
  if (view.retryDisabledReason === "not_retryable") return "The transcript is available; retrying the summary cannot help.";
  return null;
}

const DISABLED_TEXT: Record<Extract<RetryOutcome, { kind: "disabled" }>["reason"], string> = {
  already_processing: "Nothing to retry yet: the visit is still being processed.",
  nothing_to_retry: "Nothing to retry: the visit is complete.",
  not_retryable: "Retrying cannot fix this failure; upload a new recording.",
};

export function retryOutcomeText(outcome: RetryOutcome, visitId: string, now: () => number = Date.now): string {
  switch (outcome.kind) {
    case "accepted":
      return `Retry accepted: resuming ${outcome.resumedStage} (status ${outcome.status}). Watch it: npm run stub -- watch ${visitId}`;
    case "disabled":
      return DISABLED_TEXT[outcome.reason];
    case "wait": {
      const why = outcome.reason === "retry_too_soon" ? "This visit was retried a moment ago." : "Too many retries in the last hour.";
      return `${why} ${new RetryCountdown(outcome.retryAfterSeconds, now).text()}`;
    }
    case "error":
      return `Retry failed (${outcome.code}): ${outcome.message}${outcome.requestId ? ` [request ${outcome.requestId}]` : ""}`;
  }
}
