/**
 * `teardown`: remove stacks and services, wait (bounded) until their tasks are gone, drain the workers and
 * make them leave, remove their nodes, make the manager leave, delete the runtime parameters. Safe to run twice
 * and on a half-created or half-deleted cluster: whatever is already gone is skipped with a reason, never thrown.
 */
import { isSwarmError } from '../errors';
import type { CommandResult, OpsContext, TeardownReport } from './types';
import { runOnManager, tail } from './swarm/manager';
import { STATE_MAGIC } from './swarm/query-script';
import { script, sh } from './swarm/script';
import { assertNodeId } from './swarm/validate';

export interface TeardownOptions {
  /** Upper bound, seconds, for tasks to disappear after their services are removed. @default 120 */
  readonly taskWaitSeconds?: number;
}

const SWARM_STATE = `state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || { echo '${STATE_MAGIC} no-docker'; exit 0; }`;

/** On the manager: remove every stack, then every remaining service, then wait for their tasks and networks. */
export function buildRemoveWorkloadScript(waitSeconds: number): string {
  return script(
    SWARM_STATE,
    `if [ "$state" != "active true" ]; then echo "${STATE_MAGIC} $state"; exit 0; fi`,
    `docker stack ls --format '{{.Name}}' | while IFS= read -r s; do docker stack rm "$s" > /dev/null; echo "DONE removed stack $s"; done`,
    `docker service ls --format '{{.Name}}' | while IFS= read -r s; do docker service rm "$s" > /dev/null; echo "DONE removed service $s"; done`,
    `left=0`,
    `for _ in $(seq 1 ${waitSeconds}); do`,
    // Only Ready nodes: a Down node's tasks stay in the store until the node is removed, and would hold the wait.
    `  left=$( { docker node ls --format '{{.ID}} {{.Status}}' | awk '$2 == "Ready" { print $1 }' | xargs -r docker node ps -q; docker network ls -q --filter label=com.docker.stack.namespace; } | wc -l)`,
    `  [ "$left" -eq 0 ] && break`,
    `  sleep 1`,
    `done`,
    `echo "TASKS-LEFT $left"`,
  );
}

/** On each worker: its swarm node id, then leave. Prints its state so the caller can skip those not in a swarm. */
export const WORKER_ID_SCRIPT = script(
  `info=$(docker info --format '{{.Swarm.NodeID}} {{.Swarm.LocalNodeState}}' 2>/dev/null) || { echo '${STATE_MAGIC} no-docker'; exit 0; }`,
  'echo "NODE $info"',
);

export const WORKER_LEAVE_SCRIPT = script(
  SWARM_STATE,
  `case "$state" in inactive*) echo "${STATE_MAGIC} $state"; exit 0;; esac`,
  // A worker leaves without --force; --force only when it cannot reach the managers any more.
  'docker swarm leave > /dev/null 2>&1 || docker swarm leave --force > /dev/null',
  'echo LEFT',
);

export function buildDrainScript(nodeIds: readonly string[]): string {
  return script(
    `for n in ${sh`${nodeIds}`}; do`,
    '  if docker node update --availability drain "$n" > /dev/null; then echo "DONE drained $n"; else echo "SKIP $n"; fi',
    'done',
  );
}

/** On the manager: remove the nodes that left, and worker nodes that are Down (terminated instances). */
export function buildRemoveNodesScript(nodeIds: readonly string[]): string {
  return script(
    `for n in ${sh`${nodeIds}`}; do`,
    '  if docker node rm --force "$n" > /dev/null 2>&1; then echo "DONE removed node $n"; fi',
    'done',
    `docker node ls --filter role=worker --format '{{.ID}} {{.Status}}' | while read -r id st; do`,
    `  if [ "$st" = Down ]; then docker node rm --force "$id" > /dev/null && echo "DONE removed down node $id"; fi`,
    'done',
  );
}

export const MANAGER_LEAVE_SCRIPT = script(
  SWARM_STATE,
  `case "$state" in inactive*) echo "${STATE_MAGIC} $state"; exit 0;; esac`,
  'docker swarm leave --force > /dev/null',
  'echo LEFT',
);

function reason(e: unknown): string {
  return isSwarmError(e) || e instanceof Error ? e.message.split('\n')[0] : String(e);
}

export async function teardown(ctx: OpsContext, opts: TeardownOptions = {}): Promise<TeardownReport> {
  const done: string[] = [];
  const skipped: string[] = [];
  const manager = ctx.cluster.managerInstanceIds[0] ?? 'manager';
  const lines = (r: CommandResult, prefix: string): string[] =>
    r.stdout.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  const stateOf = (r: CommandResult): string | undefined => lines(r, `${STATE_MAGIC} `)[0];

  // 1. Workload, on the manager.
  let managerInSwarm = false;
  let managerReachable = true;
  try {
    const r = await runOnManager(ctx, buildRemoveWorkloadScript(opts.taskWaitSeconds ?? 120), { label: 'remove stacks and services', timeoutSeconds: (opts.taskWaitSeconds ?? 120) + 120 });
    const st = stateOf(r);
    if (st) {
      skipped.push(`stacks and services: manager ${r.instanceId} is not a swarm manager (${st})`);
    } else if (r.exitCode !== 0) {
      skipped.push(`stacks and services: removal failed on ${r.instanceId}: ${tail(r.stderr, 2)}`);
      managerInSwarm = true;
    } else {
      managerInSwarm = true;
      const removed = lines(r, 'DONE ');
      done.push(...removed);
      if (removed.length === 0) skipped.push('stacks and services: none left');
      const left = Number(lines(r, 'TASKS-LEFT ')[0] ?? '0');
      if (left > 0) ctx.reporter.warn(`${left} tasks or stack networks were still shutting down when the wait ended`);
    }
  } catch (e) {
    managerReachable = false;
    skipped.push(`manager ${manager}: unreachable, skipped stacks, services, drain and leave (${reason(e)})`);
  }

  // 2. Workers: node ids, drain (manager), leave (workers), remove their nodes (manager).
  let workerIds: string[] = [];
  try {
    workerIds = await ctx.cloud.listWorkerInstanceIds();
  } catch (e) {
    skipped.push(`workers: cannot list them (${reason(e)})`);
  }
  const leftNodeIds: string[] = [];
  if (workerIds.length === 0) {
    skipped.push('workers: none running');
  } else {
    const nodeOf = new Map<string, string>();
    try {
      for (const r of await ctx.runner.run(workerIds, WORKER_ID_SCRIPT, { label: 'worker node ids' })) {
        const m = /^NODE ([a-z0-9]{25}) (\S+)/m.exec(r.stdout);
        if (m && m[2] !== 'inactive') nodeOf.set(r.instanceId, assertNodeId(m[1]));
        else skipped.push(`worker ${r.instanceId}: not part of a swarm`);
      }
    } catch (e) {
      skipped.push(`workers: unreachable, skipped drain and leave (${reason(e)})`);
    }
    if (nodeOf.size > 0 && managerInSwarm) {
      try {
        const r = await runOnManager(ctx, buildDrainScript([...nodeOf.values()]), { label: 'drain workers' });
        done.push(...lines(r, 'DONE '));
      } catch (e) {
        skipped.push(`drain: manager unreachable (${reason(e)})`);
      }
    }
    if (nodeOf.size > 0) {
      try {
        for (const r of await ctx.runner.run([...nodeOf.keys()], WORKER_LEAVE_SCRIPT, { label: 'workers leave', timeoutSeconds: 120 })) {
          if (stateOf(r)) skipped.push(`worker ${r.instanceId}: not part of a swarm`);
          else if (r.exitCode === 0 && lines(r, 'LEFT').length > 0) {
            done.push(`worker ${r.instanceId} left the swarm`);
            leftNodeIds.push(nodeOf.get(r.instanceId) as string);
          } else skipped.push(`worker ${r.instanceId}: leave failed (exit ${r.exitCode}): ${tail(r.stderr, 2)}`);
        }
      } catch (e) {
        skipped.push(`workers: leave not confirmed (${reason(e)})`);
      }
    }
  }
  if (managerInSwarm) {
    try {
      const r = await runOnManager(ctx, buildRemoveNodesScript(leftNodeIds), { label: 'remove worker nodes' });
      done.push(...lines(r, 'DONE '));
    } catch (e) {
      skipped.push(`worker nodes: manager unreachable (${reason(e)})`);
    }
  }

  // 3. Manager leaves.
  if (managerReachable) {
    try {
      const r = await runOnManager(ctx, MANAGER_LEAVE_SCRIPT, { label: 'manager leaves', timeoutSeconds: 120 });
      const st = stateOf(r);
      if (st) skipped.push(`manager ${r.instanceId}: not part of a swarm`);
      else if (r.exitCode === 0) done.push(`manager ${r.instanceId} left the swarm`);
      else skipped.push(`manager ${r.instanceId}: leave failed (exit ${r.exitCode}): ${tail(r.stderr, 2)}`);
    } catch (e) {
      skipped.push(`manager ${manager}: unreachable, did not leave (${reason(e)})`);
    }
  }

  // 4. Runtime parameters (tokens, address).
  try {
    const deleted = await ctx.cloud.deleteRuntimeParameters();
    if (deleted.length > 0) done.push(`deleted parameters ${deleted.join(', ')}`);
    else skipped.push(`parameters under ${ctx.cluster.parameterPrefix}: none left`);
  } catch (e) {
    skipped.push(`parameters under ${ctx.cluster.parameterPrefix}: not deleted (${reason(e)})`);
  }
  for (const d of done) ctx.reporter.info(d);
  for (const s of skipped) ctx.reporter.info(`skipped: ${s}`);
  return { done, skipped };
}
