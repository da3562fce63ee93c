/**
 * Running one script on a manager: the first that answers, from ClusterInfo.managerInstanceIds or, when the outputs
 * name none (managers are an Auto Scaling group), the cluster's manager instances found by tag, online first.
 */
import { SwarmError, isSwarmError } from '../../errors';
import type { CommandResult, OpsContext, RunOptions } from '../types';

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

export async function runOnManager(ctx: OpsContext, script: string, options: RunOptions = {}, only?: string): Promise<CommandResult> {
  const ids = only ? [only] : await managerIds(ctx);
  if (ids.length === 0) throw SwarmError.user('NO_MANAGER', `cluster ${ctx.cluster.name}: no manager instance id is known`);
  let last: unknown;
  for (const id of ids) {
    try {
      const [result] = await ctx.runner.run([id], script, options);
      if (!result) throw SwarmError.environment('NO_RESULT', `manager ${id}: the runner returned no result`);
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
