/** verify's loop: the stability window paid once for all services together; hopeless services stop it early. */
import { EXPECT_EARLY_MS, verify } from '../../lib/ops/verify';
import type { SnapshotTask, SwarmSnapshot } from '../../lib/ops/swarm/snapshot';
import { FakeRunner, isQuery, makeCtx, queryStdout, sameStdout, snapshotText, watchParams } from './swarm/harness';

const BASE = 1_800_000_000_000;
const NODE = 'm'.repeat(25);

/** Ten services of two replicas whose tasks all started running at BASE; the manager clock follows the test clock. */
function tenServices(nowMs: number, extraTasks: SnapshotTask[] = []): SwarmSnapshot {
  const services = Array.from({ length: 10 }, (_, i) => ({
    id: `svc${i}`, name: `app_s${i}`, mode: 'replicated' as const, specCount: 2, updateState: '', updateMessage: '', image: 'app:1',
    version: 5, monitorMs: 0, updatedAtMs: BASE - 1000, updateStartedMs: 0,
  }));
  const tasks = services.flatMap((s) => [1, 2].map((slot): SnapshotTask => ({ serviceId: s.id, slot, nodeId: NODE, desired: 'running', state: 'running', timestamp: BASE, error: '', createdMs: BASE - 1000, current: true })));
  return {
    nowMs,
    nodes: [{ id: NODE, role: 'manager', availability: 'active', state: 'ready', leader: true, address: '10.0.0.1', hostname: 'm', reachability: 'reachable', instanceId: 'i-0123456789abcdef0' }],
    services,
    replicas: new Map(),
    tasks: [...tasks, ...extraTasks],
  };
}

test('10 services × 2 replicas that just started: converged once the 5 s window has passed, not 10 × 5 s', async () => {
  let ctxNow = () => 0;
  const runner = new FakeRunner((script) => (isQuery(script) ? { stdout: queryStdout(snapshotText(tenServices(BASE + ctxNow()))) } : new Error('unexpected')));
  const ctx = makeCtx(runner);
  ctxNow = ctx.now as () => number;
  const r = await verify(ctx, { timeoutSeconds: 60 });
  expect(r.converged).toBe(true);
  expect(r.elapsedSeconds).toBeGreaterThanOrEqual(5);
  expect(r.elapsedSeconds).toBeLessThan(6);
  // Never passed on a poll where the tasks were younger than the window.
  expect(runner.calls.length).toBeGreaterThanOrEqual(3);
});

test('a crash-looping service stops verify at once with the reason; the others do not hold it', async () => {
  const loop: SnapshotTask[] = [3, 9, 15].map((ago) => ({ serviceId: 'svc0', slot: 1, nodeId: NODE, desired: 'shutdown', state: 'complete', timestamp: BASE - ago * 1000, error: '', createdMs: BASE - ago * 1000 - 3000, current: true }));
  const runner = new FakeRunner(() => ({ stdout: queryStdout(snapshotText(tenServices(BASE + 1000, loop))) }));
  const r = await verify(makeCtx(runner), { timeoutSeconds: 300 });
  expect(r).toMatchObject({ converged: false, failedFast: true });
  expect(runner.calls).toHaveLength(1);
  expect(r.services.find((s) => s.name === 'app_s0')).toMatchObject({ convergence: 'failed', reason: 'tasks keep failing (3 in a row): the container exited' });
});

test('a service asked for by name that does not exist is not converged (never silently dropped)', async () => {
  const runner = new FakeRunner(() => ({ stdout: queryStdout(snapshotText(tenServices(BASE + 60_000))) }));
  const r = await verify(makeCtx(runner), { timeoutSeconds: 2, services: ['app_s1', 'app_nosuch'] });
  expect(r.converged).toBe(false);
  expect(r.services.map((s) => [s.name, s.convergence, s.reason])).toEqual([
    ['app_nosuch', 'converging', 'service not found'],
    ['app_s1', 'converged', undefined],
  ]);
});

describe('the long poll (design.md decision 19): the manager waits, the operator does not sleep', () => {
  const FP1 = 'a'.repeat(32);
  const FP2 = 'b'.repeat(32);

  /**
   * A manager stand-in on the test clock: a watch query whose `since` is the current state's fingerprint waits
   * (advances the clock) until its wake-up time or its bound, and answers "same" if the state is still that one at
   * the wake-up; the state is `stateAt(managerNow)`.
   */
  function manager(stateAt: (nowMs: number) => { snap: SwarmSnapshot; fp: string }) {
    const ctxRef: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {};
    const runner = new FakeRunner((script) => {
      const w = watchParams(script);
      if (!w) return new Error('not a watch query');
      const managerNow = (): number => BASE + ctxRef.now!();
      if (w.since === stateAt(managerNow()).fp) {
        const end = Math.min(managerNow() + w.maxWaitMs, w.wakeMs > 0 ? w.wakeMs : Infinity);
        const advance = Math.max(0, end - managerNow());
        void ctxRef.sleep!(advance); // the fake sleep advances the clock synchronously
        if (w.wakeMs > 0 && managerNow() >= w.wakeMs && stateAt(managerNow()).fp === w.since) return { stdout: sameStdout(w.since, managerNow()) };
      }
      const { snap, fp } = stateAt(managerNow());
      return { stdout: queryStdout(snapshotText(snap), fp) };
    });
    const sleeps: number[] = [];
    const ctx = makeCtx(runner);
    ctxRef.now = ctx.now;
    ctxRef.sleep = ctx.sleep;
    return { runner, ctx: { ...ctx, sleep: async (ms: number) => { sleeps.push(ms); await ctxRef.sleep!(ms); } }, sleeps };
  }

  test('tasks that just started: two looks, the second woken on the manager exactly at the end of the stability window', async () => {
    const { runner, ctx, sleeps } = manager((t) => ({ snap: tenServices(t), fp: FP1 }));
    const r = await verify(ctx, { timeoutSeconds: 60 });
    expect(r.converged).toBe(true);
    expect(r.elapsedSeconds).toBe(5);
    expect(sleeps).toEqual([]);
    expect(runner.calls).toHaveLength(2);
    // The first look answers at once; the second waits on the state seen, until the window ends (manager clock).
    expect(watchParams(runner.calls[0].script)).toMatchObject({ since: '', maxWaitMs: 0 });
    expect(watchParams(runner.calls[1].script)).toMatchObject({ since: FP1, wakeMs: BASE + 5000, maxWaitMs: 10_000 });
    // The runner is told when the answer is due (a little early: the transport's lag is unknown), to poll quickly from then.
    expect(runner.calls[1].options?.resultExpectedAfterMs).toBe(5000 - EXPECT_EARLY_MS);
    // The second answer was "same": the first snapshot judged at the manager's time of that answer.
    expect(runner.calls[1].script).toContain(`since='${FP1}'`);
  });

  test('a change on the manager ends the wait: the next look judges the new state', async () => {
    // Tasks start running 3 s in (the state before: pending, no time rule ahead but the no-node grace).
    const pending = (t: number): SwarmSnapshot => {
      const s = tenServices(t);
      return { ...s, tasks: s.tasks.map((x) => ({ ...x, state: 'pending', timestamp: BASE - 100_000 })) };
    };
    const { runner, ctx } = manager((t) => (t < BASE + 3000 ? { snap: pending(t), fp: FP1 } : { snap: { ...tenServices(t), tasks: tenServices(t).tasks.map((x) => ({ ...x, timestamp: BASE + 3000 })) }, fp: FP2 }));
    // The manager stand-in only moves time while it waits; the change happens during the first wait.
    const r = await verify(ctx, { timeoutSeconds: 60, longPollSeconds: 3 });
    expect(r.converged).toBe(true);
    expect(r.elapsedSeconds).toBe(8);
    // '' at 0 s; FP1 until the change at 3 s (the bound, 3 s); then FP2 until 6 s (the bound) and 8 s (the window's end).
    expect(runner.calls.map((c) => watchParams(c.script)?.since)).toEqual(['', FP1, FP2, FP2]);
    expect(runner.calls.map((c) => watchParams(c.script)?.wakeMs)).toEqual([0, 0, BASE + 8000, BASE + 8000]);
  });

  test('never past the timeout: each wait is bounded by what is left of it, and a service short of replicas stays unconverged', async () => {
    const short = (t: number): SwarmSnapshot => {
      const s = tenServices(t);
      return { ...s, tasks: s.tasks.filter((x) => !(x.serviceId === 'svc3' && x.slot === 2)).map((x) => ({ ...x, timestamp: BASE - 60_000 })) };
    };
    const { runner, ctx } = manager((t) => ({ snap: short(t), fp: FP1 }));
    const r = await verify(ctx, { timeoutSeconds: 25, longPollSeconds: 10 });
    expect(r.converged).toBe(false);
    expect(r.elapsedSeconds).toBe(25);
    expect(runner.calls.map((c) => watchParams(c.script)?.maxWaitMs)).toEqual([0, 10_000, 10_000, 5000]);
    // Nothing time-based ahead: no wake-up, the bound is the answer time.
    expect(watchParams(runner.calls[1].script)?.wakeMs).toBe(0);
    expect(runner.calls[1].options?.resultExpectedAfterMs).toBe(10_000 - EXPECT_EARLY_MS);
  });

  test('the last wait ends early by what a look costs, so verify answers by its timeout (not a look later)', async () => {
    const short = (t: number): SwarmSnapshot => {
      const s = tenServices(t);
      return { ...s, tasks: s.tasks.filter((x) => !(x.serviceId === 'svc3' && x.slot === 2)).map((x) => ({ ...x, timestamp: BASE - 60_000 })) };
    };
    const m = manager((t) => ({ snap: short(t), fp: FP1 }));
    // Every look also costs 3 s (the snapshot under load, the transport).
    const slow = { ...m.ctx, runner: { run: async (...a: Parameters<FakeRunner['run']>) => { const r = await m.runner.run(...a); await m.ctx.sleep(3000); return r; } } };
    const r = await verify(slow, { timeoutSeconds: 25, longPollSeconds: 10 });
    expect(r.converged).toBe(false);
    expect(r.elapsedSeconds).toBeLessThanOrEqual(25);
    expect(m.runner.calls.map((c) => watchParams(c.script)?.maxWaitMs)).toEqual([0, 10_000, 6000]);
  });

  test('tasks whose windows end at different instants: one wake-up when the last one ends, not one per task', async () => {
    // Service i's tasks started running at BASE − 1000 + 100·i ms.
    const staggered = (t: number): SwarmSnapshot => {
      const s = tenServices(t);
      return { ...s, tasks: s.tasks.map((x) => ({ ...x, timestamp: BASE - 1000 + 100 * Number(x.serviceId.slice(3)) })) };
    };
    const { runner, ctx } = manager((t) => ({ snap: staggered(t), fp: FP1 }));
    const r = await verify(ctx, { timeoutSeconds: 60 });
    expect(r.converged).toBe(true);
    expect(runner.calls).toHaveLength(2);
    expect(watchParams(runner.calls[1].script)?.wakeMs).toBe(BASE - 1000 + 900 + 5000);
  });

  test('a "same" answer is judged as the snapshot it refers to, at the manager\'s time: a short service stays short', async () => {
    const short = (t: number): SwarmSnapshot => {
      const s = tenServices(t);
      return { ...s, tasks: s.tasks.filter((x) => !(x.serviceId === 'svc3' && x.slot === 2)) };
    };
    const { runner, ctx } = manager((t) => ({ snap: short(t), fp: FP1 }));
    const r = await verify(ctx, { timeoutSeconds: 12 });
    expect(r.converged).toBe(false);
    expect(r.services.find((x) => x.name === 'app_s3')).toMatchObject({ running: 1, desired: 2, convergence: 'converging' });
    expect(r.services.filter((x) => x.convergence === 'converged')).toHaveLength(9);
    // Waiting on the first snapshot's fingerprint throughout ("same" at the window's end, snapshots at the bound).
    expect(runner.calls.length).toBeGreaterThanOrEqual(2);
    expect(runner.calls.slice(1).every((c) => watchParams(c.script)?.since === FP1)).toBe(true);
  });

  test('verify with timeout 0 looks once', async () => {
    const { runner, ctx } = manager((t) => ({ snap: tenServices(t), fp: FP1 }));
    const r = await verify(ctx, { timeoutSeconds: 0 });
    expect(r.converged).toBe(false);
    expect(runner.calls).toHaveLength(1);
  });
});
