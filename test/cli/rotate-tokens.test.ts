/**
 * `ec2-swarm rotate-tokens`: the CLI over the real ops code and SSM runner, SSM mocked (aws-sdk-client-mock).
 * Exit codes: 0 rotated and observed, 1 the cluster answered but did not rotate, 2 usage, 3 unreachable.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { PassThrough } from 'node:stream';
import { type OpsApi, runCli } from '../../lib/cli/program';
import * as ops from '../../lib/ops';
import { fixture, isQuery, queryStdout } from '../ops/swarm/harness';
import { mockCluster, type Answer, type MockCluster } from '../ops/support/mock-ssm-cluster';

const ssm = mockClient(SSMClient);
beforeEach(() => ssm.reset());

const LEADER = 'i-0050c0c1c12a5c0c6';
const MANAGERS = ['i-04e395099a1a7c469', LEADER, 'i-0bc79e796dea7c554'];

async function cli(args: string[], answer: (script: string, id: string) => Answer): Promise<{ code: number; stdout: string; stderr: string; cluster: MockCluster; connected: boolean }> {
  const cluster = mockCluster(ssm, MANAGERS, answer);
  let connected = false;
  const realOps: OpsApi = { ...ops, connect: async () => ((connected = true), cluster.conn) };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await runCli(args, { stdout, stderr, env: {}, cwd: process.cwd() }, { loadOps: () => realOps });
  return { code, stdout: out, stderr: err, cluster, connected };
}

const healthy = (rotate: Answer) => (script: string): Answer => (isQuery(script) ? { exitCode: 0, stdout: queryStdout(fixture('query-ha-3-managers.txt')) } : rotate);

test('rotated on the leader → 0; says where and which parameters; --json is one document; no token anywhere', async () => {
  const r = await cli(['rotate-tokens', '--outputs', 'out.json'], healthy({ exitCode: 0 }));
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(
    `rotated the worker and manager join tokens on ${LEADER} (the leader)\npublished: /ec2-swarm/demo/worker-token, /ec2-swarm/demo/manager-token\n` +
      'nodes that join from now on use the new tokens; the old ones are refused\n',
  );
  const j = await cli(['rotate-tokens', '--json'], healthy({ exitCode: 0 }));
  expect(j.code).toBe(0);
  expect(JSON.parse(j.stdout)).toMatchObject({ rotated: ['worker', 'manager'], instanceId: LEADER, leader: true, managers: { tolerates: 1 } });
  for (const s of [...r.cluster.sent, ...j.cluster.sent]) expect(JSON.stringify(s.input)).not.toMatch(/S[W]MTKN-\d-/);
});

test('the manager answered but did not rotate → 1 with its reason (a token in its output is redacted)', async () => {
  const r = await cli(['rotate-tokens'], healthy({ exitCode: 1, stderr: 'ec2-swarm: ERROR: writing /ec2-swarm/demo/worker-token failed: SWMTKN-\x31-abc-def\n' }));
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`rotate-tokens failed on ${LEADER} (exit 1)`);
  expect(r.stderr).not.toMatch(/S[W]MTKN-\d-/);
});

test('no manager reachable → 3', async () => {
  const r = await cli(['rotate-tokens', '--timeout', '30'], () => 'offline');
  expect(r.code).toBe(3);
});

test.each([
  [['rotate-tokens', 'extra']],
  [['rotate-tokens', '--timeout', '0']],
  [['rotate-tokens', '--timeout', 'soon']],
  [['rotate-tokens', '--worker-only']],
])('usage error %j → 2, nothing contacted', async (args) => {
  const r = await cli(args, () => ({ exitCode: 0 }));
  expect(r.code).toBe(2);
  expect(r.connected).toBe(false);
  expect(r.cluster.sent).toHaveLength(0);
});

test('--help states what it does and its exit codes; the global help lists it', async () => {
  const r = await cli(['rotate-tokens', '--help'], () => ({ exitCode: 0 }));
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/join-token --rotate[\s\S]*read them back[\s\S]*old tokens are refused[\s\S]*no quorum/);
  expect(r.stdout).toMatch(/Exit: 0 rotated and published \(observed\), 1 the cluster answered but did not rotate[\s\S]*2 usage, 3 no manager could be reached/);
  const g = await cli(['--help'], () => ({ exitCode: 0 }));
  expect(g.stdout).toMatch(/rotate-tokens \[options\]\s+rotate both join tokens/);
});
