/**
 * The lab's EC2 and Auto Scaling stand-ins on real hosts (issue 7, item 10), independent of what the node scripts do
 * with them: a stopped instance keeps its disk and loses every process; a started one runs its per-boot scripts and
 * never the user-data again; a member terminated in its group is replaced by a new host (new id, new address) that
 * runs the launch template's user-data, signals and joins; scale-in removes a member; hosts see their tags and
 * target lifecycle state in IMDS; the EC2 API answers a manager through the lab's TLS front and refuses a worker.
 * Root only: `npx jest -c jest.e2e.config.js test/e2e/ha-lab-stand-ins`.
 */
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  LabState,
  labDown,
  labInstances,
  labUp,
  runInHost,
  scaleWorkers,
  signals,
  startHost,
  stopHost,
  terminateInstance,
  waitForInstances,
} from '../../lib/lab/lab';
import { readSignals, signalsFile } from '../../lib/lab/cloudformation/signals';
import { LAB_CREDENTIALS } from '../../lib/ops/target';
import { e2eLabIdentity, keepLabLogs, waitFor } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2h', prefix: 'e2h', net: 235 });
const quiet = { info: () => undefined, warn: (m: string) => process.stderr.write(`${m}\n`), progress: () => undefined, done: () => undefined };
let state: LabState;

beforeAll(async () => {
  await labDown({ labDir: LAB.labDir });
  state = await labUp({ workers: 2, labDir: LAB.labDir, prefix: LAB.prefix, net: LAB.net, reporter: quiet, timeoutSeconds: 240 });
});
afterAll(async () => {
  await labDown({ labDir: LAB.labDir, purge: !keepLabLogs() });
});

/** `docker node ls` on the first manager: hostname → status. */
async function nodes(): Promise<Map<string, string>> {
  const r = await runInHost(state, 'h0', ['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}'], { timeoutMs: 30_000 });
  expect(r.exitCode).toBe(0);
  return new Map(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

const sh = (host: string, script: string) => runInHost(state, host, ['sh', '-c', script], { timeoutMs: 60_000 });

test('the instance table: every host running, workers in their group with the propagated tags', () => {
  const all = labInstances(state);
  expect(all.map((i) => [i.name, i.role, i.state])).toEqual([
    ['h0', 'manager', 'running'],
    ['h1', 'worker', 'running'],
    ['h2', 'worker', 'running'],
  ]);
  expect(all.filter((i) => i.role === 'worker').every((i) => i.group !== undefined && i.lifecycleState === 'InService')).toBe(true);
});

test('IMDS shows a host its tags and its target lifecycle state; the EC2 API answers a manager and refuses a worker', async () => {
  const imds = (path: string) =>
    `t=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token) && curl -sf -H "X-aws-ec2-metadata-token: $t" http://169.254.169.254/latest/meta-data/${path}`;
  expect(await sh('h1', imds('tags/instance/ec2-swarm:role'))).toMatchObject({ exitCode: 0, stdout: 'worker' });
  expect(await sh('h1', imds('autoscaling/target-lifecycle-state'))).toMatchObject({ exitCode: 0, stdout: 'InService' });

  const describe = 'aws ec2 describe-instances --region us-east-1 --filters Name=tag:ec2-swarm:role,Values=worker --query "Reservations[].Instances[].PrivateIpAddress" --output text';
  const m = await sh('h0', describe);
  expect(m.exitCode).toBe(0);
  expect(m.stdout.trim().split(/\s+/).sort()).toEqual([`192.168.${LAB.net}.11`, `192.168.${LAB.net}.12`]);
  const w = await sh('h1', describe);
  expect(w.exitCode).not.toBe(0);
  expect(w.stderr).toMatch(/UnauthorizedOperation/);
  const asg = await sh('h1', 'aws autoscaling describe-auto-scaling-instances --region us-east-1');
  expect(asg.stderr).toMatch(/AccessDenied/);
});

/** Every signal the recorder got from one instance (the user-data's trap signals once; per-boot runs never signal). */
const signalsOf = (instanceId: string) => readSignals(signalsFile(LAB.labDir)).filter((s) => s.instanceId === instanceId);

/** `docker node ls` on the first manager: hostname → availability. */
async function availability(): Promise<Map<string, string>> {
  const r = await runInHost(state, 'h0', ['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Availability}}'], { timeoutMs: 30_000 });
  expect(r.exitCode).toBe(0);
  return new Map(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

test('stop keeps the disk and stops every process; start runs the per-boot scripts, not the user-data; the node is back in the swarm', async () => {
  const h1 = labInstances(state).find((i) => i.name === 'h1')!;
  expect(
    await sh('h1', 'mkdir -p /var/lib/cloud/scripts/per-boot && printf "#!/bin/sh\\necho boot >>/var/lib/cloud/boots\\n" >/var/lib/cloud/scripts/per-boot/lab-test.sh && chmod +x /var/lib/cloud/scripts/per-boot/lab-test.sh && touch /run/before-stop'),
  ).toMatchObject({ exitCode: 0 });
  // The role script installed the node's own per-boot hook at the first boot (design.md decision 11).
  expect((await sh('h1', 'ls /var/lib/cloud/scripts/per-boot')).stdout.split('\n')).toContain('ec2-swarm-boot.sh');

  await stopHost(state, 'h1');
  expect(labInstances(state).find((i) => i.name === 'h1')!.state).toBe('stopped');
  expect((await sh('h1', 'docker info >/dev/null 2>&1 || echo no-docker')).stdout).toBe('no-docker\n');
  const ssm = new SSMClient({ region: state.region, endpoint: state.ssmEndpoint, credentials: LAB_CREDENTIALS });
  try {
    const info = await ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: [h1.instanceId] }] }));
    expect(info.InstanceInformationList?.[0]?.PingStatus).toBe('ConnectionLost');
  } finally {
    ssm.destroy();
  }
  await waitFor('h1 Down in the swarm', 120, async () => ((await nodes()).get(h1.hostname) === 'Down' ? true : undefined));

  await startHost(state, 'h1');
  await waitFor('h1 Ready again', 180, async () => ((await nodes()).get(h1.hostname) === 'Ready' ? true : undefined));
  // The per-boot scripts run in name order after dockerd is back: ec2-swarm-boot.sh (the node's own rejoin) first,
  // so the node can be Ready before this test's script has run.
  await waitFor('the per-boot scripts ran', 120, async () => ((await sh('h1', 'cat /var/lib/cloud/boots 2>/dev/null || true')).stdout.includes('boot') ? true : undefined));
  const after = await sh('h1', 'cat /var/lib/cloud/boots; ls /run/before-stop 2>/dev/null || echo run-emptied');
  expect(after.stdout).toBe('boot\nrun-emptied\n');
  // One node for h1: it kept its membership (no leave on stop) and did not join a second time.
  expect([...(await nodes()).keys()].filter((h) => h === h1.hostname)).toHaveLength(1);

  // The user-data ran once: its trap signalled once, and everything before the per-boot run is one role-script run.
  // After it, the node's boot hook ran the role script again (the HA design: rejoin when needed), which says so.
  expect(signalsOf(h1.instanceId)).toHaveLength(1);
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(`${LAB.labDir}/logs/h1-cloud-init-output.log`, 'utf8');
  const marker = 'lab cloud-init: boot at ';
  expect(text.split(marker).length - 1).toBe(1);
  const [firstBoot, laterBoot] = text.split(marker);
  const instanceLine = `instance ${h1.instanceId}, private ip`;
  expect(firstBoot.split(instanceLine).length - 1).toBe(1);
  expect(laterBoot).toMatch(/running \/var\/lib\/cloud\/scripts\/per-boot/);
  expect(laterBoot.split(instanceLine).length - 1).toBe(1);
  expect(laterBoot).toMatch(/already part of the swarm|joined the swarm through/);
  expect(laterBoot).toMatch(/worker ready/);
});

test('a member terminated in its group is drained, replaced by a new host that runs the user-data, signals and joins; scale-in drains one before it goes', async () => {
  const old = labInstances(state).find((i) => i.name === 'h2')!;
  await terminateInstance(state, 'h2');
  // The termination hook holds it while the manager's reconciler drains it (design.md decision 11).
  await waitForInstances(state, 'h2 in Terminating:Wait', (all) => all.find((i) => i.instanceId === old.instanceId && i.lifecycleState?.startsWith('Terminating')), 60_000);
  const replacement = await waitForInstances(
    state,
    'a replacement worker running',
    (all) => all.find((i) => i.role === 'worker' && i.state === 'running' && i.instanceId !== old.instanceId && i.name !== 'h1'),
    180_000,
  );
  await waitForInstances(state, 'h2 terminated after its lifecycle action', (all) => all.find((i) => i.instanceId === old.instanceId && i.state === 'terminated'), 240_000);
  expect(replacement.ip).not.toBe(old.ip);
  expect(replacement.instanceId).not.toBe(old.instanceId);
  await waitFor('the replacement signalled', 240, async () => signals(state).find((s) => s.instanceId === replacement.instanceId));
  expect(signalsOf(replacement.instanceId)).toEqual([expect.objectContaining({ status: 'SUCCESS' })]);
  await waitFor('the replacement Ready in the swarm', 180, async () => ((await nodes()).get(replacement.hostname) === 'Ready' ? true : undefined));
  await waitFor('the terminated member pruned from the swarm', 180, async () => (!(await nodes()).has(old.hostname) ? true : undefined));
  const { execFileSync } = await import('node:child_process');
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`^${old.ns}\\b`, 'm'));

  const before = labInstances(state).filter((i) => i.role === 'worker' && i.state === 'running').map((i) => i.instanceId);
  await scaleWorkers(state, 1);
  const leaving = await waitForInstances(state, 'a worker in Terminating:Wait', (all) => all.find((i) => before.includes(i.instanceId) && i.lifecycleState?.startsWith('Terminating')), 60_000);
  // Drained while its instance still runs (the reconciler's drain), then terminated once the action is completed.
  let sawDrain = false;
  await waitFor(`${leaving.name} terminated`, 240, async () => {
    const inst = labInstances(state).find((i) => i.instanceId === leaving.instanceId)!;
    if (inst.state === 'running' && !sawDrain) sawDrain = (await availability().catch(() => undefined))?.get(leaving.hostname) === 'Drain';
    return inst.state === 'terminated' ? true : undefined;
  });
  expect(labInstances(state).filter((i) => i.role === 'worker' && i.state !== 'terminated')).toHaveLength(1);
  expect(labInstances(state).find((i) => i.instanceId === leaving.instanceId)!.state).toBe('terminated');
  await waitFor('the scaled-in member pruned from the swarm', 180, async () => (!(await nodes()).has(leaving.hostname) ? true : undefined));
  expect(sawDrain).toBe(true);
});
