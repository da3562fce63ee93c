/**
 * A cluster that survives its life (issue 7, "Done when"), on one lab of 3 managers + 2 workers formed from the
 * synthesized user-data, scenarios in sequence (each leaves the cluster whole for the next):
 * one swarm ever (one cluster id on every manager and in SSM, one `swarm init` in all logs); the leader stopped →
 * a new leader within a bound, status/verify/deploy still work, replicas kept, the old leader rejoins when started;
 * a worker stopped and started rejoins; a worker terminated in its group is drained, replaced, the new one joins and
 * the old node is pruned; a worker scaled in is drained before it leaves; a manager terminated in its group is
 * replaced, the new one joins as a manager and the stale member is removed with quorum kept; join tokens rotated →
 * a new worker joins, the old token is refused.
 * Root only: `npx jest -c jest.e2e.config.js test/e2e/ha-cluster`.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { readFileSync } from 'node:fs';
import { status, type StatusReport } from '../../lib/ops';
import { LabInstanceInfo, labInstances, runInHost, scaleWorkers, startHost, stopHost, terminateInstance, waitForInstances } from '../../lib/lab/lab';
import { preferManager } from '../../lib/ops/swarm/manager';
import { LAB_CREDENTIALS } from '../../lib/ops/target';
import { DEMO_COMPOSE, e2eLabIdentity, findJoinTokens, service, startLab, stopLab, waitFor, type E2eLab } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2ha', prefix: 'e2ha', net: 234 });
const PREFIX = '/ec2-swarm/lab';
let lab: E2eLab;
let ssm: SSMClient;
let clusterId: string;

beforeAll(async () => {
  lab = await startLab({ ...LAB, managers: 3, workers: 2, timeoutSeconds: 300 });
  ssm = new SSMClient({ region: lab.state.region, endpoint: lab.state.ssmEndpoint, credentials: LAB_CREDENTIALS });
}, 420_000);

afterAll(async () => {
  ssm?.destroy();
  await stopLab(lab, LAB.labDir);
}, 180_000);

interface NodeRow {
  id: string;
  hostname: string;
  status: string;
  availability: string;
  manager: string;
}

const live = (role?: 'manager' | 'worker'): LabInstanceInfo[] => labInstances(lab.state).filter((i) => i.state === 'running' && (!role || i.role === role));

/** `docker node ls` through any running manager that answers (bounded: a manager without a leader hangs). */
async function nodeLs(): Promise<{ via: string; nodes: NodeRow[] } | undefined> {
  for (const m of live('manager')) {
    const r = await runInHost(lab.state, m.name, ['docker', 'node', 'ls', '--format', '{{.ID}} {{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'], { timeoutMs: 15_000 }).catch(() => undefined);
    if (r?.exitCode !== 0) continue;
    const nodes = r.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const [id, hostname, st, availability, manager = ''] = l.split(' ');
        return { id, hostname, status: st, availability, manager };
      });
    return { via: m.name, nodes };
  }
  return undefined;
}

async function leader(): Promise<NodeRow | undefined> {
  return (await nodeLs())?.nodes.find((n) => n.manager === 'Leader');
}

/** The node labelled with this instance id (the node identity of the contract), if the swarm lists one. */
async function nodeOfInstance(instanceId: string): Promise<NodeRow | undefined> {
  const ls = await nodeLs();
  if (!ls) return undefined;
  for (const n of ls.nodes) {
    const r = await runInHost(lab.state, ls.via, ['docker', 'node', 'inspect', '--format', '{{index .Description.Engine.Labels "ec2-swarm.instance-id"}}', n.id], { timeoutMs: 15_000 });
    if (r.stdout.trim() === instanceId) return n;
  }
  return undefined;
}

async function clusterIdOn(host: string): Promise<string> {
  return (await runInHost(lab.state, host, ['docker', 'info', '--format', '{{.Swarm.Cluster.ID}}'], { timeoutMs: 30_000 })).stdout.trim();
}

/** The instance ids of every SendCommand the lab's SSM received, in order. */
function sentTo(): string[][] {
  return readFileSync(`${LAB.labDir}/logs/ssm-send-command.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { instanceIds: string[] }).instanceIds);
}

async function param(name: string): Promise<string | undefined> {
  try {
    return (await ssm.send(new GetParameterCommand({ Name: `${PREFIX}/${name}`, WithDecryption: true }))).Parameter?.Value;
  } catch (e) {
    if ((e as Error).name === 'ParameterNotFound') return undefined;
    throw e;
  }
}

/**
 * Every service runs its desired replicas, seen on a manager (`docker service ls`), so the scenarios do not
 * depend on the ops CLI (whose own checks are the CLI steps of the leader scenario).
 */
async function everyServiceConverged(): Promise<boolean> {
  const ls = await nodeLs();
  if (!ls) return false;
  const r = await runInHost(lab.state, ls.via, ['docker', 'service', 'ls', '--format', '{{.Name}} {{.Replicas}}'], { timeoutMs: 20_000 });
  const rows = r.stdout.trim().split('\n').filter(Boolean);
  return r.exitCode === 0 && rows.length > 0 && rows.every((l) => /^\S+ (\d+)\/\1\b/.test(l));
}

/**
 * manager-addresses lists exactly the live managers. It is last-writer-wins between managers that join at once; the
 * leader's reconciler republishes it from the swarm every pass (docs/contracts.md, every 10 s): waited for, 60 s.
 */
async function expectManagerAddressesPublished(): Promise<void> {
  const managerAddrs = live('manager').map((m) => `${m.ip}:2377`).sort().join(',');
  let published: string | undefined;
  await waitFor(`manager-addresses = ${managerAddrs}`, 60, async () => {
    published = (await param('manager-addresses'))?.split(',').sort().join(',');
    return published === managerAddrs ? true : undefined;
  }).catch(() => undefined);
  expect(published).toBe(managerAddrs);
}

/** Running tasks and desired replicas of one service, on a manager. */
async function replicas(name: string): Promise<{ running: number; desired: number } | undefined> {
  const ls = await nodeLs();
  if (!ls) return undefined;
  const r = await runInHost(lab.state, ls.via, ['docker', 'service', 'ls', '--format', '{{.Name}} {{.Replicas}}'], { timeoutMs: 20_000 });
  const m = new RegExp(`^${name} (\\d+)/(\\d+)`, 'm').exec(r.stdout);
  return m ? { running: Number(m[1]), desired: Number(m[2]) } : undefined;
}

test('3 managers + 2 workers form from user-data: one leader, two reachable, one cluster id everywhere', async () => {
  const ls = await nodeLs();
  expect(ls).toBeDefined();
  expect(ls!.nodes).toHaveLength(5);
  expect(ls!.nodes.every((n) => n.status === 'Ready')).toBe(true);
  expect(ls!.nodes.map((n) => n.manager).filter((m) => m !== '').sort()).toEqual(['Leader', 'Reachable', 'Reachable']);
  clusterId = (await param('cluster-id'))!;
  expect(clusterId).toMatch(/^[a-z0-9]{10,40}$/);
  for (const m of live('manager')) expect(await clusterIdOn(m.name)).toBe(clusterId);
  await expectManagerAddressesPublished();

  const r = await lab.cli(['deploy', '-f', DEMO_COMPOSE, '--resolve-image', 'never', '--wait', '--timeout', '180'], 240);
  if (r.code !== 0) {
    // The scenarios below need the services whatever the CLI did: deploy the stack on a manager, then report.
    const via = (await nodeLs())!.via;
    await runInHost(lab.state, via, ['docker', 'stack', 'deploy', '-c', DEMO_COMPOSE, '--resolve-image', 'never', 'demo'], { timeoutMs: 120_000 });
  }
  await waitFor('services converged', 180, async () => ((await everyServiceConverged()) ? true : undefined));
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });

  // status: the managers, the leader, each one's reachability, and one more manager failure tolerated.
  const st = await lab.cli(['status', '--json'], 120);
  expect({ code: st.code, stderr: st.stderr }).toMatchObject({ code: 0 });
  const report = JSON.parse(st.stdout) as StatusReport;
  expect(report.managers).toEqual({ managers: 3, reachable: 3, quorum: 2, tolerates: 1, hasQuorum: true, leader: (await leader())!.hostname });
  expect(report.nodes.filter((n) => n.role === 'manager').map((n) => [n.instanceId, n.leader ? 'Leader' : n.reachability]).sort()).toEqual(
    live('manager').map((m) => [m.instanceId, m.hostname === report.managers.leader ? 'Leader' : 'Reachable']).sort(),
  );
  const table = await lab.cli(['status'], 120);
  expect(table.stdout).toContain(`managers: 3 (3 reachable), leader ${report.managers.leader}; quorum 2: tolerates 1 more manager failure`);
});

test('the leader stopped: a new leader within 60 s; status, verify and deploy work; replicas kept; the old leader rejoins when started', async () => {
  const old = await leader();
  const oldInst = live('manager').find((i) => i.hostname === old!.hostname)!;
  // A long-lived connection (an IaC pipeline's) that asks the old leader first (design.md decision 23).
  preferManager(lab.conn, oldInst.instanceId);
  const sentBefore = sentTo().length;
  const t0 = Date.now();
  await stopHost(lab.state, oldInst.name);
  const next = await waitFor('a new leader', 60, async () => {
    const l = await leader();
    return l && l.hostname !== old!.hostname ? l : undefined;
  });
  process.stderr.write(`new leader ${next.hostname} after ${(Date.now() - t0) / 1000}s\n`);

  try {
    // It answers through another manager and never sends the stopped one a command (its SSM agent is not Online).
    expect((await status(lab.conn)).managers.leader).toBe(next.hostname);
    const st = await lab.cli(['status', '--json'], 120);
    expect({ code: st.code, stderr: st.stderr }).toMatchObject({ code: 0 });
    // The stopped leader is still listed (Raft may call it reachable or unknown for a while): 3 managers, new leader.
    expect((JSON.parse(st.stdout) as StatusReport).managers).toMatchObject({ managers: 3, quorum: 2, hasQuorum: true, leader: next.hostname });
    const v = await lab.cli(['verify', '--timeout', '120'], 180);
    expect({ code: v.code, stderr: v.stderr }).toMatchObject({ code: 0 });
    const d = await lab.cli(['deploy', '-f', DEMO_COMPOSE, '--resolve-image', 'never', '--wait', '--timeout', '180'], 240);
    expect({ code: d.code, stderr: d.stderr }).toMatchObject({ code: 0 });
    const report = await status(lab.conn);
    expect(service(report, 'demo_web')).toMatchObject({ desired: 6, running: 6 });
    expect(sentTo().slice(sentBefore).filter((ids) => ids.includes(oldInst.instanceId))).toEqual([]);
  } finally {
    // The next scenarios need the whole cluster, whatever the ops side did.
    await startHost(lab.state, oldInst.name);
  }
  await waitFor('the old leader Reachable again', 120, async () => {
    const n = (await nodeLs())?.nodes.find((x) => x.hostname === old!.hostname);
    return n?.status === 'Ready' && (n.manager === 'Reachable' || n.manager === 'Leader') ? true : undefined;
  });
  expect(await clusterIdOn(oldInst.name)).toBe(clusterId);
});

test('a worker stopped and started rejoins (its membership was kept)', async () => {
  const w = live('worker')[0];
  await stopHost(lab.state, w.name);
  await waitFor(`${w.name} Down`, 90, async () => ((await nodeLs())?.nodes.find((n) => n.hostname === w.hostname)?.status === 'Down' ? true : undefined));
  await startHost(lab.state, w.name);
  await waitFor(`${w.name} Ready again`, 120, async () => ((await nodeLs())?.nodes.find((n) => n.hostname === w.hostname)?.status === 'Ready' ? true : undefined));
  expect((await nodeLs())!.nodes.filter((n) => n.hostname === w.hostname)).toHaveLength(1);
  await waitFor('services converged', 120, async () => ((await everyServiceConverged()) ? true : undefined));
});

test('a worker terminated in its group is drained and replaced; the new one joins; its predecessor is pruned', async () => {
  const victim = live('worker')[1];
  expect(await nodeOfInstance(victim.instanceId)).toBeDefined();
  await terminateInstance(lab.state, victim.name);
  await waitForInstances(lab.state, `${victim.name} terminated after its lifecycle action`, (all) => all.find((i) => i.instanceId === victim.instanceId && i.state === 'terminated'), 240_000);
  const replacement = await waitForInstances(lab.state, 'a replacement worker', (all) => all.find((i) => i.role === 'worker' && i.state === 'running' && i.launchTime > victim.launchTime && i.instanceId !== victim.instanceId), 120_000);
  await waitFor('the replacement Ready', 240, async () => ((await nodeOfInstance(replacement.instanceId))?.status === 'Ready' ? true : undefined));
  await waitFor('the predecessor pruned', 180, async () => ((await nodeOfInstance(victim.instanceId)) === undefined ? true : undefined));
  expect((await nodeLs())!.nodes).toHaveLength(5);
  await waitFor('services converged', 120, async () => ((await everyServiceConverged()) ? true : undefined));
});

test('a worker scaled in is drained (its tasks run elsewhere) before it leaves', async () => {
  const before = live('worker').map((w) => w.instanceId);
  await scaleWorkers(lab.state, 1);
  const leaving = await waitForInstances(lab.state, 'a worker in Terminating:Wait', (all) => all.find((i) => before.includes(i.instanceId) && i.lifecycleState?.startsWith('Terminating')), 60_000);
  let sawDrain = false;
  let worstGapS = 0;
  let gapStart: number | undefined;
  await waitFor(`${leaving.name} terminated`, 300, async () => {
    const n = await nodeOfInstance(leaving.instanceId);
    const inst = labInstances(lab.state).find((i) => i.instanceId === leaving.instanceId)!;
    if (n?.availability === 'Drain' && inst.state === 'running') sawDrain = true;
    const web = await replicas('demo_web');
    if (!web || web.running < web.desired) gapStart ??= Date.now();
    else if (gapStart !== undefined) {
      worstGapS = Math.max(worstGapS, (Date.now() - gapStart) / 1000);
      gapStart = undefined;
    }
    return inst.state === 'terminated' ? true : undefined;
  });
  expect(sawDrain).toBe(true);
  expect(worstGapS).toBeLessThanOrEqual(20); // no replica missing for longer than a task restart
  await waitFor('services converged on the remaining worker and managers', 120, async () => ((await everyServiceConverged()) ? true : undefined));
  await waitFor('the scaled-in node pruned', 180, async () => ((await nodeOfInstance(leaving.instanceId)) === undefined ? true : undefined));
});

test('a manager terminated in its group is replaced; the new one joins as a manager; the stale member is removed; quorum kept', async () => {
  const l = await leader();
  const victim = live('manager').find((m) => m.hostname !== l!.hostname)!;
  await terminateInstance(lab.state, victim.name);
  await waitForInstances(lab.state, `${victim.name} terminated`, (all) => all.find((i) => i.instanceId === victim.instanceId && i.state === 'terminated'), 240_000);
  const replacement = await waitForInstances(lab.state, 'a replacement manager', (all) => all.find((i) => i.role === 'manager' && i.state === 'running' && i.instanceId !== victim.instanceId && i.launchTime > victim.launchTime), 120_000);
  await waitFor('the replacement a Reachable manager', 300, async () => {
    const n = await nodeOfInstance(replacement.instanceId);
    return n?.status === 'Ready' && (n.manager === 'Reachable' || n.manager === 'Leader') ? true : undefined;
  });
  await waitFor('the stale manager removed', 180, async () => ((await nodeOfInstance(victim.instanceId)) === undefined ? true : undefined));
  const ls = (await nodeLs())!;
  expect(ls.nodes.map((n) => n.manager).filter((m) => m !== '').sort()).toEqual(['Leader', 'Reachable', 'Reachable']);
  expect(await clusterIdOn(replacement.name)).toBe(clusterId);
  await expectManagerAddressesPublished();
});

test('join tokens rotated: a new worker joins with the new token; the old one is refused', async () => {
  const oldToken = (await param('worker-token'))!;
  const oldManagerToken = (await param('manager-token'))!;
  const l = await leader();
  const leaderInstance = live('manager').find((m) => m.hostname === l!.hostname)!;

  const r = await lab.cli(['rotate-tokens', '--json'], 180);
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
  expect(JSON.parse(r.stdout)).toMatchObject({ rotated: ['worker', 'manager'], instanceId: leaderInstance.instanceId, leader: true, parameters: [`${PREFIX}/worker-token`, `${PREFIX}/manager-token`] });
  expect(r.stdout + r.stderr).not.toMatch(/S[W]MTKN-\d-/);
  // Published: both parameters hold the swarm's current tokens, and both changed.
  const current = async (role: string) => (await runInHost(lab.state, leaderInstance.name, ['docker', 'swarm', 'join-token', '-q', role], { timeoutMs: 30_000 })).stdout.trim();
  expect(await param('worker-token')).not.toBe(oldToken);
  expect(await param('manager-token')).not.toBe(oldManagerToken);
  expect(await param('worker-token')).toBe(await current('worker'));
  expect(await param('manager-token')).toBe(await current('manager'));

  await scaleWorkers(lab.state, 2);
  const added = await waitForInstances(lab.state, 'a new worker', (all) => (all.filter((i) => i.role === 'worker' && i.state === 'running').length === 2 ? all.filter((i) => i.role === 'worker' && i.state === 'running').sort((a, b) => b.launchTime.localeCompare(a.launchTime))[0] : undefined), 120_000);
  await waitFor('the new worker Ready', 240, async () => ((await nodeOfInstance(added.instanceId))?.status === 'Ready' ? true : undefined));

  // The old token, offered by a node that is not in the swarm (the new worker, after leaving), is refused.
  expect((await runInHost(lab.state, added.name, ['docker', 'swarm', 'leave', '--force'], { timeoutMs: 60_000 })).exitCode).toBe(0);
  const manager = live('manager')[0];
  const tryOld = await runInHost(lab.state, added.name, ['sh', '-c', 'read -r t; timeout 60 docker swarm join --token "$t" "$1:2377" 2>&1; echo "exit $?"', 'join', manager.ip], { timeoutMs: 90_000, stdin: `${oldToken}\n` });
  expect(tryOld.stdout).toMatch(/valid join token is necessary|invalid join token/i);
  expect(tryOld.stdout).not.toMatch(/exit 0/);
});

test('a majority of managers lost: status and rotate-tokens say so (exit 1, nothing changed); the managers started again restore the quorum', async () => {
  const l = await leader();
  const survivor = live('manager').find((m) => m.hostname === l!.hostname)!;
  const others = live('manager').filter((m) => m.name !== survivor.name);
  const token = await param('worker-token');
  for (const m of others) await stopHost(lab.state, m.name);
  try {
    await waitFor('the survivor without a leader', 120, async () => {
      const r = await runInHost(lab.state, survivor.name, ['docker', 'node', 'ls', '-q'], { timeoutMs: 30_000 }).catch(() => undefined);
      return r && r.exitCode !== 0 && /does not have a leader/.test(r.stderr) ? true : undefined;
    });
    const st = await lab.cli(['status', '--timeout', '120'], 180);
    expect({ code: st.code, stderr: st.stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(/no leader[\s\S]*a majority of managers is lost/) });
    const rot = await lab.cli(['rotate-tokens'], 180);
    expect({ code: rot.code, stderr: rot.stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(/no leader/) });
    expect(await param('worker-token')).toBe(token);
  } finally {
    for (const m of others) await startHost(lab.state, m.name);
  }
  await waitFor('3 managers with a leader again', 240, async () => {
    const ls = await nodeLs();
    const roles = ls?.nodes.map((n) => n.manager).filter((m) => m !== '').sort();
    return roles && roles.join(',') === 'Leader,Reachable,Reachable' ? true : undefined;
  });
  const st = await lab.cli(['status', '--json'], 120);
  expect({ code: st.code, stderr: st.stderr }).toMatchObject({ code: 0 });
  expect((JSON.parse(st.stdout) as StatusReport).managers).toMatchObject({ managers: 3, hasQuorum: true });
  // The managers that booted during the lost majority run their reconciler again (their boot waited for a leader).
  for (const m of others) {
    await waitFor(`${m.name}'s reconciler running`, 240, async () =>
      (await runInHost(lab.state, m.name, ['sh', '-c', 'kill -0 "$(cat /run/ec2-swarm-reconciler.pid)"'], { timeoutMs: 15_000 })).exitCode === 0 ? true : undefined,
    );
  }
});

test('one swarm, ever: the same cluster id on every manager and in SSM; `swarm init` ran once in all logs; no token in any log', async () => {
  expect(await param('cluster-id')).toBe(clusterId);
  for (const m of live('manager')) expect(await clusterIdOn(m.name)).toBe(clusterId);
  const inits = labInstances(lab.state)
    .filter((i) => i.role === 'manager')
    .map((i) => {
      try {
        return readFileSync(`${LAB.labDir}/logs/${i.name}-cloud-init-output.log`, 'utf8').split('initialising the swarm').length - 1;
      } catch {
        return 0;
      }
    })
    .reduce((a, b) => a + b, 0);
  expect(inits).toBe(1);
  expect(findJoinTokens(lab.state, lab.outputs).leaks).toEqual([]);
});
