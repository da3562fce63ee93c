/**
 * Runs the RENDERED user-data end to end, the way cloud-init would: bash, as root, writing /opt/ec2-swarm and
 * signalling through /opt/aws/bin/cfn-signal. A private mount namespace with a tmpfs on /opt keeps the real /opt
 * untouched; the stand-ins from test/node-scripts/stubs play IMDS, SSM, Docker and cfn-signal.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FakeCloud, FakeNode, RunResult } from '../node-scripts/stubs/sandbox';
import { renderedUserData } from './helpers';

const UNSHARE = '/usr/bin/unshare';
const MOUNT = '/usr/bin/mount';
const canRun = process.getuid?.() === 0 && existsSync(UNSHARE) && existsSync(MOUNT);
const describeIfRoot = canRun ? describe : describe.skip;

/** Fast backoff for the scripts' retries; the user-data itself sets every SWARM_* the contract names. */
const FAST = { SWARM_BACKOFF_BASE_S: '0.05', SWARM_BACKOFF_MAX_S: '0.2' };
/** The user-data unpacks its scripts with base64 (in the sandbox's tools) and gzip (Amazon Linux 2023 has both). */
const UNPACK = ['gzip'];

function runUserData(node: FakeNode, userData: string): Promise<RunResult> {
  const file = path.join(node.dir, 'user-data');
  writeFileSync(file, userData, { mode: 0o700 });
  // In a private mount namespace: a fresh /opt with only the cfn-signal stand-in and a fresh /var/lib (the per-boot hook), then the user-data as cloud-init runs it.
  const inner = `${MOUNT} -t tmpfs -o size=16m,mode=0755 ec2swarm-test /opt && ${MOUNT} -t tmpfs -o size=1m,mode=0755 ec2swarm-test /var/lib && mkdir -p /opt/aws/bin && cp "$SWARM_CFN_SIGNAL" /opt/aws/bin/cfn-signal && exec /bin/bash "$1"`;
  return node.run(['-c', `exec ${UNSHARE} --mount --propagation private /bin/bash -c '${inner}' user-data "$0"`, file], FAST, 60_000);
}

describeIfRoot('rendered user-data, run end to end', () => {
  // The key's ARN as CloudFormation resolves it (the rendering shows the token as ${Key.Arn}); the scripts validate it.
  // The same for the pseudo parameters of the ECR registry (SWARM_ECR_REGISTRY).
  const resolved = (text: string) =>
    text
      .replace(/\$\{\w+\.Arn\}/g, 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab')
      .replace(/\$\{AWS::AccountId\}/g, '123456789012')
      .replace(/\$\{AWS::Region\}/g, 'eu-west-1')
      .replace(/\$\{AWS::URLSuffix\}/g, 'amazonaws.com');
  const raw = renderedUserData({ name: 'demo' });
  const ud = { ...raw, manager: resolved(raw.manager), worker: resolved(raw.worker) };
  let cloud: FakeCloud;

  beforeEach(async () => {
    cloud = await FakeCloud.create();
  });
  afterEach(async () => {
    await cloud.close();
  });

  const signals = (node: string) =>
    cloud.calls('cfn-signal', node).map((c) => ({
      resource: c.argv[c.argv.indexOf('--resource') + 1],
      stack: c.argv[c.argv.indexOf('--stack') + 1],
      region: c.argv[c.argv.indexOf('--region') + 1],
      exit: c.argv[c.argv.indexOf('-e') + 1],
    }));

  test('manager then worker: both signal success to their own resources; the swarm forms; no token leaks', async () => {
    const manager = await cloud.addNode({ name: 'manager', ip: '10.0.0.10', tools: UNPACK });
    const worker = await cloud.addNode({ name: 'worker-1', ip: '10.0.0.11', instanceId: 'i-0000000000000000b', tools: UNPACK });

    const m = await runUserData(manager, ud.manager);
    expect(m.code).toBe(0);
    expect(signals('manager')).toEqual([{ resource: ud.managerId, stack: 'ec2-swarm-demo', region: 'eu-west-1', exit: '0' }]);
    expect(Object.keys(cloud.parameters()).sort()).toEqual(
      ['cluster-id', 'init-lock', 'manager-addresses', 'manager-token', 'worker-token'].map((p) => `/ec2-swarm/demo/${p}`),
    );

    const w = await runUserData(worker, ud.worker);
    expect(w.code).toBe(0);
    expect(signals('worker-1')).toEqual([{ resource: ud.workerId, stack: 'ec2-swarm-demo', region: 'eu-west-1', exit: '0' }]);
    expect(worker.dockerState().swarm.state).toBe('active');
    // The reconciler runs the copy the user-data wrote; workers have none.
    expect(readFileSync(path.join(manager.systemdDir, 'ec2-swarm-reconciler.service'), 'utf8')).toContain(
      '\nExecStart=/bin/bash /opt/ec2-swarm/reconcile.sh --loop\n',
    );
    expect(existsSync(path.join(worker.systemdDir, 'ec2-swarm-reconciler.service'))).toBe(false);

    const token = cloud.parameters()['/ec2-swarm/demo/worker-token'].Value;
    expect(token).toMatch(/^SWMTKN-/);
    for (const out of [m.stdout, m.stderr, w.stdout, w.stderr, cloud.callLog()]) expect(out).not.toContain(token);
    // The real /opt was never touched.
    expect(existsSync('/opt/ec2-swarm')).toBe(false);
    expect(existsSync('/var/lib/cloud/scripts/per-boot/ec2-swarm-boot.sh')).toBe(false);
  }, 90_000);

  test('a worker that cannot read the join parameters signals failure (the deploy rolls back)', async () => {
    const manager = await cloud.addNode({ name: 'manager', ip: '10.0.0.10', tools: UNPACK });
    const worker = await cloud.addNode({ name: 'worker-1', ip: '10.0.0.11', tools: UNPACK });
    expect((await runUserData(manager, ud.manager)).code).toBe(0);
    cloud.failGetParameter('AccessDeniedException', 1000);

    const w = await runUserData(worker, ud.worker);
    expect(w.code).not.toBe(0);
    const [sig] = signals('worker-1');
    expect(sig.resource).toBe(ud.workerId);
    expect(sig.exit).not.toBe('0');
    expect(sig.exit).toBe(String(w.code));
    expect(worker.dockerState().swarm.state).toBe('inactive');
  }, 90_000);

  test('a manager that cannot form the swarm signals failure', async () => {
    const manager = await cloud.addNode({ name: 'manager', ip: 'not-an-ip', tools: UNPACK });
    const m = await runUserData(manager, ud.manager);
    expect(m.code).not.toBe(0);
    expect(signals('manager')).toEqual([{ resource: ud.managerId, stack: 'ec2-swarm-demo', region: 'eu-west-1', exit: String(m.code) }]);
    expect(cloud.parameters()).toEqual({});
  }, 90_000);
});

