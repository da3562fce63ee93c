/**
 * Jest's order of test files: longest first, so that no worker idles at the end while the other runs one long file.
 * Jest orders by the durations it cached in earlier runs; a fresh machine (CI) has none, and jest then orders by
 * file size, which says little here (a short file that synthesizes or runs shell scripts costs more than a long one
 * of pure functions). So a file jest has no duration for gets its CPU time from test/support/test-cpu.json (from
 * bench/test-suite.ts's per-file figures; a file not listed there counts as a small one, 1 s: jest would run it first).
 */
const { readFileSync } = require('node:fs');
const { join, relative } = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const CPU_SECONDS = JSON.parse(readFileSync(join(__dirname, 'test-cpu.json'), 'utf8')).files;

module.exports = class LongestFirst extends Sequencer {
  time(test) {
    const cached = super.time(test);
    if (cached != null) return cached;
    const cpu = CPU_SECONDS[relative(test.context.config.rootDir, test.path)];
    return (cpu ?? 1) * 1000;
  }
};
