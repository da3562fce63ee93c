/** End-to-end tests against the lab (root, real dockerd hosts). Run serially: the lab is one machine. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/e2e'],
  testMatch: ['**/*.e2e.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  testTimeout: 600000,
  maxWorkers: 1,
};
