/**
 * `teardown`: remove stacks and services (and the networks, configs and secrets of every stack, also those a failed
 * deploy left without services), make the workers leave, then every manager, delete the runtime parameters.
 *
 * Three Run Commands in a row (docs/design.md, decisions 18 and 22): the manager that answers first removes the workload and
 * lists the worker nodes (the gate: nothing else is touched unless it is a working manager); the workers leave, all
 * in one command; every manager stops its reconciler and leaves, in parallel. Nothing waits for tasks to stop:
 * leaving force-removes the node's task containers, and what a leave missed is removed and counted on the node.
 *
 * Done means observed (design.md decision 13): only "this node is not in a swarm" (and no task container left on it)
 * counts as gone. A manager that cannot be reached, has no docker answering, or fails, leaves the teardown incomplete:
 * the workers keep their membership and the parameters stay (a retry needs them) unless `force` is set, and the
 * report says what is left. Safe to run twice: whatever is already gone is reported as such.
 */
import { isSwarmError } from '../errors';
import type { CommandResult, OpsContext, TeardownReport } from './types';
import { managerIds, runOnManager, tail } from './swarm/manager';
import { NODE_SCRIPTS_DIR } from './rotate-tokens';
import { STATE_MAGIC } from './swarm/query-script';
import { script } from './swarm/script';
import { summariseList } from './summary';

export interface TeardownOptions {
  /** Also when a manager is unreachable or failed: force the workers out and delete the parameters anyway. */
  readonly force?: boolean;
}

const STACK_LABEL = 'com.docker.stack.namespace';
const TASK_LABEL = 'com.docker.swarm.task.id';
const NODE_ID = /^[a-z0-9]{25}$/;
/** Each step takes seconds and the next waits on it: its result polled every 0.25 s at most, not every 1 s. */
const POLL_MAX_MS = 250;
/** The engine label every node script sets (scripts/node/common.sh): which instance a node is. */
const INSTANCE_LABEL = 'ec2-swarm.instance-id';

/**
 * Each docker CLI start costs 0.1–0.3 s on a loaded host, so the scripts make few and run the reads that do not
 * depend on each other at once (docs/design.md, decision 22). The node's state, and its node id, in one call.
 */
const readState = (withNodeId: boolean): string[] => [
  `state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}${withNodeId ? ' {{.Swarm.NodeID}}' : ''}' 2>/dev/null) || state=no-docker`,
  `read -r swarm control${withNodeId ? ' node' : ''} <<< "$state" || true`,
];
/** Not in a swarm, or no docker answering: said as the gate says it, and nothing else is done. */
const STOP_UNLESS_IN_SWARM = `case "$swarm" in no-docker | inactive) echo "${STATE_MAGIC} $swarm\${control:+ $control}"; exit 0 ;; esac`;

/**
 * After a leave, both at once: the swarm's task containers it did not remove (leaving force-removes them, but one
 * that was being stopped at that moment can stay), and the node's state. What is found is removed and counted again.
 * A count that could not be taken fails the script (set -e), never reads as 0.
 */
const AFTER_LEAVE = [
  `docker ps -aq --filter label=${TASK_LABEL} > "$EC2SWARM_TMP/tasks" & ps_pid=$!`,
  `after=$(docker info --format '{{.Swarm.LocalNodeState}}')`,
  'wait "$ps_pid"',
  'left=0',
  `if [ -s "$EC2SWARM_TMP/tasks" ]; then xargs -r docker rm -f < "$EC2SWARM_TMP/tasks" > /dev/null 2>&1 || true; left=$(docker ps -aq --filter label=${TASK_LABEL} | wc -l); fi`,
  'echo "CONTAINERS-LEFT $left"',
  'if [ "$after" = inactive ]; then echo LEFT; else echo "STILL $after"; fi',
];

/**
 * On the manager that answers first, the gate. The reads start at once (nothing changes before the state says this is
 * a working manager): the stacks, by their label on services (`docker stack ls`: 20.10's `service ls --format` has
 * no .Label) and on networks, configs and secrets (a failed deploy can leave a stack without services); the worker
 * nodes with their status and instance label. Then every stack is removed (`docker stack rm`, up to 8 at once),
 * then every service still listed (no stack's, or a stack's whose rm failed before its services went), without
 * waiting for their tasks; what is listed after that is reported as left.
 */
export const REMOVE_WORKLOAD_SCRIPT = script(
  'T=$EC2SWARM_TMP',
  `docker stack ls --format '{{.Name}}' > "$T/stacks.service" 2> "$T/err.stacks" & pids=$!`,
  `for kind in network config secret; do docker "$kind" ls --filter label=${STACK_LABEL} --format '{{.Label "${STACK_LABEL}"}}' > "$T/stacks.$kind" 2> "$T/err.$kind" & pids="$pids $!"; done`,
  `{ docker node ls -q --filter role=worker | xargs -r docker node inspect --format '{{.ID}} {{.Status.State}} {{index .Description.Engine.Labels "${INSTANCE_LABEL}"}}'; } > "$T/workers" 2> "$T/err.workers" & pids="$pids $!"`,
  `state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null) || { echo '${STATE_MAGIC} no-docker'; exit 0; }`,
  `if [ "$state" != "active true" ]; then echo "${STATE_MAGIC} $state"; exit 0; fi`,
  'failed=0',
  'for p in $pids; do wait "$p" || failed=1; done',
  'if [ "$failed" = 1 ]; then cat "$T"/err.* >&2; exit 1; fi',
  `sort -u "$T"/stacks.* | sed '/^$/d' > "$T/stacks"`,
  '# shellcheck disable=SC2016 # $1 is the stack name, expanded by the sh that xargs starts',
  `xargs -r -d '\\n' -n 1 -P 8 sh -c 'if docker stack rm "$1" > /dev/null 2>&1; then echo "DONE stack $1"; else echo "FAILED stack $1"; fi' sh < "$T/stacks" > "$T/stack-results"`,
  'sort "$T/stack-results"',
  `docker service ls --format '{{.Name}}' > "$T/remaining"`,
  ': > "$T/removed"',
  // service rm prints each name it removed.
  `if [ -s "$T/remaining" ]; then xargs -r -d '\\n' docker service rm < "$T/remaining" > "$T/removed" 2> /dev/null || true; docker service ls --format '{{.Name}}' > "$T/remaining"; fi`,
  `grep -vxF -f "$T/remaining" "$T/removed" | sed 's/^/DONE service /' || true`,
  `sed 's/^/LEFT service /' "$T/remaining"`,
  `sed 's/^/WORKER /' "$T/workers"`,
);

/**
 * On each worker: its node id (read with its state), then it leaves (a worker needs no --force; only when it cannot
 * reach a manager), then the check after the leave.
 */
export const WORKER_LEAVE_SCRIPT = script(
  ...readState(true),
  STOP_UNLESS_IN_SWARM,
  'echo "NODE $node"',
  'docker swarm leave > /dev/null 2>&1 || docker swarm leave --force > /dev/null',
  ...AFTER_LEAVE,
);

/**
 * On each manager: the reconciler stopped, in every state (a pass still running would republish manager-addresses
 * after the parameters are deleted), while the state is read; then the leave.
 */
export const MANAGER_LEAVE_SCRIPT = script(
  `if [ -r ${NODE_SCRIPTS_DIR}/reconcile.sh ]; then /bin/bash ${NODE_SCRIPTS_DIR}/reconcile.sh --stop > /dev/null 2>&1 & stop_pid=$!; fi`,
  ...readState(false),
  `if [ -n "\${stop_pid:-}" ]; then wait "$stop_pid" || echo 'warning: the reconciler did not stop' >&2; fi`,
  STOP_UNLESS_IN_SWARM,
  'docker swarm leave --force > /dev/null',
  ...AFTER_LEAVE,
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

const lines = (r: CommandResult, prefix: string): string[] =>
  r.stdout.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
const stateOf = (r: CommandResult): string | undefined => lines(r, `${STATE_MAGIC} `)[0];

type LeaveOutcome = { kind: 'left' } | { kind: 'not-in-swarm' } | { kind: 'left-over'; what: string };

/** What a leave script's output shows; `left` only when the node said "not in a swarm" and no task container is left. */
function leaveOutcome(r: CommandResult): LeaveOutcome {
  const st = stateOf(r);
  if (st && st.startsWith('inactive')) return { kind: 'not-in-swarm' };
  if (st) return { kind: 'left-over', what: describeState(st) };
  if (r.exitCode !== 0) return { kind: 'left-over', what: `leave failed (exit ${r.exitCode}): ${tail(r.stderr, 2)}` };
  const still = lines(r, 'STILL ')[0];
  if (still !== undefined) return { kind: 'left-over', what: `still in swarm state "${still}" after leaving` };
  const containers = Number(lines(r, 'CONTAINERS-LEFT ')[0] ?? 'NaN');
  if (lines(r, 'LEFT').length === 0 || !Number.isInteger(containers)) return { kind: 'left-over', what: 'the leave was not confirmed' };
  if (containers > 0) return { kind: 'left-over', what: `left the swarm, but ${containers} task container(s) could not be removed` };
  return { kind: 'left' };
}

export async function teardown(ctx: OpsContext, opts: TeardownOptions = {}): Promise<TeardownReport> {
  const done: string[] = [];
  const skipped: string[] = [];
  const left: string[] = [];
  let unreachable = false;
  const unreachableIds = new Set<string>();
  // Both lookups at once; the workers are needed only once the manager has answered.
  const workersAsked = ctx.cloud.listWorkerInstanceIds().then(
    (ids) => ({ ids }),
    (e: unknown) => ({ ids: [] as string[], error: e }),
  );
  // Every manager of the cluster (from the outputs, or found by tag); the one that answers first does the work.
  const managers = await managerIds(ctx).catch((): readonly string[] => []);
  let manager = managers[0] ?? 'manager';

  // 1. The gate, on a manager: the workload removed, the worker nodes listed. Only "not in a swarm" or a clean
  // removal lets the teardown go on.
  let managerInSwarm = false;
  let managerGone = false;
  const workerNodes = new Map<string, { status: string; instance: string }>(); // by node id, as the manager saw them
  ctx.reporter.progress(`removing stacks and services on ${manager}`);
  try {
    const r = await runOnManager(ctx, REMOVE_WORKLOAD_SCRIPT, { label: 'remove stacks and services', timeoutSeconds: 120, pollMaxMs: POLL_MAX_MS });
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
      // A stack whose services are gone but whose networks, configs or secrets docker could not remove yet does not
      // stop the teardown: they go with the swarm when the managers leave, and a retry removes them by their label.
      const failedStacks = lines(r, 'FAILED stack ');
      if (failedStacks.length > 0) skipped.push(`stacks ${summariseList(failedStacks)}: docker stack rm reported an error; what it left goes with the swarm`);
      const services = lines(r, 'LEFT service ');
      if (services.length > 0) left.push(`services still listed after removal: ${summariseList(services)}`);
      for (const w of lines(r, 'WORKER ')) {
        const [id, status = '?', instance = ''] = w.split(' ');
        if (NODE_ID.test(id)) workerNodes.set(id, { status, instance });
      }
    }
  } catch (e) {
    unreachable = true;
    unreachableIds.add(manager);
    left.push(`manager ${manager}: unreachable (${reason(e)}); its swarm, stacks and services were not touched`);
  }
  const managerOk = managerGone || (managerInSwarm && left.length === 0);
  const goOn = managerOk || opts.force === true;
  if (!managerOk) {
    if (opts.force) skipped.push('--force: going on with the workers and the parameters although the manager is not done');
    else skipped.push('workers, manager leave and parameters: not touched, so that a retry can finish (or use --force)');
  }

  // 2. The workers leave, all in one command.
  if (goOn) {
    const asked = await workersAsked;
    if ('error' in asked) {
      left.push(`workers: cannot list them (${reason(asked.error)})`);
      unreachable = true;
    }
    const workerIds = asked.ids;
    if (workerIds.length === 0 && !('error' in asked)) skipped.push('workers: none running');
    const leftSwarm: string[] = [];
    const notInSwarm: string[] = [];
    const nodesSeen = new Set<string>();
    if (workerIds.length > 0) {
      ctx.reporter.progress(`workers: ${workerIds.length} leave the swarm`);
      try {
        for (const r of await ctx.runner.run(workerIds, WORKER_LEAVE_SCRIPT, { label: 'workers leave', timeoutSeconds: 120, pollMaxMs: POLL_MAX_MS })) {
          const node = lines(r, 'NODE ')[0];
          if (node && NODE_ID.test(node)) nodesSeen.add(node);
          const o = leaveOutcome(r);
          if (o.kind === 'left') leftSwarm.push(r.instanceId);
          else if (o.kind === 'not-in-swarm') notInSwarm.push(r.instanceId);
          else left.push(`worker ${r.instanceId}: ${o.what}`);
        }
      } catch (e) {
        unreachable = true;
        left.push(`workers: leave not confirmed (${reason(e)})`);
      }
    }
    if (leftSwarm.length <= 5) done.push(...leftSwarm.map((w) => `worker ${w} left the swarm`));
    else done.push(`workers left the swarm (${leftSwarm.length}): ${summariseList(leftSwarm)}`);
    if (notInSwarm.length > 0) skipped.push(`${notInSwarm.length === 1 ? `worker ${notInSwarm[0]}` : `workers ${summariseList(notInSwarm)}`}: not in a swarm`);
    // A worker node the manager listed as not down that no worker answered for (by its node id, or by its instance
    // label: a worker that already left has no node id, and the manager marks it down only seconds later): its
    // instance is not online in SSM, so it was not asked to leave, and the swarm would go with it still in it.
    const answered = new Set([...leftSwarm, ...notInSwarm]);
    const unaccounted = [...workerNodes]
      .filter(([id, n]) => n.status !== 'down' && !nodesSeen.has(id) && !answered.has(n.instance))
      .map(([id, n]) => `${id} (${n.status}${/^i-[0-9a-z]{1,32}$/.test(n.instance) ? `, ${n.instance}` : ''})`);
    if (unaccounted.length > 0) left.push(`worker nodes no online worker instance answered for, still in the swarm: ${summariseList(unaccounted)}`);
  }

  // 3. Every manager stops its reconciler and leaves, all at once (they hold the swarm: only when the workers are
  // done, or forced). A manager that was unreachable in this run is not asked again.
  if (goOn && (left.length === 0 || opts.force)) {
    const targets = managers.filter((m) => !unreachableIds.has(m));
    ctx.reporter.progress(`managers leave the swarm (${targets.length})`);
    const results = await Promise.all(
      targets.map(async (id) => {
        try {
          return { id, r: await runOnManager(ctx, MANAGER_LEAVE_SCRIPT, { label: 'manager leaves', timeoutSeconds: 120, pollMaxMs: POLL_MAX_MS }, id) };
        } catch (e) {
          return { id, error: e };
        }
      }),
    );
    for (const x of results) {
      if ('error' in x) {
        unreachable = true;
        left.push(`manager ${x.id}: unreachable, still in its swarm (${reason(x.error)})`);
        continue;
      }
      const o = leaveOutcome(x.r);
      if (o.kind === 'left') done.push(`manager ${x.id} left the swarm`);
      else if (o.kind === 'not-in-swarm') {
        if (!(managerGone && x.id === manager)) skipped.push(`manager ${x.id}: not in a swarm`);
      } else {
        if (o.what === 'docker is not answering') unreachable = true;
        left.push(`manager ${x.id}: ${o.what}`);
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
