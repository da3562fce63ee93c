/**
 * A CommandRunner wrapper for lab benchmarks that times what happens inside each Run Command. The script gets a bash
 * DEBUG trap that prints the wall clock (`$EPOCHREALTIME`: the lab's hosts are namespaces on this machine's kernel,
 * so it is the clock this process reads) and the command about to run, before every command of the script's own
 * shell, on stderr; those lines are taken out of the result before the ops code sees it. Each call then splits into:
 * runner called → script started (agent check, SendCommand, the lab's dispatch into the host), the script's steps,
 * script ended → result returned (result polling). Benchmarks only: the ops code and its scripts are unchanged.
 */
import type { CommandResult, CommandRunner, RunOptions } from '../../lib/ops';

/** Runs as a trap, so its own commands are not traced (functions do not inherit the DEBUG trap). */
const TRACE = [
  `__bench_trace() { local c=\${BASH_COMMAND//$'\\n'/ }; printf '@T %s %.90s\\n' "$EPOCHREALTIME" "$c" >&2; }`,
  'trap __bench_trace DEBUG',
].join('\n');
const END_MARK = '__BENCH_TRACE_END__';
const TRACE_LINE = /^@T (\d+)[.,](\d{6}) (.*)$/;

export interface TraceStep {
  /** epoch ms */
  readonly at: number;
  readonly command: string;
}

export interface TracedCall {
  readonly label: string;
  readonly instances: number;
  /** epoch ms: the runner was called / returned */
  readonly calledAt: number;
  readonly returnedAt: number;
  readonly seconds: number;
  readonly steps: ReadonlyMap<string, readonly TraceStep[]>;
}

/**
 * The script runs in a child bash with the trap set after its shebang (so the trap sees every command, the preamble's
 * too); the parent prints the moment it ended, since the last command's own duration would be lost otherwise.
 */
export function withTrace(script: string): string {
  if (script.split('\n').includes(END_MARK)) throw new Error('tracing: the script contains the end marker');
  const nl = script.indexOf('\n');
  const traced = nl > 0 && script.startsWith('#!') ? `${script.slice(0, nl + 1)}${TRACE}\n${script.slice(nl + 1)}` : `${TRACE}\n${script}`;
  return [
    '#!/bin/bash',
    `printf '@T %s (shell started)\\n' "$EPOCHREALTIME" >&2`,
    `IFS= read -r -d '' __bench_script <<'${END_MARK}' || true`,
    traced.replace(/\n$/, ''),
    END_MARK,
    'bash -c "$__bench_script"; __bench_rc=$?',
    `printf '@T %s (script ended)\\n' "$EPOCHREALTIME" >&2`,
    'exit "$__bench_rc"',
  ].join('\n') + '\n';
}

/** Splits stderr into the trace steps and what the script itself wrote. */
export function splitTrace(stderr: string): { steps: TraceStep[]; rest: string } {
  const steps: TraceStep[] = [];
  const rest: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = TRACE_LINE.exec(line);
    if (m) steps.push({ at: Number(m[1]) * 1000 + Number(m[2]) / 1000, command: m[3] });
    else rest.push(line);
  }
  return { steps, rest: rest.join('\n') };
}

export class TracingRunner implements CommandRunner {
  readonly calls: TracedCall[] = [];
  constructor(private readonly inner: CommandRunner) {}

  async run(instanceIds: readonly string[], script: string, options?: RunOptions): Promise<CommandResult[]> {
    const calledAt = Date.now();
    const t0 = performance.now();
    const steps = new Map<string, TraceStep[]>();
    try {
      const results = await this.inner.run(instanceIds, withTrace(script), options);
      return results.map((r) => {
        const { steps: s, rest } = splitTrace(r.stderr);
        steps.set(r.instanceId, s);
        return { ...r, stderr: rest };
      });
    } finally {
      this.calls.push({ label: options?.label ?? 'command', instances: instanceIds.length, calledAt, returnedAt: Date.now(), seconds: (performance.now() - t0) / 1000, steps });
    }
  }
}

export interface CallAnatomy {
  /** runner called → the first instance's script ran its first command */
  readonly toStart: number;
  /** first command on the first instance → last command on the last instance */
  readonly script: number;
  /** the last script's last command → the runner returned */
  readonly toResult: number;
  /** Each step's seconds (to the next traced command), slowest first, by instance. */
  readonly slowest: readonly { instance: string; command: string; seconds: number }[];
}

/** Seconds, from a traced call (undefined when no trace came back, e.g. a transport failure). */
export function anatomy(c: TracedCall): CallAnatomy | undefined {
  const all = [...c.steps.values()].filter((s) => s.length > 0);
  if (all.length === 0) return undefined;
  const start = Math.min(...all.map((s) => s[0].at));
  const end = Math.max(...all.map((s) => s[s.length - 1].at));
  const slowest = [...c.steps].flatMap(([instance, s]) => s.slice(0, -1).map((x, i) => ({ instance, command: x.command, seconds: (s[i + 1].at - x.at) / 1000 })));
  slowest.sort((a, b) => b.seconds - a.seconds);
  return { toStart: (start - c.calledAt) / 1000, script: (end - start) / 1000, toResult: (c.returnedAt - end) / 1000, slowest };
}
