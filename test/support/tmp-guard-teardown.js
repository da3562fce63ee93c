/** Jest globalTeardown: every test cleans up what it made; anything left in the tests' TMPDIR fails the run. */
const { readdirSync, rmSync } = require('node:fs');

/**
 * Not a test's own leftovers: caches of tools the tests run (tsx), and the synth output aws-cdk-lib writes for an
 * App given no outdir (`cdk.outXXXXXX`). They go with the private directory, so nothing is left on the machine.
 */
const CACHES = [/^tsx-\d+$/, /^jiti$/, /^node-compile-cache$/, /^cdk\.out.{6}$/];

module.exports = async () => {
  const dir = process.env.EC2_SWARM_TEST_TMPDIR;
  if (!dir) return;
  const left = readdirSync(dir).filter((n) => !CACHES.some((re) => re.test(n)));
  rmSync(dir, { recursive: true, force: true });
  if (left.length > 0) {
    const shown = left.slice(0, 20).join(', ') + (left.length > 20 ? `, … (${left.length - 20} more)` : '');
    throw new Error(`tests left ${left.length} file(s) or folder(s) in the temporary directory: ${shown}`);
  }
};
