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

const { runOps } = await import("../functions/src/ops/cli.js");
const { resetAdminApp } = await import("../functions/src/store/db.js");
process.exitCode = await runOps(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
await resetAdminApp();
