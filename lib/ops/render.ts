/**
 * Results as a person reads them (cli-table3 tables) or as a script reads them (one JSON document).
 */
import Table from 'cli-table3';
import { redactSecrets } from './aws-errors';
import type { DeployResult, ServiceReplicaStatus, StatusReport, TeardownReport, VerifyResult } from './types';

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
  if (s.mode.endsWith('job')) return s.completed !== undefined ? s.completed < s.desired : s.running < s.desired;
  return s.running !== s.desired;
}

export function renderServices(services: readonly ServiceReplicaStatus[]): string {
  if (services.length === 0) return 'no services\n';
  const t = table(['service', 'mode', 'desired', 'running', 'image', 'state']);
  for (const s of services) {
    const state = s.updateState ?? (isShort(s) ? (s.lastError ? `short: ${s.lastError}` : 'short') : 'ok');
    t.push([s.name, s.mode, String(s.desired), s.mode.endsWith('job') ? replicas(s) : String(s.running), s.image ?? '', state]);
  }
  return `${t.toString()}\n`;
}

export function renderStatus(report: StatusReport): string {
  const nodes = table(['hostname', 'role', 'status', 'availability', 'leader', 'address']);
  for (const n of report.nodes) nodes.push([n.hostname, n.role, n.status, n.availability, n.leader ? 'yes' : '', n.address ?? '']);
  let out = report.nodes.length > 0 ? `${nodes.toString()}\n` : 'no nodes\n';
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
    out += `converged: every service runs its desired replicas (${result.elapsedSeconds}s)\n`;
  } else {
    out += `not converged after ${result.elapsedSeconds}s: ${short.length} service(s) short\n`;
    for (const s of short) {
      out += `  ${s.name}: ${replicas(s)} running${s.updateState ? `, update ${s.updateState}` : ''}${s.lastError ? `; last task error: ${s.lastError}` : ''}\n`;
    }
  }
  return redactSecrets(out);
}

export function renderDeploy(result: DeployResult): string {
  let out =
    result.kind === 'stack'
      ? `deployed stack ${result.name ?? ''}: ${result.services.join(', ') || 'no services'}\n`
      : `deployed services: ${result.services.join(', ') || 'none'}\n`;
  if (result.verify) out += renderVerify(result.verify);
  return redactSecrets(out);
}

export function renderTeardown(report: TeardownReport): string {
  const lines = [...report.done.map((d) => `done: ${d}`), ...report.skipped.map((s) => `skipped: ${s}`)];
  return redactSecrets(lines.length > 0 ? `${lines.join('\n')}\n` : 'nothing to do\n');
}
