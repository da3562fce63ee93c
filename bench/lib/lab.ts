/**
 * A lab for a benchmark: its own identity (EC2_SWARM_LAB_DIR / _PREFIX / _NET, with defaults of its own so it runs
 * beside a default lab), brought up with the project's labUp, reached with the ops API's connect, and always brought
 * down with labDown — also on Ctrl-C. Plus direct access to a host's dockerd, the way an operator would use it by
 * hand (the baseline side of the lab benchmarks).
 */
import { execFile } from 'node:child_process';
import { checkLabEnvironment, labDown, labUp, type LabState, type LabUpOptions } from '../../lib/lab/lab';
import { recordedHosts } from '../../lib/lab/ec2/hosts';
import { dockerSocketOf } from '../../lib/lab/ec2/host-exec';
import { readResources } from '../../lib/lab/resources';
import { connect, type Connection, type Reporter } from '../../lib/ops';

process.env.EC2_SWARM_LAB_DIR ||= '/var/lib/ec2-swarm-bench';
process.env.EC2_SWARM_LAB_PREFIX ||= 'e2b';
process.env.EC2_SWARM_LAB_NET ||= '235';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ||= 'true';

export const LAB_DIR = process.env.EC2_SWARM_LAB_DIR as string;

/** Info lines to stderr (what the lab is doing), no progress spinners in a benchmark's output. */
export const benchReporter: Reporter = {
  info: (m) => process.stderr.write(`  · ${m}\n`),
  warn: (m) => process.stderr.write(`  ! ${m}\n`),
  progress: () => undefined,
  done: () => undefined,
};

export interface BenchLab {
  readonly state: LabState;
  readonly conn: Connection;
}

/**
 * Set when the ops code on this commit could not find the managers from the lab's outputs (the HA template has a
 * manager group, no instance id) and the bench gave it the lab's manager instance ids instead — what ops will do
 * through SSM's instance tags (docs/round2-contracts.md, "Ops"). Benchmarks print it with their method.
 */
export let managersFromLabState = false;

/** The method note every lab benchmark prints when the stand-in above was used. */
export function labNotes(): string[] {
  return managersFromLabState
    ? ['- note: on this commit the ops code finds no manager in the lab\'s outputs (HA manager group); the bench passes it the lab\'s manager instance ids and keeps the managers out of the worker list, as ops will do through SSM instance tags.']
    : [];
}

function withManagers(conn: Connection, state: LabState): Connection {
  // Ops that find the managers by their tags (an HA manager group) need no stand-in.
  if (conn.cluster.managerInstanceIds.length > 0 || conn.cloud.listManagerInstanceIds) return conn;
  managersFromLabState = true;
  const managers = state.hosts.filter((h) => h.role === 'manager').map((h) => h.instanceId);
  return {
    ...conn,
    cluster: { ...conn.cluster, managerInstanceIds: managers },
    cloud: {
      listWorkerInstanceIds: async () => (await conn.cloud.listWorkerInstanceIds()).filter((id) => !managers.includes(id)),
      deleteRuntimeParameters: () => conn.cloud.deleteRuntimeParameters(),
    },
  };
}

let current: Promise<unknown> | undefined;
let interrupted = false;
const onInterrupt = (): void => {
  interrupted = true;
  process.stderr.write('\ninterrupted: bringing the bench lab down\n');
  void labDown({ labDir: LAB_DIR, reporter: benchReporter }).finally(() => process.exit(130));
};

/**
 * A new connection to the lab, as each `ec2-swarm` command makes one: the cluster looked up again, the managers
 * listed again (online first). Close it after use.
 */
export async function freshConnection(state: LabState): Promise<Connection> {
  return withManagers(await connect({ target: 'lab', reporter: benchReporter, env: { ...process.env } }), state);
}

/** Lab up (the project's labUp), run `fn`, lab down (always; purged when everything went well). */
export async function withLab<T>(opts: Pick<LabUpOptions, 'workers' | 'managers' | 'timeoutSeconds'>, fn: (lab: BenchLab) => Promise<T>): Promise<T> {
  if (current) throw new Error('one bench lab at a time');
  checkLabEnvironment();
  if (readResources(LAB_DIR)) throw new Error(`a lab is already up in ${LAB_DIR}: bring it down first (EC2_SWARM_LAB_DIR=${LAB_DIR} npx tsx bin/ec2-swarm.ts lab down)`);
  let ok = false;
  let conn: Connection | undefined;
  const body = (async () => {
    try {
      const state = await labUp({ ...opts, labDir: LAB_DIR, reporter: benchReporter });
      conn = await connect({ target: 'lab', reporter: benchReporter, env: { ...process.env } });
      const value = await fn({ state, conn: withManagers(conn, state) });
      ok = true;
      return value;
    } finally {
      conn?.close();
      if (!interrupted) await labDown({ labDir: LAB_DIR, reporter: benchReporter, purge: ok });
    }
  })();
  current = body;
  process.once('SIGINT', onInterrupt);
  try {
    return await body;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    current = undefined;
  }
}

export interface DockerResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The docker CLI against one host's dockerd (its socket seen through the host's namespace holder), as an operator
 * logged in on that host would run it. `host` is the lab's host name (`h0` the manager, `h1`… workers). Rejects on a
 * non-zero exit unless `allowFail`. Works while the lab is still coming up (hosts are recorded as they start).
 */
export function hostDocker(
  state: Pick<LabState, 'labDir' | 'prefix'>,
  host: string,
  args: readonly string[],
  opts: { timeoutMs?: number; allowFail?: boolean } = {},
): Promise<DockerResult> {
  const rec = recordedHosts(state.labDir).find((h) => h.ns === `${state.prefix}-${host}`);
  if (!rec) return Promise.reject(new Error(`no lab host ${host} recorded in ${state.labDir}`));
  return new Promise((resolve, reject) => {
    execFile(
      'docker',
      ['-H', `unix://${dockerSocketOf(rec)}`, ...args],
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 2 ** 20 },
      (err, stdout, stderr) => {
        const exitCode = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        if (exitCode !== 0 && !opts.allowFail) reject(new Error(`docker ${args.slice(0, 3).join(' ')} on ${host} failed (exit ${exitCode}): ${stderr.trim().split('\n').slice(-3).join(' ')}`));
        else resolve({ exitCode, stdout, stderr });
      },
    );
  });
}

/** The bench lab's identity before its state file exists (while lab up runs). */
export function pendingLab(): Pick<LabState, 'labDir' | 'prefix'> {
  return { labDir: LAB_DIR, prefix: process.env.EC2_SWARM_LAB_PREFIX as string };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns the time (ms epoch) it became true. */
export async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return Date.now();
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s`);
    await sleep(everyMs);
  }
}

/** Ready nodes as the manager sees them (directly, outside the tool). */
export async function readyNodes(state: Pick<LabState, 'labDir' | 'prefix'>, manager = 'h0'): Promise<number> {
  const r = await hostDocker(state, manager, ['node', 'ls', '--format', '{{.Status}}'], { allowFail: true, timeoutMs: 10_000 });
  return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.trim() === 'Ready').length : 0;
}

/** Every service and its tasks removed (untimed clean-up between runs). */
export async function removeAllServices(state: LabState, manager = 'h0'): Promise<void> {
  const ids = (await hostDocker(state, manager, ['service', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  if (ids.length) await hostDocker(state, manager, ['service', 'rm', ...ids]);
  const stacks = (await hostDocker(state, manager, ['network', 'ls', '-q', '--filter', 'label=com.docker.stack.namespace'])).stdout.split('\n').filter(Boolean);
  if (stacks.length) await hostDocker(state, manager, ['network', 'rm', ...stacks], { allowFail: true });
  await pollUntil(
    'tasks gone',
    async () => {
      const counts = await Promise.all(state.hosts.map((h) => hostDocker(state, h.name, ['ps', '-q'], { allowFail: true }).then((r) => r.stdout.split('\n').filter(Boolean).length)));
      return counts.every((n) => n === 0);
    },
    120_000,
    500,
  );
}
