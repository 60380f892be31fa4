// A module (or anything costly to build) loaded by its first use rather than at import: what a
// cold instance imports is what every function pays at start, needed or not (see
// providers/lazy-adapters.ts, and the api's express app in index.ts).

/**
 * `load` runs once, on the first call; every caller shares its promise, concurrent first callers
 * too. A load that fails is forgotten, so the next call tries again (a transient failure must not
 * poison the instance).
 */
export function loadOnFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
}

