/**
 * Synthetic swarms of S services for the state query, loaded into the ops tests' docker stand-in (test/ops/swarm/
 * harness.ts: the real query script runs under bash and reads these answers). Two naming schemes: names as people
 * write them (`shop_api-017`), and the worst case the query must survive (63 random characters, the longest Docker
 * allows, which gzip cannot shrink).
 */
import { randomBytes } from 'node:crypto';
import type { SnapshotTask, SwarmSnapshot } from '../../lib/ops/swarm/snapshot';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const id25 = (): string => Array.from(randomBytes(25), (b) => ALPHABET[b % 36]).join('');

export type Naming = 'typical' | 'worst';

export function syntheticSwarm(services: number, naming: Naming, replicas = 2, workers = 3): SwarmSnapshot {
  // Converged and stable: every task has run for ten minutes, longer than any update monitor.
  const nowMs = Date.now();
  const since = nowMs - 600_000;
  const nodes = Array.from({ length: workers + 1 }, (_, i) => ({
    id: id25(),
    role: i === 0 ? 'manager' : 'worker',
    availability: 'active',
    state: 'ready',
    leader: i === 0,
    address: `10.0.0.${i + 10}`,
    hostname: `ip-10-0-0-${i + 10}.ec2.internal`,
    reachability: i === 0 ? 'reachable' : '-',
    instanceId: `i-${String(i).padStart(17, '0')}`,
  }));
  const name = (i: number): string =>
    naming === 'typical' ? `shop_svc-${String(i).padStart(3, '0')}` : `s${String(i).padStart(3, '0')}-${id25()}${id25()}`.slice(0, 63).replace(/[^a-z0-9]$/, 'x');
  const svcs = Array.from({ length: services }, (_, i) => ({
    id: id25(),
    name: name(i),
    mode: 'replicated' as const,
    specCount: replicas,
    updateState: '',
    updateMessage: '',
    image: naming === 'typical' ? `registry.example.com/shop/svc-${i % 20}:1.4.${i % 7}` : `registry.example.com/team/${id25()}:1.0.${i}`,
    version: 10 + i,
    monitorMs: 0,
    updatedAtMs: since - 60_000,
    updateStartedMs: 0,
  }));
  const tasks: SnapshotTask[] = svcs.flatMap((s, i) =>
    Array.from({ length: replicas }, (_, k) => ({ serviceId: s.id, slot: k + 1, nodeId: nodes[1 + ((i + k) % workers)].id, desired: 'running', state: 'running', timestamp: since, error: '', createdMs: since - 1000, current: true })),
  );
  const replicaMap = new Map(svcs.map((s) => [s.name, { running: replicas, desired: replicas }]));
  return { nowMs, nodes, services: svcs, replicas: replicaMap, tasks };
}
