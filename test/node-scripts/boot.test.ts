/**
 * Later boots: the per-boot hook the role scripts install runs the role script again from node.env alone (cloud-init
 * does not run user-data again, and no SWARM_* variable is set), so a node that is not in the swarm rejoins.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';

// A shared 2-core machine can make one role-script run take tens of seconds.
jest.setTimeout(240_000);

/** At a later boot only the test's fast backoff is set: everything else must come from node.env. */
const LATER_BOOT = { SWARM_BACKOFF_BASE_S: '0.05', SWARM_BACKOFF_MAX_S: '0.2' };

describe('per-boot hook (boot.sh)', () => {
  // One cluster for the whole file (each formation is two full role-script runs): every test leaves it formed, the
  // manager's run without systemd (the lab) is the one whose reconciler the last test restarts.
  let cloud: FakeCloud;
  let mgr: FakeNode;
  let worker: FakeNode;
  beforeAll(async () => {
    cloud = await FakeCloud.create();
    mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20', instanceId: 'i-0000000000000000a', systemctl: false });
    worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: 'i-0000000000000001a' });
    expect((await mgr.run([mgr.script('manager.sh')], swarmEnv('demo'))).code).toBe(0);
    expect((await worker.run([worker.script('worker.sh')], swarmEnv('demo'))).code).toBe(0);
  });
  afterAll(async () => {
    await cloud.close();
  });

  test('GIVEN a worker still in the swarm after a stop/start THEN the hook succeeds without a join', async () => {
    worker.joins.length = 0;
    await worker.reboot();

    const res = await worker.runBootHook(LATER_BOOT);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('already part of the swarm managed by 10.0.1.20:2377');
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN a worker that is no longer in the swarm THEN the hook rejoins it (labelled) through the recorded managers', async () => {
    worker.joins.length = 0;
    worker.setDockerState((s) => {
      s.swarm = { state: 'inactive' };
    });
    await worker.reboot();

    const res = await worker.runBootHook(LATER_BOOT);

    expect(res.code).toBe(0);
    expect(worker.joins).toEqual([{ status: 200, advertiseAddr: '10.0.2.30', remoteAddrs: ['10.0.1.20:2377'] }]);
    expect(worker.dockerState()).toMatchObject({ swarm: { state: 'active' }, labels: ['ec2-swarm.instance-id=i-0000000000000001a'] });
  });

  test('GIVEN docker is stopped at boot THEN the hook starts it before rejoining', async () => {
    worker.setDockerState((s) => {
      s.daemon = false;
    });
    await worker.reboot();

    const res = await worker.runBootHook(LATER_BOOT);

    expect(res.code).toBe(0);
    expect(cloud.calls('systemctl', 'worker').map((c) => c.argv.join(' '))).toContain('enable --now docker');
    expect(worker.dockerState().daemon).toBe(true);
  });

  test('GIVEN node.env names no valid role THEN the hook fails with exit 2', async () => {
    const env = path.join(worker.home, 'node.env');
    const saved = fs.readFileSync(env, 'utf8');
    fs.writeFileSync(env, saved.replace('SWARM_ROLE=worker', 'SWARM_ROLE=evil'));
    try {
      const res = await worker.runBootHook(LATER_BOOT);

      expect(res.code).toBe(2);
      expect(res.stderr).toContain('SWARM_ROLE');
    } finally {
      fs.writeFileSync(env, saved);
    }
  });

  test('GIVEN a manager without systemd THEN the hook restarts its reconciler (a new background process)', async () => {
    const before = mgr.reconcilerPid();
    expect(before).toBeDefined();
    await mgr.reboot();
    expect(mgr.reconcilerPid()).toBeUndefined();

    const res = await mgr.runBootHook(LATER_BOOT);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('already a swarm manager');
    const after = mgr.reconcilerPid();
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });
});
