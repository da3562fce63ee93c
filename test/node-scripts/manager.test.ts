import * as fs from 'node:fs';
import * as path from 'node:path';
import { params } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { newToken, readJson, writeJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds (each stand-in call starts node).
jest.setTimeout(240_000);

const P = params('demo');
const M1 = 'i-0000000000000000a';
const M2 = 'i-0000000000000000b';

interface FakeSwarm {
  managers: string[];
  workerToken: string;
  managerToken: string;
  pool?: string;
  nodes: Array<{ id: string; role: string; addr: string; labels: string[] }>;
}

describe('manager.sh', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  const swarms = () => readJson<Record<string, FakeSwarm>>(path.join(cloud.dir, 'swarms.json'), {});
  const swarmOf = (node: FakeNode) => swarms()[node.dockerState().swarm.clusterId!];
  const inits = () => cloud.calls('docker').filter((c) => c.argv[0] === 'swarm' && c.argv[1] === 'init');
  const manager = (name: string, ip: string, instanceId: string, opts: { systemctl?: boolean } = {}) =>
    cloud.addNode({ name, ip, instanceId, ...opts });
  const runManager = (node: FakeNode, extra: Record<string, string> = {}) => node.run([node.script('manager.sh')], swarmEnv('demo', extra));

  test('GIVEN a fresh cluster WHEN the first manager runs THEN it wins the lock, inits with the address pool and records the swarm', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);

    const res = await runManager(m1);

    expect(res.stderr).toContain('manager ready');
    expect(res.code).toBe(0);
    expect(inits().map((c) => c.argv)).toEqual([
      ['swarm', 'init', '--advertise-addr', '10.0.1.20', '--default-addr-pool', '172.20.0.0/16', '--default-addr-pool-mask-length', '24'],
    ]);
    const swarm = swarmOf(m1);
    expect(swarm.pool).toBe('172.20.0.0/16/24');
    const p = cloud.parameters();
    expect(p[P.lock]).toMatchObject({ Type: 'String', Value: M1 });
    expect(p[P.clusterId]).toMatchObject({ Type: 'String', Value: m1.dockerState().swarm.clusterId });
    expect(p[P.workerToken]).toMatchObject({ Type: 'SecureString', Value: swarm.workerToken });
    expect(p[P.managerToken]).toMatchObject({ Type: 'SecureString', Value: swarm.managerToken });
    expect(p[P.addresses]).toMatchObject({ Type: 'String', Value: '10.0.1.20:2377' });
    expect(Object.keys(p).sort()).toEqual(Object.values(P).sort());
  });

  test('the engine label ec2-swarm.instance-id is set (daemon.json + reload) before init, so the swarm sees it', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);

    expect((await runManager(m1)).code).toBe(0);

    expect(JSON.parse(fs.readFileSync(m1.daemonJson, 'utf8'))).toEqual({ labels: [`ec2-swarm.instance-id=${M1}`] });
    const calls = cloud.calls(undefined, 'm1').map((c) => `${c.tool} ${c.argv.join(' ')}`);
    const reload = calls.indexOf('systemctl reload docker');
    expect(reload).toBeGreaterThanOrEqual(0);
    expect(reload).toBeLessThan(calls.findIndex((c) => c.startsWith('docker swarm init')));
    expect(swarmOf(m1).nodes[0].labels).toEqual([`ec2-swarm.instance-id=${M1}`]);
  });

  test('an existing daemon.json keeps its other settings and labels; an older instance label is replaced', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    fs.mkdirSync(path.dirname(m1.daemonJson), { recursive: true });
    fs.writeFileSync(m1.daemonJson, JSON.stringify({ 'log-driver': 'journald', labels: ['team=a', 'ec2-swarm.instance-id=i-0000000000000000f'] }));

    expect((await runManager(m1)).code).toBe(0);

    expect(JSON.parse(fs.readFileSync(m1.daemonJson, 'utf8'))).toEqual({ 'log-driver': 'journald', labels: ['team=a', `ec2-swarm.instance-id=${M1}`] });
  });

  test.each([
    ['[1, 2]', 'is not a JSON object'],
    ['{"labels": "team=a"}', '"labels" is not a list of strings'],
    ['{not json', 'Expecting property name'],
  ])('GIVEN daemon.json %s THEN the manager refuses with a clear message and does nothing else', async (content, message) => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    fs.mkdirSync(path.dirname(m1.daemonJson), { recursive: true });
    fs.writeFileSync(m1.daemonJson, content);

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain(message);
    expect(res.stderr).toContain('could not add the engine label');
    expect(fs.readFileSync(m1.daemonJson, 'utf8')).toBe(content);
    expect(inits()).toEqual([]);
    expect(cloud.parameters()).toEqual({});
  });

  test('without systemd (the lab) dockerd is reloaded by SIGHUP to the pid in its pid file', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1, { systemctl: false });

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(cloud.calls('systemctl')).toEqual([]);
    expect(res.stderr).toContain(`engine label ec2-swarm.instance-id=${M1} set`);
    expect(m1.dockerState().labels).toEqual([`ec2-swarm.instance-id=${M1}`]);
  });

  test('tokens reach SSM only through 0600 input files: never in argv, stdout or stderr; temp files removed', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    const { workerToken, managerToken } = swarmOf(m1);
    for (const token of [workerToken, managerToken]) {
      expect(cloud.callLog()).not.toContain(token);
      expect(res.stdout + res.stderr).not.toContain(token);
    }
    expect(res.stdout + res.stderr).not.toContain('SWMTKN');
    expect(cloud.inputFileModes().length).toBeGreaterThanOrEqual(5);
    expect(cloud.inputFileModes().every((m) => m === 0o600)).toBe(true);
    expect(m1.leftoverTempFiles()).toEqual([]);
  });

  test('GIVEN SWARM_KMS_KEY_ID THEN the tokens are encrypted with that key and plain parameters carry no key', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

    expect((await runManager(m1, { SWARM_KMS_KEY_ID: key })).code).toBe(0);

    // The KeyId of every put, by parameter (the manager publishes some at once: no fixed order between them).
    const store = readJson<{ keyIds: Record<string, Array<string | null>> }>(path.join(cloud.dir, 'ssm.json'), { keyIds: {} });
    expect(store.keyIds).toEqual({ [P.lock]: [null], [P.clusterId]: [null], [P.workerToken]: [key], [P.managerToken]: [key], [P.addresses]: [null] });
  });

  test('election race: two fresh managers at once → one lock holder, one init, the other joins as manager', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    const m2 = await manager('m2', '10.0.1.21', M2);

    const [r1, r2] = await Promise.all([runManager(m1), runManager(m2)]);

    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect(inits()).toHaveLength(1);
    expect(Object.keys(swarms())).toHaveLength(1);
    const winner = cloud.parameters()[P.lock].Value;
    expect([M1, M2]).toContain(winner);
    const [loser, loserRes] = winner === M1 ? [m2, r2] : [m1, r1];
    expect(loserRes.stderr).toContain(`the init lock is held by ${winner}: joining as a manager`);
    expect(loser.dockerState().swarm).toMatchObject({ state: 'active', controlAvailable: true });
    expect(m1.dockerState().swarm.clusterId).toBe(m2.dockerState().swarm.clusterId);
    expect(cloud.parameters()[P.clusterId].Value).toBe(m1.dockerState().swarm.clusterId);
  });

  test('a manager that lost the election joins AS MANAGER with the manager token via the Engine API and adds its address', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    expect((await runManager(m1)).code).toBe(0);
    const m2 = await manager('m2', '10.0.1.21', M2);

    const res = await runManager(m2);

    expect(res.code).toBe(0);
    expect(m2.joins).toEqual([{ status: 200, advertiseAddr: '10.0.1.21', remoteAddrs: ['10.0.1.20:2377'] }]);
    expect(swarmOf(m1).managers).toEqual(['10.0.1.20:2377', '10.0.1.21:2377']);
    expect(swarmOf(m2).nodes.find((n) => n.addr === '10.0.1.21:2377')).toMatchObject({ role: 'manager', labels: [`ec2-swarm.instance-id=${M2}`] });
    expect(inits()).toHaveLength(1);
    expect(cloud.parameters()[P.addresses].Value).toBe('10.0.1.20:2377,10.0.1.21:2377');
    expect(res.stdout + res.stderr + cloud.callLog()).not.toContain('SWMTKN');
  });

  test('GIVEN the lock is held by another instance and no token is ever published THEN the wait is bounded and named', async () => {
    cloud.putParameter(P.lock, 'String', M1);
    const m2 = await manager('m2', '10.0.1.21', M2);

    const res = await runManager(m2, { SWARM_JOIN_TIMEOUT_S: '2' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('gave up after 2s (SWARM_JOIN_TIMEOUT_S): no manager has published the manager token and manager-addresses yet');
    expect(inits()).toEqual([]);
  });

  test('GIVEN cluster-id cannot be read THEN the lock holder refuses to initialise: no init, nothing published', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    cloud.failGetParameter('AccessDeniedException', 1); // the one read of cluster-id (the lock is a put)

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`could not read ${P.clusterId}: refusing to initialise without knowing whether a swarm exists`);
    expect(inits()).toEqual([]);
    expect(Object.keys(cloud.parameters())).toEqual([P.lock]);
  });

  test('GIVEN a recorded cluster-id and a recorded manager that answers THEN even the lock holder joins instead of a second init', async () => {
    const m2 = await manager('m2', '10.0.1.21', M2);
    expect((await runManager(m2)).code).toBe(0); // m2 formed the swarm (it held the lock then)
    const first = cloud.parameters()[P.clusterId].Value;
    // m1 holds the lock but its swarm state is gone (e.g. it left); the swarm of m2 lives on.
    cloud.putParameter(P.lock, 'String', M1);
    const m1 = await manager('m1', '10.0.1.20', M1);

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(inits()).toHaveLength(1);
    expect(m1.dockerState().swarm).toMatchObject({ state: 'active', controlAvailable: true, clusterId: first });
    expect(cloud.parameters()[P.clusterId].Value).toBe(first);
  });

  test('GIVEN a recorded cluster-id whose recorded managers all fail to answer THEN the lock holder starts a new swarm', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    cloud.putParameter(P.lock, 'String', M1);
    cloud.putParameter(P.clusterId, 'String', 'oldclusteridoldclusterid0');
    cloud.putParameter(P.managerToken, 'SecureString', newToken());
    cloud.putParameter(P.addresses, 'String', '10.0.9.1:2377,10.0.9.2:2377');

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(m1.joins.map((j) => j.remoteAddrs)).toEqual([['10.0.9.1:2377'], ['10.0.9.2:2377']]);
    expect(res.stderr).toContain('no recorded manager of swarm oldclusteridoldclusterid0 answers');
    expect(inits()).toHaveLength(1);
    expect(cloud.parameters()[P.clusterId].Value).toBe(m1.dockerState().swarm.clusterId);
    expect(cloud.parameters()[P.addresses].Value).toBe('10.0.1.20:2377');
  });

  test('GIVEN a recorded manager answers but refuses the token THEN the lock holder does not init', async () => {
    const m2 = await manager('m2', '10.0.1.21', M2);
    expect((await runManager(m2)).code).toBe(0);
    cloud.putParameter(P.lock, 'String', M1);
    cloud.putParameter(P.managerToken, 'SecureString', newToken()); // stale
    const m1 = await manager('m1', '10.0.1.20', M1);

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('answered but refused this node');
    expect(inits()).toHaveLength(1);
  });

  test('GIVEN the node is already a manager of the recorded swarm WHEN it runs again THEN no init and no join; tokens re-published', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    expect((await runManager(m1)).code).toBe(0);
    cloud.putParameter(P.workerToken, 'SecureString', newToken()); // a lost write to repair
    m1.joins.length = 0;

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('already a swarm manager');
    expect(inits()).toHaveLength(1);
    expect(m1.joins).toEqual([]);
    expect(cloud.parameters()[P.workerToken].Value).toBe(swarmOf(m1).workerToken);
  });

  test('GIVEN a manager boots while its swarm has no leader (majority lost) THEN it keeps a reconciler running and fails saying why; no init, no join', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1, { systemctl: false });
    expect((await runManager(m1)).code).toBe(0);
    const first = m1.reconcilerPid()!;
    process.kill(first, 'SIGTERM'); // the reboot ends it
    const file = path.join(cloud.dir, 'swarms.json');
    const all = readJson<Record<string, FakeSwarm & { noLeader?: boolean }>>(file, {});
    all[m1.dockerState().swarm.clusterId!].noLeader = true;
    writeJson(file, all);
    m1.joins.length = 0;

    const res = await runManager(m1, { SWARM_LEADER_TRIES: '2' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('the swarm has no leader: fewer than a majority of its managers are up');
    expect(m1.reconcilerPid()).toBeDefined();
    expect(m1.reconcilerPid()).not.toBe(first);
    expect(inits()).toHaveLength(1);
    expect(m1.joins).toEqual([]);
    expect(res.stderr + cloud.callLog()).not.toContain('SWMTKN');
  });

  test('GIVEN the node manages a different swarm than the recorded one THEN it fails and publishes nothing', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    m1.initSwarm();
    cloud.putParameter(P.clusterId, 'String', 'someotherclusterid0000000');

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('but the cluster\'s swarm is someotherclusterid0000000');
    expect(cloud.parameters()[P.workerToken]).toBeUndefined();
  });

  test('GIVEN the node is a worker of some swarm WHEN the manager runs THEN it fails clearly and publishes nothing', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    m1.setDockerState((s) => {
      s.swarm = { state: 'active', controlAvailable: false, clusterId: 'other', remoteManagers: ['10.9.9.9:2377'] };
    });

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('worker of another swarm');
    expect(cloud.parameters()).toEqual({});
  });

  test('the per-boot hook and node.env are installed; with systemd the reconciler runs as a unit', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);

    expect((await runManager(m1)).code).toBe(0);

    const hook = path.join(m1.perBootDir, 'ec2-swarm-boot.sh');
    expect(fs.readFileSync(hook, 'utf8')).toBe(`#!/bin/bash\nexec /bin/bash ${m1.home}/boot.sh\n`);
    expect(fs.statSync(hook).mode & 0o777).toBe(0o700);
    const env = fs.readFileSync(path.join(m1.home, 'node.env'), 'utf8');
    expect(env).toContain('export SWARM_ROLE=manager\n');
    expect(env).toContain('export SWARM_PARAM_PREFIX=/ec2-swarm/demo\n');
    expect(env).not.toContain('SWMTKN');
    expect(fs.statSync(path.join(m1.home, 'node.env')).mode & 0o777).toBe(0o600);
    const unit = fs.readFileSync(path.join(m1.systemdDir, 'ec2-swarm-reconciler.service'), 'utf8');
    expect(unit).toContain(`\nExecStart=/bin/bash ${m1.home}/reconcile.sh --loop\n`);
    expect(cloud.calls('systemctl', 'm1').map((c) => c.argv.join(' '))).toEqual(
      expect.arrayContaining(['enable ec2-swarm-reconciler.service', 'restart ec2-swarm-reconciler.service']),
    );
    expect(m1.reconcilerPid()).toBeUndefined();
  });

  test('without systemd the reconciler runs in the background with its pid file', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1, { systemctl: false });

    expect((await runManager(m1)).code).toBe(0);

    const pid = m1.reconcilerPid();
    expect(pid).toBeDefined();
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['/bin/bash', `${m1.home}/reconcile.sh`, '--loop']);
  });

  test('GIVEN docker is not installed WHEN the manager runs THEN dnf installs it and systemd starts it', async () => {
    const m1 = await cloud.addNode({ name: 'm1', instanceId: M1, docker: 'missing' });

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(cloud.calls('dnf').map((c) => c.argv)).toEqual([['install', '-y', 'docker']]);
    expect(cloud.calls('systemctl')[0].argv).toEqual(['enable', '--now', 'docker']);
    expect(m1.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN cfn-signal is missing THEN aws-cfn-bootstrap is installed before anything else can fail', async () => {
    const m1 = await cloud.addNode({ name: 'm1', cfnSignal: false });
    m1.metadata['local-ipv4'] = 'garbage';

    const res = await runManager(m1);

    expect(res.code).not.toBe(0);
    expect(cloud.calls('dnf').map((c) => c.argv)).toEqual([['install', '-y', 'aws-cfn-bootstrap']]);
  });

  test('GIVEN docker is installed but will not start THEN the wait is bounded and the failure names the daemon', async () => {
    const m1 = await cloud.addNode({ name: 'm1', docker: 'stopped', systemctl: false });

    const res = await runManager(m1, { SWARM_DOCKER_WAIT_S: '1' });

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('the docker daemon did not answer within 1s');
    expect(res.ms).toBeLessThan(8000);
  });

  test.each([
    ['local-ipv4', '10.0.0.256', 'PRIVATE_IP'],
    ['local-ipv4', '10.0.0.1; touch /tmp/pwned', 'PRIVATE_IP'],
    ['placement/region', 'eu-west-1 --endpoint-url http://evil', 'REGION'],
    ['instance-id', 'i-123', 'INSTANCE_ID'],
  ])('GIVEN IMDS %s = %j THEN the script fails naming %s before touching docker or SSM', async (key, value, name) => {
    const m1 = await cloud.addNode({ name: 'm1' });
    m1.metadata[key] = value;

    const res = await runManager(m1);

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${name} is missing or invalid`);
    expect(cloud.calls('docker').filter((c) => c.argv[0] === 'swarm')).toEqual([]);
    expect(cloud.calls('aws')).toEqual([]);
  });

  test('metadata is read with IMDSv2 only: a session token PUT first, every GET carries the token', async () => {
    const m1 = await cloud.addNode({ name: 'm1' });

    await runManager(m1);

    expect(m1.imdsRequests[0]).toMatchObject({ method: 'PUT', url: '/latest/api/token' });
    const gets = m1.imdsRequests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.url).sort()).toEqual(['/latest/meta-data/instance-id', '/latest/meta-data/local-ipv4', '/latest/meta-data/placement/region']);
    expect(gets.every((r) => r.token)).toBe(true);
  });

  test.each([
    ['SWARM_PARAM_PREFIX', '/ec2-swarm/demo token'],
    ['SWARM_PARAM_PREFIX', "/ec2-swarm/x'\"$(id)"],
    ['SWARM_CLUSTER', 'Demo'],
    ['SWARM_ADDR_POOL', '172.20.0.0'],
    ['SWARM_ADDR_POOL', ''],
    ['SWARM_ADDR_POOL_MASK', '33'],
    ['SWARM_KMS_KEY_ID', 'key"}'],
    ['SWARM_BACKOFF_BASE_S', '1; id'],
  ])('GIVEN %s = %j THEN the script refuses to run, naming the variable', async (name, value) => {
    const m1 = await cloud.addNode({ name: 'm1' });

    const res = await runManager(m1, { [name]: value });

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${name} is missing or invalid`);
    expect(inits()).toEqual([]);
  });

  test('a join token with an unexpected format is not published', async () => {
    const m1 = await cloud.addNode({ name: 'm1', instanceId: M1 });
    m1.initSwarm();
    const file = path.join(cloud.dir, 'swarms.json');
    const all = readJson<Record<string, { workerToken: string }>>(file, {});
    all[m1.dockerState().swarm.clusterId!].workerToken = `${newToken()}"}`;
    writeJson(file, all);

    const res = await runManager(m1);

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('the worker join token has an unexpected format');
    expect(cloud.parameters()[P.workerToken]).toBeUndefined();
  });
});
