/**
 * Parses the query script's reduced swarm state (query-script.ts) and counts replicas exactly (decision 7):
 * a task counts when desired=running and current=running on a Ready node. `docker service ls` (the engine's
 * RunningTasks) over-counts after a node is lost; the engine's DesiredTasks is still right and is used for
 * global services, whose desired count depends on eligible nodes and constraints.
 */
import type { NodeStatus, ServiceReplicaStatus, StatusReport, TaskStatus } from '../types';

export interface SnapshotNode {
  readonly id: string;
  readonly role: string;
  readonly availability: string;
  readonly state: string;
  readonly leader: boolean;
  readonly address: string;
  readonly hostname: string;
}

export interface SnapshotService {
  readonly id: string;
  readonly name: string;
  readonly mode: 'replicated' | 'global' | 'replicated-job' | 'global-job';
  /** Spec replicas (replicated) or total completions (replicated job); undefined otherwise. */
  readonly specCount?: number;
  readonly updateState: string;
  readonly updateMessage: string;
  readonly image: string;
}

export interface SnapshotTask {
  readonly serviceId: string;
  readonly slot: number;
  readonly nodeId: string;
  readonly desired: string;
  readonly state: string;
  readonly timestamp: number;
  readonly error: string;
}

/** `docker service ls` REPLICAS: "running/desired" and for jobs "running/max (completed/total completed)". */
export interface EngineReplicas {
  readonly running: number;
  readonly desired: number;
  readonly completed?: number;
  readonly completions?: number;
}

export interface SwarmSnapshot {
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
      case 'nodes':
        nodes.push({
          id: f[0],
          role: f[1],
          availability: f[2],
          state: f[3],
          leader: f[4] === 'true',
          address: json<string>(f[5], 'node address'),
          hostname: json<string>(f[6], 'node hostname'),
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
          timestamp: Number(f[5]) || 0,
          error: json<string>(f[6], 'task error'),
        });
        break;
      default:
        throw new SnapshotParseError(`unexpected line outside a section: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  // A cut or truncated payload must never pass for a smaller swarm.
  if (!ended) throw new SnapshotParseError('swarm state is incomplete (no end marker)');
  return { nodes, services, replicas, tasks };
}

/** Update states in which a service is not as asked even if its tasks run: paused, failed or still rolling. */
const UPDATE_NOT_DONE = new Set(['updating', 'paused', 'rollback_started', 'rollback_paused', 'rollback_completed']);

export interface ServiceVerdict extends ServiceReplicaStatus {
  readonly converged: boolean;
}

export function summariseServices(snap: SwarmSnapshot, withTasks = false): ServiceVerdict[] {
  const nodeById = new Map(snap.nodes.map((n) => [n.id, n]));
  const ready = (id: string): boolean => nodeById.get(id)?.state === 'ready';
  const tasksBy = new Map<string, SnapshotTask[]>();
  for (const t of snap.tasks) {
    const list = tasksBy.get(t.serviceId) ?? [];
    list.push(t);
    tasksBy.set(t.serviceId, list);
  }
  return snap.services
    .map((s): ServiceVerdict => {
      const tasks = tasksBy.get(s.id) ?? [];
      const engine = snap.replicas.get(s.name);
      const running = tasks.filter((t) => t.desired === 'running' && t.state === 'running' && ready(t.nodeId)).length;
      const isJob = s.mode === 'replicated-job' || s.mode === 'global-job';
      let desired: number;
      let completed: number | undefined;
      if (isJob) {
        const countedComplete = new Set(tasks.filter((t) => t.state === 'complete').map((t) => `${t.slot}/${t.nodeId}`)).size;
        completed = Math.max(engine?.completed ?? 0, countedComplete);
        desired = s.specCount ?? engine?.completions ?? completed;
      } else if (s.mode === 'global') {
        desired = engine?.desired ?? snap.nodes.filter((n) => n.state === 'ready' && n.availability === 'active').length;
      } else {
        desired = s.specCount ?? engine?.desired ?? 0;
      }
      const updateNotDone = UPDATE_NOT_DONE.has(s.updateState);
      const converged = (isJob ? (completed ?? 0) >= desired : running === desired) && !updateNotDone;
      const latestError = tasks
        .filter((t) => t.error !== '')
        .sort((a, b) => b.timestamp - a.timestamp)[0]?.error;
      const updateState = updateNotDone ? `${s.updateState}${s.updateMessage ? `: ${s.updateMessage}` : ''}` : undefined;
      return {
        name: s.name,
        mode: s.mode,
        desired,
        running,
        ...(isJob ? { completed } : {}),
        image: s.image,
        ...(updateState ? { updateState } : {}),
        ...(!converged && latestError ? { lastError: latestError } : {}),
        ...(withTasks ? { tasks: taskRows(tasks, nodeById) } : {}),
        converged,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

function taskRows(tasks: readonly SnapshotTask[], nodeById: ReadonlyMap<string, SnapshotNode>): TaskStatus[] {
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
      ...(n.address ? { address: n.address } : {}),
    }))
    .sort((a, b) => (a.role === b.role ? a.hostname.localeCompare(b.hostname) : a.role === 'manager' ? -1 : 1));
}

export function toStatusReport(snap: SwarmSnapshot): StatusReport {
  return {
    nodes: summariseNodes(snap),
    services: summariseServices(snap, true).map(({ converged: _c, ...rest }) => rest),
  };
}
