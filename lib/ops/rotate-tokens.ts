/**
 * `rotate-tokens`: both join tokens rotated on a healthy manager (the leader when the swarm names it) and
 * republished to Parameter Store. The node script does the work (`manager.sh --rotate-tokens`, docs/contracts.md):
 * the tokens exist only on the manager and in Parameter Store, never in the SSM command, its output or here.
 */
import { parameterNames } from '../config';
import { SwarmError, isSwarmError } from '../errors';
import type { CommandResult, ManagerQuorum, OpsContext } from './types';
import { managerIds, runOnManager, tail } from './swarm/manager';
import { requireSwarm } from './swarm/query';
import { managerQuorum } from './swarm/quorum';
import { script } from './swarm/script';

/** Where user-data unpacks the node scripts (docs/contracts.md, "user-data"). */
export const NODE_SCRIPTS_DIR = '/opt/ec2-swarm';
/** Printed when the manager's scripts predate `--rotate-tokens` (an older package version). */
export const NO_ROTATE_MAGIC = 'EC2SWARM-NO-ROTATE';
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

export interface RotateTokensOptions {
  /** Bound on the rotation command on the manager (SSM execution timeout). @default 120 */
  readonly timeoutSeconds?: number;
}

export interface RotateTokensResult {
  /** Both roles' tokens changed and their parameters were read back holding the new ones. */
  readonly rotated: readonly ['worker', 'manager'];
  /** The manager that rotated them. */
  readonly instanceId: string;
  /** It was the swarm's leader. */
  readonly leader: boolean;
  /** Parameters that now hold the new tokens (names only). */
  readonly parameters: readonly string[];
  readonly managers: ManagerQuorum;
}

export function buildRotateScript(): string {
  const m = `${NODE_SCRIPTS_DIR}/manager.sh`;
  return script(
    // An older manager.sh would take the flag for nothing and re-run the role script: ask first.
    `grep -qF -- '--rotate-tokens' ${m} 2>/dev/null || { echo '${NO_ROTATE_MAGIC}'; exit 4; }`,
    `bash ${m} --rotate-tokens`,
  );
}

/** Instances to ask, best first: the leader, the other reachable managers, then whatever manager answered. */
function candidates(snapNodes: Awaited<ReturnType<typeof requireSwarm>>['nodes'], answered: readonly string[]): { ids: string[]; leaderId?: string } {
  const managers = snapNodes.filter((n) => n.role === 'manager' && INSTANCE_ID.test(n.instanceId));
  const leaderId = managers.find((n) => n.leader)?.instanceId;
  const reachable = managers.filter((n) => !n.leader && n.reachability === 'reachable').map((n) => n.instanceId).sort();
  const ids = [...new Set([...(leaderId ? [leaderId] : []), ...reachable, ...answered])];
  return { ids, ...(leaderId ? { leaderId } : {}) };
}

function refused(r: CommandResult): SwarmError {
  if (r.exitCode === 4 && r.stdout.includes(NO_ROTATE_MAGIC)) {
    return SwarmError.cluster(
      'ROTATE_UNSUPPORTED',
      `rotate-tokens: the node scripts on ${r.instanceId} predate rotate-tokens; roll the managers to this version (cdk deploy) first. Nothing was changed.`,
    );
  }
  const why = r.stderr.trim() ? `:\n${tail(r.stderr)}` : '';
  return SwarmError.cluster('ROTATE_FAILED', `rotate-tokens failed on ${r.instanceId} (exit ${r.exitCode})${why}`);
}

export async function rotateTokens(ctx: OpsContext, opts: RotateTokensOptions = {}): Promise<RotateTokensResult> {
  const timeoutSeconds = opts.timeoutSeconds ?? 120;
  if (!Number.isSafeInteger(timeoutSeconds) || timeoutSeconds < 1) {
    throw SwarmError.user('INVALID_TIMEOUT', `timeout: ${timeoutSeconds} must be a whole number of seconds ≥ 1`);
  }
  const snap = await requireSwarm(ctx);
  const managers = managerQuorum(snap.nodes);
  if (!managers.hasQuorum) {
    throw SwarmError.cluster(
      'NO_QUORUM',
      `rotate-tokens: ${managers.reachable} of ${managers.managers} managers are reachable and ${managers.quorum} are needed: ` +
        'the swarm cannot change its tokens without a quorum. Nothing was changed (README: "a majority of managers is lost").',
    );
  }
  const { ids, leaderId } = candidates(snap.nodes, await managerIds(ctx));
  if (ids.length === 0) throw SwarmError.user('NO_MANAGER', `cluster ${ctx.cluster.name}: no manager instance id is known`);
  const p = parameterNames(ctx.cluster.name);
  let last: unknown;
  for (const id of ids) {
    ctx.reporter.progress(`rotate-tokens: rotating both join tokens on ${id}${id === leaderId ? ' (the leader)' : ''}`);
    let r: CommandResult;
    try {
      r = await runOnManager(ctx, buildRotateScript(), { label: 'rotate join tokens', timeoutSeconds }, id);
    } catch (e) {
      // Only a manager SSM could not reach is skipped; any answer is the answer.
      if (!isSwarmError(e) || e.fault !== 'environment') throw e;
      ctx.reporter.warn(`rotate-tokens: ${id} could not be reached (${e.message.split('\n')[0]}); trying the next manager`);
      last = e;
      continue;
    }
    ctx.reporter.done();
    if (r.exitCode !== 0) throw refused(r);
    ctx.reporter.info(`rotated both join tokens on ${id}; ${p.workerToken} and ${p.managerToken} hold the new ones`);
    return { rotated: ['worker', 'manager'], instanceId: id, leader: id === leaderId, parameters: [p.workerToken, p.managerToken], managers };
  }
  ctx.reporter.done();
  throw last;
}
