/**
 * Jest globalSetup: the unit tests get a temporary directory of their own (TMPDIR, so os.tmpdir() and mktemp use
 * it, in the workers and in the processes they start), and tmp-guard-teardown.js fails the run if anything is left
 * in it. Other people's files in /tmp never count.
 */
const { mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

module.exports = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-jest-'));
  process.env.EC2_SWARM_TEST_TMPDIR = dir;
  process.env.TMPDIR = dir;
  // Debian's bash reads ~/.bashrc when it thinks sshd started it: stdin a socket and SHLVL below 1. Node's 'pipe'
  // stdio are sockets, so every `bash -c` a test spawns with the workers' environment would run this machine's
  // ~/.bashrc, which may put its own PATH first (pyenv's shims found the real `aws` before a test's stand-in).
  // SHLVL=1 in the workers' environment is what a shell's child sees, and turns that off.
  process.env.SHLVL = '1';
};
