// Fault-injection model shared by the fake provider servers: FIFO-queued and seeded-random faults per route.

/**
 * A misbehaviour a fake can be told to show. `afterCommit` (status, reset, hang) means the provider
 * did the work (a transcript job or a completion was created and counted) but the client never got
 * a usable answer: the nastiest real case, because a naive retry duplicates the work.
 * Without it, the provider rejected the request and nothing was created.
 */
export type FaultKind =
  | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string>; afterCommit?: boolean }
  | { kind: "rateLimit"; retryAfterSeconds?: number; retryAfterMs?: number }
  | { kind: "hang"; ms?: number; afterCommit?: boolean }
  | { kind: "reset"; afterCommit?: boolean }
  | { kind: "malformed" }
  | { kind: "insufficientQuota" }
  | { kind: "refusal"; message?: string }
  | { kind: "length" }
  | { kind: "contentFilter" }
  | { kind: "transcriptError"; error: string };

/** Faults decided at the HTTP level (an error answer, a dropped or stalled connection, garbage). */
export type TransportFault = Extract<
  FaultKind,
  { kind: "status" | "rateLimit" | "hang" | "reset" | "malformed" | "insufficientQuota" }
>;

/** Transport faults that answer with an HTTP error whose body each provider words its own way. */
export type ErrorAnswerFault = Extract<TransportFault, { kind: "status" | "rateLimit" | "insufficientQuota" }>;

/** The routes the fakes serve. */
export type RequestRoute = "submit" | "get" | "list" | "delete" | "chat";

/** What a fault targets; "any" matches every routed request (deletes included). */
export type FaultRoute = "submit" | "get" | "list" | "chat" | "any";

export interface RandomFaultPlan {
  rate: number;
  kinds: FaultKind[];
  seed: number;
  routes?: FaultRoute[];
}

export interface InjectedFault {
  route: RequestRoute;
  kind: FaultKind["kind"];
  at: number;
}

/** Tells whether a fault means anything to a given fake on a given route; others are ignored. */
export type FaultApplicability = (fault: FaultKind, route: RequestRoute) => boolean;

interface QueuedFault {
  route: FaultRoute;
  fault: FaultKind;
  remaining: number;
}

const TRANSPORT_KINDS: ReadonlySet<FaultKind["kind"]> = new Set([
  "status",
  "rateLimit",
  "hang",
  "reset",
  "malformed",
  "insufficientQuota",
]);

export function isTransportFault(fault: FaultKind): fault is TransportFault {
  return TRANSPORT_KINDS.has(fault.kind);
}

export function isAfterCommit(fault: FaultKind): boolean {
  return "afterCommit" in fault && fault.afterCommit === true;
}

export class FaultInjector {
  /** Every fault actually injected, in order, for reports. */
  readonly injected: InjectedFault[] = [];
  private queue: QueuedFault[] = [];
  private random: { plan: RandomFaultPlan; next: () => number } | null = null;

  constructor(
    private readonly applies: FaultApplicability,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The next `times` requests on `route` to which the fault applies get it, FIFO. A fault that does
   * not apply to this fake (or route) waits in the queue and is never injected.
   */
  enqueue(route: FaultRoute, fault: FaultKind, times = 1): void {
    if (times > 0) this.queue.push({ route, fault, remaining: times });
  }

  /** Each matching request faults with probability `rate`; draws come from a PRNG seeded by `seed`. */
  setRandom(plan: RandomFaultPlan | null): void {
    this.random = plan === null ? null : { plan, next: seededRandom(plan.seed) };
  }

  clear(): void {
    this.queue = [];
    this.random = null;
    this.injected.length = 0;
  }

  /** Called by a fake once per routed request: the fault to inject, if any; queued faults win over random ones. */
  draw(route: RequestRoute): FaultKind | undefined {
    const fault = this.takeQueued(route) ?? this.drawRandom(route);
    if (fault !== undefined) this.injected.push({ route, kind: fault.kind, at: this.now() });
    return fault;
  }

  private takeQueued(route: RequestRoute): FaultKind | undefined {
    const index = this.queue.findIndex((entry) => routeMatches(entry.route, route) && this.applies(entry.fault, route));
    const entry = this.queue[index];
    if (entry === undefined) return undefined;
    entry.remaining -= 1;
    if (entry.remaining === 0) this.queue.splice(index, 1);
    return entry.fault;
  }

  private drawRandom(route: RequestRoute): FaultKind | undefined {
    if (this.random === null) return undefined;
    const { plan, next } = this.random;
    if (plan.routes !== undefined && !plan.routes.some((pattern) => routeMatches(pattern, route))) return undefined;
    if (next() >= plan.rate) return undefined;
    const fault = plan.kinds[Math.floor(next() * plan.kinds.length)];
    return fault !== undefined && this.applies(fault, route) ? fault : undefined;
  }
}

function routeMatches(pattern: FaultRoute, route: RequestRoute): boolean {
  return pattern === "any" || pattern === route;
}

/** mulberry32: tiny, fast and good enough to make chaos runs reproducible from a seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
