/**
 * `teardown`: remove stacks and services (and the networks, configs and secrets of every stack, also those a failed
 * deploy left without services), wait (bounded) until their tasks are gone, drain the workers and make them leave,
 * remove their nodes, make the manager leave, delete the runtime parameters.
 *
 * Done means observed (design.md decision 13): only "this node is not in a swarm" counts as gone. A manager that
 * cannot be reached, has no docker answering, or fails, leaves the teardown incomplete: the workers keep their
 * membership and the parameters stay (a retry needs them) unless `force` is set, and the report says what is left.
 * Safe to run twice: whatever is already gone is reported as such.
 */
import { isSwarmError } from '../errors';
import type { CommandResult, OpsContext, TeardownReport } from './types';
import { managerIds, runOnManager, tail } from './swarm/manager';
import { NODE_SCRIPTS_DIR } from './rotate-tokens';
import { STATE_MAGIC } from './swarm/query-script';
import { script, sh } from './swarm/script';
import { assertNodeId } from './swarm/validate';
import { summariseList } from './summary';

export interface TeardownOptions {
  /** Upper bound, seconds, for tasks and stack networks to disappear after their services are removed. @default 120 */
  readonly taskWaitSeconds?: number;
  /** Also when a manager is unreachable or failed: force the workers out and delete the parameters anyway. */
  readonly force?: boolean;
}

const SWARM_STATE = `state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || { echo '${STATE_MAGIC} no-docker'; exit 0; }`;
const STACK_LABEL = 'com.docker.stack.namespace';

/**
 * On the manager: remove every stack (found by the stack label on services, networks, configs and secrets, so a
 * stack a failed deploy left without services goes too), then every other service; then wait for the tasks on
 * Ready nodes to go and remove the stacks' networks as they free up. A Down node's tasks never go until the node is
 * removed, so they are not waited for.
 */
export function buildRemoveWorkloadScript(waitSeconds: number): string {
  return script(
    SWARM_STATE,
    `if [ "$state" != "active true" ]; then echo "${STATE_MAGIC} $state"; exit 0; fi`,
    // Stack names from the label, read with inspect: the 20.10 CLI's `ls --format` has no .Label for services.
    `{ for kind in service config secret; do docker "$kind" ls -q --filter label=${STACK_LABEL} | xargs -r docker "$kind" inspect --format '{{index .Spec.Labels "${STACK_LABEL}"}}'; done; docker network ls -q --filter label=${STACK_LABEL} | xargs -r docker network inspect --format '{{index .Labels "${STACK_LABEL}"}}'; } | sort -u > "$EC2SWARM_TMP/stacks"`,
    `while IFS= read -r s; do [ -z "$s" ] && continue; docker stack rm "$s" > /dev/null 2>&1 || true; echo "DONE stack $s"; done < "$EC2SWARM_TMP/stacks"`,
    `docker service ls --format '{{.Name}}' | while IFS= read -r s; do docker service rm "$s" > /dev/null && echo "DONE service $s"; done`,
    'tasks=0; nets=0',
    `for _ in $(seq 1 ${waitSeconds}); do`,
    `  tasks=$(docker node ls --format '{{.ID}} {{.Status}}' | awk '$2 == "Ready" { print $1 }' | xargs -r docker node ps -q --filter desired-state=running | wc -l)`,
    // A network is removable once no task uses it; retrying each second is cheap and never waits for what cannot go.
    `  docker network ls -q --filter label=${STACK_LABEL} | xargs -r docker network rm > /dev/null 2>&1 || true`,
    `  nets=$(docker network ls -q --filter label=${STACK_LABEL} | wc -l)`,
    '  [ "$tasks" -eq 0 ] && [ "$nets" -eq 0 ] && break',
    '  sleep 1',
    'done',
    `docker network ls --filter label=${STACK_LABEL} --format '{{.Name}}' | sed 's/^/LEFT network /'`,
    'echo "TASKS-LEFT $tasks"',
  );
}

/** On each worker: its swarm node id and state. */
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
  // The reconciler first: a pass still running would republish manager-addresses after the parameters are deleted.
  `if [ -r ${NODE_SCRIPTS_DIR}/reconcile.sh ]; then /bin/bash ${NODE_SCRIPTS_DIR}/reconcile.sh --stop > /dev/null 2>&1 || echo 'warning: the reconciler did not stop' >&2; fi`,
  'docker swarm leave --force > /dev/null',
  'echo LEFT',
);

function reason(e: unknown): string {
  return isSwarmError(e) || e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/** docker info's swarm state in words: `inactive false` → "not in a swarm". */
export function describeState(state: string): string {
  if (state === 'no-docker') return 'docker is not answering';
  const [local, control] = state.split(' ');
  if (local === 'inactive') return 'not in a swarm';
  if (local === 'active' && control === 'false') return 'in a swarm, but not a manager';
  if (local === 'locked') return 'its swarm is locked (docker swarm unlock)';
  if (local === 'pending') return 'still joining a swarm';
  if (local === 'error') return 'its swarm state is in error';
  return `swarm state "${state}"`;
}

/** "removed stack demo" lines, one per item for a few, one summary line for many. */
function itemLines(what: string, plural: string, items: readonly string[]): string[] {
  if (items.length <= 5) return items.map((i) => `${what} ${i}`);
  return [`${plural} (${items.length}): ${summariseList(items)}`];
}

export async function teardown(ctx: OpsContext, opts: TeardownOptions = {}): Promise<TeardownReport> {
  const done: string[] = [];
  const skipped: string[] = [];
  const left: string[] = [];
  let unreachable = false;
  // Every manager of the cluster (from the outputs, or found by tag); the one that answers first does the work.
  const managers = await managerIds(ctx).catch((): readonly string[] => []);
  let manager = managers[0] ?? 'manager';
  const lines = (r: CommandResult, prefix: string): string[] =>
    r.stdout.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
  const stateOf = (r: CommandResult): string | undefined => lines(r, `${STATE_MAGIC} `)[0];
  const waitSeconds = opts.taskWaitSeconds ?? 120;

  // 1. Workload, on the manager. Only "not in a swarm" or a clean removal lets the teardown go on.
  let managerInSwarm = false;
  let managerGone = false;
  ctx.reporter.progress(`removing stacks and services on ${manager}`);
  try {
    const r = await runOnManager(ctx, buildRemoveWorkloadScript(waitSeconds), { label: 'remove stacks and services', timeoutSeconds: waitSeconds + 120 });
    manager = r.instanceId;
    const st = stateOf(r);
    if (st && st.startsWith('inactive')) {
      managerGone = true;
      skipped.push(`stacks and services: manager ${r.instanceId} is not in a swarm`);
    } else if (st) {
      if (st === 'no-docker') unreachable = true;
      left.push(`manager ${r.instanceId}: ${describeState(st)}; its swarm, stacks and services were not touched`);
    } else if (r.exitCode !== 0) {
      managerInSwarm = true;
      left.push(`stacks and services: removal failed on ${r.instanceId} (exit ${r.exitCode}): ${tail(r.stderr, 2)}`);
    } else {
      managerInSwarm = true;
      done.push(...itemLines('removed stack', 'removed stacks', lines(r, 'DONE stack ')));
      done.push(...itemLines('removed service', 'removed services', lines(r, 'DONE service ')));
      if (lines(r, 'DONE ').length === 0) skipped.push('stacks and services: none left');
      const nets = lines(r, 'LEFT network ');
      if (nets.length > 0) left.push(`stack networks still in use after ${waitSeconds}s: ${summariseList(nets)}`);
      const tasks = Number(lines(r, 'TASKS-LEFT ')[0] ?? '0');
      if (tasks > 0) ctx.reporter.warn(`${tasks} task(s) on Ready nodes were still shutting down after ${waitSeconds}s`);
    }
  } catch (e) {
    unreachable = true;
    left.push(`manager ${manager}: unreachable (${reason(e)}); its swarm, stacks and services were not touched`);
  }
  const managerOk = managerGone || (managerInSwarm && left.length === 0);
  const goOn = managerOk || opts.force === true;
  if (!managerOk) {
    if (opts.force) skipped.push('--force: going on with the workers and the parameters although the manager is not done');
    else skipped.push('workers, manager leave and parameters: not touched, so that a retry can finish (or use --force)');
  }

  // 2. Workers: node ids, drain (manager), leave (workers), remove their nodes (manager).
  const leftNodeIds: string[] = [];
  if (goOn) {
    let workerIds: string[] = [];
    try {
      workerIds = await ctx.cloud.listWorkerInstanceIds();
    } catch (e) {
      left.push(`workers: cannot list them (${reason(e)})`);
      unreachable = true;
    }
    if (workerIds.length === 0) skipped.push('workers: none running');
    const nodeOf = new Map<string, string>();
    const notInSwarm: string[] = [];
    if (workerIds.length > 0) {
      ctx.reporter.progress(`workers: ${workerIds.length} leave the swarm`);
      try {
        for (const r of await ctx.runner.run(workerIds, WORKER_ID_SCRIPT, { label: 'worker node ids' })) {
          const m = /^NODE ([a-z0-9]{25}) (\S+)/m.exec(r.stdout);
          if (m && m[2] !== 'inactive') nodeOf.set(r.instanceId, assertNodeId(m[1]));
          else if (/^NODE\s+inactive/m.test(r.stdout)) notInSwarm.push(r.instanceId);
          else left.push(`worker ${r.instanceId}: ${describeState(stateOf(r) ?? 'unknown')}`);
        }
      } catch (e) {
        unreachable = true;
        left.push(`workers: unreachable, not drained and still in the swarm (${reason(e)})`);
      }
    }
    if (nodeOf.size > 0 && managerInSwarm) {
      try {
        const r = await runOnManager(ctx, buildDrainScript([...nodeOf.values()]), { label: 'drain workers' });
        const drained = lines(r, 'DONE drained ');
        done.push(...itemLines('drained', 'drained workers', drained));
      } catch (e) {
        skipped.push(`drain: manager unreachable (${reason(e)})`);
      }
    }
    const leftSwarm: string[] = [];
    if (nodeOf.size > 0) {
      try {
        for (const r of await ctx.runner.run([...nodeOf.keys()], WORKER_LEAVE_SCRIPT, { label: 'workers leave', timeoutSeconds: 120 })) {
          const st = stateOf(r);
          if (st && st.startsWith('inactive')) notInSwarm.push(r.instanceId);
          else if (st) left.push(`worker ${r.instanceId}: ${describeState(st)}`);
          else if (r.exitCode === 0 && lines(r, 'LEFT').length > 0) {
            leftSwarm.push(r.instanceId);
            leftNodeIds.push(nodeOf.get(r.instanceId) as string);
          } else left.push(`worker ${r.instanceId}: leave failed (exit ${r.exitCode}): ${tail(r.stderr, 2)}`);
        }
      } catch (e) {
        unreachable = true;
        left.push(`workers: leave not confirmed (${reason(e)})`);
      }
    }
    if (leftSwarm.length <= 5) done.push(...leftSwarm.map((w) => `worker ${w} left the swarm`));
    else done.push(`workers left the swarm (${leftSwarm.length}): ${summariseList(leftSwarm)}`);
    if (notInSwarm.length > 0) skipped.push(`${notInSwarm.length === 1 ? `worker ${notInSwarm[0]}` : `workers ${summariseList(notInSwarm)}`}: not in a swarm`);
  }
  if (goOn && managerInSwarm) {
    try {
      const r = await runOnManager(ctx, buildRemoveNodesScript(leftNodeIds), { label: 'remove worker nodes' });
      done.push(...itemLines('removed node', 'removed nodes', lines(r, 'DONE removed node ')));
      done.push(...itemLines('removed down node', 'removed down nodes', lines(r, 'DONE removed down node ')));
    } catch (e) {
      unreachable = true;
      left.push(`worker nodes: not removed, manager unreachable (${reason(e)})`);
    }
  }

  // 3. The managers leave (they hold the swarm: only when the workers are done, or forced). The others first, the
  // one that did the work last, so the swarm answers until the end.
  if (managerInSwarm && (left.length === 0 || opts.force)) {
    for (const id of [...managers.filter((m) => m !== manager), manager]) {
      ctx.reporter.progress(`manager ${id} leaves the swarm`);
      try {
        const r = await runOnManager(ctx, MANAGER_LEAVE_SCRIPT, { label: 'manager leaves', timeoutSeconds: 120 }, id);
        const st = stateOf(r);
        if (st && st.startsWith('inactive')) skipped.push(`manager ${r.instanceId}: not in a swarm`);
        else if (st) left.push(`manager ${r.instanceId}: ${describeState(st)}`);
        else if (r.exitCode === 0) done.push(`manager ${r.instanceId} left the swarm`);
        else left.push(`manager ${r.instanceId}: leave failed (exit ${r.exitCode}): ${tail(r.stderr, 2)}`);
      } catch (e) {
        unreachable = true;
        left.push(`manager ${id}: unreachable, still in its swarm (${reason(e)})`);
      }
    }
  } else if (managerInSwarm) {
    left.push(`manager ${manager}: still holds the swarm (it leaves once the rest is done)`);
  }

  // 4. Runtime parameters (tokens, addresses): the last thing, only when everything else is gone (or forced).
  if (left.length === 0 || opts.force) {
    try {
      const deleted = await ctx.cloud.deleteRuntimeParameters();
      if (deleted.length > 0) done.push(`deleted parameters ${deleted.join(', ')}`);
      else skipped.push(`parameters under ${ctx.cluster.parameterPrefix}: none left`);
    } catch (e) {
      unreachable = true;
      left.push(`parameters under ${ctx.cluster.parameterPrefix}: not deleted (${reason(e)})`);
    }
  } else {
    left.push(`parameters under ${ctx.cluster.parameterPrefix}: kept for a retry`);
  }
  ctx.reporter.done();
  const complete = left.length === 0;
  return { complete, ...(complete ? {} : { outcome: unreachable ? 'unreachable' : 'incomplete' }), done, skipped, left };
}
