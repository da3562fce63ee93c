import { parameterNames } from '../../lib/config';
import { MANAGER_SH } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { newToken, readJson, writeJson } from './stubs/tools';
import * as path from 'node:path';

const P = parameterNames('demo');

describe('manager.sh', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  /** The tokens the fake swarm really has (what `docker swarm join-token -q` prints). */
  function swarmTokens(node: FakeNode): { workerToken: string; managerToken: string } {
    const swarms = readJson<Record<string, { workerToken: string; managerToken: string }>>(path.join(cloud.dir, 'swarms.json'), {});
    return swarms[node.dockerState().swarm.clusterId!];
  }

  test('GIVEN a fresh node WHEN the manager runs THEN it inits the swarm on its private ip and publishes tokens and address', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20' });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.stderr).toContain('manager ready');
    expect(res.code).toBe(0);
    expect(cloud.calls('docker').map((c) => c.argv)).toContainEqual(['swarm', 'init', '--advertise-addr', '10.0.1.20']);
    const tokens = swarmTokens(mgr);
    const params = cloud.parameters();
    expect(params[P.workerToken]).toMatchObject({ Type: 'SecureString', Value: tokens.workerToken });
    expect(params[P.managerToken]).toMatchObject({ Type: 'SecureString', Value: tokens.managerToken });
    expect(params[P.managerAddresses]).toMatchObject({ Type: 'String', Value: '10.0.1.20:2377' });
    expect(Object.keys(params)).toHaveLength(3);
  });

  test('tokens reach SSM only through 0600 input files: never in argv, stdout or stderr; temp files removed', async () => {
    const mgr = await cloud.addNode({ name: 'manager' });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    const { workerToken, managerToken } = swarmTokens(mgr);
    for (const token of [workerToken, managerToken]) {
      expect(cloud.callLog()).not.toContain(token);
      expect(res.stdout + res.stderr).not.toContain(token);
    }
    // `docker swarm init` printed the worker token on stdout; the script must have discarded it.
    expect(res.stdout + res.stderr).not.toContain('SWMTKN');
    for (const put of cloud.calls('aws')) expect(put.argv).toEqual(expect.arrayContaining(['--cli-input-json', '--overwrite']));
    expect(cloud.inputFileModes()).toEqual([0o600, 0o600, 0o600]);
    expect(mgr.leftoverTempFiles()).toEqual([]);
  });

  test('GIVEN the node is already a swarm manager WHEN the manager runs again THEN no init, the current tokens are re-published', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20' });
    mgr.initSwarm();
    // Stale values from an earlier boot: they must be overwritten.
    cloud.putParameter(P.workerToken, 'SecureString', newToken());
    cloud.putParameter(P.managerToken, 'SecureString', newToken());
    cloud.putParameter(P.managerAddresses, 'String', '10.0.1.99:2377');

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(res.stderr).toContain('already a swarm manager');
    expect(cloud.calls('docker').filter((c) => c.argv[1] === 'init')).toEqual([]);
    const params = cloud.parameters();
    expect(params[P.workerToken]).toMatchObject({ Value: swarmTokens(mgr).workerToken, Version: 2 });
    expect(params[P.managerToken]).toMatchObject({ Value: swarmTokens(mgr).managerToken, Version: 2 });
    expect(params[P.managerAddresses]).toMatchObject({ Value: '10.0.1.20:2377', Version: 2 });
  });

  test('GIVEN the node is a worker of some swarm WHEN the manager runs THEN it fails clearly and publishes nothing', async () => {
    const mgr = await cloud.addNode({ name: 'manager' });
    mgr.setDockerState((s) => {
      s.swarm = { state: 'active', controlAvailable: false, clusterId: 'other', remoteManagers: ['10.9.9.9:2377'] };
    });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('worker of another swarm');
    expect(cloud.parameters()).toEqual({});
  });

  test('GIVEN docker is not installed WHEN the manager runs THEN dnf installs it and systemd starts it', async () => {
    const mgr = await cloud.addNode({ name: 'manager', docker: 'missing' });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(cloud.calls('dnf').map((c) => c.argv)).toEqual([['install', '-y', 'docker']]);
    expect(cloud.calls('systemctl').map((c) => c.argv)).toEqual([['enable', '--now', 'docker']]);
    expect(mgr.dockerState().swarm.state).toBe('active');
  });

  test('GIVEN a pre-baked host (docker running, cfn-signal present) THEN nothing is installed or started', async () => {
    const mgr = await cloud.addNode({ name: 'manager' });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).toBe(0);
    expect(cloud.calls('dnf')).toEqual([]);
    expect(cloud.calls('systemctl')).toEqual([]);
  });

  test('GIVEN cfn-signal is missing THEN aws-cfn-bootstrap is installed before anything else can fail', async () => {
    const mgr = await cloud.addNode({ name: 'manager', cfnSignal: false });
    mgr.metadata['local-ipv4'] = 'garbage'; // the run fails, but the failure signal can still be sent

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(cloud.calls('dnf').map((c) => c.argv)).toEqual([['install', '-y', 'aws-cfn-bootstrap']]);
  });

  test('GIVEN docker is installed but will not start THEN the wait is bounded and the failure names the daemon', async () => {
    const mgr = await cloud.addNode({ name: 'manager', docker: 'stopped', systemctl: false });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo', { SWARM_DOCKER_WAIT_S: '1' }));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('the docker daemon did not answer within 1s');
    expect(res.ms).toBeLessThan(8000);
  });

  test.each([
    ['local-ipv4', '10.0.0.256', 'PRIVATE_IP'],
    ['local-ipv4', '10.0.0.1; touch /tmp/pwned', 'PRIVATE_IP'],
    ['local-ipv4', '', 'PRIVATE_IP'],
    ['placement/region', 'eu-west-1 --endpoint-url http://evil', 'REGION'],
    ['instance-id', 'i-123', 'INSTANCE_ID'],
  ])('GIVEN IMDS %s = %j THEN the script fails naming %s before touching docker or SSM', async (key, value, name) => {
    const mgr = await cloud.addNode({ name: 'manager' });
    mgr.metadata[key] = value;

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${name} is missing or invalid`);
    expect(cloud.calls('docker').filter((c) => c.argv[0] === 'swarm')).toEqual([]);
    expect(cloud.calls('aws')).toEqual([]);
  });

  test('metadata is read with IMDSv2 only: a session token PUT first, every GET carries the token', async () => {
    const mgr = await cloud.addNode({ name: 'manager' });

    await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(mgr.imdsRequests[0]).toMatchObject({ method: 'PUT', url: '/latest/api/token' });
    const gets = mgr.imdsRequests.filter((r) => r.method === 'GET');
    expect(gets.map((r) => r.url).sort()).toEqual([
      '/latest/meta-data/instance-id',
      '/latest/meta-data/local-ipv4',
      '/latest/meta-data/placement/region',
    ]);
    expect(gets.every((r) => r.token)).toBe(true);
  });

  test('GIVEN the metadata service does not answer THEN retries are bounded and the failure says so', async () => {
    const mgr = await cloud.addNode({ name: 'manager' });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo', { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9' }));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('instance metadata service did not answer');
    expect(res.ms).toBeLessThan(10_000);
  });

  test.each([
    ['SWARM_PARAM_WORKER_TOKEN', '/ec2-swarm/demo/worker token'],
    ['SWARM_PARAM_MANAGER_ADDRESS', "/ec2-swarm/demo/x'\"$(id)"],
    ['SWARM_CLUSTER', 'Demo'],
    ['SWARM_BACKOFF_BASE_S', '1; id'],
  ])('GIVEN %s = %j THEN the script refuses to run, naming the variable', async (name, value) => {
    const mgr = await cloud.addNode({ name: 'manager' });

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo', { [name]: value }));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`${name} is missing or invalid`);
    expect(cloud.parameters()).toEqual({});
  });

  test('a join token with an unexpected format is not published', async () => {
    const mgr = await cloud.addNode({ name: 'manager' });
    mgr.initSwarm();
    const swarmsFile = path.join(cloud.dir, 'swarms.json');
    const swarms = readJson<Record<string, { workerToken: string }>>(swarmsFile, {});
    const id = mgr.dockerState().swarm.clusterId!;
    swarms[id].workerToken = `${newToken()}"}`;
    writeJson(swarmsFile, swarms);

    const res = await mgr.run([MANAGER_SH], swarmEnv('demo'));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('the worker join token has an unexpected format');
    expect(cloud.parameters()).toEqual({});
  });
});
