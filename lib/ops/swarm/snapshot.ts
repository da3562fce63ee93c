/**
 * Parses the query script's reduced swarm state (query-script.ts) and shapes it for `status`. Whether a service
 * has converged is judged in convergence.ts.
 */
import type { NodeStatus, StatusReport, TaskStatus } from '../types';
import { judgeServices } from './convergence';
import { managerQuorum } from './quorum';

export interface SnapshotNode {
  readonly id: string;
  readonly role: string;
  readonly availability: string;
  readonly state: string;
  readonly leader: boolean;
  readonly address: string;
  readonly hostname: string;
  /** Managers: `reachable`, `unreachable` or `unknown` (Raft's view); workers: `-`. */
  readonly reachability: string;
  /** The EC2 instance id from the node's `ec2-swarm.instance-id` engine label; empty when the node has none. */
  readonly instanceId: string;
}

export interface SnapshotService {
  /** Identifies the service within this snapshot (tasks refer to it): the query numbers services 1…S (decision 21). */
  readonly id: string;
  readonly name: string;
  readonly mode: 'replicated' | 'global' | 'replicated-job' | 'global-job';
  /** Spec replicas (replicated) or total completions (replicated job); undefined otherwise. */
  readonly specCount?: number;
  readonly updateState: string;
  readonly updateMessage: string;
  readonly image: string;
  /** The service object's version: it changes with every spec update (a deploy, a scale). */
  readonly version: number;
  /** UpdateConfig.Monitor in ms; 0 when unset (the engine then uses 5 s). */
  readonly monitorMs: number;
  /** When the service object last changed (manager clock, ms). */
  readonly updatedAtMs: number;
  /** When the current rolling update started, ms; 0 when there is none (UpdateStatus is reset by every spec update). */
  readonly updateStartedMs: number;
}

export interface SnapshotTask {
  /** The `id` of its service in this snapshot. */
  readonly serviceId: string;
  readonly slot: number;
  readonly nodeId: string;
  readonly desired: string;
  readonly state: string;
  /** When the task entered its current state (ms; the node's clock). */
  readonly timestamp: number;
  readonly error: string;
  /** When the task was created (ms). */
  readonly createdMs: number;
  /** The task runs the service's current task template (compared on the manager by fingerprint). */
  readonly current: boolean;
}

/** `docker service ls` REPLICAS: "running/desired" and for jobs "running/max (completed/total completed)". */
export interface EngineReplicas {
  readonly running: number;
  readonly desired: number;
  readonly completed?: number;
  readonly completions?: number;
}

export interface SwarmSnapshot {
  /** The manager's clock when the snapshot was taken, ms. */
  readonly nowMs: number;
  readonly nodes: readonly SnapshotNode[];
  readonly services: readonly SnapshotService[];
  readonly replicas: ReadonlyMap<string, EngineReplicas>;
  readonly tasks: readonly SnapshotTask[];
}

const MODES = new Set(['replicated', 'global', 'replicated-job', 'global-job']);

export class SnapshotParseError extends Error {}

function json<T>(field: string | undefined, what: string): T {
  try {
    return JSON.parse(field ?? '') as T;
  } catch {
    throw new SnapshotParseError(`cannot parse ${what}: ${JSON.stringify(field)}`);
  }
}

/** Nanoseconds since the epoch (a Go UnixNano) → ms; negative (Go's zero time) → 0. */
function nanos(field: string | undefined, what: string): number {
  if (field === undefined || !/^-?\d+$/.test(field)) throw new SnapshotParseError(`cannot parse ${what}: ${JSON.stringify(field)}`);
  const ms = Number(BigInt(field) / 1000000n);
  return ms > 0 ? ms : 0;
}

function word(field: string | undefined, what: string): string {
  if (field === undefined || !/^[a-z-]+$/.test(field)) throw new SnapshotParseError(`cannot parse ${what}: ${JSON.stringify(field)}`);
  return field;
}

function int(field: string | undefined, what: string): number {
  if (field === undefined || !/^\d+$/.test(field)) throw new SnapshotParseError(`cannot parse ${what}: ${JSON.stringify(field)}`);
  return Number(field);
}

export function parseEngineReplicas(text: string): EngineReplicas | undefined {
  const m = /^(\d+)\/(\d+)(?: \((\d+)\/(\d+) completed\))?/.exec(text);
  if (!m) return undefined;
  return {
    running: Number(m[1]),
    desired: Number(m[2]),
    ...(m[3] !== undefined ? { completed: Number(m[3]), completions: Number(m[4]) } : {}),
  };
}

/** Parses the decoded query output (sections `#nodes`, `#services`, `#replicas`, `#tasks`, `#end`). */
export function parseSnapshot(text: string): SwarmSnapshot {
  const nodes: SnapshotNode[] = [];
  const services: SnapshotService[] = [];
  const replicas = new Map<string, EngineReplicas>();
  const tasks: SnapshotTask[] = [];
  let nowMs: number | undefined;
  let section = '';
  let ended = false;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      section = line.slice(1);
      if (section === 'end') ended = true;
      continue;
    }
    const f = line.split('\t');
    switch (section) {
      case 'now':
        nowMs = nanos(f[0], 'manager clock');
        break;
      case 'nodes':
        nodes.push({
          id: f[0],
          role: f[1],
          availability: f[2],
          state: f[3],
          leader: f[4] === 'true',
          address: json<string>(f[5], 'node address'),
          hostname: json<string>(f[6], 'node hostname'),
          reachability: word(f[7], 'manager reachability'),
          instanceId: json<string>(f[8], 'node instance id'),
        });
        break;
      case 'services': {
        const mode = f[2];
        if (!MODES.has(mode)) throw new SnapshotParseError(`unknown service mode ${JSON.stringify(mode)}`);
        services.push({
          id: f[0],
          name: json<string>(f[1], 'service name'),
          mode: mode as SnapshotService['mode'],
          ...(f[3] !== '-' ? { specCount: int(f[3], 'service replicas') } : {}),
          updateState: json<string>(f[4], 'update state'),
          updateMessage: json<string>(f[5], 'update message'),
          image: json<string>(f[6], 'image'),
          version: int(f[7], 'service version'),
          monitorMs: nanos(f[8], 'update monitor'),
          updatedAtMs: nanos(f[9], 'service updated at'),
          updateStartedMs: nanos(f[10], 'update started at'),
        });
        break;
      }
      case 'replicas': {
        const parsed = parseEngineReplicas(json<string>(f[1], 'replicas'));
        if (parsed) replicas.set(json<string>(f[0], 'service name'), parsed);
        break;
      }
      case 'tasks':
        tasks.push({
          serviceId: f[0],
          slot: int(f[1], 'task slot'),
          nodeId: f[2],
          desired: f[3],
          state: f[4],
          timestamp: nanos(f[5], 'task timestamp'),
          error: json<string>(f[6], 'task error'),
          createdMs: nanos(f[7], 'task created at'),
          current: f[8] === '1',
        });
        break;
      default:
        throw new SnapshotParseError(`unexpected line outside a section: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  // A cut or truncated payload must never pass for a smaller swarm.
  if (!ended) throw new SnapshotParseError('swarm state is incomplete (no end marker)');
  if (nowMs === undefined) throw new SnapshotParseError('swarm state has no manager clock (#now)');
  return { nowMs, nodes, services, replicas, tasks };
}

export function taskRows(tasks: readonly SnapshotTask[], nodeById: ReadonlyMap<string, SnapshotNode>): TaskStatus[] {
  return [...tasks]
    .sort((a, b) => a.slot - b.slot || b.timestamp - a.timestamp)
    .map((t) => ({
      ...(t.slot > 0 ? { slot: t.slot } : {}),
      ...(t.nodeId ? { node: nodeById.get(t.nodeId)?.hostname ?? t.nodeId } : {}),
      desiredState: t.desired,
      currentState: t.state,
      ...(t.error ? { error: t.error } : {}),
    }));
}

const CAPITAL = (s: string): string => (s ? s[0].toUpperCase() + s.slice(1) : s);

export function summariseNodes(snap: SwarmSnapshot): NodeStatus[] {
  return snap.nodes
    .map((n) => ({
      id: n.id,
      hostname: n.hostname,
      role: n.role === 'manager' ? ('manager' as const) : ('worker' as const),
      // Docker's own spelling in `docker node ls`: Ready/Down, Active/Drain.
      status: CAPITAL(n.state),
      availability: CAPITAL(n.availability),
      leader: n.leader,
      ...(n.role === 'manager' && n.reachability !== '-' ? { reachability: CAPITAL(n.reachability) } : {}),
      ...(n.address ? { address: n.address } : {}),
      ...(n.instanceId ? { instanceId: n.instanceId } : {}),
    }))
    .sort((a, b) => (a.role === b.role ? a.hostname.localeCompare(b.hostname) : a.role === 'manager' ? -1 : 1));
}

export function toStatusReport(snap: SwarmSnapshot): StatusReport {
  const nodeById = new Map(snap.nodes.map((n) => [n.id, n]));
  const tasksOf = new Map<string, SnapshotTask[]>();
  for (const t of snap.tasks) tasksOf.set(t.serviceId, [...(tasksOf.get(t.serviceId) ?? []), t]);
  const idOf = new Map(snap.services.map((s) => [s.name, s.id]));
  return {
    nodes: summariseNodes(snap),
    managers: managerQuorum(snap.nodes),
    services: judgeServices(snap).map(({ stableInMs: _w, ...rest }) => ({ ...rest, tasks: taskRows(tasksOf.get(idOf.get(rest.name) ?? '') ?? [], nodeById) })),
  };
}
