import { SnapshotParseError, parseSnapshot, toStatusReport } from '../../../lib/ops/swarm/snapshot';
import { judgeServices } from '../../../lib/ops/swarm/convergence';
import { fixture } from './harness';

// Fixtures: the query script's real output against a real 3-node swarm (dockerd 20.10, netns lab).
const byName = (text: string) => new Map(judgeServices(parseSnapshot(text)).map((s) => [s.name, s]));

describe('exact replica counting on real swarm output', () => {
  test('healthy services, a global service, a completed job, a missing image', () => {
    const s = byName(fixture('query-basic.txt'));
    expect(s.get('web')).toMatchObject({ mode: 'replicated', desired: 3, running: 3, convergence: 'converged' });
    expect(s.get('agent')).toMatchObject({ mode: 'global', desired: 3, running: 3, convergence: 'converged' });
    expect(s.get('once')).toMatchObject({ mode: 'replicated-job', desired: 2, completed: 2, convergence: 'converged' });
    expect(s.get('broken')).toMatchObject({ desired: 2, running: 0, convergence: 'converging', lastError: 'No such image: local/nosuch:1' });
    expect(s.get('web')?.lastError).toBeUndefined();
  });

  test('after a node is lost, running counts only tasks on Ready nodes (docker service ls said web 3/3, agent 3/2)', () => {
    const snap = parseSnapshot(fixture('query-node-down.txt'));
    // What the engine reported at that instant: the over-count this project must not trust.
    expect(snap.replicas.get('web')).toMatchObject({ running: 3, desired: 3 });
    expect(snap.replicas.get('agent')).toMatchObject({ running: 3, desired: 2 });
    const s = byName(fixture('query-node-down.txt'));
    expect(s.get('web')).toMatchObject({ desired: 3, running: 2, convergence: 'converging' });
    expect(s.get('pinned')).toMatchObject({ desired: 2, running: 1, convergence: 'converging' });
    // Global: desired follows the engine's DesiredTasks (eligible Ready nodes), running is exact.
    expect(s.get('agent')).toMatchObject({ desired: 2, running: 2, convergence: 'converged' });
  });

  test('a paused rolling update is not converged and says why', () => {
    const s = byName(fixture('query-paused-update.txt'));
    const upd = s.get('upd');
    expect(upd?.convergence).toBe('failed');
    expect(upd?.updateState).toMatch(/^paused: update paused due to failure/);
    expect(upd?.lastError).toBe('No such image: local/nosuch:2');
  });

  test('status lists nodes with role, status, leader and tasks numbered by slot', () => {
    const r = toStatusReport(parseSnapshot(fixture('query-node-down.txt')));
    expect(r.nodes.map((n) => [n.hostname, n.role, n.status, n.availability, n.leader])).toEqual([
      ['c2ref-n0', 'manager', 'Ready', 'Active', true],
      ['c2ref-n1', 'worker', 'Ready', 'Active', false],
      ['c2ref-n2', 'worker', 'Down', 'Active', false],
    ]);
    const web = r.services.find((s) => s.name === 'web');
    expect(web?.tasks?.map((t) => [t.slot, t.node, t.currentState])).toEqual([
      [1, 'c2ref-n0', 'ready'],
      [2, 'c2ref-n1', 'running'],
      [3, 'c2ref-n0', 'running'],
    ]);
  });

  test('a cut payload is refused, never read as a smaller swarm', () => {
    const text = fixture('query-basic.txt');
    const atLine = text.slice(0, text.indexOf('\n', text.indexOf('#tasks') + 8) + 1);
    expect(() => parseSnapshot(atLine)).toThrow(/incomplete/);
    expect(() => parseSnapshot(text.slice(0, text.indexOf('#tasks') + 40))).toThrow(SnapshotParseError);
  });
});
