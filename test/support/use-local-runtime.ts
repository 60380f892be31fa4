// For a test file that drives the pipeline: one local runtime for the whole file, emptied before
// each test (its own beforeEach hooks run after this reset). A separate module from
// local-runtime.ts, which scripts outside vitest (demo, chaos, bench) import too.

import { afterAll, beforeAll, beforeEach } from "vitest";
import { startLocalRuntime } from "./local-runtime.js";
import type { LocalRuntime, LocalRuntimeOptions } from "./local-runtime.js";

export function useLocalRuntime(options: LocalRuntimeOptions = {}): () => LocalRuntime {
  let runtime: LocalRuntime | undefined;
  beforeAll(async () => {
    runtime = await startLocalRuntime(options);
  });
  afterAll(async () => {
    await runtime?.close();
  });
  beforeEach(async () => {
    await runtime?.reset();
  });
  return () => {
    if (!runtime) throw new Error("the local runtime is used before it started");
    return runtime;
  };
}
