/**
 * Private images from the cluster's ECR (docs/design.md, "Private images"): the role scripts install and configure
 * the Amazon ECR credential helper for SWARM_ECR_REGISTRY, tolerate its absence (the lab), and the leader's
 * reconciler refreshes the pull credentials of the services whose image is in that registry.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FakeCloud, FakeNode, RunResult, swarmEnv } from './stubs/sandbox';

jest.setTimeout(240_000);

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const MANAGER_ID = 'i-0000000000000000a';

const clientConfig = (node: FakeNode) => path.join(node.dir, 'root/.docker/config.json');
// (the sandbox points SWARM_DOCKER_CLIENT_CONFIG at the node's own root/.docker/config.json)
const env = (_node: FakeNode, registry = REGISTRY) => swarmEnv('demo', { SWARM_ECR_REGISTRY: registry });
const dnfInstalls = (cloud: FakeCloud, node: string) => cloud.calls('dnf', node).map((c) => c.argv.join(' '));

describe('ECR credential helper on a manager with dnf (Amazon Linux 2023): one manager.sh run, then its reconciler', () => {
  let cloud: FakeCloud;
  let mgr: FakeNode;
  let res: RunResult;
  beforeAll(async () => {
    cloud = await FakeCloud.create();
    mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20', instanceId: MANAGER_ID });
    fs.mkdirSync(path.dirname(clientConfig(mgr)), { recursive: true });
    fs.writeFileSync(clientConfig(mgr), JSON.stringify({ auths: { 'registry.example.com': {} }, credHelpers: { 'other.example.com': 'pass' } }));
    res = await mgr.run([mgr.script('manager.sh')], env(mgr));
  });
  afterAll(async () => {
    await cloud.close();
  });

  test('the manager installs the helper and names it for the cluster registry only, keeping the rest of config.json', () => {
    expect(res.code).toBe(0);
    expect(dnfInstalls(cloud, 'manager')).toContain('install -y amazon-ecr-credential-helper');
    expect(JSON.parse(fs.readFileSync(clientConfig(mgr), 'utf8'))).toEqual({
      auths: { 'registry.example.com': {} },
      credHelpers: { 'other.example.com': 'pass', [REGISTRY]: 'ecr-login' },
    });
    expect(fs.statSync(clientConfig(mgr)).mode & 0o777).toBe(0o600);
    expect(res.stderr).toContain(`docker pulls from ${REGISTRY} use the ECR credential helper`);
    // Recorded for later boots, which configure it again from node.env.
    expect(fs.readFileSync(path.join(mgr.home, 'node.env'), 'utf8')).toContain(`export SWARM_ECR_REGISTRY=${REGISTRY}`);
  });

  test("the leader's reconciler refreshes the pull credentials of exactly the services whose image is in the cluster registry", async () => {
    expect(res.code).toBe(0);
    cloud.setInstance(MANAGER_ID, { state: 'running', group: 'ec2-swarm-demo-managers' });
    mgr.setDockerState((s) => {
      s.services = [
        { name: 'shop_web', image: `${REGISTRY}/shop/web:1.2@sha256:${'a'.repeat(64)}` },
        { name: 'shop_cache', image: 'redis:7' },
        // Same account, another region: not the registry the helper is configured for.
        { name: 'other', image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1' },
      ];
    });

    const once = await mgr.run([mgr.script('reconcile.sh'), '--once'], env(mgr));

    expect(once.code).toBe(0);
    expect(mgr.dockerState().services).toEqual([
      expect.objectContaining({ name: 'shop_web', authRefreshes: 1 }),
      expect.not.objectContaining({ authRefreshes: expect.anything() }),
      expect.not.objectContaining({ authRefreshes: expect.anything() }),
    ]);
    expect(once.stderr).toContain('ECR pull credentials refreshed for 1 service(s)');
  });
});

describe('ECR credential helper: no helper available, a bad registry value', () => {
  let cloud: FakeCloud;
  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  test('GIVEN hosts without the helper and without dnf (the lab) THEN they form the swarm, configure nothing, and the reconciler leaves the services alone', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20', instanceId: MANAGER_ID, dnf: false });
    const worker = await cloud.addNode({ name: 'worker', ip: '10.0.2.30', instanceId: 'i-0000000000000001a', dnf: false });
    expect((await mgr.run([mgr.script('manager.sh')], env(mgr))).code).toBe(0);

    const res = await worker.run([worker.script('worker.sh')], env(worker));

    expect(res.code).toBe(0);
    expect(res.stderr).toContain(`WARNING: docker-credential-ecr-login is not available: images in ${REGISTRY} can be deployed only with --registry-auth`);
    expect(fs.existsSync(clientConfig(worker))).toBe(false);
    expect(fs.existsSync(clientConfig(mgr))).toBe(false);

    cloud.setInstance(MANAGER_ID, { state: 'running', group: 'ec2-swarm-demo-managers' });
    mgr.setDockerState((s) => {
      s.services = [{ name: 'shop_web', image: `${REGISTRY}/shop/web:1.2` }];
    });
    expect((await mgr.run([mgr.script('reconcile.sh'), '--once'], env(mgr))).code).toBe(0);
    expect(cloud.calls('docker', 'manager').filter((c) => c.argv[0] === 'service')).toEqual([]);
  });

  test('GIVEN a registry value that is not an ECR registry name THEN the script stops before anything runs, naming the variable', async () => {
    const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.1.20', instanceId: MANAGER_ID });

    const res = await mgr.run([mgr.script('manager.sh')], env(mgr, 'evil.example.com;touch /tmp/x'));

    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('SWARM_ECR_REGISTRY is missing or invalid');
    expect(dnfInstalls(cloud, 'manager').filter((c) => c.includes('ecr'))).toEqual([]);
  });
});
