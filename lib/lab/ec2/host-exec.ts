/**
 * Running commands inside a lab host: `nsenter --target <holderPid> --net --mount --uts -- argv` (how the lab runs
 * user-data, as cloud-init would, and Run Command scripts, as the SSM agent would).
 */
import { SwarmError } from '../../errors';
import { HOST_PATH, tool } from '../lab-config';
import { HostRecord, isAlive } from '../resources';
import { RunResult, runCommand } from '../run-process';

/** A started host. Plain data: it can be written to a state file and used by another process. */
export type LabHost = HostRecord;

/** The host's dockerd socket, reachable from the machine's namespace through the holder's root. */
export function dockerSocketOf(host: Pick<LabHost, 'holderPid'>): string {
  return `/proc/${host.holderPid}/root/run/docker.sock`;
}

export function requireHolder(host: LabHost): void {
  if (!isAlive({ pid: host.holderPid, startTime: host.holderStartTime })) {
    throw SwarmError.environment('LAB_HOST_DOWN', `host ${host.ns} is not running (its holder PID ${host.holderPid} is gone): start the lab again`);
  }
}

export interface ExecOptions {
  /** Variables added to the environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to the command's stdin. @default - /dev/null */
  readonly stdin?: string | Buffer;
  /** Hard limit: the process group is killed. @default 60000 */
  readonly timeoutMs?: number;
  /**
   * Start from a minimal root environment (PATH, HOME=/root, LANG) instead of this process's, like cloud-init or
   * the SSM agent running a script: nothing of the caller's environment (AWS_*, proxies…) leaks into the host.
   *
   * @default false
   */
  readonly cleanEnv?: boolean;
}

export type ExecResult = RunResult;

/**
 * Run argv inside a host (its network, mount and UTS namespaces) and wait for it: `{ exitCode, stdout, stderr }`.
 * No shell is involved: pass `['sh', '-c', script]` to run a script, values through `env` or `stdin`.
 */
export async function execInHost(host: LabHost, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  if (argv.length === 0 || argv.some((a) => typeof a !== 'string' || a.includes('\0'))) {
    throw SwarmError.user('LAB_OPTIONS_INVALID', 'Invalid command:\n✖ must be a non-empty list of strings without NUL\n  → at argv');
  }
  requireHolder(host);
  const base: NodeJS.ProcessEnv = opts.cleanEnv ? { PATH: HOST_PATH, HOME: '/root', LANG: 'C.UTF-8', USER: 'root' } : { ...process.env };
  return runCommand(tool('nsenter'), ['--target', String(host.holderPid), '--net', '--mount', '--uts', '--', ...argv], {
    env: { ...base, ...opts.env },
    stdin: opts.stdin,
    timeoutMs: opts.timeoutMs ?? 60_000,
    cwd: '/',
  });
}

/** True if the host's holder is alive (its namespaces exist). */
export function isHostRunning(host: LabHost): boolean {
  return isAlive({ pid: host.holderPid, startTime: host.holderStartTime });
}
