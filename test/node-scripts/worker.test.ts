import * as path from 'node:path';
import { parameterNames } from '../../lib/config';
import { MANAGER_SH, WORKER_SH, waitFor } from './helpers';
import { FakeCloud, swarmEnv } from './stubs/sandbox';
import { newToken, readJson } from './stubs/tools';

const P = parameterNames('demo');
const MGR_IP = '10.0.1.20';

describe('worker.sh', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  async function startManager() {
    const mgr = await cloud.addNode({ name: 'manager', ip: MGR_IP });
    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));
    expect(res.code).toBe(0);
    return mgr;
  }

  test('GIVEN the manager is up WHEN a worker boots THEN it joins through the Engine API on its private ip', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.stderr).toContain('worker ready');
    expect(res.code).toBe(0);
    expect(worker.joins).toEqual([{ status: 200, advertiseAddr: '10.0.2.30', remoteAddrs: [`${MGR_IP}:2377`] }]);
    expect(worker.dockerState().swarm).toMatchObject({ state: 'active', controlAvailable: false });
    expect(worker.leftoverTempFiles()).toEqual([]);
  });

  test('GIVEN the worker boots first THEN it waits while the token is absent, and joins once the manager publishes', async () => {
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });
    const mgr = await cloud.addNode({ name: 'manager', ip: MGR_IP });

    const running = worker.run([WORKER_SH], swarmEnv('demo', { SWARM_JOIN_TIMEOUT_S: '30' }));
    await waitFor('the worker to poll SSM three times', () => cloud.calls('aws', 'worker').length >= 3);
    expect(worker.joins).toEqual([]);
    const mres = await mgr.run([MANAGER_SH], swarmEnv('demo'));
    const res = await running;

    expect(mres.code).toBe(0);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain('waiting: the manager has not published the join token and address yet');
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
    expect(worker.dockerState().swarm.clusterId).toBe(mgr.dockerState().swarm.clusterId);
    for (const get of cloud.calls('aws', 'worker')) {
      expect(get.argv.slice(0, 2)).toEqual(['ssm', 'get-parameter']);
      expect(get.argv).toContain('--with-decryption');
    }
  });

  test('no join token ever reaches an argv, stdout or stderr, on either node', async () => {
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });
    const running = worker.run([WORKER_SH], swarmEnv('demo'));
    const mgr = await cloud.addNode({ name: 'manager', ip: MGR_IP });
    const mres = await mgr.run([MANAGER_SH], swarmEnv('demo'));
    const wres = await running;

    expect([mres.code, wres.code]).toEqual([0, 0]);
    const output = mres.stdout + mres.stderr + wres.stdout + wres.stderr + cloud.callLog();
    expect(output).not.toMatch(/SWMTKN/);
    expect(cloud.parameters()[P.workerToken].Value).toMatch(/^SWMTKN-\x31-/); // the tokens did exist
  });

  test('GIVEN the worker is already in this swarm WHEN it runs again THEN it succeeds without a join call', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30' });
    expect((await worker.run([WORKER_SH], swarmEnv('demo'))).code).toBe(0);
    worker.joins.length = 0;

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`already part of the swarm managed by ${MGR_IP}:2377`);
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN the worker is active in another swarm THEN it fails clearly and does not try to join', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker' });
    worker.setDockerState((s) => {
      s.swarm = { state: 'active', controlAvailable: false, clusterId: 'x', remoteManagers: ['10.9.9.9:2377'] };
    });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('this node is active in another swarm');
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN no manager ever publishes THEN the worker gives up within SWARM_JOIN_TIMEOUT_S with a clear message', async () => {
    const worker = await cloud.addNode({ name: 'worker' });

    const res = await worker.run([WORKER_SH], swarmEnv('demo', { SWARM_JOIN_TIMEOUT_S: '2' }));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(
      'gave up after 2s (SWARM_JOIN_TIMEOUT_S): the manager has not published the join token and address yet',
    );
    expect(res.ms).toBeGreaterThanOrEqual(800); // $SECONDS ticks in whole seconds
    expect(res.ms).toBeLessThan(6000);
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN the backoff is long THEN the last sleep is cut at the deadline', async () => {
    const worker = await cloud.addNode({ name: 'worker' });

    const res = await worker.run(
      [WORKER_SH],
      swarmEnv('demo', { SWARM_JOIN_TIMEOUT_S: '2', SWARM_BACKOFF_BASE_S: '30', SWARM_BACKOFF_MAX_S: '30' }),
    );

    expect(res.code).not.toBe(0);
    expect(res.ms).toBeLessThan(6000);
  });

  test('GIVEN the first joins fail (manager not reachable yet) THEN the worker retries and joins', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker' });
    worker.setDockerState((s) => {
      s.faults.joinFailures = 2;
    });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(worker.joins.map((j) => j.status)).toEqual([500, 500, 200]);
    expect(res.stderr).toContain('join failed (HTTP 500): {"message":"rpc error: code = Unavailable desc = connection error"}');
  });

  test('GIVEN a join takes effect but its answer is lost THEN the retry sees the node in the swarm and succeeds', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker' });
    worker.setDockerState((s) => {
      s.faults.joinLate = true;
    });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(worker.joins.map((j) => j.status)).toEqual([500]);
    expect(worker.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN SSM answers AccessDenied for a while (instance profile not yet usable) THEN the worker keeps trying', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker' });
    cloud.failGetParameter('AccessDeniedException', 3);

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('AccessDeniedException');
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
  });

  test('GIVEN SSM keeps failing with other errors THEN the worker stops after a bounded number of attempts', async () => {
    const worker = await cloud.addNode({ name: 'worker' });
    cloud.failGetParameter('AccessDeniedException', 1000);

    const res = await worker.run([WORKER_SH], swarmEnv('demo', { SWARM_JOIN_TIMEOUT_S: '600' }));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('reading the join parameters failed 20 times in a row');
    expect(cloud.calls('aws', 'worker')).toHaveLength(20);
  });

  test('GIVEN a stale token (from a replaced manager) THEN joins are refused, retried, and the worker times out naming HTTP 400', async () => {
    await startManager();
    cloud.putParameter(P.workerToken, 'SecureString', newToken());
    const worker = await cloud.addNode({ name: 'worker' });

    const res = await worker.run([WORKER_SH], swarmEnv('demo', { SWARM_JOIN_TIMEOUT_S: '2' }));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/gave up after 2s .*join failed \(HTTP 400\).*valid join token is necessary/);
    expect(worker.joins.length).toBeGreaterThan(1);
    expect(worker.joins.every((j) => j.status === 400)).toBe(true);
    expect(res.stderr).not.toContain('SWMTKN');
  });

  test.each([
    [P.managerAddresses, '10.0.1.20:2377 --evil', 'is not an IPv4 address:port'],
    [P.managerAddresses, '10.0.1.20', 'is not an IPv4 address:port'],
    [P.workerToken, 'SWMTKN-\x31-abc-def"}', 'does not hold a worker join token'],
  ])('GIVEN %s holds %j THEN the worker refuses it', async (name, value, message) => {
    await startManager();
    cloud.putParameter(name, name === P.workerToken ? 'SecureString' : 'String', value);
    const worker = await cloud.addNode({ name: 'worker' });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(message);
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN docker is missing THEN the worker installs and starts it, then joins', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker', docker: 'missing' });

    const res = await worker.run([WORKER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(cloud.calls('dnf', 'worker').map((c) => c.argv)).toEqual([['install', '-y', 'docker']]);
    expect(cloud.calls('systemctl', 'worker')[0].argv).toEqual(['enable', '--now', 'docker']);
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
  });

  test.each([['tcp://127.0.0.1:2375'], ['unix:///var/run/docker.sock; id']])(
    'GIVEN DOCKER_HOST=%j THEN the worker refuses it',
    async (dockerHost) => {
      const worker = await cloud.addNode({ name: 'worker' });

      const res = await worker.run([WORKER_SH], swarmEnv('demo', { DOCKER_HOST: dockerHost }));

      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain('DOCKER_HOST is missing or invalid');
    },
  );

  test('three workers and a manager booting in any order all end up in one swarm', async () => {
    const workers = await Promise.all(['w1', 'w2', 'w3'].map((n, i) => cloud.addNode({ name: n, ip: `10.0.2.${31 + i}` })));
    const runs = workers.map((w) => w.run([WORKER_SH], swarmEnv('demo')));
    const mgr = await cloud.addNode({ name: 'manager', ip: MGR_IP });
    const results = await Promise.all([mgr.run([MANAGER_SH], swarmEnv('demo')), ...runs]);

    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    const swarms = readJson<Record<string, { workers: string[] }>>(path.join(cloud.dir, 'swarms.json'), {});
    expect(Object.values(swarms)).toHaveLength(1);
    expect(Object.values(swarms)[0].workers.sort()).toEqual(['10.0.2.31', '10.0.2.32', '10.0.2.33']);
  });
});
