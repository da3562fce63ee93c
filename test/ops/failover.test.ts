/**
 * A long-lived connection when the manager it asks first stops (design.md decision 23): through the real SSM runner
 * against a mocked SSM API, on a fake clock. The manager that answered last is asked first; a manager whose agent is
 * not Online is skipped without a command; one SSM still calls Online but whose agent never starts the command costs
 * the delivery bound, then the next manager answers and is asked first from then on.
 */
import { CancelCommandCommand, DescribeInstanceInformationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { deploy, status } from '../../lib/ops';
import { MANAGER_DELIVERY_BOUND_S } from '../../lib/ops/swarm/manager';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, isQuery, queryStdout } from './swarm/harness';
import { mockCluster, type Answer } from './support/mock-ssm-cluster';

const ssm = mockClient(SSMClient);
beforeEach(() => ssm.reset());

const M1 = 'i-0aaaaaaaaaaaaaaa1';
const M2 = 'i-0aaaaaaaaaaaaaaa2';
const M3 = 'i-0aaaaaaaaaaaaaaa3';
const STATE: Answer = { exitCode: 0, stdout: queryStdout(fixture('query-ha-3-managers.txt')) };

/** A cluster of three managers; `down` says what SSM and the agent of a stopped manager do. */
function cluster(down: Map<string, 'offline' | 'pending'>) {
  return mockCluster(ssm, [M1, M2, M3], (script, id) => down.get(id) ?? (isQuery(script) || script === '' ? STATE : { exitCode: 0, stdout: 'EC2SWARM-CREATED web\n' }));
}

const sentTo = (c: ReturnType<typeof cluster>) => c.sent.map((s) => s.instanceId);

test('the first manager stops and SSM sees its agent ConnectionLost: the next status skips it without sending it anything', async () => {
  const down = new Map<string, 'offline' | 'pending'>();
  const c = cluster(down);
  await status(c.conn);
  expect(sentTo(c)).toEqual([M1]);

  down.set(M1, 'offline');
  c.clock.t += 6000; // the agent was last seen Online more than a few seconds ago: asked again
  const before = c.clock.t;
  const r = await status(c.conn);

  expect(r.managers.managers).toBe(3);
  expect(sentTo(c)).toEqual([M1, M2]);
  expect(c.clock.t - before).toBeLessThan(2000);
  // The next command goes to the manager that answered, without asking about M1 again.
  const pings = ssm.commandCalls(DescribeInstanceInformationCommand).length;
  await status(c.conn);
  expect(sentTo(c)).toEqual([M1, M2, M2]);
  expect(ssm.commandCalls(DescribeInstanceInformationCommand).length).toBe(pings);
});

test('SSM still calls the stopped manager Online: its command is cancelled at the delivery bound and the next manager answers', async () => {
  const down = new Map<string, 'offline' | 'pending'>();
  const c = cluster(down);
  await status(c.conn);
  down.set(M1, 'pending');
  const before = c.clock.t;

  const r = await status(c.conn);

  expect(r.managers.managers).toBe(3);
  expect(sentTo(c)).toEqual([M1, M1, M2]);
  const waited = c.clock.t - before;
  expect(waited).toBeGreaterThanOrEqual(MANAGER_DELIVERY_BOUND_S * 1000);
  expect(waited).toBeLessThan(MANAGER_DELIVERY_BOUND_S * 1000 + 2000);
  expect(ssm).toHaveReceivedCommandWith(CancelCommandCommand, { CommandId: 'cmd-2', InstanceIds: [M1] });
  // SSM's own delivery timeout backs the cancel up: the command never starts later.
  expect(ssm.commandCalls(SendCommandCommand)[1].args[0].input).toMatchObject({ InstanceIds: [M1], TimeoutSeconds: 30 });
  // From then on M2, which answered, is asked first.
  await status(c.conn);
  expect(sentTo(c)).toEqual([M1, M1, M2, M2]);
});

test('a deploy on the same connection goes to the manager that answered, not to the stopped one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'failover-'));
  try {
    const spec = join(dir, 'services.yml');
    writeFileSync(spec, 'services:\n  - name: web\n    image: nginx:1.27\n    replicas: 1\n');
    const down = new Map<string, 'offline' | 'pending'>();
    const c = cluster(down);
    await status(c.conn);
    down.set(M1, 'pending');
    await status(c.conn);
    const n = c.sent.length;

    await deploy(c.conn, { file: spec });

    expect(sentTo(c).slice(n)).toEqual([M2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every manager stopped: the transport error (exit 3) after the bounds, no endless wait; the last one is waited for as before', async () => {
  const down = new Map<string, 'offline' | 'pending'>([[M1, 'pending'], [M2, 'pending'], [M3, 'offline']]);
  const c = cluster(down);
  const before = c.clock.t;

  await expect(status(c.conn)).rejects.toMatchObject({ fault: 'environment', exitCode: 3 });

  expect(sentTo(c)).toEqual([M1, M2]);
  // Two delivery bounds, then the agent wait of the last manager (the mock runner's 30 s).
  expect(c.clock.t - before).toBeGreaterThanOrEqual(2 * MANAGER_DELIVERY_BOUND_S * 1000 + 30_000);
  expect(c.clock.t - before).toBeLessThan(2 * MANAGER_DELIVERY_BOUND_S * 1000 + 30_000 + 5000);
});
