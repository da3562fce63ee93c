/**
 * Every deploy input error exits 2 before anything is contacted (design.md decision 13): the real ops module, the
 * AWS SDK clients mocked to record any call, no cluster reachable. Compose files go through the compose loader.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../lib/cli/program';

const ssm = mockClient(SSMClient);
const ec2 = mockClient(EC2Client);
const cfn = mockClient(CloudFormationClient);
let dir: string;

beforeEach(() => {
  ssm.reset();
  ec2.reset();
  cfn.reset();
  dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-deploy-input-'));
  writeFileSync(
    join(dir, 'out.json'),
    JSON.stringify({ S: { SwarmClusterName: 'demo', SwarmManagerInstanceId: 'i-0123456789abcdef0', SwarmParameterPrefix: '/ec2-swarm/demo', SwarmRegion: 'eu-west-1' } }),
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function deploy(file: string, content: string, extra: string[] = [], target: 'aws' | 'lab' = 'aws') {
  const f = join(dir, file);
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(f, content);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const targetArgs = target === 'lab' ? ['--target', 'lab'] : ['--outputs', join(dir, 'out.json')];
  const code = await runCli(['deploy', '-f', f, ...extra, ...targetArgs], {
    stdout,
    stderr,
    env: { EC2_SWARM_LAB_DIR: join(dir, 'no-lab'), AWS_REGION: 'eu-west-1' },
    cwd: dir,
  });
  return { code, stdout: out, stderr: err };
}

function expectNoSdkCall(): void {
  expect(ssm.calls()).toHaveLength(0);
  expect(ec2.calls()).toHaveLength(0);
  expect(cfn.calls()).toHaveLength(0);
}

const goodSpec = (over: Record<string, unknown>) => JSON.stringify({ services: [{ name: 'web', image: 'nginx:1.27', ...over }] });

describe.each(['aws', 'lab'] as const)('deploy input errors → exit 2, no SDK call, no connection (target %s)', (target) => {
  test.each([
    ['an empty file', 'services.yml', '', [], /neither a compose file|services/],
    ['invalid YAML', 'services.yml', 'services: [\n  - name: web\n    image: "nginx\n', [], /YAML|yaml/],
    ['a spec with a bad service name', 'services.yml', goodSpec({ name: 'web;id' }), [], /services\[0\]|services\.0/],
    ['a spec with an image reference Docker rejects (;)', 'services.yml', goodSpec({ image: 'nginx;touch x' }), [], /image/],
    ['a spec with a constraint holding a quote', 'services.yml', goodSpec({ constraints: ['node.role=="worker'] }), [], /has a character Docker does not accept.*at services\[0\]\.constraints\[0\]/s],
    ['a spec with a constraint without operator', 'services.yml', goodSpec({ constraints: ['node.role'] }), [], /exactly one == or !=/],
    ['--name on a spec file', 'services.yml', goodSpec({}), ['--name', 'x'], /--name applies to compose files only/],
    ['a bad --name for a compose file', 'app/docker-compose.yml', 'services:\n  web:\n    image: nginx\n', ['--name', 'Bad Name!'], /name/],
    ['a compose file with an unknown top-level key', 'app/docker-compose.yml', 'services:\n  web:\n    image: nginx\nfrobnicate: 1\n', [], /frobnicate/],
    ['a compose file with replicas: "many"', 'app/docker-compose.yml', 'services:\n  web:\n    image: nginx\n    deploy:\n      replicas: many\n', [], /replicas/],
  ])('%s', async (_what, file, content, extra, message) => {
    const r = await deploy(file, content, extra as string[], target);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: /m);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).not.toMatch(/lab is not running/);
    expectNoSdkCall();
  });
});

test('a missing file is exit 2 too', async () => {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d) => (err += d));
  const code = await runCli(['deploy', '-f', join(dir, 'nope.yml'), '--outputs', join(dir, 'out.json')], { stdout, stderr, env: {}, cwd: dir });
  expect(code).toBe(2);
  expect(err).toMatch(/no such file/);
  expectNoSdkCall();
});
