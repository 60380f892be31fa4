// The shared outage breaker against the embedded Firestore, with explicit clock values; two breaker
// instances stand for two function instances.

import { Timestamp } from "firebase-admin/firestore";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { breakerSettingsFrom, countsTowardOutage } from "../../functions/src/providers/outage-policy.js";
import type { BreakerSettings, ProviderName } from "../../functions/src/providers/outage-policy.js";
import { createFirestoreBreaker } from "../../functions/src/store/breaker.js";
import type { BreakerObserver, OutageBreaker } from "../../functions/src/store/breaker.js";
import { loadConfig } from "../../functions/src/config.js";
import { ERROR_CODES, PipelineError, isErrorCode } from "../../functions/src/visit/errors.js";
import type { ErrorCode } from "../../functions/src/visit/errors.js";
import { db } from "../../functions/src/store/db.js";
import { DocumentInvalidError } from "../../functions/src/store/typed-documents.js";
import { useEmbeddedFirestore } from "../support/embedded-firestore.js";

const SETTINGS: BreakerSettings = { failureThreshold: 3, windowSeconds: 60, cooldownSeconds: 120, probeLeaseSeconds: 60, cacheMs: 0 };
const PROVIDER: ProviderName = "assemblyai";
const START_MS = Date.parse("2030-01-01T00:00:00Z");

/** The test clock: `at(20)` is 20 s after the start. */
function at(seconds: number): Date {
  return new Date(START_MS + seconds * 1000);
}

type ObservedEvent =
  | { event: "opened"; provider: ProviderName; failures: number; untilMs: number }
  | { event: "closed"; provider: ProviderName }
  | { event: "probeStarted"; provider: ProviderName };

function recordingObserver(): BreakerObserver & { events: ObservedEvent[] } {
  const events: ObservedEvent[] = [];
  return {
    events,
    opened: (provider, failures, untilMs) => events.push({ event: "opened", provider, failures, untilMs }),
    closed: (provider) => events.push({ event: "closed", provider }),
    probeStarted: (provider) => events.push({ event: "probeStarted", provider }),
  };
}

async function fail(breaker: OutageBreaker, ...seconds: number[]): Promise<void> {
  for (const second of seconds) await breaker.recordOutage(PROVIDER, at(second), false);
}

/** Opens the breaker with failures at 0, 10 and 20 s: openedAt 20 s, openUntil 140 s. */
async function openBreaker(breaker: OutageBreaker): Promise<void> {
  await fail(breaker, 0, 10, 20);
}

let observer: ReturnType<typeof recordingObserver>;
let breaker: OutageBreaker;

useEmbeddedFirestore({ beforeAll, afterAll, beforeEach });

beforeEach(() => {
  observer = recordingObserver();
  breaker = createFirestoreBreaker(SETTINGS, observer);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("counting failures while closed", () => {
  it("stays closed below the threshold", async () => {
    await fail(breaker, 0, 10);
    expect(await breaker.state(PROVIDER)).toMatchObject({ provider: PROVIDER, state: "closed", failures: 2, windowStartedAt: at(0), openedAt: null });
    expect(await breaker.acquire(PROVIDER, at(11))).toEqual({ allowed: true, probe: false });
    expect(observer.events).toEqual([]);
  });

  it("opens at the threshold within the window", async () => {
    await openBreaker(breaker);
    expect(await breaker.state(PROVIDER)).toEqual({
      provider: PROVIDER,
      state: "open",
      failures: 3,
      windowStartedAt: at(0),
      openedAt: at(20),
      openUntil: at(140),
      updatedAt: at(20),
    });
    expect(observer.events).toEqual([{ event: "opened", provider: PROVIDER, failures: 3, untilMs: at(140).getTime() }]);
  });

  it("starts a new window for a failure after the window ends", async () => {
    await fail(breaker, 0, 30, 61);
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "closed", failures: 1, windowStartedAt: at(61) });
    await fail(breaker, 70, 80);
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "open", failures: 3, windowStartedAt: at(61), openedAt: at(80) });
  });

  it("keeps providers apart", async () => {
    await openBreaker(breaker);
    expect(await breaker.acquire("openai", at(30))).toEqual({ allowed: true, probe: false });
    expect((await breaker.state("openai")).state).toBe("closed");
  });


  it("opens once when concurrent failures on two instances all reach the threshold", async () => {
    const other = createFirestoreBreaker(SETTINGS, observer);
    await fail(breaker, 0, 10);
    await Promise.all(
      Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? breaker : other).recordOutage(PROVIDER, at(20), false)),
    );
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "open", openedAt: at(20), openUntil: at(140) });
    expect(observer.events.filter((event) => event.event === "opened")).toHaveLength(1);
  });
});

describe("countsTowardOutage", () => {
  it("counts exactly the outage-like provider faults", () => {
    const outageCodes = Object.keys(ERROR_CODES)
      .filter(isErrorCode)
      .filter((code: ErrorCode) => countsTowardOutage(new PipelineError(code)));
    expect(outageCodes.sort()).toEqual([
      "provider_bad_response",
      "provider_network_error",
      "provider_rate_limited",
      "provider_timeout",
      "provider_unavailable",
    ]);
  });
});

describe("while open", () => {
  it("defers callers until openUntil", async () => {
    await openBreaker(breaker);
    expect(await breaker.acquire(PROVIDER, at(30))).toEqual({ allowed: false, retryAt: at(140) });
    expect(await breaker.acquire(PROVIDER, at(139))).toEqual({ allowed: false, retryAt: at(140) });
  });

  it("ignores failures and successes of calls that are not the probe", async () => {
    await openBreaker(breaker);
    await fail(breaker, 30);
    await breaker.recordSuccess(PROVIDER, at(31), false);
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "open", failures: 3, openUntil: at(140), updatedAt: at(20) });
  });
});

describe("the probe after the cooldown", () => {
  it("is given to exactly one of 10 concurrent callers on two instances", async () => {
    await openBreaker(breaker);
    const other = createFirestoreBreaker(SETTINGS, observer);
    const decisions = await Promise.all(
      Array.from({ length: 10 }, (_, index) => (index < 5 ? breaker : other).acquire(PROVIDER, at(140))),
    );
    expect(decisions.filter((decision) => decision.allowed)).toEqual([{ allowed: true, probe: true }]);
    expect(decisions.filter((decision) => !decision.allowed)).toEqual(Array(9).fill({ allowed: false, retryAt: at(200) }));
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "half_open", openedAt: at(20), openUntil: at(140), updatedAt: at(140) });
    expect(observer.events.filter((event) => event.event === "probeStarted")).toHaveLength(1);
  });

  it("closes the breaker and resets its counts when it succeeds", async () => {
    await openBreaker(breaker);
    expect(await breaker.acquire(PROVIDER, at(150))).toEqual({ allowed: true, probe: true });
    await breaker.recordSuccess(PROVIDER, at(151), true);
    expect(await breaker.state(PROVIDER)).toEqual({
      provider: PROVIDER,
      state: "closed",
      failures: 0,
      windowStartedAt: null,
      openedAt: null,
      openUntil: null,
      updatedAt: at(151),
    });
    expect(await breaker.acquire(PROVIDER, at(152))).toEqual({ allowed: true, probe: false });
    await fail(breaker, 160);
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "closed", failures: 1, windowStartedAt: at(160) });
    expect(observer.events.map((event) => event.event)).toEqual(["opened", "probeStarted", "closed"]);
  });

  it("re-opens the breaker for another cooldown when it fails", async () => {
    await openBreaker(breaker);
    expect(await breaker.acquire(PROVIDER, at(150))).toEqual({ allowed: true, probe: true });
    await breaker.recordOutage(PROVIDER, at(155), true);
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "open", failures: 4, openedAt: at(155), openUntil: at(275) });
    expect(await breaker.acquire(PROVIDER, at(200))).toEqual({ allowed: false, retryAt: at(275) });
    expect(observer.events.at(-1)).toEqual({ event: "opened", provider: PROVIDER, failures: 4, untilMs: at(275).getTime() });
    // The new open period has a probe of its own.
    expect(await breaker.acquire(PROVIDER, at(275))).toEqual({ allowed: true, probe: true });
  });


  it("is replaced by another probe when it does not report within its lease", async () => {
    await openBreaker(breaker);
    expect(await breaker.acquire(PROVIDER, at(150))).toEqual({ allowed: true, probe: true });
    expect(await breaker.acquire(PROVIDER, at(209))).toEqual({ allowed: false, retryAt: at(269) });
    const other = createFirestoreBreaker(SETTINGS, observer);
    const decisions = await Promise.all(
      Array.from({ length: 6 }, (_, index) => (index < 3 ? breaker : other).acquire(PROVIDER, at(210))),
    );
    expect(decisions.filter((decision) => decision.allowed)).toEqual([{ allowed: true, probe: true }]);
    await breaker.recordSuccess(PROVIDER, at(212), true);
    expect((await breaker.state(PROVIDER)).state).toBe("closed");
    expect(observer.events.map((event) => event.event)).toEqual(["opened", "probeStarted", "probeStarted", "closed"]);
  });

  it("holds its lease from its own start, even when it starts late after the cooldown", async () => {
    await openBreaker(breaker);
    // Cooldown ends at 140 s; a grid of leases counted from there would allow a second probe at 200 s.
    expect(await breaker.acquire(PROVIDER, at(199))).toEqual({ allowed: true, probe: true });
    expect(await breaker.acquire(PROVIDER, at(201))).toEqual({ allowed: false, retryAt: at(261) });
    expect(await breaker.acquire(PROVIDER, at(258))).toMatchObject({ allowed: false });
    expect(await breaker.acquire(PROVIDER, at(259))).toEqual({ allowed: true, probe: true });
  });
});

describe("recordSuccess outside a probe", () => {
  it("writes nothing on a closed breaker", async () => {
    await breaker.recordSuccess(PROVIDER, at(0), false);
    expect((await breaker.state(PROVIDER)).updatedAt).toBeNull();
    await fail(breaker, 5);
    await breaker.recordSuccess(PROVIDER, at(10), false);
    await breaker.recordSuccess(PROVIDER, at(11), true);
    expect(await breaker.state(PROVIDER)).toMatchObject({ state: "closed", failures: 1, updatedAt: at(5) });
    expect(observer.events).toEqual([]);
  });
});

describe("the per-instance cache", () => {
  it("reuses a state read until it expires, and forgets it on its own writes", async () => {
    let clockSkewMs = 0;
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + clockSkewMs);
    const caching = createFirestoreBreaker({ ...SETTINGS, cacheMs: 60_000 }, observer);
    expect(await caching.acquire(PROVIDER, at(0))).toEqual({ allowed: true, probe: false });

    await openBreaker(breaker);
    // Another instance opened it: this one keeps its cached "closed" …
    expect(await caching.acquire(PROVIDER, at(30))).toEqual({ allowed: true, probe: false });
    expect(await breaker.acquire(PROVIDER, at(30))).toEqual({ allowed: false, retryAt: at(140) });
    // … until the cache expires.
    clockSkewMs = 60_001;
    expect(await caching.acquire(PROVIDER, at(31))).toEqual({ allowed: false, retryAt: at(140) });
    // state() never uses the cache.
    await breaker.acquire(PROVIDER, at(150));
    expect((await caching.state(PROVIDER)).state).toBe("half_open");

    // Its own write (the probe's success) is seen at once.
    await caching.recordSuccess(PROVIDER, at(151), true);
    expect(await caching.acquire(PROVIDER, at(152))).toEqual({ allowed: true, probe: false });
  });

  it("sees an opening it wrote itself at once", async () => {
    const caching = createFirestoreBreaker({ ...SETTINGS, cacheMs: 60_000 }, observer);
    expect(await caching.acquire(PROVIDER, at(0))).toEqual({ allowed: true, probe: false });
    await openBreaker(caching);
    expect(await caching.acquire(PROVIDER, at(30))).toEqual({ allowed: false, retryAt: at(140) });
  });

  it("claims a probe only against fresh state", async () => {
    const caching = createFirestoreBreaker({ ...SETTINGS, cacheMs: 60_000 }, observer);
    await openBreaker(breaker);
    expect(await caching.acquire(PROVIDER, at(30))).toEqual({ allowed: false, retryAt: at(140) });
    // The probe ran and closed it on the other instance; the cached "open" must not start another.
    expect(await breaker.acquire(PROVIDER, at(140))).toEqual({ allowed: true, probe: true });
    await breaker.recordSuccess(PROVIDER, at(141), true);
    expect(await caching.acquire(PROVIDER, at(260))).toEqual({ allowed: true, probe: false });
    expect(observer.events.filter((event) => event.event === "probeStarted")).toHaveLength(1);
  });
});

describe("the stored documents", () => {
  const breakerDoc = () => db().collection("breakers").doc(PROVIDER);

  it("writes only the counting fields while counting, as Timestamps", async () => {
    await fail(breaker, 0, 10);
    const stored = (await breakerDoc().get()).data();
    expect(Object.keys(stored ?? {}).sort()).toEqual(["failures", "provider", "updatedAt", "windowStartedAt"]);
    expect(stored).toMatchObject({ provider: PROVIDER, failures: 2, windowStartedAt: expect.any(Timestamp), updatedAt: expect.any(Timestamp) });
  });

  it("claims the opening and the probe in documents of their own", async () => {
    await openBreaker(breaker);
    expect(await breaker.acquire(PROVIDER, at(150))).toEqual({ allowed: true, probe: true });
    const opening = await breakerDoc().collection("openings").doc(String(at(0).getTime())).get();
    expect(opening.data()).toEqual({ openedAt: Timestamp.fromDate(at(20)), failures: 3, purgeAt: Timestamp.fromDate(new Date(at(20).getTime() + 86_400_000)) });
    const probe = await breakerDoc().collection("probes").doc(`${at(20).getTime()}-0`).get();
    expect(probe.data()).toEqual({
      openedAt: Timestamp.fromDate(at(20)),
      claimedAt: Timestamp.fromDate(at(150)),
      leaseUntil: Timestamp.fromDate(at(210)),
      purgeAt: Timestamp.fromDate(new Date(at(150).getTime() + 86_400_000)),
    });
  });

  it("reads a document written without provider or probe fields as that provider's", async () => {
    await breakerDoc().set({ state: "open", failures: 5, openedAt: at(0), openUntil: at(120), updatedAt: at(0) });
    expect(await breaker.state(PROVIDER)).toEqual({
      provider: PROVIDER,
      state: "open",
      failures: 5,
      windowStartedAt: null,
      openedAt: at(0),
      openUntil: at(120),
      updatedAt: at(0),
    });
    expect(await breaker.acquire(PROVIDER, at(120))).toEqual({ allowed: true, probe: true });
  });

  it("refuses a document that does not match the model, naming it and the field", async () => {
    await breakerDoc().set({ state: "ajar" });
    await expect(breaker.state(PROVIDER)).rejects.toBeInstanceOf(DocumentInvalidError);
    await expect(breaker.acquire(PROVIDER, at(0))).rejects.toMatchObject({ collection: "breakers", documentId: PROVIDER, fieldPath: "state" });
    await breakerDoc().set({ provider: "openai", state: "closed" });
    await expect(breaker.state(PROVIDER)).rejects.toMatchObject({ documentId: PROVIDER, fieldPath: "provider" });
  });
});

describe("breakerSettingsFrom", () => {
  it("takes the tunables and a probe lease that outlasts the slowest provider request", () => {
    expect(breakerSettingsFrom(loadConfig({}))).toEqual({
      failureThreshold: 5,
      windowSeconds: 60,
      cooldownSeconds: 120,
      probeLeaseSeconds: 210,
    });
    expect(breakerSettingsFrom(loadConfig({ OPENAI_TIMEOUT_SECONDS: "5" })).probeLeaseSeconds).toBe(60);
  });
});
