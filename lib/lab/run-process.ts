/**
 * Run a command to completion with a hard timeout. The child gets its own process group (setsid), so on timeout
 * the whole group is killed, not just the first process (a `sh -c` would otherwise leave its children running).
 * (Lab hosts, D1. SSM Run Command state lives in ssm/run-command.ts.)
 */
import { spawn } from 'node:child_process';
import { SwarmError } from '../errors';

export interface RunOptions {
  /** Complete environment of the child. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. @default - stdin is /dev/null */
  readonly stdin?: string | Buffer;
  /** Hard limit; the process group is killed with SIGKILL when it is reached. @default 60000 */
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Output beyond this many bytes per stream is dropped (and a marker appended). @default 16 MiB */
  readonly maxOutputBytes?: number;
}

export interface RunResult {
  /** Exit code; 128 + signal number when killed by a signal (as a shell reports it). */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the timeout killed the process group. */
  readonly timedOut: boolean;
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };

export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const max = opts.maxOutputBytes ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const collect = (stream: NodeJS.ReadableStream | null): { chunks: Buffer[]; size: number; cut: boolean } => {
      const acc = { chunks: [] as Buffer[], size: 0, cut: false };
      stream?.on('data', (b: Buffer) => {
        if (acc.cut) return;
        if (acc.size + b.length > max) {
          acc.chunks.push(b.subarray(0, Math.max(0, max - acc.size)));
          acc.size = max;
          acc.cut = true;
        } else {
          acc.chunks.push(b);
          acc.size += b.length;
        }
      });
      return acc;
    };
    const out = collect(child.stdout);
    const err = collect(child.stderr);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // group already gone
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(SwarmError.environment('COMMAND_NOT_STARTED', `cannot run ${file}: ${e.message}`, e));
    });
    if (opts.stdin !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined); // the child may exit without reading its input (EPIPE)
      child.stdin.end(opts.stdin);
    }
    // Resolve on 'close' (all output read); a background grandchild holding the pipes open must not hold us:
    // 2 s after the child itself exits, stop reading and resolve anyway.
    let done = false;
    let exitStatus: { code: number | null; sig: NodeJS.Signals | null } | undefined;
    let grace: NodeJS.Timeout | undefined;
    const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (grace) clearTimeout(grace);
      child.stdout?.destroy();
      child.stderr?.destroy();
      const text = (acc: { chunks: Buffer[]; cut: boolean }): string =>
        Buffer.concat(acc.chunks).toString('utf8') + (acc.cut ? '\n[output truncated]\n' : '');
      resolve({
        exitCode: code ?? 128 + (sig ? (SIGNALS[sig] ?? 0) : 0),
        stdout: text(out),
        stderr: text(err),
        timedOut,
      });
    };
    child.on('exit', (code, sig) => {
      exitStatus = { code, sig };
      grace = setTimeout(() => finish(code, sig), 2_000);
    });
    child.on('close', (code, sig) => finish(exitStatus?.code ?? code, exitStatus?.sig ?? sig));
  });
}

/** runCommand, but a non-zero exit is an environment error quoting the command's output. */
export async function runChecked(
  file: string,
  args: readonly string[],
  opts: RunOptions & { what?: string } = {},
): Promise<RunResult> {
  const r = await runCommand(file, args, opts);
  if (r.exitCode !== 0) {
    const what = opts.what ?? `${file} ${args.join(' ')}`;
    const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? 60_000} ms` : `exit ${r.exitCode}`;
    throw SwarmError.environment('LAB_COMMAND_FAILED', `${what} failed (${why}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  }
  return r;
}
