import { randomBytes } from 'node:crypto';
import { status } from '../../../lib/ops/status';
import { verify } from '../../../lib/ops/verify';
import { querySwarm } from '../../../lib/ops/swarm/query';
import type { SwarmSnapshot, SnapshotTask } from '../../../lib/ops/swarm/snapshot';
import { gzipSync } from 'node:zlib';
import { QUERY_MAGIC } from '../../../lib/ops/swarm/query-script';
import { BashRunner, FakeRunner, SSM_STDOUT_CAP, StubHost, environmentError, isQuery, makeCtx, queryStdout, sameStdout, fixture } from './harness';

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

  test('verify on 500 services: after the first look, a look that finds nothing changed is one call of a few bytes (the difference)', async () => {
    host.load(bigSwarm(500));
    const runner = new BashRunner(host);
    // No wait on the manager (long poll 0): the second look answers at once; the test clock moves 2 s per look.
    const ctx = makeCtx({
      run: async (ids, script, o) => {
        const r = await runner.run(ids, script, o);
        if (isQuery(script)) await ctx.sleep!(2000);
        return r;
      },
    });
    const result = await verify(ctx, { timeoutSeconds: 3, longPollSeconds: 0 });
    expect(result.converged).toBe(false);
    const polls = ctx.reporter.lines.filter((l) => l.startsWith('progress')).length;
    expect(polls).toBe(2);
    expect(runner.calls.filter((c) => isQuery(c.script))).toHaveLength(2);
    expect(runner.rawStdoutLengths.at(-1)).toBeLessThan(400);
    // Judged on the same snapshot: the short service is still reported exactly.
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
    const bash = new BashRunner(host);
    // A transport that keeps less than a page (20,000 characters of the 24,000-character pages asked for).
    const runner = { run: async (...a: Parameters<BashRunner['run']>) => (await bash.run(...a)).map((r) => ({ ...r, stdout: r.stdout.slice(0, 20000) })) };
    await expect(querySwarm(makeCtx(runner), 23000)).rejects.toMatchObject({ code: 'QUERY_OUTPUT_INVALID', fault: 'environment' });
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

describe('state query: answers that refer to what the operator holds (design.md decision 21)', () => {
  const FP = 'c'.repeat(32);
  const text = fixture('query-basic.txt');
  const held = async () => {
    const r = await querySwarm(makeCtx(new FakeRunner(() => ({ stdout: queryStdout(text, FP) }))), { watch: { maxWaitMs: 0 } });
    if (!r.active) throw new Error('expected an active swarm');
    return r.held;
  };

  test('"same at T": the snapshot held, judged at the manager\'s time T', async () => {
    const previous = await held();
    const at = previous.snapshot.nowMs + 5000;
    const r = await querySwarm(makeCtx(new FakeRunner(() => ({ stdout: sameStdout(FP, at) }))), { watch: { since: FP, maxWaitMs: 5000 }, previous });
    expect(r).toMatchObject({ active: true, unchanged: true, fingerprint: FP });
    if (!r.active) throw new Error('expected an active swarm');
    expect(r.snapshot).toEqual({ ...previous.snapshot, nowMs: at });
  });

  test('"same" for another fingerprint, or with no snapshot held, is refused (exit 3), never taken for a state', async () => {
    const previous = await held();
    const other = new FakeRunner(() => ({ stdout: sameStdout('d'.repeat(32), previous.snapshot.nowMs + 5000) }));
    await expect(querySwarm(makeCtx(other), { watch: { since: FP, maxWaitMs: 0 }, previous })).rejects.toMatchObject({ code: 'QUERY_OUTPUT_INVALID', fault: 'environment' });
    const orphan = new FakeRunner(() => ({ stdout: sameStdout(FP, 1) }));
    await expect(querySwarm(makeCtx(orphan), { watch: { since: FP, maxWaitMs: 0 } })).rejects.toMatchObject({ code: 'QUERY_OUTPUT_INVALID' });
  });

  test('a difference from a snapshot not held, or a text that does not match its digest, is refused', async () => {
    const previous = await held();
    const delta = (base: string, md5: string) => {
      const payload = gzipSync('1d\n').toString('base64');
      return new FakeRunner(() => ({ stdout: `${QUERY_MAGIC} - ${payload.length} ${FP} 0 1 ${md5} ${base}\n${payload}\n` }));
    };
    const opts = { watch: { since: FP, maxWaitMs: 0 }, previous };
    await expect(querySwarm(makeCtx(delta('e'.repeat(32), 'f'.repeat(32))), opts)).rejects.toThrow(/not held/);
    await expect(querySwarm(makeCtx(delta(previous.md5, 'f'.repeat(32))), opts)).rejects.toThrow(/does not match its digest/);
    const wrong = queryStdout(text, FP).replace(previous.md5, 'f'.repeat(32));
    await expect(querySwarm(makeCtx(new FakeRunner(() => ({ stdout: wrong }))), { watch: { maxWaitMs: 0 } })).rejects.toThrow(/does not match its digest/);
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
