/** `manager.sh --rotate-tokens`: what ops runs through SSM on a healthy manager (issue 7, rotate-tokens). */
import * as path from 'node:path';
import { params } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { readJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds.
jest.setTimeout(240_000);

const P = params('demo');

describe('manager.sh --rotate-tokens', () => {
  // One formed manager for the file: the refusal runs after the rotation, on the rotated swarm.
  let cloud: FakeCloud;
  let mgr: FakeNode;
  beforeAll(async () => {
    cloud = await FakeCloud.create();
    mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20', instanceId: 'i-0000000000000000a' });
    expect((await mgr.run([mgr.script('manager.sh')], swarmEnv('demo'))).code).toBe(0);
  });
  afterAll(async () => {
    await cloud.close();
  });

  const tokens = () => Object.values(readJson<Record<string, { workerToken: string; managerToken: string }>>(path.join(cloud.dir, 'swarms.json'), {}))[0];
  /** As SSM Run Command runs it: no SWARM_* in the environment (node.env supplies them). */
  const rotate = (node: FakeNode) => node.run([node.script('manager.sh'), '--rotate-tokens'], { SWARM_BACKOFF_BASE_S: '0.05', SWARM_BACKOFF_MAX_S: '0.2' });

  test('rotates both tokens and publishes the new ones; prints no token; a new worker joins with the new token', async () => {
    const before = tokens();

    const res = await rotate(mgr);

    expect(res.code).toBe(0);
    const after = tokens();
    expect(after.workerToken).not.toBe(before.workerToken);
    expect(after.managerToken).not.toBe(before.managerToken);
    expect(cloud.parameters()[P.workerToken].Value).toBe(after.workerToken);
    expect(cloud.parameters()[P.managerToken].Value).toBe(after.managerToken);
    expect(res.stdout).toBe('');
    expect(res.stderr + cloud.callLog()).not.toContain('SWMTKN');
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: 'i-0000000000000001a' });
    expect((await worker.run([worker.script('worker.sh')], swarmEnv('demo'))).code).toBe(0);
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
  });

  test('on a node that is not a manager of the recorded swarm it refuses (exit 1) and publishes nothing', async () => {
    cloud.putParameter(P.clusterId, 'String', 'anotherclusterid000000000');
    const version = cloud.parameters()[P.workerToken].Version;

    const res = await rotate(mgr);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain("does not manage the cluster's swarm anotherclusterid000000000");
    expect(cloud.parameters()[P.workerToken].Version).toBe(version);
  });

  test('an unknown flag is a usage error (exit 2)', async () => {
    expect((await mgr.run([mgr.script('manager.sh'), '--bogus'], swarmEnv('demo'))).code).toBe(2);
  });
});
