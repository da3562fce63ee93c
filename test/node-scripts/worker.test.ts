import * as fs from 'node:fs';
import * as path from 'node:path';
import { params, waitFor } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { newToken, readJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds (each stand-in call starts node).
jest.setTimeout(240_000);

const P = params('demo');
const MGR_IP = '10.0.1.20';
const W1 = 'i-0000000000000001a';

describe('worker.sh', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  const runWorker = (w: FakeNode, extra: Record<string, string> = {}) => w.run([w.script('worker.sh')], swarmEnv('demo', extra));
  async function startManager(ip = MGR_IP, name = 'manager') {
    const mgr = await cloud.addNode({ name, ip, instanceId: 'i-00000000000000001' });
    const res = await mgr.run([mgr.script('manager.sh')], swarmEnv('demo'));
    expect(res.code).toBe(0);
    return mgr;
  }
  /** The state a manager leaves once it has published the swarm (`manager.sh` itself runs in the handshake tests). */
  async function publishedManager(ip = MGR_IP) {
    const mgr = await cloud.addNode({ name: 'manager', ip, instanceId: 'i-00000000000000001' });
    mgr.initSwarm();
    const id = mgr.dockerState().swarm.clusterId as string;
    const swarm = readJson<Record<string, { workerToken: string; managerToken: string }>>(path.join(cloud.dir, 'swarms.json'), {})[id];
    cloud.putParameter(P.lock, 'String', 'i-00000000000000001');
    cloud.putParameter(P.clusterId, 'String', id);
    cloud.putParameter(P.workerToken, 'SecureString', swarm.workerToken);
    cloud.putParameter(P.managerToken, 'SecureString', swarm.managerToken);
    cloud.putParameter(P.addresses, 'String', `${ip}:2377`);
    return mgr;
  }
  const swarmNodes = () =>
    Object.values(readJson<Record<string, { nodes: Array<{ role: string; addr: string; labels: string[] }>; workers: string[] }>>(path.join(cloud.dir, 'swarms.json'), {}));

  test('GIVEN the manager is up WHEN a worker boots THEN it labels its engine, then joins through the Engine API (unversioned path)', async () => {
    await startManager();
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });

    const res = await runWorker(worker);

    expect(res.stderr).toContain('worker ready');
    expect(res.code).toBe(0);
    expect(worker.joins).toEqual([{ status: 200, advertiseAddr: '10.0.2.30', remoteAddrs: [`${MGR_IP}:2377`] }]);
    expect(worker.joinUrls).toEqual(['/swarm/join']);
    expect(worker.dockerState().swarm).toMatchObject({ state: 'active', controlAvailable: false });
    // The label was in place at join time: the managers' record of the node carries it.
    expect(swarmNodes()[0].nodes.find((n) => n.addr === '10.0.2.30:2377')).toMatchObject({ role: 'worker', labels: [`ec2-swarm.instance-id=${W1}`] });
    expect(worker.leftoverTempFiles()).toEqual([]);
    // No leave-on-shutdown: a plain stop keeps the membership.
    expect(fs.existsSync(path.join(worker.systemdDir, 'ec2-swarm-leave.service'))).toBe(false);
    expect(cloud.calls('systemctl', 'worker').map((c) => c.argv.join(' '))).toEqual(['reload docker']);
  });

  test('the worker tries the manager addresses in order: a dead first manager, then the live one', async () => {
    await publishedManager();
    cloud.putParameter(P.addresses, 'String', `10.0.1.99:2377,${MGR_IP}:2377`);
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    expect(worker.joins).toEqual([
      { status: 500, advertiseAddr: '10.0.2.30', remoteAddrs: ['10.0.1.99:2377'] },
      { status: 200, advertiseAddr: '10.0.2.30', remoteAddrs: [`${MGR_IP}:2377`] },
    ]);
    // The timed-out join left the engine pending: it left before trying the next address.
    expect(cloud.calls('docker', 'worker').map((c) => c.argv.join(' '))).toContain('swarm leave --force');
    expect(res.stderr).toContain('join through 10.0.1.99:2377 failed (HTTP 500)');
  });

  test('GIVEN the worker boots first THEN it waits while the token is absent, and joins once a manager publishes', async () => {
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });
    const running = runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '120' });
    await waitFor('the worker to poll SSM', () => cloud.calls('aws', 'worker').length >= 2, 60_000);
    expect(worker.joins).toEqual([]);
    const mgr = await startManager();
    const res = await running;

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('waiting: no manager has published the worker token and manager-addresses yet');
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
    expect(worker.dockerState().swarm.clusterId).toBe(mgr.dockerState().swarm.clusterId);
    for (const get of cloud.calls('aws', 'worker')) {
      // One GetParameters call per poll: the token and the addresses together.
      expect(get.argv.slice(0, 5)).toEqual(['ssm', 'get-parameters', '--names', P.workerToken, P.addresses]);
      expect(get.argv).toContain('--with-decryption');
      expect(get.argv).not.toContain(P.managerToken);
    }
  });

  test('no join token ever reaches an argv, stdout or stderr, on either node', async () => {
    const mgr = await startManager();
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });
    const wres = await runWorker(worker);

    expect(wres.code).toBe(0);
    const output = wres.stdout + wres.stderr + cloud.callLog() + fs.readFileSync(path.join(worker.home, 'node.env'), 'utf8');
    expect(output).not.toMatch(/SWMTKN/);
    expect(cloud.parameters()[P.workerToken].Value).toMatch(/^SWMTKN-\x31-/);
    expect(mgr.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN the worker is already in this swarm (any recorded manager) WHEN it runs again THEN it succeeds without a join call', async () => {
    await publishedManager();
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });
    expect((await runWorker(worker)).code).toBe(0);
    worker.joins.length = 0;
    cloud.putParameter(P.addresses, 'String', `10.0.1.5:2377,${MGR_IP}:2377`);

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`already part of the swarm managed by 10.0.1.5:2377,${MGR_IP}:2377`);
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN the worker is active in another swarm THEN it fails clearly and does not try to join', async () => {
    await publishedManager();
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    worker.setDockerState((s) => {
      s.swarm = { state: 'active', controlAvailable: false, clusterId: 'x', remoteManagers: ['10.9.9.9:2377'] };
    });

    const res = await runWorker(worker);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('this node is active in another swarm');
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN no manager ever publishes THEN the worker gives up within SWARM_JOIN_TIMEOUT_S with a clear message', async () => {
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '2' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('gave up after 2s (SWARM_JOIN_TIMEOUT_S): no manager has published the worker token and manager-addresses yet');
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN the first joins fail (manager not reachable yet) THEN the worker retries and joins', async () => {
    await publishedManager();
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    worker.setDockerState((s) => {
      s.faults.joinFailures = 2;
    });

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    expect(worker.joins.map((j) => j.status)).toEqual([500, 500, 200]);
    expect(res.stderr).toContain('failed (HTTP 500): {"message":"rpc error: code = Unavailable desc = connection error"}');
  });

  test('GIVEN a join takes effect but its answer is lost THEN the retry sees the node in the swarm and succeeds', async () => {
    await publishedManager();
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    worker.setDockerState((s) => {
      s.faults.joinLate = true;
    });

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    expect(worker.joins.map((j) => j.status)).toEqual([500]);
    expect(worker.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN SSM keeps failing THEN the worker stops after a bounded number of attempts', async () => {
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    cloud.failGetParameter('AccessDeniedException', 1000);

    const res = await runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '600' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('reading the join parameters failed 20 times in a row');
    expect(cloud.calls('aws', 'worker')).toHaveLength(20);
  });

  test('GIVEN Parameter Store throttles the reads THEN the worker backs off and joins: throttling is not counted as a failure', async () => {
    await publishedManager();
    cloud.failGetParameter('ThrottlingException', 21);
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    // More throttled reads than the 20 failures in a row that stop a worker, then the read that joins.
    expect(cloud.calls('aws', 'worker')).toHaveLength(22);
    expect(worker.joins.map((j) => j.status)).toEqual([200]);
  });

  test('GIVEN a stale token THEN joins are refused, retried, and the worker times out naming HTTP 400', async () => {
    await publishedManager();
    cloud.putParameter(P.workerToken, 'SecureString', newToken());
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '3' });

    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/gave up after 3s .*failed \(HTTP 400\).*valid join token is necessary/);
    expect(worker.joins.every((j) => j.status === 400)).toBe(true);
    expect(res.stderr).not.toContain('SWMTKN');
  });

  test.each([
    [P.addresses, '10.0.1.20:2377 --evil', 'is not a comma-separated list of IPv4 address:port'],
    [P.addresses, '10.0.1.20', 'is not a comma-separated list of IPv4 address:port'],
    [P.addresses, '10.0.1.20:2377,', 'is not a comma-separated list of IPv4 address:port'],
    [P.workerToken, 'SWMTKN-\x31-abc-def"}', 'does not hold a worker join token'],
  ])('GIVEN %s holds %j THEN the worker refuses it', async (name, value, message) => {
    await publishedManager();
    cloud.putParameter(name, name === P.workerToken ? 'SecureString' : 'String', value);
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain(message);
    expect(worker.joins).toEqual([]);
  });

  test('a worker and two managers booting at once all end up in one swarm', async () => {
    const nodes = await Promise.all([
      cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: 'i-0000000000000000a' }),
      cloud.addNode({ name: 'm2', ip: '10.0.1.21', instanceId: 'i-0000000000000000b' }),
      cloud.addNode({ name: 'w1', ip: '10.0.2.31', instanceId: W1 }),
    ]);
    const results = await Promise.all(nodes.map((n) => n.run([n.script(n.name === 'w1' ? 'worker.sh' : 'manager.sh')], swarmEnv('demo'))));

    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const swarms = swarmNodes();
    expect(swarms).toHaveLength(1);
    expect(swarms[0].nodes.map((n) => `${n.role} ${n.addr}`).sort()).toEqual(['manager 10.0.1.20:2377', 'manager 10.0.1.21:2377', 'worker 10.0.2.31:2377']);
  });
});
