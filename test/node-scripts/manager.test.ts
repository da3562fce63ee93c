/**
 * manager.sh at a first boot: forming the swarm, publishing it through Parameter Store (signed HTTP calls, no AWS
 * CLI), the election, and what the script refuses before it touches anything. Later boots and a recorded swarm:
 * manager-recovery.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { M1, M2, P, freshManagerCloud, inits, runManager, swarmOf, swarms } from './fixtures';
import { FakeCloud, FakeNode, NODE_ROLE, RunResult, swarmEnv } from './stubs/sandbox';
import { newToken, readJson, writeJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds.
jest.setTimeout(240_000);

const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('manager.sh on a fresh Amazon Linux instance (docker not installed, a daemon.json with other settings, a KMS key)', () => {
  let cloud: FakeCloud;
  let m1: FakeNode;
  let res: RunResult;
  beforeAll(async () => {
    cloud = await FakeCloud.create();
    m1 = await cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: M1, docker: 'missing' });
    fs.mkdirSync(path.dirname(m1.daemonJson), { recursive: true });
    fs.writeFileSync(m1.daemonJson, JSON.stringify({ 'log-driver': 'journald', labels: ['team=a', 'ec2-swarm.instance-id=i-0000000000000000f'] }));
    res = await runManager(m1, { SWARM_KMS_KEY_ID: KEY });
  });
  afterAll(async () => {
    await cloud.close();
  });

  test('it installs and starts docker, wins the lock, inits with the address pool and records the swarm', () => {
    expect(res.stderr).toContain('manager ready');
    expect(res.code).toBe(0);
    expect(cloud.calls('dnf').map((c) => c.argv)).toEqual([['install', '-y', 'docker']]);
    expect(cloud.calls('systemctl')[0].argv).toEqual(['enable', '--now', 'docker']);
    expect(inits(cloud).map((c) => c.argv)).toEqual([
      ['swarm', 'init', '--advertise-addr', '10.0.1.20', '--default-addr-pool', '172.20.0.0/16', '--default-addr-pool-mask-length', '24'],
    ]);
    const swarm = swarmOf(cloud, m1);
    expect(swarm.pool).toBe('172.20.0.0/16/24');
    const p = cloud.parameters();
    expect(p[P.lock]).toMatchObject({ Type: 'String', Value: M1 });
    expect(p[P.clusterId]).toMatchObject({ Type: 'String', Value: m1.dockerState().swarm.clusterId });
    expect(p[P.workerToken]).toMatchObject({ Type: 'SecureString', Value: swarm.workerToken });
    expect(p[P.managerToken]).toMatchObject({ Type: 'SecureString', Value: swarm.managerToken });
    expect(p[P.addresses]).toMatchObject({ Type: 'String', Value: '10.0.1.20:2377' });
    expect(Object.keys(p).sort()).toEqual(Object.values(P).sort());
  });

  test('the engine label ec2-swarm.instance-id is merged into daemon.json (other settings kept, an older label replaced) and reloaded before init', () => {
    expect(JSON.parse(fs.readFileSync(m1.daemonJson, 'utf8'))).toEqual({ 'log-driver': 'journald', labels: ['team=a', `ec2-swarm.instance-id=${M1}`] });
    const calls = cloud.calls(undefined, 'm1').map((c) => `${c.tool} ${c.argv.join(' ')}`);
    const reload = calls.indexOf('systemctl reload docker');
    expect(reload).toBeGreaterThanOrEqual(0);
    expect(reload).toBeLessThan(calls.findIndex((c) => c.startsWith('docker swarm init')));
    expect(swarmOf(cloud, m1).nodes[0].labels).toEqual(['team=a', `ec2-swarm.instance-id=${M1}`]);
  });

  test('Parameter Store is called over HTTP, signed (SigV4) with the instance role\'s keys: no AWS CLI', () => {
    expect(cloud.calls('aws')).toEqual([]);
    const requests = cloud.ssmRequests();
    expect(requests.map((r) => `${r.action} ${r.names.join(',')}`).sort()).toEqual(
      [
        `GetParameter ${P.clusterId}`,
        `PutParameter ${P.lock}`,
        `PutParameter ${P.clusterId}`,
        `PutParameter ${P.workerToken}`,
        `PutParameter ${P.managerToken}`,
        `PutParameter ${P.addresses}`,
      ].sort(),
    );
    // The fake checks each signature as AWS does: a request it refused would carry an error.
    expect(requests.filter((r) => r.action === 'PutParameter').every((r) => r.node === 'm1' && r.status === 200)).toBe(true);
    expect(requests.find((r) => r.action === 'GetParameter')).toMatchObject({ node: 'm1', status: 400, error: 'ParameterNotFound', withDecryption: true });
  });

  test('keys and tokens reach curl only through 0600 files: never in argv, stdout or stderr; nothing left in TMPDIR', () => {
    const { workerToken, managerToken } = swarmOf(cloud, m1);
    const secrets = [workerToken, managerToken, m1.credentials.accessKeyId, m1.credentials.secretAccessKey, m1.credentials.sessionToken];
    for (const secret of secrets) {
      expect(cloud.callLog()).not.toContain(secret);
      expect(res.stdout + res.stderr).not.toContain(secret);
    }
    expect(res.stdout + res.stderr).not.toContain('SWMTKN');
    const ssmCalls = cloud.calls('curl', 'm1').filter((c) => c.argv.includes('--aws-sigv4'));
    expect(ssmCalls).toHaveLength(6);
    for (const c of ssmCalls) {
      expect(c.argv).toEqual(expect.arrayContaining(['-K', '--data-binary', '--connect-timeout', '--max-time']));
      expect(c.modes).toEqual(['600', '600']); // the curl config (keys) and the request body
    }
    expect(m1.leftoverTempFiles()).toEqual([]);
  });

  test('the tokens are encrypted with SWARM_KMS_KEY_ID; plain parameters carry no key', () => {
    expect(cloud.ssm.keyIds).toEqual({ [P.lock]: [null], [P.clusterId]: [null], [P.workerToken]: [KEY], [P.managerToken]: [KEY], [P.addresses]: [null] });
  });

  test('metadata is read with IMDSv2 only: a session token PUT first, every GET carries the token', () => {
    expect(m1.imdsRequests[0]).toMatchObject({ method: 'PUT', url: '/latest/api/token' });
    const gets = m1.imdsRequests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.url).sort()).toEqual(
      ['instance-id', 'local-ipv4', 'placement/region', 'iam/security-credentials/', `iam/security-credentials/${NODE_ROLE}`].map((k) => `/latest/meta-data/${k}`).sort(),
    );
    expect(gets.every((r) => r.token)).toBe(true);
  });

  test('the per-boot hook and node.env are installed; with systemd the reconciler runs as a unit', () => {
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
});

describe('manager.sh: the election and later managers', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  test('election race: two fresh managers at once → one lock holder, one init; the other joins AS MANAGER with the manager token via the Engine API and adds its address', async () => {
    const m1 = await cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: M1 });
    const m2 = await cloud.addNode({ name: 'm2', ip: '10.0.1.21', instanceId: M2 });

    const [r1, r2] = await Promise.all([runManager(m1), runManager(m2)]);

    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect(inits(cloud)).toHaveLength(1);
    expect(Object.keys(swarms(cloud))).toHaveLength(1);
    const winner = cloud.parameters()[P.lock].Value;
    expect([M1, M2]).toContain(winner);
    const [[won, wonAddr], [lost, lostAddr, lostId, lostRes]] = winner === M1
      ? [[m1, '10.0.1.20:2377'], [m2, '10.0.1.21:2377', M2, r2]] as const
      : [[m2, '10.0.1.21:2377'], [m1, '10.0.1.20:2377', M1, r1]] as const;
    expect(lostRes.stderr).toContain(`the init lock is held by ${winner}: joining as a manager`);
    expect(lost.dockerState().swarm).toMatchObject({ state: 'active', controlAvailable: true });
    expect(m1.dockerState().swarm.clusterId).toBe(m2.dockerState().swarm.clusterId);
    expect(cloud.parameters()[P.clusterId].Value).toBe(m1.dockerState().swarm.clusterId);
    // The loser: one join, through the Engine API, to the winner's published address, as a labelled manager.
    expect(won.joins).toEqual([]);
    expect(lost.joins).toEqual([{ status: 200, advertiseAddr: lostAddr.split(':')[0], remoteAddrs: [wonAddr] }]);
    expect(swarmOf(cloud, m1).managers).toEqual([wonAddr, lostAddr]);
    expect(swarmOf(cloud, m1).nodes.find((n) => n.addr === lostAddr)).toMatchObject({ role: 'manager', labels: [`ec2-swarm.instance-id=${lostId}`] });
    // The loser publishes its own view, sorted (manager_addresses): the same list whichever manager won.
    expect(cloud.parameters()[P.addresses].Value).toBe([wonAddr, lostAddr].sort().join(','));
    expect(r1.stdout + r1.stderr + r2.stdout + r2.stderr + cloud.callLog()).not.toContain('SWMTKN');
  });

  test('without systemd (the lab) dockerd is reloaded by SIGHUP and the reconciler runs in the background with its pid file', async () => {
    const m1 = await cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: M1, systemctl: false });

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(cloud.calls('systemctl')).toEqual([]);
    expect(res.stderr).toContain(`engine label ec2-swarm.instance-id=${M1} set`);
    expect(m1.dockerState().labels).toEqual([`ec2-swarm.instance-id=${M1}`]);
    const pid = m1.reconcilerPid();
    expect(pid).toBeDefined();
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['/bin/bash', `${m1.home}/reconcile.sh`, '--loop']);
  });
});

describe('manager.sh refuses before it touches docker or Parameter Store', () => {
  const s = freshManagerCloud();
  const untouched = () => {
    expect(inits(s.cloud)).toEqual([]);
    expect(s.cloud.ssmRequests()).toEqual([]);
    expect(s.cloud.parameters()).toEqual({});
  };

  test.each([
    ['local-ipv4', '10.0.0.256', 'PRIVATE_IP'],
    ['local-ipv4', '10.0.0.1; touch /tmp/pwned', 'PRIVATE_IP'],
    ['placement/region', 'eu-west-1 --endpoint-url http://evil', 'REGION'],
    ['instance-id', 'i-123', 'INSTANCE_ID'],
  ])('GIVEN IMDS %s = %j THEN the script fails naming %s', async (key, value, name) => {
    const before = s.m1.metadata[key];
    s.m1.metadata[key] = value;
    try {
      const res = await runManager(s.m1);

      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(`${name} is missing or invalid`);
      expect(s.cloud.calls('docker').filter((c) => c.argv[0] === 'swarm')).toEqual([]);
      untouched();
    } finally {
      s.m1.metadata[key] = before;
    }
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
    const res = await runManager(s.m1, { [name]: value });

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${name} is missing or invalid`);
    untouched();
  });

  test.each([
    ['AWS_ENDPOINT_URL_SSM', 'http://127.0.0.1:1/ -K /etc/passwd'],
    ['AWS_CA_BUNDLE', '/tmp/ca.pem"\ncacert = "/etc/passwd'],
  ])('GIVEN %s = %j THEN the script refuses it', async (name, value) => {
    const res = await runManager(s.m1, { [name]: value });

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${name} is invalid`);
    untouched();
  });

  test.each([
    ['[1, 2]', 'is not a JSON object'],
    ['{"labels": "team=a"}', '"labels" is not a list of strings'],
    ['{not json', 'Expecting property name'],
  ])('GIVEN daemon.json %s THEN the manager refuses with a clear message and does nothing else', async (content, message) => {
    fs.mkdirSync(path.dirname(s.m1.daemonJson), { recursive: true });
    fs.writeFileSync(s.m1.daemonJson, content);
    try {
      const res = await runManager(s.m1);

      expect(res.code).toBe(1);
      expect(res.stderr).toContain(message);
      expect(res.stderr).toContain('could not add the engine label');
      expect(fs.readFileSync(s.m1.daemonJson, 'utf8')).toBe(content);
      untouched();
    } finally {
      fs.rmSync(s.m1.daemonJson);
    }
  });

  test('GIVEN curl older than 7.75 (no --aws-sigv4) THEN the preflight says so', async () => {
    const fake = path.join(s.m1.dir, 'old-curl');
    fs.mkdirSync(fake, { recursive: true });
    fs.writeFileSync(path.join(fake, 'curl'), '#!/bin/bash\necho "curl 7.61.1 (x86_64-redhat-linux-gnu) libcurl/7.61.1"\n', { mode: 0o755 });

    const res = await s.m1.run([s.m1.script('manager.sh')], { ...swarmEnv('demo'), PATH: `${fake}:${s.m1.env().PATH}` });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('curl 7.75 or later is needed (--aws-sigv4 signs the Parameter Store calls); found: curl 7.61.1');
    untouched();
  });
});

describe('manager.sh: bounded installs and waits', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
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
