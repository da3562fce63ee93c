/**
 * Running one script on a manager: the first that answers, from ClusterInfo.managerInstanceIds or, when the outputs
 * name none (managers are an Auto Scaling group), the cluster's manager instances found by tag, online first. The
 * manager that answered last on this context is asked first; every manager but the last asked gets a delivery bound,
 * so a stopped one costs a few seconds at most, not the command's whole time bound (design.md decision 23).
 */
import { SwarmError, isSwarmError } from '../../errors';
import type { CommandResult, OpsContext, RunOptions } from '../types';

/**
 * How long a manager's SSM agent may take to start a command while another manager is left to try, seconds. A
 * command starts within a second or two on a live instance (the lab: well under a second at load 20); 10 s leaves
 * room for a slow agent and keeps a stopped leader well inside the failover goal.
 */
export const MANAGER_DELIVERY_BOUND_S = 10;

/** The manager that last answered on a context (a long-lived connection keeps asking the one that works). */
const preferred = new WeakMap<OpsContext, string>();

/** Remembers the manager that answered, so the next script on this context goes to it first. */
export function preferManager(ctx: OpsContext, id: string): void {
  preferred.set(ctx, id);
}

/** The managers in the order to ask them: the one that answered last on this context first, then managerIds' order. */
export async function managerOrder(ctx: OpsContext): Promise<string[]> {
  const all = await managerIds(ctx);
  const first = preferred.get(ctx);
  return first && all.includes(first) ? [first, ...all.filter((id) => id !== first)] : [...all];
}

/** RunOptions for the manager at `index` of `count` tried in turn: all but the last get the delivery bound. */
function managerRunOptions(options: RunOptions, index: number, count: number): RunOptions {
  return index < count - 1 && options.deliveryBoundSeconds === undefined ? { ...options, deliveryBoundSeconds: MANAGER_DELIVERY_BOUND_S } : options;
}

/** Managers found by tag, once per context: a command runs several scripts and the group does not change meanwhile. */
const found = new WeakMap<OpsContext, Promise<string[]>>();

export async function managerIds(ctx: OpsContext): Promise<readonly string[]> {
  if (ctx.cluster.managerInstanceIds.length > 0 || !ctx.cloud.listManagerInstanceIds) return ctx.cluster.managerInstanceIds;
  let ids = found.get(ctx);
  if (!ids) {
    ids = ctx.cloud.listManagerInstanceIds();
    found.set(ctx, ids);
    ids.catch(() => found.delete(ctx));
  }
  return ids;
}

/**
 * Runs `script` on the first manager that answers (`only`: on that one, with `options` as given). A manager that
 * answers, whatever its exit code, is asked first next time on this context.
 */
export async function runOnManager(ctx: OpsContext, script: string, options: RunOptions = {}, only?: string): Promise<CommandResult> {
  const ids = only ? [only] : await managerOrder(ctx);
  if (ids.length === 0) throw SwarmError.user('NO_MANAGER', `cluster ${ctx.cluster.name}: no manager instance id is known`);
  let last: unknown;
  for (const [i, id] of ids.entries()) {
    try {
      const [result] = await ctx.runner.run([id], script, only ? options : managerRunOptions(options, i, ids.length));
      if (!result) throw SwarmError.environment('NO_RESULT', `manager ${id}: the runner returned no result`);
      if (!only) preferManager(ctx, id);
      return result;
    } catch (e) {
      // Only a transport failure moves on to the next manager; anything else is a real answer.
      if (!isSwarmError(e) || e.fault !== 'environment') throw e;
      last = e;
    }
  }
  throw last;
}

/** The last lines of a command's stderr, for error messages. */
export function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export function failed(what: string, r: CommandResult, fault: 'cluster' | 'environment' = 'cluster'): SwarmError {
  const msg = `${what} failed on ${r.instanceId} (exit ${r.exitCode})${r.stderr.trim() ? `:\n${tail(r.stderr)}` : ''}`;
  return fault === 'cluster' ? SwarmError.cluster('COMMAND_FAILED', msg) : SwarmError.environment('COMMAND_FAILED', msg);
}
