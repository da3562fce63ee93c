/** Unit tests: fast, no root, no lab. End-to-end lab tests live in test/e2e (jest.e2e.config.js). */
const { availableParallelism } = require('node:os');

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  // CloudFormation validation runs in test/cluster/template-validation.test.ts only (see the setup file).
  setupFiles: ['<rootDir>/test/support/cdk-validation.js'],
  // cpu-probe.js: per-file CPU for bench/test-suite.ts, inert otherwise. The aws-sdk-client-mock-jest matchers are
  // imported by the files that use them: loading them costs ~0.2 CPU-s in every file's module registry.
  setupFilesAfterEnv: ['<rootDir>/test/support/cpu-probe.js'],
  // Longest files first also on a machine without jest's cache of durations (CI): see the sequencer.
  testSequencer: '<rootDir>/test/support/sequencer.js',
  testTimeout: 60000,
  // At least two workers: jest's default (cores - 1) is one worker on a 2-core machine, and a file that runs shell
  // scripts mostly waits on them, so one core idles (bench/RESULTS.md, section 9).
  maxWorkers: Math.max(2, availableParallelism()),
  // No test may leave files behind: a private TMPDIR for the run, checked at the end (test/support/tmp-guard-*.js).
  globalSetup: '<rootDir>/test/support/tmp-guard-setup.js',
  globalTeardown: '<rootDir>/test/support/tmp-guard-teardown.js',
};
