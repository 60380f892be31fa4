// Failpoint rules for tests that stall or observe the functions between a provider call and its
// checkpoint (functions/src/runtime-hooks.ts): `hook` is what installRuntimeHooks takes; `stallAt`
// holds the next invocation that reaches a failpoint until released; `releaseAll` (afterEach)
// frees whatever a failed test left stalled, so no invocation hangs into the next test.

import type { FailpointAction, FailpointName } from "../../functions/src/runtime-hooks.js";

export interface Stall {
  /** Resolves when an invocation reached the failpoint (right after its provider call returned). */
  reached: Promise<void>;
  release(): void;
}

export type FailpointRule = (name: FailpointName) => FailpointAction;

export interface Failpoints {
  hook: (name: FailpointName) => FailpointAction;
  add: (rule: FailpointRule) => void;
  /** Stalls the next invocation that reaches `point` (after `skip` others passed it) until released. */
  stallAt: (point: FailpointName, skip?: number) => Stall;
  releaseAll: () => void;
}

export function createFailpoints(): Failpoints {
  let rules: FailpointRule[] = [];
  let open: (() => void)[] = [];
  return {
    hook(name) {
      for (const rule of rules) {
        const action = rule(name);
        if (action !== null) return action;
      }
      return null;
    },
    add(rule) {
      rules.push(rule);
    },
    stallAt(point, skip = 0) {
      let release = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      let signal = () => {};
      const reached = new Promise<void>((resolve) => (signal = resolve));
      let toSkip = skip;
      let used = false;
      rules.push((name) => {
        if (name !== point || used) return null;
        if (toSkip > 0) {
          toSkip -= 1;
          return null;
        }
        used = true;
        signal();
        return { stallUntil: gate };
      });
      open.push(release);
      return { reached, release };
    },
    releaseAll() {
      open.forEach((release) => release());
      open = [];
      rules = [];
    },
  };
}
