/**
 * worker.sh joining a swarm whose manager has published it: through the Engine API, address by address, idempotent,
 * and what it refuses. Waiting for a manager, Parameter Store failing, and a whole fleet booting at once:
 * worker-wait.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { publishedManager } from './fixtures';
import { params } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { newToken, readJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds.
jest.setTimeout(240_000);

const P = params('demo');
const MGR_IP = '10.0.1.20';
const W1 = 'i-0000000000000001a';

const runWorker = (w: FakeNode, extra: Record<string, string> = {}) => w.run([w.script('worker.sh')], swarmEnv('demo', extra));
const swarmNodes = (cloud: FakeCloud) =>
  Object.values(readJson<Record<string, { nodes: Array<{ role: string; addr: string; labels: string[] }>; workers: string[] }>>(path.join(cloud.dir, 'swarms.json'), {}));

describe('worker.sh', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  test('GIVEN the manager is up WHEN a worker boots THEN it labels its engine, then joins through the Engine API (unversioned path); no token or key reaches an argv or output', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: MGR_IP, instanceId: 'i-00000000000000001' });
    const mres = await mgr.run([mgr.script('manager.sh')], swarmEnv('demo'));
    expect(mres.code).toBe(0);
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: W1 });

    const res = await runWorker(worker);

    expect(res.stderr).toContain('worker ready');
    expect(res.code).toBe(0);
    expect(worker.joins).toEqual([{ status: 200, advertiseAddr: '10.0.2.30', remoteAddrs: [`${MGR_IP}:2377`] }]);
    expect(worker.joinUrls).toEqual(['/swarm/join']);
    expect(worker.dockerState().swarm).toMatchObject({ state: 'active', controlAvailable: false });
    // The label was in place at join time: the managers' record of the node carries it.
    expect(swarmNodes(cloud)[0].nodes.find((n) => n.addr === '10.0.2.30:2377')).toMatchObject({ role: 'worker', labels: [`ec2-swarm.instance-id=${W1}`] });
    expect(worker.leftoverTempFiles()).toEqual([]);
    // No leave-on-shutdown: a plain stop keeps the membership.
    expect(fs.existsSync(path.join(worker.systemdDir, 'ec2-swarm-leave.service'))).toBe(false);
    expect(cloud.calls('systemctl', 'worker').map((c) => c.argv.join(' '))).toEqual(['reload docker']);
    // One signed read: the token and the addresses together.
    expect(cloud.ssmRequests('worker')).toEqual([{ node: 'worker', action: 'GetParameters', names: [P.workerToken, P.addresses], withDecryption: true, status: 200 }]);

    const output = mres.stdout + mres.stderr + res.stdout + res.stderr + cloud.callLog() + fs.readFileSync(path.join(worker.home, 'node.env'), 'utf8');
    expect(output).not.toMatch(/SWMTKN/);
    for (const n of [mgr, worker]) for (const secret of Object.values(n.credentials)) expect(output).not.toContain(secret);
    expect(cloud.parameters()[P.workerToken].Value).toMatch(/^SWMTKN-\x31-/);
  });

  test('the worker tries the manager addresses in order: a dead first manager, then the live one', async () => {
    await publishedManager(cloud);
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

  test('GIVEN the worker is already in this swarm (any recorded manager) WHEN it runs again THEN it succeeds without a join call', async () => {
    await publishedManager(cloud);
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
    await publishedManager(cloud);
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    worker.setDockerState((s) => {
      s.swarm = { state: 'active', controlAvailable: false, clusterId: 'x', remoteManagers: ['10.9.9.9:2377'] };
    });

    const res = await runWorker(worker);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('this node is active in another swarm');
    expect(worker.joins).toEqual([]);
  });

  test('GIVEN the engine label cannot be set (the background label job fails) THEN the worker fails before any poll or join', async () => {
    await publishedManager(cloud);
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    fs.mkdirSync(path.dirname(worker.daemonJson), { recursive: true });
    fs.writeFileSync(worker.daemonJson, '[1, 2]');

    const res = await runWorker(worker);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('could not add the engine label');
    expect(res.stderr).toContain('the engine label is not set');
    expect(cloud.ssmRequests('worker')).toEqual([]);
    expect(worker.joins).toEqual([]);
    expect(worker.leftoverTempFiles()).toEqual([]);
  });

  test('GIVEN the first joins fail (manager not reachable yet) THEN the worker retries and joins', async () => {
    await publishedManager(cloud);
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
    await publishedManager(cloud);
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
    worker.setDockerState((s) => {
      s.faults.joinLate = true;
    });

    const res = await runWorker(worker);

    expect(res.code).toBe(0);
    expect(worker.joins.map((j) => j.status)).toEqual([500]);
    expect(worker.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN a stale token THEN joins are refused, retried, and the worker times out naming HTTP 400', async () => {
    await publishedManager(cloud);
    cloud.putParameter(P.workerToken, 'SecureString', newToken());
    const worker = await cloud.addNode({ name: 'worker', instanceId: W1 });

    const res = await runWorker(worker, { SWARM_JOIN_TIMEOUT_S: '3' });

    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/gave up after 3s .*failed \(HTTP 400\).*valid join token is necessary/);
    expect(worker.joins.every((j) => j.status === 400)).toBe(true);
    expect(res.stderr).not.toContain('SWMTKN');
  });
});

describe('worker.sh refuses parameters that are not what a manager writes', () => {
  let cloud: FakeCloud;
  let worker: FakeNode;
  beforeAll(async () => {
    cloud = await FakeCloud.create();
    await publishedManager(cloud);
    worker = await cloud.addNode({ name: 'worker', instanceId: W1 });
  });
  afterAll(async () => {
    await cloud.close();
  });

  test.each([
    [P.addresses, '10.0.1.20:2377 --evil', 'is not a comma-separated list of IPv4 address:port'],
    [P.addresses, '10.0.1.20', 'is not a comma-separated list of IPv4 address:port'],
    [P.addresses, '10.0.1.20:2377,', 'is not a comma-separated list of IPv4 address:port'],
    [P.addresses, '10.0.1.20:2377\\",\\"x', 'is not a comma-separated list of IPv4 address:port'],
    [P.workerToken, 'SWMTKN-\x31-abc-def"}', 'does not hold a worker join token'],
    [P.workerToken, 'SWMTKN-\x31-abc-def"},{"Name":"x","Value":"y', `${P.workerToken} or ${P.addresses} does not hold what a manager writes`],
  ])('GIVEN %s holds %j THEN the worker refuses it', async (name, value, message) => {
    const type = name === P.workerToken ? 'SecureString' : 'String';
    const before = cloud.parameters()[name].Value;
    cloud.putParameter(name, type, value);
    try {
      const res = await runWorker(worker);

      expect(res.code).toBe(1);
      expect(res.stderr).toContain(message);
      expect(worker.joins).toEqual([]);
    } finally {
      cloud.putParameter(name, type, before);
    }
  });
});
