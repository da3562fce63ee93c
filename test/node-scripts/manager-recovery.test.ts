/**
 * manager.sh against a cluster with a history: a recorded swarm (join it, or start a new one only when none of its
 * managers answers), a node that is already a manager, a lost majority, and Parameter Store or the instance role
 * failing. A first boot: manager.test.ts.
 */
import * as path from 'node:path';
import { M1, M2, P, type FakeSwarm, freshManagerCloud, inits, publishedManager, runManager, swarmOf } from './fixtures';
import { FakeCloud, NODE_ROLE } from './stubs/sandbox';
import { newToken, readJson, writeJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds.
jest.setTimeout(240_000);

describe('manager.sh with a recorded cluster', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  const manager = (name: string, ip: string, instanceId: string, opts: { systemctl?: boolean } = {}) =>
    cloud.addNode({ name, ip, instanceId, ...opts });

  test('GIVEN the lock is held by another instance and no token is ever published THEN the wait is bounded and named', async () => {
    cloud.putParameter(P.lock, 'String', M1);
    const m2 = await manager('m2', '10.0.1.21', M2);

    const res = await runManager(m2, { SWARM_JOIN_TIMEOUT_S: '2' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('gave up after 2s (SWARM_JOIN_TIMEOUT_S): no manager has published the manager token and manager-addresses yet');
    expect(inits(cloud)).toEqual([]);
  });

  test('GIVEN cluster-id cannot be read THEN the lock holder refuses to initialise: no init, nothing published', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    cloud.failGetParameter('AccessDeniedException', 1); // the one read of cluster-id (the lock is a put)

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`could not read ${P.clusterId}: refusing to initialise without knowing whether a swarm exists`);
    expect(res.stderr).toContain(`reading ${P.clusterId} failed: HTTP 400: {"__type":"AccessDeniedException","message":"injected fault"}`);
    expect(inits(cloud)).toEqual([]);
    expect(Object.keys(cloud.parameters())).toEqual([P.lock]);
  });

  test('GIVEN Parameter Store throttles and fails with 5xx THEN each call is tried again (at most 3 times) and the manager forms the swarm', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    cloud.ssm.fail(['PutParameter'], 'ThrottlingException', 2);
    cloud.ssm.fail(['GetParameter'], 'InternalServerError', 2);

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    const tries = (action: string, name: string) => cloud.ssmRequests('m1').filter((r) => r.action === action && r.names[0] === name).map((r) => r.error ?? r.status);
    expect(tries('PutParameter', P.lock)).toEqual(['ThrottlingException', 'ThrottlingException', 200]);
    expect(tries('GetParameter', P.clusterId)).toEqual(['InternalServerError', 'InternalServerError', 'ParameterNotFound']);
    expect(inits(cloud)).toHaveLength(1);
  });

  test('GIVEN a recorded cluster-id and a recorded manager that answers THEN even the lock holder joins instead of a second init', async () => {
    await publishedManager(cloud, { name: 'm2', ip: '10.0.1.21', instanceId: M2 }); // m2 formed the swarm (it held the lock then)
    const first = cloud.parameters()[P.clusterId].Value;
    // m1 holds the lock but its swarm state is gone (e.g. it left); the swarm of m2 lives on.
    cloud.putParameter(P.lock, 'String', M1);
    const m1 = await manager('m1', '10.0.1.20', M1);

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(inits(cloud)).toEqual([]); // m2's swarm was set up directly: no init by anyone
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
    expect(inits(cloud)).toHaveLength(1);
    expect(cloud.parameters()[P.clusterId].Value).toBe(m1.dockerState().swarm.clusterId);
    expect(cloud.parameters()[P.addresses].Value).toBe('10.0.1.20:2377');
  });

  test('GIVEN a recorded manager answers but refuses the token THEN the lock holder does not init', async () => {
    await publishedManager(cloud, { name: 'm2', ip: '10.0.1.21', instanceId: M2 });
    cloud.putParameter(P.lock, 'String', M1);
    cloud.putParameter(P.managerToken, 'SecureString', newToken()); // stale
    const m1 = await manager('m1', '10.0.1.20', M1);

    const res = await runManager(m1);

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('answered but refused this node');
    expect(inits(cloud)).toEqual([]);
  });

  test('GIVEN the node is already a manager of the recorded swarm WHEN it runs again THEN no init and no join; tokens re-published', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1);
    expect((await runManager(m1)).code).toBe(0);
    cloud.putParameter(P.workerToken, 'SecureString', newToken()); // a lost write to repair
    m1.joins.length = 0;

    const res = await runManager(m1);

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('already a swarm manager');
    expect(inits(cloud)).toHaveLength(1);
    expect(m1.joins).toEqual([]);
    expect(cloud.parameters()[P.workerToken].Value).toBe(swarmOf(cloud, m1).workerToken);
  });

  test('GIVEN a manager boots while its swarm has no leader (majority lost) THEN it keeps a reconciler running and fails saying why; no init, no join', async () => {
    const m1 = await manager('m1', '10.0.1.20', M1, { systemctl: false });
    expect((await runManager(m1)).code).toBe(0);
    const first = m1.reconcilerPid()!;
    process.kill(first, 'SIGTERM'); // the reboot ends it
    const file = path.join(cloud.dir, 'swarms.json');
    const all = readJson<Record<string, FakeSwarm>>(file, {});
    all[m1.dockerState().swarm.clusterId!].noLeader = true;
    writeJson(file, all);
    m1.joins.length = 0;

    const res = await runManager(m1, { SWARM_LEADER_TRIES: '2' });

    expect(res.code).toBe(1);
    expect(res.stderr).toContain('the swarm has no leader: fewer than a majority of its managers are up');
    expect(m1.reconcilerPid()).toBeDefined();
    expect(m1.reconcilerPid()).not.toBe(first);
    expect(inits(cloud)).toHaveLength(1);
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
});

describe('manager.sh and the instance role', () => {
  const s = freshManagerCloud();
  const creds = `iam/security-credentials/${NODE_ROLE}`;

  test('GIVEN no instance profile (IMDS names no role) THEN it fails saying so, before any Parameter Store call', async () => {
    const role = s.m1.metadata['iam/security-credentials/'];
    delete s.m1.metadata['iam/security-credentials/'];
    try {
      const res = await runManager(s.m1);

      expect(res.code).toBe(1);
      expect(res.stderr).toContain('no credentials for Parameter Store: no instance role in metadata');
      expect(s.cloud.ssmRequests()).toEqual([]);
    } finally {
      s.m1.metadata['iam/security-credentials/'] = role;
    }
  });

  test('GIVEN credentials whose secret is not the role\'s THEN Parameter Store refuses the signature and the manager does not init', async () => {
    const good = s.m1.metadata[creds];
    s.m1.metadata[creds] = good.replace(/"SecretAccessKey": "[^"]*"/, `"SecretAccessKey": "${'A'.repeat(40)}"`);
    try {
      const res = await runManager(s.m1);

      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`writing ${P.lock} failed: HTTP 400: {"__type":"InvalidSignatureException","message":"The request signature we calculated does not match`);
      expect(s.cloud.ssmRequests().map((r) => r.error)).toContain('InvalidSignatureException');
      expect(s.cloud.parameters()).toEqual({});
      expect(s.cloud.calls('docker').filter((c) => c.argv[0] === 'swarm')).toEqual([]);
    } finally {
      s.m1.metadata[creds] = good;
    }
  });

  test('GIVEN credentials in an unexpected form THEN it fails naming the role, and no part of them is printed', async () => {
    const good = s.m1.metadata[creds];
    s.m1.metadata[creds] = good.replace(/"Token": "[^"]*"/, '"Token": "abc\\"def"');
    try {
      const res = await runManager(s.m1);

      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`unexpected credentials of role ${NODE_ROLE} in metadata`);
      expect(res.stderr).not.toContain(s.m1.credentials.secretAccessKey);
    } finally {
      s.m1.metadata[creds] = good;
    }
  });
});
