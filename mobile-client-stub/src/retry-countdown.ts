// The rate-limited retry button: "Try again in 0:27" until the server's Retry-After has passed.

import { formatDuration } from "./duration.js";

export class RetryCountdown {
  private readonly enabledAtMs: number;

  /** `now` is the clock (ms since the epoch); the countdown starts when it is constructed. */
  constructor(
    retryAfterSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.enabledAtMs = now() + Math.max(0, retryAfterSeconds) * 1000;
  }

  /** When the button re-enables. */
  get enabledAt(): Date {
    return new Date(this.enabledAtMs);
  }

  isButtonEnabled(): boolean {
    return this.now() >= this.enabledAtMs;
  }

  /** Milliseconds until the button re-enables; schedule the next redraw with it. */
  msUntilEnabled(): number {
    return Math.max(0, this.enabledAtMs - this.now());
  }

  /** Rounded up, so the text never reads 0:00 while the button is still disabled. */
  remainingSeconds(): number {
    return Math.ceil(this.msUntilEnabled() / 1000);
  }

  text(): string {
    return this.isButtonEnabled() ? "You can try again now." : `Try again in ${formatDuration(this.remainingSeconds())}`;
  }
}
