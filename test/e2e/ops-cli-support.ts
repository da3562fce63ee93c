/**
 * Shared by the lifecycle and fault e2e files: one lab per file (own dir, prefix, network), the user-facing CLI run
 * as a user runs it (`tsx bin/ec2-swarm.ts … --target lab`), and the "no join token anywhere" check.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, type Connection, type ServiceReplicaStatus, type StatusReport } from '../../lib/ops';
import { labDown, labUp, logFiles, type LabState } from '../../lib/lab/lab';

// The SDK's Node-version notice is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const REPO = resolve(__dirname, '..', '..');

export interface LabIdentity {
  readonly labDir: string;
  readonly prefix: string;
  readonly net: number;
}

/**
 * A test file's lab identity: its own default (what CI runs), or the one given in EC2_SWARM_LAB_DIR / _PREFIX / _NET
 * when EC2_SWARM_LAB_PREFIX is set (a developer's own lab beside others' on a shared machine; the files run one at
 * a time, each taking the lab down before and after).
 */
export function e2eLabIdentity(defaults: LabIdentity): LabIdentity {
  const prefix = process.env.EC2_SWARM_LAB_PREFIX;
  if (!prefix) return defaults;
  return { labDir: process.env.EC2_SWARM_LAB_DIR ?? `${defaults.labDir}-${prefix}`, prefix, net: Number(process.env.EC2_SWARM_LAB_NET ?? defaults.net) };
}
export const DEMO_COMPOSE = join(REPO, 'examples', 'demo', 'docker-compose.yml');
const TSX = join(REPO, 'node_modules', '.bin', 'tsx');
const CLI = join(REPO, 'bin', 'ec2-swarm.ts');

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

export interface E2eLab {
  readonly state: LabState;
  readonly conn: Connection;
  /** Every CLI output of this file, for the join-token check. */
  readonly outputs: string[];
  cli(args: readonly string[], timeoutSeconds?: number): Promise<CliRun>;
}

/** The lab of one test file. Leftovers of an earlier, crashed run of the same file are removed first. */
export async function startLab(o: { labDir: string; prefix: string; net: number; managers?: number; workers?: number; timeoutSeconds?: number; pullImages?: boolean }): Promise<E2eLab> {
  await labDown({ labDir: o.labDir });
  const state = await labUp({
    workers: o.workers ?? 3,
    managers: o.managers ?? 1,
    labDir: o.labDir,
    prefix: o.prefix,
    net: o.net,
    timeoutSeconds: o.timeoutSeconds ?? 180,
    ...(o.pullImages ? { pullImages: true } : {}),
  });
  const env = { ...process.env, EC2_SWARM_LAB_DIR: o.labDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  const conn = await connect({ target: 'lab', env });
  const outputs: string[] = [];
  const cli = (args: readonly string[], timeoutSeconds = 180): Promise<CliRun> =>
    new Promise((done) => {
      const t0 = Date.now();
      execFile(TSX, [CLI, ...args, '--target', 'lab'], { cwd: REPO, env, timeout: timeoutSeconds * 1000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        outputs.push(stdout, stderr);
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr, seconds: (Date.now() - t0) / 1000 });
      });
    });
  return { state, conn, outputs, cli };
}

export async function stopLab(lab: E2eLab | undefined, labDir: string): Promise<void> {
  lab?.conn.close();
  await labDown({ labDir, purge: keepLabLogs() === false });
}

/** e2e runs leave the machine as found (lab directory included) unless EC2_SWARM_KEEP_LAB=1 asks to keep the logs. */
export function keepLabLogs(): boolean {
  return process.env.EC2_SWARM_KEEP_LAB === '1';
}

export function service(report: StatusReport | { services: readonly ServiceReplicaStatus[] }, name: string): ServiceReplicaStatus {
  const s = report.services.find((x) => x.name === name);
  if (!s) throw new Error(`no service ${name} in ${report.services.map((x) => x.name).join(', ')}`);
  return s;
}

/** Hostnames of the nodes running the service's tasks (desired and current state running). */
export function runningOn(s: ServiceReplicaStatus): string[] {
  return (s.tasks ?? []).filter((t) => t.desiredState === 'running' && t.currentState === 'running').map((t) => t.node ?? '?');
}

/**
 * Every place a join token could leak to: the lab's logs (cloud-init output of each host, dockerd, controller,
 * gateway, the SSM request and SendCommand logs, with each command's parameters) and the CLI outputs.
 * Returns the files read, so a test can show it read the SendCommand log, and the places a token was found.
 */
export function findJoinTokens(state: LabState, outputs: readonly string[]): { files: string[]; leaks: string[] } {
  const files = logFiles(state).filter((f) => existsSync(f));
  const leaks: string[] = [];
  for (const f of files) if (readFileSync(f, 'utf8').includes('SWMTKN')) leaks.push(f);
  outputs.forEach((o, i) => {
    if (o.includes('SWMTKN')) leaks.push(`CLI output #${i}`);
  });
  return { files, leaks };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value, or throws after `seconds`. */
export async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds}s`);
    await sleep(1000);
  }
}

/** SendCommand scripts the lab's SSM recorded (each command's parameters, as SSM keeps them in its history). */
export function recordedCommands(labDir: string): string[] {
  return readFileSync(join(labDir, 'logs', 'ssm-send-command.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { parameters: { commands: string[] } }).parameters.commands.join('\n'));
}
