// Runs a v2 scheduled function inside the Functions emulator the way Cloud Scheduler runs it: an HTTP POST with the scheduler's headers.
//
// firebase-tools 15.34.2 has no scheduler. A v2 `onSchedule` function is an HTTP function there
// (signature "http", emulator/functionsEmulatorShared.js `getSignatureType`); with the Pub/Sub
// emulator running it is subscribed to `firebase-schedule-<name>`, but a message published there
// is dropped (emulator/pubsubEmulator.js `onMessage` only delivers "event" and "cloudevent"
// signatures and logs "Unsupported trigger signature: http" at debug level). Without Pub/Sub it
// is listed as "ignored". Either way the Functions emulator keeps a trigger record for it, keyed
// `<region>-<name>-<trigger generation>`, and serves that key on its background route
// `POST /functions/projects/<project>/triggers/<key>` (emulator/functionsEmulator.js
// `handleHttpsTrigger`, which does not look at "ignored") — the function runs and the request
// answers when it has finished: 200, or 500 if the handler threw.

export interface ScheduledFunctionTarget {
  /** http://host:port of the Functions emulator. */
  functionsOrigin: string;
  projectId: string;
  /** The functions' region (the FUNCTIONS_REGION param); any region when not given. */
  region?: string;
  /** The exported name, e.g. "checkPendingTranscripts". */
  name: string;
}

export interface ScheduledRun {
  status: number;
  body: string;
  triggerKey: string;
  /** The region the function runs in, as the emulator resolved the FUNCTIONS_REGION param. */
  region: string;
}

// Not a valid function id (ids start with a letter), so it is never a function of the project.
const NO_SUCH_FUNCTION = "__list_triggers__";

/**
 * The trigger's key. The generation grows whenever the emulator reloads the functions (it watches
 * the functions folder), so it is looked up rather than assumed: asking the emulator for a
 * function that does not exist answers 404 listing every trigger key it has.
 */
export async function findTriggerKey(target: ScheduledFunctionTarget): Promise<string> {
  // The route takes any region segment; the answer lists the triggers of every region.
  const response = await fetch(`${target.functionsOrigin}/${target.projectId}/${target.region ?? "us-central1"}/${NO_SUCH_FUNCTION}`);
  const text = await response.text();
  const listed = /valid functions are:\s*(.*)$/s.exec(text)?.[1] ?? "";
  const region = target.region ?? "[a-z]+-[a-z]+\\d+";
  const keyPattern = new RegExp(`^${region}-${target.name}-\\d+$`);
  const key = listed
    .split(",")
    .map((entry) => entry.trim())
    .find((entry) => keyPattern.test(entry));
  if (!key) {
    throw new Error(`the Functions emulator has no trigger for ${target.name} (answered ${response.status}: ${text.slice(0, 500)})`);
  }
  return key;
}

/** The region part of a trigger key (`<region>-<name>-<generation>`). */
export function regionOfTriggerKey(triggerKey: string, name: string): string {
  return triggerKey.slice(0, triggerKey.lastIndexOf(`-${name}-`));
}

/** One run of the scheduled function, awaited to its end. */
export async function runScheduledFunction(target: ScheduledFunctionTarget): Promise<ScheduledRun> {
  let triggerKey = await findTriggerKey(target);
  let response = await postTrigger(target, triggerKey);
  if (response.status === 404) {
    // The functions were reloaded between the look-up and the call: a new generation.
    triggerKey = await findTriggerKey(target);
    response = await postTrigger(target, triggerKey);
  }
  return { status: response.status, body: await response.text(), triggerKey, region: regionOfTriggerKey(triggerKey, target.name) };
}

function postTrigger(target: ScheduledFunctionTarget, triggerKey: string): Promise<Response> {
  return fetch(`${target.functionsOrigin}/functions/projects/${target.projectId}/triggers/${triggerKey}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      // What Cloud Scheduler sends a v2 scheduled function (firebase-functions v2/providers/scheduler.js reads these).
      "x-cloudscheduler-jobname": `firebase-schedule-${target.name}-${regionOfTriggerKey(triggerKey, target.name)}`,
      "x-cloudscheduler-scheduletime": new Date().toISOString(),
    },
    body: "{}",
  });
}
