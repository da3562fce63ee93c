import { randomBytes } from 'node:crypto';
import { status } from '../../../lib/ops/status';
import { verify } from '../../../lib/ops/verify';
import { querySwarm } from '../../../lib/ops/swarm/query';
import type { SwarmSnapshot, SnapshotTask } from '../../../lib/ops/swarm/snapshot';
import { BashRunner, FakeRunner, SSM_STDOUT_CAP, StubHost, environmentError, isQuery, makeCtx, queryStdout, fixture } from './harness';

const id25 = (): string => Array.from(randomBytes(25), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
/** 63 characters, the longest name Docker allows, random so that gzip cannot shrink them away. */
const longName = (i: number): string => `svc${String(i).padStart(3, '0')}-${id25()}${id25()}`.slice(0, 63).replace(/[^a-z0-9]$/, 'x');

function bigSwarm(services: number): SwarmSnapshot {
  const nodes = [0, 1, 2].map((i) => ({ id: id25(), role: i === 0 ? 'manager' : 'worker', availability: 'active', state: 'ready', leader: i === 0, address: `10.0.0.${i + 10}`, hostname: `ip-10-0-0-${i + 10}.ec2.internal`, reachability: i === 0 ? 'reachable' : '-', instanceId: `i-0000000000000000${i}` }));
  const svcs = Array.from({ length: services }, (_, i) => ({
    id: id25(),
    name: longName(i),
    mode: 'replicated' as const,
    specCount: 3,
    updateState: '',
    updateMessage: '',
    image: `registry.example.com/team/app-${i}:1.0.${i}`,
    version: 10 + i,
    monitorMs: 0,
    updatedAtMs: 1795541000000,
    updateStartedMs: 0,
  }));
  const tasks: SnapshotTask[] = [];
  svcs.forEach((s, i) => {
    for (let slot = 1; slot <= 3; slot++) {
      // Service 7 is short: slot 3 cannot start; its history shows why.
      const broken = i === 7 && slot === 3;
      tasks.push({ serviceId: s.id, slot, nodeId: nodes[slot - 1].id, desired: broken ? 'ready' : 'running', state: broken ? 'rejected' : 'running', timestamp: (1795541736 + i) * 1000, error: broken ? 'No such image: registry.example.com/team/app-7:1.0.7' : '', createdMs: (1795541735 + i) * 1000, current: true });
    }
  });
  const replicas = new Map(svcs.map((s, i) => [s.name, { running: i === 7 ? 2 : 3, desired: 3 }]));
  return { nowMs: 1795543000000, nodes, services: svcs, replicas, tasks };
}

describe('state query: the real script under bash, stdout cut at 24,000 characters like SSM', () => {
  let host: StubHost;
  beforeEach(() => { host = new StubHost(); });
  afterEach(() => host.cleanup());

  test('500 services with 63-character names: status is complete and exact, every page fits the cap', async () => {
    const swarm = bigSwarm(500);
    host.load(swarm);
    const runner = new BashRunner(host);
    const report = await status(makeCtx(runner));
    expect(report.services).toHaveLength(500);
    expect(report.nodes).toHaveLength(3);
    expect(new Set(report.services.map((s) => s.name))).toEqual(new Set(swarm.services.map((s) => s.name)));
    const short = report.services.filter((s) => s.running !== s.desired);
    expect(short.map((s) => [s.name, s.running, s.desired, s.lastError])).toEqual([[swarm.services[7].name, 2, 3, 'No such image: registry.example.com/team/app-7:1.0.7']]);
    // Paged, and nothing was ever cut: the transport saw every character the script printed.
    expect(runner.calls.length).toBeGreaterThan(1);
    expect(Math.max(...runner.rawStdoutLengths)).toBeLessThanOrEqual(SSM_STDOUT_CAP);
    // The snapshot file is removed after the last page.
    expect(require('node:fs').readdirSync(`${host.dir}/run`)).toEqual([]);
  });

  test('verify on 500 services: a constant number of runner calls per poll, whatever the state', async () => {
    host.load(bigSwarm(500));
    const runner = new BashRunner(host);
    // The stub's clock stands still, so each long poll ends after its bound of steps (0.2 s); the test clock moves
    // 2 s per look.
    const ctx = makeCtx({
      run: async (ids, script, o) => {
        const r = await runner.run(ids, script, o);
        if (isQuery(script)) await ctx.sleep!(2000);
        return r;
      },
    });
    const result = await verify(ctx, { timeoutSeconds: 3, longPollSeconds: 0.2 });
    expect(result.converged).toBe(false);
    const polls = ctx.reporter.lines.filter((l) => l.startsWith('progress')).length;
    expect(polls).toBe(2);
    expect(runner.calls.length % polls).toBe(0);
    expect(ctx.reporter.lines.at(-1)).toMatch(/^progress verify: 499\/500 services converged, 1499\/1500 tasks running/);
  }, 120_000);

  test('a small swarm answers in one call', async () => {
    host.load(bigSwarm(5));
    const runner = new BashRunner(host);
    const r = await querySwarm(makeCtx(runner));
    expect(r.calls).toBe(1);
    expect(runner.calls).toHaveLength(1);
  });

  test('if the transport cuts a page anyway, the query fails instead of reporting a partial swarm', async () => {
    host.load(bigSwarm(500));
    const runner = new BashRunner(host);
    // Pages larger than the cap: the first one is cut by the "SSM" runner.
    await expect(querySwarm(makeCtx(runner), 30000)).rejects.toMatchObject({ code: 'QUERY_OUTPUT_INVALID', fault: 'environment' });
  });

  test('the query script selects live tasks and each slot\'s newest one, not the whole history', async () => {
    host.load(bigSwarm(2));
    // Slot 1 of service 0 has two old tasks (shut down) listed after the current one, newest first.
    const ps = require('node:fs').readFileSync(`${host.dir}/ps`, 'utf8') as string;
    const first = ps.split('\n')[0].split(' ');
    host.write('ps', `${ps}old1 ${first[1]} Shutdown\nold2 ${first[1]} Shutdown\n`);
    await querySwarm(makeCtx(new BashRunner(host)));
    const inspected = host.calls().find((a) => a[0] === 'inspect')!;
    expect(inspected).not.toContain('old1');
    expect(inspected.filter((a) => a.startsWith('task0'))).toHaveLength(6);
  });
});

describe('state query: swarm state lines', () => {
  test('a manager that left the swarm is reported, not parsed as an empty swarm', async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE inactive false\n' }));
    await expect(status(makeCtx(runner))).rejects.toMatchObject({ code: 'NOT_A_SWARM_MANAGER', fault: 'cluster' });
  });

  test('the fixture round-trips through the wire format', async () => {
    const runner = new FakeRunner(() => ({ stdout: queryStdout(fixture('query-basic.txt')) }));
    const r = await status(makeCtx(runner));
    expect(r.services.map((s) => s.name)).toEqual(['agent', 'broken', 'once', 'pinned', 'web']);
  });
});

describe('state query: through any healthy manager', () => {
  const NO_LEADER =
    "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.\n";
  const three = { cluster: { name: 'demo', region: 'eu-west-1', managerInstanceIds: ['i-0a', 'i-0b', 'i-0c'], parameterPrefix: '/ec2-swarm/demo' } };

  test('the real script: a manager without a leader reports no-quorum (its `docker info` still says active true)', async () => {
    const host = new StubHost();
    try {
      host.load(bigSwarm(1));
      host.write('node-ls-error', NO_LEADER);
      const r = await querySwarm(makeCtx(new BashRunner(host)));
      expect(r).toMatchObject({ active: false, state: 'no-quorum' });
      // Nothing after the check ran: no service or task calls on a manager that cannot answer them.
      expect(host.calls().map((a) => `${a[0]} ${a[1]}`)).toEqual(['info --format', 'node ls']);
    } finally {
      host.cleanup();
    }
  });

  test('no quorum on every manager → exit 1 naming the runbook; every manager was asked', async () => {
    const noQuorum = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE no-quorum\n' }));
    const e = await status(makeCtx(noQuorum, three)).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'NO_QUORUM', fault: 'cluster', exitCode: 1 });
    expect((e as Error).message).toMatch(/no leader.*majority.*README runbook "a majority of managers is lost"/s);
    expect(noQuorum.calls.map((c) => c.instanceIds[0])).toEqual(['i-0a', 'i-0b', 'i-0c']);
  });

  test('the first manager left the swarm, the second fails, the third has the state: status comes from the third, and the next query asks it first', async () => {
    const runner = new FakeRunner((_s, id) =>
      id === 'i-0a' ? { stdout: 'EC2SWARM-STATE inactive false\n' } : id === 'i-0b' ? { exitCode: 1, stderr: 'docker node ls failed or did not answer within 60 s\n' } : { stdout: queryStdout(fixture('query-ha-3-managers.txt')) },
    );
    const ctx = makeCtx(runner, three);
    const r = await status(ctx);
    expect(r.managers).toMatchObject({ managers: 3, tolerates: 1 });
    expect(runner.calls.map((c) => c.instanceIds[0])).toEqual(['i-0a', 'i-0b', 'i-0c']);
    await status(ctx);
    expect(runner.calls.map((c) => c.instanceIds[0]).slice(3)).toEqual(['i-0c']);
  });

  test('one manager without quorum and one that left: the no-quorum answer is the one reported', async () => {
    const runner = new FakeRunner((_s, id) => ({ stdout: id === 'i-0b' ? 'EC2SWARM-STATE no-quorum\n' : 'EC2SWARM-STATE inactive false\n' }));
    await expect(status(makeCtx(runner, three))).rejects.toMatchObject({ code: 'NO_QUORUM' });
  });

  test('none reachable → the transport error (exit 3)', async () => {
    const runner = new FakeRunner(() => environmentError());
    await expect(status(makeCtx(runner, three))).rejects.toMatchObject({ fault: 'environment' });
    expect(runner.calls).toHaveLength(3);
  });
});

test('after an answer without the state, managers whose SSM agent is not Online are skipped, not waited for', async () => {
  const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE no-quorum\n' }));
  const ctx = makeCtx(runner, {
    cluster: { name: 'demo', region: 'eu-west-1', managerInstanceIds: ['i-0a', 'i-0b', 'i-0c'], parameterPrefix: '/ec2-swarm/demo' },
    cloud: { listOnlineManagerInstanceIds: async () => ['i-0a', 'i-0c'] },
  });
  await expect(status(ctx)).rejects.toMatchObject({ code: 'NO_QUORUM' });
  expect(runner.calls.map((c) => c.instanceIds[0])).toEqual(['i-0a', 'i-0c']);
});
