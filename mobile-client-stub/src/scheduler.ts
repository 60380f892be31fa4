// Time and timers behind one small interface, so code that waits can be tested with a fake clock.

export interface Scheduler {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` after `delayMs`; returns a function that cancels it. */
  schedule(callback: () => void, delayMs: number): () => void;
}

// setTimeout fires at once for delays beyond a signed 32-bit millisecond count (~24.8 days).
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(callback, delayMs) {
    const timer = setTimeout(callback, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS));
    return () => clearTimeout(timer);
  },
};
