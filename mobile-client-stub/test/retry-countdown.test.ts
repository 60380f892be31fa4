import { describe, expect, it } from "vitest";
import { formatDuration } from "../src/duration.js";
import { RetryCountdown } from "../src/retry-countdown.js";

function clock(start: number) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("RetryCountdown", () => {
  it("counts down from Retry-After and re-enables the button exactly when it has passed", () => {
    const time = clock(1_000_000);
    const countdown = new RetryCountdown(27, time.now);
    expect(countdown.enabledAt).toEqual(new Date(1_027_000));
    expect(countdown.text()).toBe("Try again in 0:27");
    expect(countdown.isButtonEnabled()).toBe(false);

    time.advance(500);
    expect(countdown.text()).toBe("Try again in 0:27");
    time.advance(500);
    expect(countdown.text()).toBe("Try again in 0:26");

    time.advance(25_999);
    expect(countdown.remainingSeconds()).toBe(1);
    expect(countdown.msUntilEnabled()).toBe(1);
    expect(countdown.text()).toBe("Try again in 0:01");
    expect(countdown.isButtonEnabled()).toBe(false);

    time.advance(1);
    expect(countdown.isButtonEnabled()).toBe(true);
    expect(countdown.msUntilEnabled()).toBe(0);
    expect(countdown.text()).toBe("You can try again now.");
  });

  it("shows minutes and hours for the hourly quota", () => {
    const time = clock(0);
    expect(new RetryCountdown(1800, time.now).text()).toBe("Try again in 30:00");
    expect(new RetryCountdown(3723, time.now).text()).toBe("Try again in 1:02:03");
  });

  it("rounds a fractional wait up, so it never reads 0:00 while disabled", () => {
    const countdown = new RetryCountdown(0.2, clock(0).now);
    expect(countdown.isButtonEnabled()).toBe(false);
    expect(countdown.text()).toBe("Try again in 0:01");
  });

  it("is enabled at once for a zero wait", () => {
    expect(new RetryCountdown(0, clock(0).now).isButtonEnabled()).toBe(true);
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0:00"],
    [9, "0:09"],
    [59.9, "0:59"],
    [60, "1:00"],
    [605, "10:05"],
    [3600, "1:00:00"],
    [-5, "0:00"],
  ])("%s s → %s", (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
