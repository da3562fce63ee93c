/**
 * Test harness: runners that stand in for SSM. `BashRunner` really executes the generated script with bash,
 * with a `docker` stub first on PATH that records its argv and answers from data files, and cuts stdout at
 * SSM's 24,000 characters. `FakeRunner` answers from a handler and records every script.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SwarmError } from '../../../lib/errors';
import type { CloudApi, CommandResult, CommandRunner, OpsContext, Reporter, RunOptions } from '../../../lib/ops/types';
import { parseSnapshot, type SwarmSnapshot } from '../../../lib/ops/swarm/snapshot';
import { QUERY_MAGIC } from '../../../lib/ops/swarm/query-script';

/** True for a state query script (the runner stand-ins answer it with a snapshot). */
export const isQuery = (script: string): boolean => script.includes(QUERY_MAGIC);

export const SSM_STDOUT_CAP = 24000;
export const FIXTURES = join(__dirname, '../../fixtures/docker');

export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

export interface Call {
  readonly instanceIds: readonly string[];
  readonly script: string;
  readonly options?: RunOptions;
}

export class FakeRunner implements CommandRunner {
  readonly calls: Call[] = [];
  constructor(private readonly handler: (script: string, instanceId: string, call: number) => Partial<CommandResult> | Error) {}
  async run(instanceIds: readonly string[], script: string, options?: RunOptions): Promise<CommandResult[]> {
    this.calls.push({ instanceIds, script, options });
    return instanceIds.map((id) => {
      const r = this.handler(script, id, this.calls.length);
      if (r instanceof Error) throw r;
      return { instanceId: id, exitCode: 0, stderr: '', ...r, stdout: (r.stdout ?? '').slice(0, SSM_STDOUT_CAP) };
    });
  }
}

/**
 * The stdout the query script prints for a snapshot text that fits one page (with `fingerprint`: a watch query's;
 * `answeredAtMs`: the manager's clock at the answer, default the snapshot's own).
 */
export function queryStdout(snapshotText: string, fingerprint?: string, answeredAtMs?: number): string {
  const payload = gzipSync(snapshotText).toString('base64');
  const now = answeredAtMs !== undefined ? `${BigInt(answeredAtMs) * 1000000n}` : (/^#now\n(\d+)/m.exec(snapshotText)?.[1] ?? '0');
  const md5 = createHash('md5').update(snapshotText, 'utf8').digest('hex');
  return `${QUERY_MAGIC} - ${payload.length} ${fingerprint ?? '-'} 0 ${now} ${md5} -\n${payload}\n`;
}

/** The stdout of a watch query that saw no change: "same" at the manager's time `atMs`. */
export function sameStdout(fingerprint: string, atMs: number): string {
  const ns = `${BigInt(atMs) * 1000000n}`;
  return `${QUERY_MAGIC} same ${ns} ${fingerprint} 0 ${ns}\n`;
}

/** The long-poll parameters a watch query script carries (its first lines), for runner stand-ins. */
export function watchParams(script: string): { since: string; maxWaitMs: number; wakeMs: number } | undefined {
  const since = /^since='([^']*)'$/m.exec(script);
  if (!since) return undefined;
  return {
    since: since[1],
    maxWaitMs: Number(/^max_wait_ms='(\d+)'$/m.exec(script)?.[1]),
    wakeMs: Number(/^wake_ms='(\d+)'$/m.exec(script)?.[1]),
  };
}

/**
 * A docker stub: records each call's argv (NUL-separated, one file per call) and answers from data files. Bash
 * builtins only (the reads, cut and awk of the data files written as read loops): every process a stub call starts
 * costs ~15 ms of CPU on a loaded 2-core machine, and one look at the state makes thirteen calls.
 */
const DOCKER_STUB = `#!/bin/bash
set -u
# One file per call, named by the time it began (calls may run side by side).
printf '%s\\0' "$@" > "$STUB_DIR/calls/\${EPOCHREALTIME/./}.$$"
args=" $* "
sub="$1 \${2:-}"
T=$'\\t'
emit() { local t=''; IFS= read -r -d '' t < "$1" || true; printf '%s' "$t"; } # cat
# each: FILE EXPR: for every line l of FILE (the last one also without a newline), print EXPR's expansion.
field1() { local l; while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "\${l%%"$T"*}"; done < "$1"; } # cut -f1
rest() { local l; while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "\${l#*"$T"}"; done < "$1"; } # cut -f2-
ids12() { local l; while IFS= read -r l || [ -n "$l" ]; do l=\${l%%"$T"*}; printf '%s%s\\n' "\${l:0:12}" "\${1:+ $1}"; done < "$STUB_DIR/services"; }
pick() { # print lines of file $1 whose first field is one of the remaining args, without that field
  local f=$1 l; shift; local -A want=(); for l in "$@"; do want[x$l]=1; done
  while IFS= read -r l || [ -n "$l" ]; do [ -n "\${want[x\${l%%"$T"*}]+1}" ] && printf '%s\\n' "\${l#*"$T"}"; done < "$f"; return 0
}
case "$sub" in
  "info --format") if [ -f "$STUB_DIR/info" ]; then emit "$STUB_DIR/info"; else echo "active true"; fi ;;
  "node ls") if [ -f "$STUB_DIR/node-ls-error" ]; then emit "$STUB_DIR/node-ls-error" >&2; exit 1; fi
    if [[ "$args" == *" -q "* ]]; then field1 "$STUB_DIR/nodes"; else rest "$STUB_DIR/nodes"; fi ;;
  "node inspect") rest "$STUB_DIR/nodes" ;;
  "service ls")
    if [[ "$args" == *" -q "* ]]; then ids12
    elif [[ "$args" == *"{{.ID}} {{.Mode}}"* ]]; then ids12 replicated
    elif [[ "$args" == *Replicas* ]]; then emit "$STUB_DIR/replicas"
    elif [ -f "$STUB_DIR/names" ]; then emit "$STUB_DIR/names"; fi ;;
  "service inspect") if [ -f "$STUB_DIR/inspect" ]; then emit "$STUB_DIR/inspect"; exit 0; fi; shift 4
    declare -A want=(); for a in "$@"; do want[x$a]=1; done
    while IFS= read -r l || [ -n "$l" ]; do f=\${l%%"$T"*}; [ -z "\${want[x\${f:0:12}]+1}" ] || printf '%s\\n' "$l"; done < "$STUB_DIR/services" ;;
  "service ps") if [[ "$args" == *"{{.Node}}"* ]]; then
      # The long poll's format: ID NODE DESIRED ERROR<tab>CURRENTSTATE ("Running 2 minutes ago"), from the same rows.
      while IFS= read -r l || [ -n "$l" ]; do
        read -r -a w <<< "$l"; printf '%s node1 %s \\t%s' "\${w[0]:-}" "\${w[2]:-}" "\${w[3]:-}"; for x in "\${w[@]:4}"; do printf ' %s' "$x"; done; echo
      done < "$STUB_DIR/ps"
    else emit "$STUB_DIR/ps"; fi ;;
  "stack deploy") prev=; for a in "$@"; do [ "$prev" = -c ] && cp "$a" "$STUB_DIR/compose-copy"; prev=$a; done ;;
  "inspect --type") shift 5; pick "$STUB_DIR/tasks" "$@" ;;
  *) : ;;
esac
`;

export class StubHost {
  readonly dir: string;
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'c2-stub-'));
    mkdirSync(join(this.dir, 'bin'));
    mkdirSync(join(this.dir, 'calls'));
    mkdirSync(join(this.dir, 'run'));
    writeFileSync(join(this.dir, 'bin/docker'), DOCKER_STUB);
    chmodSync(join(this.dir, 'bin/docker'), 0o755);
    // The manager's clock as the snapshot says (the query reads it with date +%s%N).
    writeFileSync(join(this.dir, 'bin/date'), `#!/bin/bash\nif [ "$*" = "+%s%N" ] && [ -f "$STUB_DIR/now" ]; then IFS= read -r -d '' t < "$STUB_DIR/now"; printf '%s' "$t"; else exec /bin/date "$@"; fi\n`);
    chmodSync(join(this.dir, 'bin/date'), 0o755);
  }
  write(name: string, text: string): void {
    writeFileSync(join(this.dir, name), text);
  }
  /** Loads a snapshot as the stub's answers (the inverse of the query script's templates). */
  load(snap: SwarmSnapshot): void {
    const q = JSON.stringify;
    const ns = (ms: number): string => `${BigInt(Math.round(ms)) * 1000000n}`;
    this.write('now', `${ns(snap.nowMs)}\n`);
    this.write('nodes', snap.nodes.map((n) => `${n.id}\t${n.id}\t${n.role}\t${n.availability}\t${n.state}\t${n.leader}\t${q(n.address)}\t${q(n.hostname)}\t${n.reachability}\t${q(n.instanceId)}\n`).join(''));
    this.write(
      'services',
      snap.services
        .map(
          (s) =>
            `${s.id}\t${q(s.name)}\t${s.mode}\t${s.specCount ?? '-'}\t${q(s.updateState)}\t${q(s.updateMessage)}\t${q(s.image)}\t` +
            `${s.version}\t${ns(s.monitorMs)}\t${ns(s.updatedAtMs)}\t${ns(s.updateStartedMs)}\t"fp-${s.id}"\n`,
        )
        .join(''),
    );
    this.write('replicas', [...snap.replicas].map(([name, r]) => `${q(name)}\t${q(`${r.running}/${r.desired}${r.completed !== undefined ? ` (${r.completed}/${r.completions} completed)` : ''}`)}\n`).join(''));
    const byId = new Map(snap.services.map((s) => [s.id, s.name]));
    const ps: string[] = [];
    const tasks: string[] = [];
    snap.tasks.forEach((t, i) => {
      const id = `task${String(i).padStart(21, '0')}`;
      const cap = (w: string): string => `${w[0].toUpperCase()}${w.slice(1)}`;
      ps.push(`${id} ${byId.get(t.serviceId)}.${t.slot || t.nodeId} ${cap(t.desired)} ${cap(t.state)} 2 minutes ago\n`);
      tasks.push(
        `${id}\t${t.serviceId}\t${t.slot}\t${t.nodeId}\t${t.desired}\t${t.state}\t${ns(t.timestamp)}\t${q(t.error)}\t${ns(t.createdMs)}\t"${t.current ? `fp-${t.serviceId}` : 'fp-old'}"\n`,
      );
    });
    this.write('ps', ps.join(''));
    this.write('tasks', tasks.join(''));
  }
  /** argv of every docker call so far, in order. */
  calls(): string[][] {
    return readdirSync(join(this.dir, 'calls'))
      .sort()
      .map((f) => readFileSync(join(this.dir, 'calls', f), 'utf8').split('\0').slice(0, -1));
  }
  env(): NodeJS.ProcessEnv {
    return { ...process.env, PATH: `${join(this.dir, 'bin')}:${process.env.PATH}`, STUB_DIR: this.dir, EC2SWARM_RUN_DIR: join(this.dir, 'run') };
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function runBash(script: string, env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => stdout.push(b));
    child.stderr.on('data', (b: Buffer) => stderr.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }));
  });
}

/** Executes each script with bash on the stub host, and cuts stdout at SSM's cap. */
export class BashRunner implements CommandRunner {
  readonly calls: Call[] = [];
  readonly rawStdoutLengths: number[] = [];
  constructor(private readonly host: StubHost) {}
  async run(instanceIds: readonly string[], script: string, options?: RunOptions): Promise<CommandResult[]> {
    this.calls.push({ instanceIds, script, options });
    const out: CommandResult[] = [];
    // One at a time, without blocking the event loop (a test may change the stub's state while a script waits).
    for (const id of instanceIds) {
      const r = await runBash(script, this.host.env());
      this.rawStdoutLengths.push(r.stdout.length);
      out.push({ instanceId: id, exitCode: r.status, stdout: r.stdout.slice(0, SSM_STDOUT_CAP), stderr: r.stderr.slice(0, 8000) });
    }
    return out;
  }
}

export class RecordingReporter implements Reporter {
  readonly lines: string[] = [];
  info(m: string): void { this.lines.push(`info ${m}`); }
  warn(m: string): void { this.lines.push(`warn ${m}`); }
  progress(m: string): void { this.lines.push(`progress ${m}`); }
  done(): void { /* nothing */ }
}

export function makeCtx(runner: CommandRunner, extra: Omit<Partial<OpsContext>, 'cloud'> & { cloud?: Partial<CloudApi> } = {}): OpsContext & { reporter: RecordingReporter } {
  let t = 0;
  return {
    cluster: { name: 'demo', region: 'eu-west-1', managerInstanceIds: ['i-0manager'], parameterPrefix: '/ec2-swarm/demo' },
    runner,
    reporter: new RecordingReporter(),
    now: () => t,
    sleep: async (ms: number) => { t += ms; },
    ...extra,
    cloud: { listWorkerInstanceIds: async () => [], deleteRuntimeParameters: async () => [], ...extra.cloud },
  } as OpsContext & { reporter: RecordingReporter };
}

export function snapshotFixture(name: string): SwarmSnapshot {
  return parseSnapshot(fixture(name));
}

export const environmentError = (m = 'agent not Online'): SwarmError => SwarmError.environment('SSM_AGENT_OFFLINE', m);

export function hasBash(): boolean {
  try { execFileSync('bash', ['-c', 'gzip --version && base64 --version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** The query's wire text for a snapshot (the inverse of parseSnapshot), for runner stand-ins. */
export function snapshotText(snap: SwarmSnapshot): string {
  const q = JSON.stringify;
  const ns = (ms: number): string => `${BigInt(Math.round(ms)) * 1000000n}`;
  return [
    '#now',
    ns(snap.nowMs),
    '#nodes',
    ...snap.nodes.map((n) => `${n.id}\t${n.role}\t${n.availability}\t${n.state}\t${n.leader}\t${q(n.address)}\t${q(n.hostname)}\t${n.reachability}\t${q(n.instanceId)}`),
    '#services',
    ...snap.services.map(
      (s) => `${s.id}\t${q(s.name)}\t${s.mode}\t${s.specCount ?? '-'}\t${q(s.updateState)}\t${q(s.updateMessage)}\t${q(s.image)}\t${s.version}\t${ns(s.monitorMs)}\t${ns(s.updatedAtMs)}\t${ns(s.updateStartedMs)}`,
    ),
    '#replicas',
    ...[...snap.replicas].map(([name, r]) => `${q(name)}\t${q(`${r.running}/${r.desired}`)}`),
    '#tasks',
    ...snap.tasks.map((t) => `${t.serviceId}\t${t.slot}\t${t.nodeId}\t${t.desired}\t${t.state}\t${ns(t.timestamp)}\t${q(t.error)}\t${ns(t.createdMs)}\t${t.current ? 1 : 0}`),
    '#end',
    '',
  ].join('\n');
}
