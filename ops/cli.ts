// `npm run ops -- <command>`: the entry point (the commands live in functions/src/ops/). The
// functions' own log lines go to stderr with --verbose and nowhere otherwise: stdout carries only
// the command's output, so `--json` can be piped.

const verbose = process.argv.includes("--verbose");
const toStderr = (...args: unknown[]) => {
  if (verbose) process.stderr.write(`${args.map(String).join(" ")}\n`);
};
// Before the functions' logger is loaded: it keeps the console methods it finds.
console.log = console.info = console.debug = console.warn = toStderr;
console.error = toStderr;

// Exit 5 ("failure") for anything that escapes the commands, e.g. a module that cannot load:
// exit 1 means findings to the scripts that call this.
const FAILED = 5;
try {
  const { runOps } = await import("../functions/src/ops/cli.js");
  const { resetAdminApp } = await import("../functions/src/store/db.js");
  process.exitCode = await runOps(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
  await resetAdminApp();
} catch (error) {
  process.stderr.write(`ops: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = FAILED;
}
