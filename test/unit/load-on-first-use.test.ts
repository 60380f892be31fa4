// loadOnFirstUse (functions/src/load-on-first-use.ts): what the lazily loaded provider SDKs and the
// api's routes rely on — one load, shared by every caller, and a failed load tried again.

import { describe, expect, it } from "vitest";
import { loadOnFirstUse } from "../../functions/src/load-on-first-use.js";

describe("loadOnFirstUse", () => {
  it("loads nothing until the first call", () => {
    let loads = 0;
    loadOnFirstUse(() => Promise.resolve(++loads));
    expect(loads).toBe(0);
  });

  it("loads once and hands every later caller the same value", async () => {
    let loads = 0;
    const get = loadOnFirstUse(() => Promise.resolve({ load: ++loads }));
    const first = await get();
    expect(await get()).toBe(first);
    expect(loads).toBe(1);
  });

  it("shares one load among concurrent first callers", async () => {
    let loads = 0;
    let finish: (value: string) => void = () => {};
    const get = loadOnFirstUse(() => {
      loads++;
      return new Promise<string>((resolve) => (finish = resolve));
    });
    const callers = [get(), get(), get()];
    finish("loaded");
    expect(await Promise.all(callers)).toEqual(["loaded", "loaded", "loaded"]);
    expect(loads).toBe(1);
  });

  it("forgets a failed load, so the next call tries again", async () => {
    let loads = 0;
    const get = loadOnFirstUse(() => (++loads === 1 ? Promise.reject(new Error("unavailable")) : Promise.resolve("loaded")));
    await expect(get()).rejects.toThrow("unavailable");
    expect(await get()).toBe("loaded");
    expect(await get()).toBe("loaded");
    expect(loads).toBe(2);
  });

  it("gives every caller of a failed load its failure", async () => {
    const get = loadOnFirstUse(() => Promise.reject(new Error("unavailable")));
    const results = await Promise.allSettled([get(), get()]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  });
});
