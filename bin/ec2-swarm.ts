#!/usr/bin/env node
/** The `ec2-swarm` CLI entry point: everything lives in lib/cli/program.ts. */
import { runCli } from '../lib/cli/program';

const argv = process.argv.slice(2);
runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }).then((code) => {
  process.exitCode = code;
  // Ops commands are done: do not let an idle keep-alive socket hold the process. The lab may own long-lived
  // children, so it is left to end on its own.
  if (argv[0] !== 'lab') setTimeout(() => process.exit(code), 1000).unref();
});
