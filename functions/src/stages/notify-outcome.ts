// Stage: tell the user's devices that a visit ended (`completed`, `partial`, `failed`) — once per
// outcome: the key (recording, retry round, status) is claimed with create() before anything is
// sent, so of every invocation that sees the visit end, one sends. Called right after the commit
// that ended the visit; it never fails or holds up the pipeline: a failed send is logged
// (`notification_failed`) and not retried, and the whole send is bounded in time. Off unless
// NOTIFY_ON_OUTCOME. The words are fixed and carry no PHI: no title, transcript or summary text.

import { logs } from "../logs.js";
import type { Pipeline } from "../pipeline.js";
import type { PushMessage } from "../providers/ports.js";
import { claimNotification } from "../store/claims.js";
import { listDevices, removeDevice } from "../store/devices.js";
import type { GuardedWrite } from "../store/visits.js";
import { addSeconds } from "../visit/backoff.js";
import { asPipelineError } from "../visit/errors.js";
import type { Visit } from "../visit/model.js";
import { isTerminal } from "../visit/status.js";
import type { VisitStatus } from "../visit/status.js";

export type NotifyOutcome = "off" | "not_terminal" | "already_notified" | "no_devices" | "notified" | "failed";

type TerminalStatus = Extract<VisitStatus, "completed" | "partial" | "failed">;

/** What each outcome says. Fixed text: nothing from the visit is ever put in a notification. */
export const OUTCOME_MESSAGES: Record<TerminalStatus, { title: string; body: string }> = {
  completed: { title: "Visit summary ready", body: "Your visit summary is ready." },
  partial: { title: "Visit transcript ready", body: "Your visit transcript is ready. The summary could not be made; you can try again in the app." },
  failed: { title: "Visit not processed", body: "We could not process your visit recording. Open the app to see what to do." },
};

/** A `partial` visit that kept its summary: what failed was its translation or its clinician's note. */
export const PARTIAL_WITH_SUMMARY_MESSAGE = {
  title: "Visit summary ready",
  body: "Your visit summary is ready. Part of what was asked for could not be made; you can try again in the app.",
};

function messageFor(visit: Visit, status: TerminalStatus): { title: string; body: string } {
  return status === "partial" && visit.summary !== null ? PARTIAL_WITH_SUMMARY_MESSAGE : OUTCOME_MESSAGES[status];
}

// Sends to all devices at once; past this the pipeline goes on (the sends may still land).
const SEND_BUDGET_MS = 10_000;
// The claim needs no lease: it is never taken over, only kept from being sent twice.
const CLAIM_HOLD_SECONDS = 60;

/** After a status write: announces the outcome if the write ended the visit. */
export async function announceIfEnded(p: Pipeline, written: GuardedWrite): Promise<void> {
  if (written.applied && isTerminal(written.visit.status)) await announceOutcome(p, written.visit);
}

/** Sends the outcome notification for a visit that ended, once per outcome. Never throws. */
export async function announceOutcome(p: Pipeline, visit: Visit): Promise<NotifyOutcome> {
  if (!p.config.notifyOnOutcome) return "off";
  if (!isTerminalStatus(visit.status)) return "not_terminal";
  try {
    return await notify(p, visit, visit.status);
  } catch (thrown) {
    logs.notificationFailed(visit.id, visit.status, asPipelineError(thrown));
    return "failed";
  }
}

async function notify(p: Pipeline, visit: Visit, status: TerminalStatus): Promise<NotifyOutcome> {
  const now = p.now();
  const key = { generation: visit.audio?.generation ?? "none", round: visit.retryCount, status };
  const claimed = await claimNotification(visit.id, key, {
    owner: p.owner,
    now,
    expiresAt: addSeconds(now, CLAIM_HOLD_SECONDS),
    purgeAt: addSeconds(now, p.config.bookkeepingRetentionDays * 86_400),
  });
  if (!claimed) return "already_notified";
  const devices = await listDevices(visit.userId);
  if (devices.length === 0) {
    logs.notificationSkipped(visit.id, status, "no_devices");
    return "no_devices";
  }
  const message: PushMessage = { ...messageFor(visit, status), data: { visitId: visit.id, status } };
  const sender = p.pushSender();
  const results = await withinBudget(
    Promise.all(
      devices.map(async (device) => {
        try {
          const result = await sender.send(device.token, message);
          if (result === "token_unregistered") {
            await removeDevice(visit.userId, device.id);
            logs.deviceTokenRemoved(visit.id, device.platform);
          }
          return result;
        } catch (thrown) {
          logs.notificationFailed(visit.id, status, asPipelineError(thrown));
          return "failed" as const;
        }
      }),
    ),
  );
  if (results === "timed_out") {
    logs.notificationFailed(visit.id, status, asPipelineError(new Error(`sends took longer than ${SEND_BUDGET_MS} ms`)));
    return "failed";
  }
  const count = (result: string) => results.filter((r) => r === result).length;
  logs.notificationSent(visit.id, status, { devices: devices.length, sent: count("sent"), removed: count("token_unregistered"), failed: count("failed") });
  return count("sent") > 0 ? "notified" : "failed";
}

function isTerminalStatus(status: VisitStatus): status is TerminalStatus {
  return isTerminal(status);
}

async function withinBudget<T>(work: Promise<T>): Promise<T | "timed_out"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timed_out">((resolve) => {
    timer = setTimeout(() => resolve("timed_out"), SEND_BUDGET_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
