/**
 * Results as a person reads them (cli-table3 tables) or as a script reads them (one JSON document).
 */
import Table from 'cli-table3';
import { redactSecrets } from './aws-errors';
import { summariseList } from './summary';
import type { DeployResult, ManagerQuorum, NodeStatus, ServiceReplicaStatus, StatusReport, TeardownReport, VerifyResult } from './types';

/** Plain ASCII-friendly borders and no colours: output goes into CI logs as often as to terminals. */
function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] } });
}

/** One JSON document, newline-terminated. */
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function replicas(s: ServiceReplicaStatus): string {
  return s.mode.endsWith('job') && s.completed !== undefined ? `${s.completed} completed` : `${s.running}/${s.desired}`;
}

function isShort(s: ServiceReplicaStatus): boolean {
  if (s.convergence) return s.convergence !== 'converged';
  if (s.mode.endsWith('job')) return s.completed !== undefined ? s.completed < s.desired : s.running < s.desired;
  return s.running !== s.desired;
}

/** One cell: ok, or why not (the engine's words where it gave them). */
function stateCell(s: ServiceReplicaStatus): string {
  if (!isShort(s)) return 'ok';
  const why = s.reason ?? s.updateState ?? 'short';
  const prefix = s.convergence === 'failed' ? 'FAILED: ' : '';
  return `${prefix}${why}${s.lastError && !why.includes(s.lastError) ? `; last task error: ${s.lastError}` : ''}`;
}

export function renderServices(services: readonly ServiceReplicaStatus[]): string {
  if (services.length === 0) return 'no services\n';
  const t = table(['service', 'mode', 'desired', 'running', 'image', 'state']);
  for (const s of services) {
    t.push([s.name, s.mode, String(s.desired), s.mode.endsWith('job') ? replicas(s) : String(s.running), s.image ?? '', stateCell(s)]);
  }
  return `${t.toString()}\n`;
}

/** `docker node ls`'s MANAGER STATUS: Leader, or the manager's reachability; empty for a worker. */
function managerStatus(n: NodeStatus): string {
  if (n.role !== 'manager') return '';
  return n.leader ? 'Leader' : (n.reachability ?? 'Unknown');
}

/** One line under the node table: the managers, the leader and how many more manager failures the swarm survives. */
export function renderQuorum(q: ManagerQuorum): string {
  const head = `managers: ${q.managers} (${q.reachable} reachable), ${q.leader ? `leader ${q.leader}` : 'no leader'}; quorum ${q.quorum}`;
  if (!q.hasQuorum) return `${head}: QUORUM LOST, nothing can change (README: "a majority of managers is lost")\n`;
  const more = q.tolerates === 0 ? 'tolerates no further manager failure' : `tolerates ${q.tolerates} more manager failure${q.tolerates === 1 ? '' : 's'}`;
  return `${head}: ${more}\n`;
}

export function renderStatus(report: StatusReport): string {
  const nodes = table(['hostname', 'role', 'status', 'availability', 'manager status', 'address', 'instance']);
  for (const n of report.nodes) nodes.push([n.hostname, n.role, n.status, n.availability, managerStatus(n), n.address ?? '', n.instanceId ?? '']);
  let out = report.nodes.length > 0 ? `${nodes.toString()}\n` : 'no nodes\n';
  if (report.managers) out += renderQuorum(report.managers);
  out += renderServices(report.services);
  const withTasks = report.services.filter((s) => s.tasks && s.tasks.length > 0);
  for (const s of withTasks) {
    const t = table(['slot', 'node', 'desired', 'current', 'error']);
    for (const task of [...(s.tasks ?? [])].sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0))) {
      t.push([task.slot !== undefined ? String(task.slot) : '', task.node ?? '', task.desiredState, task.currentState, task.error ?? '']);
    }
    out += `tasks of ${s.name}:\n${t.toString()}\n`;
  }
  return redactSecrets(out);
}

export function renderVerify(result: VerifyResult): string {
  let out = renderServices(result.services);
  const short = result.services.filter(isShort);
  if (result.converged) {
    out += `converged: every service runs its desired replicas of the current spec, stable (${result.elapsedSeconds}s)\n`;
  } else {
    const failed = short.filter((s) => s.convergence === 'failed');
    out += `not converged after ${result.elapsedSeconds}s: ${short.length} service(s) short\n`;
    if (result.failedFast) out += `stopped before the timeout: ${failed.length} service(s) cannot converge without a change\n`;
    const lines = short.map((s) => {
      const err = s.lastError ? `; last task error: ${s.lastError}` : '';
      let why = s.reason ?? s.updateState ?? '';
      if (s.lastError && why.endsWith(`: ${s.lastError}`)) why = why.slice(0, -(s.lastError.length + 2));
      const flag = s.convergence === 'failed' ? 'FAILED: ' : '';
      return `  ${s.name}: ${replicas(s)} running${err}${why ? `; ${flag}${why}` : ''}\n`;
    });
    out += lines.slice(0, 20).join('');
    if (lines.length > 20) out += `  … and ${lines.length - 20} more (--json lists them all)\n`;
    // What to run next: the first short service's own output usually says why (lib/ops/logs.ts).
    if (short.length > 0) out += `next: ec2-swarm logs ${short[0].name} --since 10m --tail 50\n`;
  }
  return redactSecrets(out);
}

export function renderDeploy(result: DeployResult): string {
  let out =
    result.kind === 'stack'
      ? `deployed stack ${result.name ?? ''}: ${summariseList(result.services) || 'no services'}\n`
      : `deployed services: ${summariseList(result.services) || 'none'}\n`;
  if (result.verify) out += renderVerify(result.verify);
  return redactSecrets(out);
}

export function renderRotateTokens(r: import('./rotate-tokens').RotateTokensResult): string {
  return (
    `rotated the worker and manager join tokens on ${r.instanceId}${r.leader ? ' (the leader)' : ''}\n` +
    `published: ${r.parameters.join(', ')}\n` +
    'nodes that join from now on use the new tokens; the old ones are refused\n'
  );
}

export function renderTeardown(report: TeardownReport): string {
  const lines = [...report.done.map((d) => `done: ${d}`), ...report.skipped.map((s) => `skipped: ${s}`), ...(report.left ?? []).map((l) => `left: ${l}`)];
  if (report.complete === false) {
    lines.push(
      report.outcome === 'unreachable'
        ? 'teardown NOT complete: something could not be reached; run it again once it answers'
        : 'teardown NOT complete: see "left:" above',
    );
  }
  return redactSecrets(lines.length > 0 ? `${lines.join('\n')}\n` : 'nothing to do\n');
}
