#!/usr/bin/env node
/**
 * Deploy + verify (lab, root): `ec2-swarm deploy --wait` of a compose file with S = 10 services against what an
 * operator does by hand on the manager — `docker network create` and then `docker service create` one service after
 * another, each waiting the way the docker CLI waits by default (attached: until the service converged and stayed so
 * for its monitor period). Same lab, same services (2 replicas each, init, dnsrr), alternated, clean-up untimed.
 *
 *   npx tsx bench/deploy-verify.ts [--runs N] [--quick]        (--quick: S = 3)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy, type CommandRunner } from '../lib/ops';
import { TracingRunner } from './lib/tracing-runner';
import { parseBenchArgs } from './lib/args';
import { hostDocker, removeAllServices, withLab, labNotes } from './lib/lab';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { alternate, fmt, median, spread } from './lib/stats';

const IMAGE = 'local/busybox:latest';

/** Where one tool run's time went, from docker's own timestamps on the manager (ms since the epoch; one clock). */
interface Timeline {
  readonly called: number;
  /** the deploy's Run Command: runner called, its script's first command, `docker stack deploy` started and ended, runner returned */
  readonly runnerCalled: number;
  readonly scriptStart: number;
  readonly stackDeployStart: number;
  readonly stackDeployEnd: number;
  readonly runnerReturned: number;
  readonly firstService: number;
  readonly lastService: number;
  readonly lastRunning: number;
  readonly returned: number;
}

/** A docker time as `{{json …}}` prints it (RFC 3339, nanoseconds, UTC) to ms since the epoch. */
function dockerTime(json: string): number {
  const t = JSON.parse(json) as string;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(t);
  if (!m) throw new Error(`not a docker timestamp: '${t}'`);
  return Date.parse(`${m[1]}Z`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

/**
 * The stack's services' creation and their running tasks' start, read after the run (nothing polls during it, so
 * the reading costs the run nothing): the service objects' CreatedAt and each running task's Status.Timestamp.
 */
async function stackTimeline(state: Parameters<typeof hostDocker>[0], stack: string, called: number, returned: number, tracer: TracingRunner): Promise<Timeline> {
  const call = tracer.calls[tracer.calls.length - 1];
  const steps = call ? [...call.steps.values()][0] ?? [] : [];
  const at = steps.findIndex((x) => x.command.startsWith('docker stack deploy'));
  if (!call || at < 0 || at + 1 >= steps.length) throw new Error('the deploy Run Command came back without a trace of `docker stack deploy`');
  const ids = (await hostDocker(state, 'h0', ['service', 'ls', '-q', '--filter', `label=com.docker.stack.namespace=${stack}`])).stdout.split('\n').filter(Boolean);
  const created = (await hostDocker(state, 'h0', ['service', 'inspect', '--format', '{{json .CreatedAt}}', ...ids])).stdout.split('\n').filter(Boolean).map(dockerTime);
  const tasks = (await hostDocker(state, 'h0', ['service', 'ps', '-q', '--filter', 'desired-state=running', ...ids])).stdout.split('\n').filter(Boolean);
  const running = (await hostDocker(state, 'h0', ['inspect', '--type', 'task', '--format', '{{.Status.State}} {{json .Status.Timestamp}}', ...tasks])).stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .filter(([st]) => st === 'running')
    .map(([, t]) => dockerTime(t));
  if (created.length === 0 || running.length === 0) throw new Error(`no services or running tasks of stack ${stack} to time`);
  return {
    called,
    runnerCalled: call.calledAt,
    scriptStart: steps[0].at,
    stackDeployStart: steps[at].at,
    stackDeployEnd: steps[at + 1].at,
    runnerReturned: call.returnedAt,
    firstService: Math.min(...created), lastService: Math.max(...created), lastRunning: Math.max(...running), returned };
}
const COMMAND = ['sleep', '86400'];

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 3);
  const services = args.quick ? 3 : 10;
  const start = environment();
  const dir = mkdtempSync(join(tmpdir(), 'bench-dv-'));
  const compose = join(dir, 'bench', 'docker-compose.yml'); // stack `bench`, from the folder's name
  mkdirSync(join(dir, 'bench'));
  const names = Array.from({ length: services }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
  writeFileSync(
    compose,
    `services:\n${names
      .map((n) => `  ${n}:\n    image: ${IMAGE}\n    init: true\n    command: ${JSON.stringify(COMMAND)}\n    deploy: { replicas: 2, endpoint_mode: dnsrr }\n`)
      .join('')}`,
  );
  let samples: Record<'tool' | 'hand', number[]> = { tool: [], hand: [] };
  const timelines: Timeline[] = [];
  try {
    samples = await withLab({ workers: 3 }, async ({ state, conn }) => {
      const tool = async (): Promise<number> => {
        // Only the deploy's own Run Command is traced (bench/lib/tracing-runner.ts); verify's long polls run as they are.
        const tracer = new TracingRunner(conn.runner);
        const runner: CommandRunner = { run: (ids, script, o) => (o?.label?.startsWith('deploy') ? tracer.run(ids, script, o) : conn.runner.run(ids, script, o)) };
        const called = Date.now();
        const t0 = performance.now();
        const r = await deploy({ ...conn, runner }, { file: compose, wait: true, timeoutSeconds: 300, resolveImage: 'never' });
        const s = (performance.now() - t0) / 1000;
        const returned = called + s * 1000;
        if (!r.verify?.converged) throw new Error('tool: the stack did not converge');
        timelines.push(await stackTimeline(state, 'bench', called, returned, tracer));
        await removeAllServices(state);
        return s;
      };
      const hand = async (): Promise<number> => {
        const t0 = performance.now();
        await hostDocker(state, 'h0', ['network', 'create', '--driver', 'overlay', 'hand_default']);
        for (const n of names) {
          // Attached (the default since Docker 17.10): returns when the service converged and stayed so.
          await hostDocker(state, 'h0', ['service', 'create', '--quiet', '--name', `hand_${n}`, '--replicas', '2', '--init', '--endpoint-mode', 'dnsrr', '--network', 'hand_default', '--no-resolve-image', IMAGE, ...COMMAND], { timeoutMs: 300_000 });
        }
        const s = (performance.now() - t0) / 1000;
        await removeAllServices(state);
        await hostDocker(state, 'h0', ['network', 'rm', 'hand_default'], { allowFail: true });
        return s;
      };
      return alternate(args.runs, { tool, hand }, (v, r, x) => process.stderr.write(`run ${r}: ${v} ${fmt(x)}s\n`));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const end = environment();
  const ratio = median(samples.tool) / median(samples.hand);
  const step = (f: (t: Timeline) => number): string => spread(timelines.map((t) => f(t) / 1000));
  const WINDOW_MS = 5000; // decision 14's stability window: the earliest a converged answer may come
  const floor = median(timelines.map((t) => t.lastRunning - t.lastService + WINDOW_MS)) / 1000;
  writeSection(
    'deploy-verify',
    [
      '## 4. Deploy + verify (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/deploy-verify.ts --runs ${args.runs}${args.quick ? ' --quick' : ''}`, end),
      ...labNotes(),
      `- method: one lab (1 manager + 3 workers). *Tool*: the ops API's \`deploy\` with \`wait\` (what \`ec2-swarm deploy -f docker-compose.yml --wait --resolve-image never\` runs, without the CLI's start-up, see section 6) of a compose file with ${services} services × 2 replicas (\`local/busybox\`, \`init: true\`, dnsrr); returns when verify saw every replica running. *By hand* on the manager: \`docker network create --driver overlay\`, then ${services} × \`docker service create --replicas 2 --init --endpoint-mode dnsrr --network … --no-resolve-image\`, one after another, each attached (Docker's own wait). Alternated, ${args.runs} runs each; removal between runs untimed. Seconds.`,
      '',
      '| S | tool: deploy --wait | by hand: service create × S | ratio |',
      '|---:|---:|---:|---:|',
      `| ${services} | ${spread(samples.tool)} | ${spread(samples.hand)} | ${fmt(ratio)} |`,
      '',
      `- Goal: ratio ≤ 0.35 — ${verdict(ratio <= 0.35)} (${fmt(ratio)}). The tool sends every service in one Run Command and then checks all of them in one query per poll; \`docker service create\` waits for each service in turn, including its ${'5 s'} monitor period (UpdateConfig.Monitor) once it converged.`,
      '',
      'Where the tool\'s time goes, from docker\'s own timestamps read on the manager after each run (the services\' `CreatedAt`, each running task\'s `Status.Timestamp`; the bench\'s clock and the hosts\' are one clock), medians (min–max), seconds:',
      '',
      '| step of `deploy --wait` | s |',
      '|---|---:|',
      `| called → Run Command sent (compose file read and resolved, bundle staged) | ${step((t) => t.runnerCalled - t.called)} |`,
      `| → its script's first command on the manager (agent check, SendCommand, the lab's dispatch) | ${step((t) => t.scriptStart - t.runnerCalled)} |`,
      `| → \`docker stack deploy\` started (the script: bundle fetched and unpacked, checks) | ${step((t) => t.stackDeployStart - t.scriptStart)} |`,
      `| \`docker stack deploy\` (networks, then the ${services} services one after another) | ${step((t) => t.stackDeployEnd - t.stackDeployStart)} |`,
      `| → Run Command result returned (the rest of the script, result polling) | ${step((t) => t.runnerReturned - t.stackDeployEnd)} |`,
      `| of which: first → last service created | ${step((t) => t.lastService - t.firstService)} |`,
      `| last service created → last of the ${services * 2} tasks running (the swarm schedules and starts the containers; deploy's Run Command and verify's first looks overlap it) | ${step((t) => t.lastRunning - t.lastService)} |`,
      `| last task running → verify answered converged (the 5 s stability window, decision 14, then the answer) | ${step((t) => t.returned - t.lastRunning)} |`,
      '',
      `- Why 0.35 is missed here, and what would close it: both sides start the same ${services * 2} containers on the same 4 hosts, which share 2 cores. The tool cannot answer before the last task has run for the 5 s window, so its floor is the start of the containers once the services exist plus that window (${fmt(floor)} s, median); the hand path pays the start of each service's tasks and a 5 s monitor period per service, one after another. The tool's own cost is the rest: the way to the first service (staging the bundle, the Run Command), \`docker stack deploy\` creating the services in turn, and the answer after the window (the table). With no cost of its own the tool would take the floor, ${fmt(floor / median(samples.hand))} of the hand path: on these 2 cores the goal cannot be met from the tool's side alone. Its largest own cost is fetching the bundle on the manager before \`docker stack deploy\` (an AWS CLI start for one S3 GetObject); a \`curl --aws-sigv4\` as on the boot path (decision 20) would take most of it. On EC2, where each node has its own CPU, the containers' start shrinks on both sides and the hand path keeps its ${services} windows: the ratio falls.`,
    ].join('\n'),
  );
  process.stdout.write(`deploy-verify: tool ${fmt(median(samples.tool))}s, hand ${fmt(median(samples.hand))}s, ratio ${fmt(ratio)}\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`deploy-verify: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
