import { readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { LEAVE_SH, MANAGER_SH, WORKER_SH } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { writeJson } from './stubs/tools';

const UNIT = 'ec2-swarm-leave.service';

describe('leave on shutdown', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  async function joinedWorker(options: { systemctl?: boolean } = {}): Promise<{ worker: FakeNode; stderr: string }> {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20' });
    expect((await mgr.run([MANAGER_SH], swarmEnv('demo'))).code).toBe(0);
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', ...options });
    const res = await worker.run([WORKER_SH], swarmEnv('demo'));
    expect(res.code).toBe(0);
    expect(worker.dockerState().swarm.state).toBe('active');
    return { worker, stderr: res.stderr };
  }

  test('GIVEN systemd WHEN a worker has joined THEN it installs and enables a unit that leaves before docker stops', async () => {
    const { worker, stderr } = await joinedWorker();

    const unit = readFileSync(path.join(worker.systemdDir, UNIT), 'utf8');
    expect(unit).toContain(`\nExecStop=/bin/bash ${LEAVE_SH}\n`);
    expect(unit).toMatch(/\nAfter=docker\.service\n/); // stopped before docker at shutdown
    expect(unit).not.toMatch(/Requires=docker/); // a docker restart must not make the worker leave
    for (const line of ['Type=oneshot', 'RemainAfterExit=yes', 'ExecStart=/bin/true', 'WantedBy=multi-user.target']) {
      expect(unit).toContain(`\n${line}\n`);
    }
    expect(cloud.calls('systemctl', 'worker').map((c) => c.argv)).toEqual([['daemon-reload'], ['enable', '--now', UNIT]]);
    expect(stderr).toContain(`installed ${UNIT}`);
    expect(cloud.calls('systemctl', 'manager')).toEqual([]); // managers never leave on their own
  });

  test('GIVEN no systemctl THEN the step is skipped and the worker still succeeds', async () => {
    const { worker, stderr } = await joinedWorker({ systemctl: false });
    expect(stderr).toContain('no systemd: skipping leave-on-shutdown');
    expect(() => readFileSync(path.join(worker.systemdDir, UNIT))).toThrow();
  });

  test('GIVEN systemctl but systemd is not init (the lab) THEN the step is skipped without calling systemctl', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20' });
    expect((await mgr.run([MANAGER_SH], swarmEnv('demo'))).code).toBe(0);
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });
    rmSync(path.join(worker.dir, 'run'), { recursive: true });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('no systemd: skipping leave-on-shutdown');
    expect(cloud.calls('systemctl', 'worker')).toEqual([]);
  });

  test('GIVEN the unit cannot be written THEN the worker warns but still signals success (it has joined)', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20' });
    expect((await mgr.run([MANAGER_SH], swarmEnv('demo'))).code).toBe(0);
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });

    const res = await worker.run([WORKER_SH], swarmEnv('demo', { SWARM_SYSTEMD_DIR: path.join(worker.dir, 'absent') }));

    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`WARNING: could not install ${UNIT}`);
    expect(cloud.calls('systemctl', 'worker')).toEqual([]);
  });

  test('the ExecStop script leaves the swarm', async () => {
    const { worker } = await joinedWorker();

    const res = await worker.run([LEAVE_SH]);

    expect(res.code).toBe(0);
    expect(cloud.calls('docker', 'worker').map((c) => c.argv)).toContainEqual(['swarm', 'leave']);
    expect(worker.dockerState().swarm.state).toBe('inactive');
    expect(res.stderr).toContain('Node left the swarm.');
  });

  test('the ExecStop script succeeds when the node is not part of a swarm', async () => {
    const worker = await cloud.addNode({ name: 'worker' });

    const res = await worker.run([LEAVE_SH]);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('not in a swarm: nothing to leave');
  });

  test('GIVEN a reboot is under way THEN the ExecStop script stays in the swarm (user-data will not re-join)', async () => {
    const { worker } = await joinedWorker();
    writeJson(path.join(worker.dir, 'systemd.json'), { jobs: ['reboot.target'] });

    const res = await worker.run([LEAVE_SH]);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('rebooting: staying in the swarm');
    expect(worker.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN a poweroff is under way THEN it leaves', async () => {
    const { worker } = await joinedWorker();
    writeJson(path.join(worker.dir, 'systemd.json'), { jobs: ['poweroff.target'] });

    expect((await worker.run([LEAVE_SH])).code).toBe(0);
    expect(worker.dockerState().swarm.state).toBe('inactive');
  });

  test('GIVEN the daemon does not answer THEN the ExecStop script fails with the reason', async () => {
    const { worker } = await joinedWorker();
    worker.setDockerState((s) => {
      s.daemon = false;
    });

    const res = await worker.run([LEAVE_SH]);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('docker swarm leave failed: Cannot connect to the Docker daemon');
  });
});
