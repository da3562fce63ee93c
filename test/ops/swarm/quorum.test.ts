/**
 * How many manager failures the swarm still survives, from status snapshots. The two HA fixtures are the query
 * script's real output on a lab of 3 managers + 1 worker (dockerd 20.10, 2026-11-30): all healthy, then a
 * non-leader manager stopped until Raft called it unreachable.
 */
import { parseSnapshot, toStatusReport } from '../../../lib/ops/swarm/snapshot';
import { managerQuorum, quorumOf } from '../../../lib/ops/swarm/quorum';
import { fixture } from './harness';

describe('status on recorded snapshots', () => {
  test('3 managers, all reachable: quorum 2, one more failure tolerated; each manager with its reachability and instance', () => {
    const r = toStatusReport(parseSnapshot(fixture('query-ha-3-managers.txt')));
    expect(r.managers).toEqual({ managers: 3, reachable: 3, quorum: 2, tolerates: 1, hasQuorum: true, leader: 'ip-192-168-241-10.ec2.internal' });
    expect(r.nodes.map((n) => [n.hostname, n.role, n.leader, n.reachability, n.instanceId])).toEqual([
      ['ip-192-168-241-10.ec2.internal', 'manager', true, 'Reachable', 'i-0050c0c1c12a5c0c6'],
      ['ip-192-168-241-11.ec2.internal', 'manager', false, 'Reachable', 'i-04e395099a1a7c469'],
      ['ip-192-168-241-12.ec2.internal', 'manager', false, 'Reachable', 'i-0bc79e796dea7c554'],
      ['ip-192-168-241-13.ec2.internal', 'worker', false, undefined, 'i-0dae72cb2fda4984e'],
    ]);
  });

  test('one of 3 managers stopped: Down and Unreachable, quorum kept, no further failure tolerated', () => {
    const r = toStatusReport(parseSnapshot(fixture('query-ha-manager-down.txt')));
    expect(r.managers).toEqual({ managers: 3, reachable: 2, quorum: 2, tolerates: 0, hasQuorum: true, leader: 'ip-192-168-241-10.ec2.internal' });
    expect(r.nodes.find((n) => n.hostname === 'ip-192-168-241-11.ec2.internal')).toMatchObject({ status: 'Down', reachability: 'Unreachable', leader: false });
  });

  test('a one-manager swarm (the older fixtures): quorum 1, nothing tolerated; nodes without the instance label have no instanceId', () => {
    const r = toStatusReport(parseSnapshot(fixture('query-node-down.txt')));
    expect(r.managers).toEqual({ managers: 1, reachable: 1, quorum: 1, tolerates: 0, hasQuorum: true, leader: 'c2ref-n0' });
    expect(r.nodes.every((n) => n.instanceId === undefined)).toBe(true);
  });

  test('a malformed reachability is refused, never read as reachable', () => {
    const bad = fixture('query-ha-3-managers.txt').replace('\treachable\t"i-04e', '\tREACH\t"i-04e');
    expect(() => parseSnapshot(bad)).toThrow(/manager reachability/);
  });
});

describe('managerQuorum', () => {
  const managers = (n: number, reachable: number) =>
    Array.from({ length: n }, (_, i) => ({ role: 'manager', reachability: i < reachable ? 'reachable' : 'unreachable', leader: i === 0 && reachable > 0, hostname: `m${i}` }));

  test.each([
    // The README's table: managers → failures tolerated when all are reachable.
    [1, 1, 1, 0],
    [3, 3, 2, 1],
    [5, 5, 3, 2],
    [7, 7, 4, 3],
    // Already degraded: what is left to lose.
    [5, 4, 3, 1],
    [7, 5, 4, 1],
    [7, 4, 4, 0],
  ])('%i managers, %i reachable: quorum %i, tolerates %i', (n, reachable, quorum, tolerates) => {
    expect(quorumOf(n)).toBe(quorum);
    expect(managerQuorum(managers(n, reachable))).toMatchObject({ managers: n, reachable, quorum, tolerates, hasQuorum: true });
  });

  test('below quorum: tolerates 0 (never negative), no quorum, no leader', () => {
    expect(managerQuorum(managers(3, 1).map((m) => ({ ...m, leader: false })))).toEqual({ managers: 3, reachable: 1, quorum: 2, tolerates: 0, hasQuorum: false });
    expect(managerQuorum(managers(5, 0))).toMatchObject({ reachable: 0, tolerates: 0, hasQuorum: false });
  });

  test('"unknown" (just after a leader change) is not counted as reachable; workers are not counted at all', () => {
    const nodes = [...managers(3, 2), { role: 'manager', reachability: 'unknown', leader: false, hostname: 'mx' }, { role: 'worker', reachability: '-', leader: false, hostname: 'w' }];
    expect(managerQuorum(nodes)).toMatchObject({ managers: 4, reachable: 2, quorum: 3, tolerates: 0, hasQuorum: false });
  });
});
