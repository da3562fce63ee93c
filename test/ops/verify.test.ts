/** verify's loop: the stability window paid once for all services together; hopeless services stop it early. */
import { verify } from '../../lib/ops/verify';
import type { SnapshotTask, SwarmSnapshot } from '../../lib/ops/swarm/snapshot';
import { FakeRunner, isQuery, makeCtx, queryStdout, snapshotText } from './swarm/harness';

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
