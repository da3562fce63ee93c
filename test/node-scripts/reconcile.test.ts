/**
 * reconcile.sh --once against the stand-ins: observation (docker node inspect/ps, Auto Scaling, EC2), the decision
 * and the idempotent actions, on a formed fake swarm. The decision rules themselves are in decide.test.ts.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { params } from './helpers';
import { FakeCloud, FakeNode, swarmEnv } from './stubs/sandbox';
import { readJson, writeJson } from './stubs/tools';

// A shared 2-core machine can make one role-script run take tens of seconds (each stand-in call starts node).
jest.setTimeout(240_000);

const P = params('demo');
const M1 = 'i-0000000000000000a';
const M2 = 'i-0000000000000000b';
const W1 = 'i-0000000000000001a';

interface SwarmNode {
  id: string;
  role: string;
  addr: string;
  status: string;
  availability: string;
  runningTasks: number;
}

describe('reconcile.sh --once', () => {
  let cloud: FakeCloud;
  let m1: FakeNode;
  let m2: FakeNode;
  beforeAll(async () => {
    cloud = await FakeCloud.create();
    m1 = await cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: M1 });
    m2 = await cloud.addNode({ name: 'm2', ip: '10.0.1.21', instanceId: M2 });
    const w1 = await cloud.addNode({ name: 'w1', ip: '10.0.2.30', instanceId: W1 });
    expect((await m1.run([m1.script('manager.sh')], swarmEnv('demo'))).code).toBe(0);
    expect((await m2.run([m2.script('manager.sh')], swarmEnv('demo'))).code).toBe(0);
    expect((await w1.run([w1.script('worker.sh')], swarmEnv('demo'))).code).toBe(0);
    for (const id of [M1, M2]) cloud.setInstance(id, { state: 'running', group: 'ec2-swarm-demo-managers' });
  }, 240_000);
  afterAll(async () => {
    await cloud.close();
  });

  const file = () => path.join(cloud.dir, 'swarms.json');
  const nodes = (): SwarmNode[] => Object.values(readJson<Record<string, { nodes: SwarmNode[] }>>(file(), {}))[0].nodes;
  const worker = () => nodes().find((n) => n.addr === '10.0.2.30:2377');
  function editWorker(change: (n: SwarmNode) => void): void {
    const all = readJson<Record<string, { nodes: SwarmNode[] }>>(file(), {});
    const s = Object.values(all)[0];
    change(s.nodes.find((n) => n.addr === '10.0.2.30:2377')!);
    writeJson(file(), all);
  }
  const once = (node: FakeNode) => node.run([node.script('reconcile.sh'), '--once'], swarmEnv('demo'));
  const mutations = (node: string) => cloud.calls('docker', node).filter((c) => c.argv[0] === 'node' && ['update', 'demote', 'rm'].includes(c.argv[1]));

  test('a manager that is not the leader observes nothing further and changes nothing', async () => {
    cloud.setInstance(W1, { state: 'running', group: 'ec2-swarm-demo-workers', lifecycle: 'Terminating:Wait' });

    const res = await once(m2);

    expect(res.code).toBe(0);
    expect(mutations('m2')).toEqual([]);
    expect(cloud.calls('aws', 'm2').filter((c) => c.argv[0] !== 'ssm')).toEqual([]);
    expect(worker()!.availability).toBe('active');
  });

  test('the leader drains a worker whose instance is Terminating:Wait, waits for its tasks, then completes the lifecycle action', async () => {
    editWorker((n) => (n.runningTasks = 2));

    const first = await once(m1);
    expect(first.code).toBe(0);
    expect(worker()!.availability).toBe('drain');
    expect(cloud.completedLifecycleActions()).toEqual([]);

    const second = await once(m1);
    expect(second.stderr).toContain('drained; 2 task(s) still running');
    expect(cloud.completedLifecycleActions()).toEqual([]);

    editWorker((n) => (n.runningTasks = 0));
    const third = await once(m1);
    expect(third.code).toBe(0);
    expect(cloud.completedLifecycleActions()).toEqual([{ instanceId: W1, group: 'ec2-swarm-demo-workers', hook: 'ec2-swarm-drain', result: 'CONTINUE' }]);
    // Every AWS call was bounded and named the region; the observation asked only for the swarm's instances.
    const asg = cloud.calls('aws', 'm1').filter((c) => c.argv[1] === 'describe-auto-scaling-instances');
    expect(asg.length).toBeGreaterThan(0);
    expect(asg[0].argv.slice(asg[0].argv.indexOf('--instance-ids') + 1, asg[0].argv.indexOf('--instance-ids') + 4).sort()).toEqual([M1, M2, W1].sort());
  });

  test('once the instance is gone and the node Down, the leader removes the node; manager-addresses is republished', async () => {
    cloud.putParameter(P.addresses, 'String', '10.0.1.99:2377');
    editWorker((n) => (n.status = 'down'));
    cloud.setInstance(W1, { state: 'terminated' });

    const res = await once(m1);

    expect(res.code).toBe(0);
    expect(worker()).toBeUndefined();
    expect(cloud.parameters()[P.addresses].Value).toBe('10.0.1.20:2377,10.0.1.21:2377');
    expect(res.stderr).toContain('removed');
  });

  test('a second pass with nothing to do changes nothing and writes no parameter', async () => {
    const before = cloud.parameters()[P.addresses].Version;
    const calls = mutations('m1').length;

    const res = await once(m1);

    expect(res.code).toBe(0);
    expect(mutations('m1')).toHaveLength(calls);
    expect(cloud.parameters()[P.addresses].Version).toBe(before);
  });

  test('--stop (teardown) stops the loop: systemd stops its unit; without systemd the PID file\'s reconciler is killed', async () => {
    const stop = (node: FakeNode) => node.run([node.script('reconcile.sh'), '--stop'], swarmEnv('demo'));
    expect((await stop(m1)).code).toBe(0);
    expect(cloud.calls('systemctl', 'm1').map((c) => c.argv)).toContainEqual(['stop', 'ec2-swarm-reconciler.service']);

    // No systemd (the lab): a process whose command line names reconcile.sh, recorded in the PID file.
    fs.rmSync(path.join(m2.dir, 'run/systemd'), { recursive: true, force: true });
    const loop = spawn('/bin/bash', ['-c', 'exec -a reconcile.sh sleep 300'], { stdio: 'ignore' });
    const gone = new Promise<NodeJS.Signals | null>((r) => loop.on('exit', (_c, sig) => r(sig)));
    const pidFile = path.join(m2.runDir, 'ec2-swarm-reconciler.pid');
    try {
      await new Promise((r) => setTimeout(r, 200)); // the exec has happened: its command line names reconcile.sh
      fs.writeFileSync(pidFile, `${loop.pid}\n`);
      const r = await stop(m2);
      expect(r.code).toBe(0);
      expect(await gone).toBe('SIGTERM');
      expect(fs.existsSync(pidFile)).toBe(false);
    } finally {
      loop.kill('SIGKILL');
    }
  });

  test('usage: an unknown flag exits 2', async () => {
    const res = await m1.run([m1.script('reconcile.sh'), '--bogus'], swarmEnv('demo'));
    expect(res.code).toBe(2);
  });
});
