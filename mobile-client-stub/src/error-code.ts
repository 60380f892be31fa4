// Reads the `code` of a Firebase SDK error without importing the SDK, so logic branching on it stays testable.

/** The error's string `code`, or "" when it has none. */
export function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  return "";
}
