/**
 * How many manager failures the swarm can still take (Raft: a change needs a majority of all managers). Pure,
 * from the nodes of one snapshot; `status` shows it and operations that need the quorum check it first.
 */
import type { ManagerQuorum } from '../types';
import type { SnapshotNode } from './snapshot';

export function quorumOf(managers: number): number {
  return Math.floor(managers / 2) + 1;
}

export function managerQuorum(nodes: readonly Pick<SnapshotNode, 'role' | 'reachability' | 'leader' | 'hostname'>[]): ManagerQuorum {
  const managers = nodes.filter((n) => n.role === 'manager');
  // Only Raft's "reachable" counts: "unknown" (just after a leader change) may be a manager that is gone.
  const reachable = managers.filter((n) => n.reachability === 'reachable').length;
  const quorum = quorumOf(managers.length);
  const leader = managers.find((n) => n.leader);
  return {
    managers: managers.length,
    reachable,
    quorum,
    tolerates: Math.max(0, reachable - quorum),
    hasQuorum: managers.length > 0 && reachable >= quorum,
    ...(leader ? { leader: leader.hostname } : {}),
  };
}
