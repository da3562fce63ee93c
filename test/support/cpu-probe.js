/**
 * Jest setupFilesAfterEnv, inert unless BENCH_JEST_CPU_OUT names a file (bench/test-suite.ts sets it): appends one
 * line per test file with the worker's pid and its CPU ticks (user + system, itself and its waited-for children,
 * /proc/self/stat) when the file starts and after its tests. The bench charges a file from its start to the next
 * file's start in the same worker (its own afterAll clean-ups and jest's per-file work count), the last file of a
 * worker to its end.
 */
const { appendFileSync, readFileSync } = require('node:fs');

function ticks() {
  // After "(comm) ": utime, stime, cutime, cstime are the 12th to 15th fields (the 14th to 17th of the line).
  const rest = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return rest.slice(11, 15).reduce((n, x) => n + Number(x), 0);
}

const out = process.env.BENCH_JEST_CPU_OUT;
if (out) {
  const file = expect.getState().testPath;
  const start = ticks();
  afterAll(() => {
    appendFileSync(out, `${JSON.stringify({ pid: process.pid, file, start, end: ticks() })}\n`);
  });
}
