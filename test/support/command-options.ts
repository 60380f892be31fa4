// The options of the project's own commands (bench, chaos): node:util parseArgs, with an unknown
// option or a missing value answered by its name and the command's usage instead of a stack trace.

import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The parsed values, or null after printing what was wrong and the usage (the caller exits 2). */
export function readCommandOptions<T extends Options>(options: T, usage: string): ReturnType<typeof parseArgs<{ options: T }>>["values"] | null {
  try {
    return parseArgs({ options }).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    return null;
  }
}
