/**
 * Convergence judged on swarm states as the query reports them (design.md decision 14): current spec, Ready nodes,
 * stable for the update monitor, rollback and paused updates are failures, hopeless services fail fast.
 */
import { judgeServices, nextTimedChangeMs } from '../../../lib/ops/swarm/convergence';
import type { SnapshotNode, SnapshotService, SnapshotTask, SwarmSnapshot } from '../../../lib/ops/swarm/snapshot';
import { parseSnapshot } from '../../../lib/ops/swarm/snapshot';
import { snapshotText } from './harness';

const NOW = 1_800_000_000_000;
const N1 = 'n'.repeat(24) + '1';
const N2 = 'n'.repeat(24) + '2';
const N3 = 'n'.repeat(24) + '3';
const node = (id: string, state = 'ready', availability = 'active'): SnapshotNode => ({ id, role: 'worker', availability, state, leader: false, address: '10.0.0.1', hostname: `host-${id.slice(-1)}`, reachability: '-', instanceId: '' });
const svc = (o: Partial<SnapshotService> = {}): SnapshotService => ({
  id: 'svc1',
  name: 'web',
  mode: 'replicated',
  specCount: 2,
  updateState: '',
  updateMessage: '',
  image: 'app:2',
  version: 20,
  monitorMs: 0,
  updatedAtMs: NOW - 600_000,
  updateStartedMs: 0,
  ...o,
});
/** A task that entered `state` `ageS` seconds ago. */
const task = (slot: number, state: string, ageS: number, o: Partial<SnapshotTask> = {}): SnapshotTask => ({
  serviceId: 'svc1',
  slot,
  nodeId: N1,
  desired: ['running', 'starting', 'pending', 'ready', 'preparing', 'assigned'].includes(state) ? 'running' : 'shutdown',
  state,
  timestamp: NOW - ageS * 1000,
  error: '',
  createdMs: NOW - ageS * 1000 - 500,
  current: true,
  ...o,
});

function judge(services: SnapshotService[], tasks: SnapshotTask[], nodes = [node(N1), node(N2), node(N3)], deployed?: Map<string, { before?: number; after?: number }>) {
  // Through the wire format, so parsing and judging are tested together.
  const snap: SwarmSnapshot = parseSnapshot(snapshotText({ nowMs: NOW, nodes, services, replicas: new Map(), tasks }));
  return new Map(judgeServices(snap, { deployed }).map((v) => [v.name, v]));
}

describe('stability: running is not enough, the tasks must have stayed running for the update monitor', () => {
  test('tasks running for 3 s of a 5 s default window: converging, and says how long to wait', () => {
    const v = judge([svc()], [task(1, 'running', 3), task(2, 'running', 60)]).get('web');
    expect(v).toMatchObject({ convergence: 'converging', running: 2, desired: 2 });
    expect(v?.reason).toMatch(/1 for less than 5s/);
    expect(v?.stableInMs).toBe(2000);
  });

  test('a long-running service costs no wait: converged at once', () => {
    expect(judge([svc()], [task(1, 'running', 600), task(2, 'running', 600)]).get('web')).toMatchObject({ convergence: 'converged', running: 2 });
  });

  test("the service's own monitor (UpdateConfig.Monitor) is the window", () => {
    const s = svc({ monitorMs: 30_000 });
    expect(judge([s], [task(1, 'running', 20), task(2, 'running', 20)]).get('web')?.convergence).toBe('converging');
    expect(judge([s], [task(1, 'running', 31), task(2, 'running', 31)]).get('web')?.convergence).toBe('converged');
  });
});

describe('crash loops fail fast; a lucky poll never passes', () => {
  test('a container that exits after 3 s (restart any): caught running, young, with exits behind it → failed', () => {
    const tasks = [task(1, 'running', 1), task(1, 'complete', 6), task(1, 'complete', 14), task(1, 'complete', 22), task(2, 'running', 2)];
    const v = judge([svc()], tasks).get('web');
    expect(v?.convergence).toBe('failed');
    expect(v?.reason).toMatch(/tasks keep failing \(3 in a row\): the container exited/);
  });

  test('non-zero exits and rejections count too, with the engine error', () => {
    const err = 'task: non-zero exit (1)';
    const tasks = [task(1, 'ready', 1), ...[4, 9, 15].map((a) => task(1, 'failed', a, { error: err })), task(2, 'running', 100)];
    expect(judge([svc()], tasks).get('web')).toMatchObject({ convergence: 'failed', reason: `tasks keep failing (3 in a row): ${err}` });
  });

  test('two failures are not yet a loop; failures before a task that has been stable are history', () => {
    const two = [task(1, 'running', 1), task(1, 'failed', 6), task(1, 'failed', 12), task(2, 'running', 100)];
    expect(judge([svc()], two).get('web')?.convergence).toBe('converging');
    const recovered = [task(1, 'running', 50), task(1, 'failed', 60), task(1, 'failed', 70), task(1, 'failed', 80), task(2, 'running', 100)];
    expect(judge([svc()], recovered).get('web')?.convergence).toBe('converged');
  });

  test('failures of the previous spec do not count against the new one', () => {
    const tasks = [task(1, 'running', 1), ...[6, 12, 18].map((a) => task(1, 'failed', a, { current: false })), task(2, 'running', 100)];
    expect(judge([svc()], tasks).get('web')?.convergence).toBe('converging');
  });

  test('a missing image: rejected again and again → failed naming the image', () => {
    const e = 'No such image: local/missing:1';
    const tasks = [1, 2].flatMap((slot) => [task(slot, 'rejected', 1, { error: e, desired: 'ready' }), task(slot, 'rejected', 7, { error: e }), task(slot, 'rejected', 13, { error: e })]);
    expect(judge([svc()], tasks).get('web')).toMatchObject({ convergence: 'failed', running: 0, lastError: e });
    // A pull refused by a registry looks the same to swarm: the reason says what to check.
    expect(judge([svc()], tasks).get('web')?.reason).toBe(
      `tasks keep failing (3 in a row): ${e} (the nodes could not pull it: check the image exists and, for a private registry, deploy with --registry-auth)`,
    );
  });

  test('no suitable node: pending for more than a few seconds → failed with the scheduler reason', () => {
    const e = 'no suitable node (scheduling constraints not satisfied on 3 nodes)';
    expect(judge([svc()], [task(1, 'pending', 2, { error: e }), task(2, 'pending', 2, { error: e })]).get('web')?.convergence).toBe('converging');
    expect(judge([svc()], [task(1, 'pending', 6, { error: e }), task(2, 'pending', 6, { error: e })]).get('web')).toMatchObject({ convergence: 'failed', reason: e });
  });
});

describe('updates: the current spec, started and finished; rollback is a failure', () => {
  test('tasks of the previous spec running while the new ones start: converging, never converged', () => {
    const tasks = [task(1, 'running', 300, { current: false }), task(2, 'running', 300, { current: false }), task(1, 'starting', 1, { desired: 'running' })];
    const v = judge([svc({ updateState: 'updating', updateMessage: 'update in progress' })], tasks).get('web');
    expect(v).toMatchObject({ convergence: 'converging', running: 0 });
  });

  test('old tasks desired running but of the previous spec (update not begun) never count', () => {
    const tasks = [task(1, 'running', 300, { current: false }), task(2, 'running', 300, { current: false })];
    expect(judge([svc()], tasks).get('web')).toMatchObject({ convergence: 'converging', running: 0 });
  });

  test('rolled back (automatic): failed, naming the rollback and the engine message', () => {
    const s = svc({ updateState: 'rollback_completed', updateMessage: 'rollback completed' });
    const v = judge([s], [task(1, 'running', 30), task(2, 'running', 30), task(1, 'failed', 40, { current: false, error: 'task: non-zero exit (1)' })]).get('web');
    expect(v?.convergence).toBe('failed');
    expect(v?.reason).toBe('the update failed and was rolled back (rollback completed)');
    expect(v?.lastError).toBe('task: non-zero exit (1)');
  });

  test.each([
    ['paused', 'update paused due to failure or early termination of task x', /^update paused: update paused due to failure/],
    ['rollback_paused', 'rollback paused', /^update rollback paused/],
    ['rollback_started', 'update rolled back due to failure or early termination of task y', /being rolled back: update rolled back due to failure/],
  ])('%s is a failure with the engine message', (state, message, reason) => {
    const v = judge([svc({ updateState: state, updateMessage: message })], [task(1, 'running', 30), task(2, 'running', 30)]).get('web');
    expect(v?.convergence).toBe('failed');
    expect(v?.reason).toMatch(reason);
  });

  test('deploy --wait: a service the deploy changed is not judged before its update had a chance to start', () => {
    const tasks = [task(1, 'running', 300), task(2, 'running', 300)];
    const justUpdated = svc({ version: 21, updatedAtMs: NOW - 500 });
    const deployed = new Map([['web', { before: 20, after: 21 }]]);
    expect(judge([justUpdated], tasks, undefined, deployed).get('web')).toMatchObject({ convergence: 'converging', reason: 'waiting for the update to start' });
    // No update was needed (e.g. only a label changed): once the grace is over it is judged on its tasks.
    expect(judge([svc({ version: 21, updatedAtMs: NOW - 3000 })], tasks, undefined, deployed).get('web')?.convergence).toBe('converged');
    // An unchanged service (same version) is judged at once.
    expect(judge([svc({ updatedAtMs: NOW - 500 })], tasks, undefined, new Map([['web', { before: 20, after: 20 }]])).get('web')?.convergence).toBe('converged');
  });
});

describe('nodes, global services and jobs', () => {
  test('tasks on a Down node do not count', () => {
    const tasks = [task(1, 'running', 300, { nodeId: N1 }), task(2, 'running', 300, { nodeId: N2 })];
    expect(judge([svc()], tasks, [node(N1), node(N2, 'down'), node(N3)]).get('web')).toMatchObject({ running: 1, convergence: 'converging' });
  });

  test('global: eligible Ready nodes only; a Down node never holds the wait', () => {
    const g = svc({ mode: 'global', specCount: undefined });
    const tasks = [N1, N2, N3].map((n) => task(0, 'running', 300, { nodeId: n }));
    const v = judge([g], tasks, [node(N1), node(N2), node(N3, 'down')]).get('web');
    expect(v).toMatchObject({ desired: 2, running: 2, convergence: 'converged' });
    // A drained node is not eligible either.
    expect(judge([g], tasks, [node(N1), node(N2), node(N3, 'ready', 'drain')]).get('web')).toMatchObject({ desired: 2, running: 2 });
  });

  test('a replicated job counts completions of its current spec', () => {
    const job = svc({ mode: 'replicated-job', specCount: 3 });
    const done = [0, 1, 2].map((slot) => task(slot, 'complete', 10, { desired: 'complete' }));
    expect(judge([job], done).get('web')).toMatchObject({ completed: 3, convergence: 'converged' });
    const older = [task(0, 'complete', 10, { desired: 'complete' }), ...[1, 2].map((slot) => task(slot, 'complete', 100, { desired: 'complete', current: false }))];
    expect(judge([job], older).get('web')).toMatchObject({ completed: 1, convergence: 'converging' });
  });
});

describe('nextTimedChangeMs: when the long poll wakes the manager (design.md decision 19)', () => {
  const snap = (services: SnapshotService[], tasks: SnapshotTask[]): SwarmSnapshot => ({ nowMs: NOW, nodes: [node(N1)], services, replicas: new Map(), tasks });

  test('the earliest end of a stability window, with each service its own monitor', () => {
    const s = snap([svc(), svc({ id: 'svc2', name: 'api', monitorMs: 2000 })], [task(1, 'running', 1), task(2, 'running', 3), task(1, 'running', 1, { serviceId: 'svc2' }), task(2, 'running', 1, { serviceId: 'svc2', nodeId: N1 })]);
    // web: 5 s monitor, tasks 1 s and 3 s old → NOW + 2 s and + 4 s; api: 2 s monitor, 1 s old → NOW + 1 s.
    expect(nextTimedChangeMs(s)).toBe(NOW + 1000);
    // Exactly when judgeServices changes its mind.
    const later = { ...s, nowMs: NOW + 1000 };
    expect(judgeServices(s).find((v) => v.name === 'api')?.convergence).toBe('converging');
    expect(judgeServices(later).find((v) => v.name === 'api')?.convergence).toBe('converged');
  });

  test('a pending task reaches the no-node grace; a deployed service the update-start grace', () => {
    expect(nextTimedChangeMs(snap([svc()], [task(1, 'pending', 2, { error: 'no suitable node (1 node not available)' })]))).toBe(NOW + 3000);
    const deployed = new Map([['web', { before: 19, after: 20 }]]);
    expect(nextTimedChangeMs(snap([svc({ updatedAtMs: NOW - 500 })], []), { deployed })).toBe(NOW + 1500);
  });

  test('nothing ahead: undefined (stable tasks, instants already past, tasks of unknown services)', () => {
    expect(nextTimedChangeMs(snap([svc()], [task(1, 'running', 60), task(2, 'pending', 60)]))).toBeUndefined();
    expect(nextTimedChangeMs(snap([svc()], [task(1, 'running', 1, { serviceId: 'gone' })]))).toBeUndefined();
  });
});
