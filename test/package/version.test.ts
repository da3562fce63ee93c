/**
 * `ec2-swarm --version` prints package.json's version and, like `--help`, starts without the AWS SDK or the CDK.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageVersion } from '../../lib/package-info';

const REPO = resolve(__dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-version-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('packageVersion reads the ec2-swarm package.json above the calling file', () => {
  expect(packageVersion()).toBe(VERSION);
  expect(packageVersion(join(REPO, 'lib', 'cli'))).toBe(VERSION);
});

test('packageVersion skips a package.json of another package and fails, naming the start, when none is found', () => {
  const nested = join(dir, 'other', 'lib');
  mkdirSync(nested, { recursive: true });
  writeFileSync(join(dir, 'other', 'package.json'), JSON.stringify({ name: 'other', version: '9.9.9' }));
  expect(() => packageVersion(nested)).toThrow(`no package.json of ec2-swarm above ${nested}`);
});

test.each(['--version', '-V'])('ec2-swarm %s prints the version, exits 0 and loads neither the AWS SDK nor the CDK', (flag) => {
  const report = join(dir, `loaded${flag}.json`);
  const hook = join(dir, 'hook.js');
  writeFileSync(
    hook,
    `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify(Object.keys(require.cache).filter((k) => /node_modules\\/(@aws-sdk|aws-cdk-lib)\\//.test(k)))));\n`,
  );
  const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), '--require', hook, join(REPO, 'bin', 'ec2-swarm.ts'), flag], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe(`${VERSION}\n`);
  expect(r.status).toBe(0);
  expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual([]);
});
