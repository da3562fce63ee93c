/**
 * Whether each service has converged (design.md decisions 7 and 14), judged on one swarm snapshot:
 * - a task counts when it is desired running, running, on a Ready node, and of the service's current task spec;
 * - it counts as stable once it has been running for the service's update monitor (5 s when unset), judged from
 *   the task's own timestamp against the manager's clock, so a service that has run for a while costs no wait and
 *   the window is paid once for all services together;
 * - an update in progress, paused, or rolled back is not converged; paused and rolled back cannot converge;
 * - a service that cannot converge without a change fails fast with the engine's reason: tasks failing several
 *   times in a row (crash loop, missing image) or no node that suits them;
 * - global services count eligible Ready nodes (never a Down node); jobs count completions.
 */
import type { Convergence, ServiceReplicaStatus } from '../types';
import type { SnapshotTask, SwarmSnapshot } from './snapshot';

/** The engine's default update monitor: how long a new task must run before it counts. */
export const DEFAULT_MONITOR_MS = 5000;
/** Failed (or exited) tasks of the current spec in a row, per slot, that make a service hopeless. */
export const CRASH_LOOP_TASKS = 3;
/** How long a task may wait for a suitable node before the service is hopeless. */
export const NO_NODE_GRACE_MS = 5000;
/** After a deploy changed a service, how long the orchestrator gets to start the rolling update. */
export const UPDATE_START_GRACE_MS = 2000;

/** Service versions around a deploy: before (absent when the deploy created it) and right after. */
export interface DeployedVersion {
  readonly before?: number;
  readonly after?: number;
}

export interface JudgeOptions {
  /** Services the caller just deployed: their update must have started and finished. */
  readonly deployed?: ReadonlyMap<string, DeployedVersion>;
}

export interface ServiceJudgement extends ServiceReplicaStatus {
  readonly convergence: Convergence;
  /** ms until every counted task is stable, when that is all that is missing. */
  readonly stableInMs?: number;
}

const LIVE = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

function describeUpdate(state: string, message: string): string {
  return `${state.replace(/_/g, ' ')}${message ? `: ${message}` : ''}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Consecutive failures of the current spec in one slot (or node), newest first, behind tasks still starting. */
function failuresInARow(tasks: readonly SnapshotTask[], isJob: boolean, nowMs: number, monitorMs: number): { count: number; latest?: SnapshotTask } {
  const sorted = [...tasks].sort((a, b) => b.createdMs - a.createdMs || b.timestamp - a.timestamp);
  let count = 0;
  let latest: SnapshotTask | undefined;
  for (const t of sorted) {
    if (t.state === 'running' && nowMs - t.timestamp >= monitorMs) break; // it recovered
    if (LIVE.has(t.state)) {
      if (count > 0) break;
      continue;
    }
    const bad = t.state === 'failed' || t.state === 'rejected' || (!isJob && t.state === 'complete');
    if (!bad) break;
    count++;
    latest ??= t;
  }
  return { count, latest };
}

export function judgeServices(snap: SwarmSnapshot, opts: JudgeOptions = {}): ServiceJudgement[] {
  const nodeById = new Map(snap.nodes.map((n) => [n.id, n]));
  const ready = (id: string): boolean => nodeById.get(id)?.state === 'ready';
  const tasksBy = new Map<string, SnapshotTask[]>();
  for (const t of snap.tasks) tasksBy.set(t.serviceId, [...(tasksBy.get(t.serviceId) ?? []), t]);
  const now = snap.nowMs;

  return snap.services
    .map((s): ServiceJudgement => {
      const tasks = tasksBy.get(s.id) ?? [];
      const engine = snap.replicas.get(s.name);
      const monitorMs = s.monitorMs > 0 ? s.monitorMs : DEFAULT_MONITOR_MS;
      const isJob = s.mode === 'replicated-job' || s.mode === 'global-job';
      const onReady = tasks.filter((t) => t.desired === 'running' && t.state === 'running' && ready(t.nodeId));
      const current = onReady.filter((t) => t.current);
      const previous = onReady.filter((t) => !t.current);
      const isStable = (t: SnapshotTask): boolean => now - t.timestamp >= monitorMs;

      let desired: number;
      let running: number;
      let stable: number;
      let completed: number | undefined;
      if (isJob) {
        completed = new Set(tasks.filter((t) => t.current && t.state === 'complete').map((t) => `${t.slot}/${t.nodeId}`)).size;
        desired = s.specCount ?? engine?.completions ?? completed;
        running = current.length;
        stable = running;
      } else if (s.mode === 'global') {
        // Eligible nodes: Ready and active nodes the orchestrator gave a task to run (constraints applied).
        const eligible = new Set(
          tasks.filter((t) => t.desired === 'running' && ready(t.nodeId) && nodeById.get(t.nodeId)?.availability === 'active').map((t) => t.nodeId),
        );
        desired = eligible.size;
        running = new Set(current.filter((t) => eligible.has(t.nodeId)).map((t) => t.nodeId)).size;
        stable = new Set(current.filter((t) => eligible.has(t.nodeId) && isStable(t)).map((t) => t.nodeId)).size;
      } else {
        desired = s.specCount ?? engine?.desired ?? 0;
        running = current.length;
        stable = current.filter(isStable).length;
      }

      const latestError = [...tasks].filter((t) => t.error !== '').sort((a, b) => b.timestamp - a.timestamp)[0]?.error;
      const base = {
        name: s.name,
        mode: s.mode,
        desired,
        running,
        ...(isJob ? { completed } : {}),
        image: s.image,
        ...(s.updateState && s.updateState !== 'completed' ? { updateState: describeUpdate(s.updateState, s.updateMessage) } : {}),
      };
      const failed = (reason: string): ServiceJudgement => ({ ...base, convergence: 'failed', reason, ...(latestError ? { lastError: latestError } : {}) });
      const converging = (reason: string, stableInMs?: number): ServiceJudgement => ({
        ...base,
        convergence: 'converging',
        reason,
        ...(latestError ? { lastError: latestError } : {}),
        ...(stableInMs !== undefined ? { stableInMs } : {}),
      });

      // 1. The rolling update: paused or rolled back is a failure, with the engine's message.
      switch (s.updateState) {
        case 'paused':
        case 'rollback_paused':
          return failed(`update ${describeUpdate(s.updateState, s.updateMessage)}`);
        case 'rollback_started':
          return failed(`the update failed and is being rolled back${s.updateMessage ? `: ${s.updateMessage}` : ''}`);
        case 'rollback_completed':
          return failed(`the update failed and was rolled back${s.updateMessage ? ` (${s.updateMessage})` : ''}`);
        default:
          break;
      }

      // 2. Hopeless: tasks of the current spec failing in a row, or no node suits them.
      const bySlot = new Map<string, SnapshotTask[]>();
      for (const t of tasks.filter((x) => x.current)) {
        const key = t.slot > 0 ? `s${t.slot}` : `n${t.nodeId}`;
        bySlot.set(key, [...(bySlot.get(key) ?? []), t]);
      }
      for (const slotTasks of bySlot.values()) {
        const { count, latest } = failuresInARow(slotTasks, isJob, now, monitorMs);
        if (count >= CRASH_LOOP_TASKS && latest) {
          const what = latest.error || (latest.state === 'complete' ? 'the container exited' : latest.state);
          // Swarm reports a failed pull (missing image, or a registry that wants a login) only as the missing image.
          const hint = /^No such image: /.test(what) ? ' (the nodes could not pull it: check the image exists and, for a private registry, deploy with --registry-auth)' : '';
          return failed(`tasks keep failing (${count} in a row): ${what}${hint}`);
        }
      }
      const noNode = tasks.find((t) => t.current && t.desired === 'running' && t.state === 'pending' && /no suitable node/.test(t.error) && now - t.timestamp >= NO_NODE_GRACE_MS);
      if (noNode) return failed(noNode.error);

      // 3. Still moving: an update under way or about to start.
      if (s.updateState === 'updating') return converging(`update in progress${s.updateMessage ? `: ${s.updateMessage}` : ''}`);
      const d = opts.deployed?.get(s.name);
      if (d && d.before !== undefined && d.after !== undefined && d.after !== d.before && !s.updateState && now - s.updatedAtMs < UPDATE_START_GRACE_MS) {
        return converging('waiting for the update to start');
      }

      // 4. Counts.
      if (isJob) {
        return (completed ?? 0) >= desired ? { ...base, convergence: 'converged' } : converging(`${completed ?? 0}/${desired} completed`);
      }
      if (previous.length > 0) return converging(`${plural(previous.length, 'task')} of the previous spec still running`);
      if (running !== desired) return converging(`${running}/${desired} running`);
      if (stable < desired) {
        const waitMs = Math.max(0, ...current.map((t) => monitorMs - (now - t.timestamp)));
        return converging(`${running}/${desired} running, ${desired - stable} for less than ${monitorMs / 1000}s`, waitMs);
      }
      return { ...base, convergence: 'converged' };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The next instant (manager clock, ms) at which a time rule of judgeServices can change its judgement of this same
 * snapshot: a running task reaching its service's monitor (stable; or a slot recovered from failures), a pending
 * task reaching the no-node grace, a deployed service reaching the update-start grace. verify's long poll wakes the
 * manager then (design.md decision 19). Undefined when no such instant lies ahead. Keep in step with the rules above:
 * a rule missing here only makes verify see its change later (at the long poll's bound), never wrongly.
 */
export function nextTimedChangeMs(snap: SwarmSnapshot, opts: JudgeOptions = {}): number | undefined {
  const monitorOf = new Map(snap.services.map((s) => [s.id, s.monitorMs > 0 ? s.monitorMs : DEFAULT_MONITOR_MS]));
  let next = Infinity;
  const consider = (at: number): void => {
    if (at > snap.nowMs && at < next) next = at;
  };
  for (const t of snap.tasks) {
    const monitorMs = monitorOf.get(t.serviceId);
    if (monitorMs === undefined) continue;
    if (t.state === 'running') consider(t.timestamp + monitorMs);
    else if (t.state === 'pending') consider(t.timestamp + NO_NODE_GRACE_MS);
  }
  for (const s of snap.services) {
    const d = opts.deployed?.get(s.name);
    if (d && d.before !== undefined && d.after !== undefined && d.after !== d.before && !s.updateState) consider(s.updatedAtMs + UPDATE_START_GRACE_MS);
  }
  return Number.isFinite(next) ? next : undefined;
}
