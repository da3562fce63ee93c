/**
 * worker.sh before the swarm is published: it waits (bounded), backs off when Parameter Store throttles, gives up
 * on errors that persist, and a fleet booting at once forms one swarm. Joining a published swarm: worker.test.ts.
 */
import * as path from 'node:path';
import { publishedManager } from './fixtures';
import { params, waitFor } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { readJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds.
jest.setTimeout(240_000);

const P = params('demo');
const MGR_IP = '10.0.1.20';
const W1 = 'i-0000000000000001a';

describe('worker.sh waiting for the swarm', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  const runWorker = (w: FakeNode, extra: Record<string, string> = {}) => w.run([w.script('worker.sh')], swarmEnv('demo', extra));
  test('GIVEN the worker boots first THEN it waits while the token is absent, and joins once a manager publishes', async () => {
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });
    const running = runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '120' });
    await waitFor('the worker to poll Parameter Store', () => cloud.ssmRequests('worker').length >= 2, 60_000);
    expect(worker.joins).toEqual([]);
    const mgr = await cloud.addNode({ name: 'manager', ip: MGR_IP, instanceId: 'i-00000000000000001' });
    expect((await mgr.run([mgr.script('manager.sh')], swarmEnv('demo'))).code).toBe(0);
    const res = await running;

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('waiting: no manager has published the worker token and manager-addresses yet');
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
    expect(worker.dockerState().swarm.clusterId).toBe(mgr.dockerState().swarm.clusterId);
    const polls = cloud.ssmRequests('worker');
    // One GetParameters call per poll: the token and the addresses together; never the manager token.
    for (const r of polls) expect(r).toEqual({ node: 'worker', action: 'GetParameters', names: [P.workerToken, P.addresses], withDecryption: true, status: 200 });
  });

  test('GIVEN no manager ever publishes THEN the worker gives up within SWARM_JOIN_TIMEOUT_S with a clear message', async () => {
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '2' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('gave up after 2s (SWARM_JOIN_TIMEOUT_S): no manager has published the worker token and manager-addresses yet');
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN Parameter Store keeps refusing THEN the worker stops after a bounded number of attempts', async () => {
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    cloud.failGetParameter('AccessDeniedException', 1000);

    const res = await runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '600' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('reading the join parameters failed 20 times in a row');
    expect(res.stderr).toContain('failed: HTTP 400: {"__type":"AccessDeniedException","message":"injected fault"}');
    // A refusal is not tried again within a call: one request per attempt.
    expect(cloud.ssmRequests('worker')).toHaveLength(20);
  });

  test('GIVEN Parameter Store throttles the reads THEN the worker backs off and joins: throttling is not counted as a failure', async () => {
    await publishedManager(cloud);
    cloud.failGetParameter('ThrottlingException', 21);
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    // More throttled reads than the 20 failures in a row that stop a worker, then the read that joins.
    const reads = cloud.ssmRequests('worker');
    expect(reads.map((r) => r.error ?? r.status)).toEqual([...Array(21).fill('ThrottlingException'), 200]);
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
  });

  test('a worker and two managers booting at once all end up in one swarm', async () => {
    const nodes = await Promise.all([
      cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: 'i-0000000000000000a' }),
      cloud.addNode({ name: 'm2', ip: '10.0.1.21', instanceId: 'i-0000000000000000b' }),
      cloud.addNode({ name: 'w1', ip: '10.0.2.31', instanceId: W1 }),
    ]);
    const results = await Promise.all(nodes.map((n) => n.run([n.script(n.name === 'w1' ? 'worker.sh' : 'manager.sh')], swarmEnv('demo'))));

    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const swarms = Object.values(readJson<Record<string, { nodes: Array<{ role: string; addr: string }> }>>(path.join(cloud.dir, 'swarms.json'), {}));
    expect(swarms).toHaveLength(1);
    expect(swarms[0].nodes.map((n) => `${n.role} ${n.addr}`).sort()).toEqual(['manager 10.0.1.20:2377', 'manager 10.0.1.21:2377', 'worker 10.0.2.31:2377']);
  });
});
