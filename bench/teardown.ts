#!/usr/bin/env node
/**
 * Teardown (lab, root): where the time of `ec2-swarm teardown` goes, step by step, and what the same steps cost by
 * hand. Per run, one lab of 1 + 3 with the demo stack (what `npm start` deploys):
 * - tool: the ops API's `teardown`, each Run Command timed through a recording wrapper of the runner, the SSM API
 *   calls timed too (the worker list runs alongside the first Run Command); then checked: every node out of the swarm,
 *   no swarm task container on any host, the manager's reconciler stopped (seen running before), no parameter left;
 * - by hand, on the same hosts right after (swarm formed again by hand and the stack deployed again, untimed): the
 *   same steps with the docker CLI on each host, each timed — `docker stack rm` (no wait), the workers'
 *   `docker swarm leave` (in parallel), the manager's `docker swarm leave --force`.
 *
 *   npx tsx bench/teardown.ts [--runs N]
 */
import { GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_COMPOSE } from '../bin/start';
import { createSsmClient, deploy, teardown, type CloudApi } from '../lib/ops';
import { LAB_CREDENTIALS } from '../lib/ops/target';
import { parseBenchArgs } from './lib/args';
import { hostDocker, withLab, type BenchLab, labNotes } from './lib/lab';
import { runInHost } from '../lib/lab/lab';
import { anatomy, TracingRunner, type CallAnatomy } from './lib/tracing-runner';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';

type Steps = Map<string, number>;

const add = (m: Steps, k: string, s: number): void => void m.set(k, (m.get(k) ?? 0) + s);

async function swarmStates(lab: BenchLab): Promise<string[]> {
  return Promise.all(lab.state.hosts.map(async (h) => (await hostDocker(lab.state, h.name, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim()));
}

async function parametersLeft(lab: BenchLab): Promise<string[]> {
  const ssm = createSsmClient({ region: lab.state.region, endpoint: lab.state.ssmEndpoint, credentials: LAB_CREDENTIALS });
  try {
    const out = await ssm.send(new GetParametersByPathCommand({ Path: lab.conn.cluster.parameterPrefix, Recursive: true }));
    return (out.Parameters ?? []).map((p) => p.Name ?? '?');
  } finally {
    ssm.destroy();
  }
}

/** The manager's reconciler by its PID file (the node scripts' own record), so no other lab's process is looked at. */
async function reconciler(lab: BenchLab, host: string): Promise<string> {
  const r = await runInHost(lab.state, host, ['sh', '-c', 'p=$(cat /run/ec2-swarm-reconciler.pid 2>/dev/null) || { echo stopped; exit 0; }; if grep -qa reconcile.sh "/proc/$p/cmdline" 2>/dev/null; then echo running; else echo stopped; fi']);
  return r.stdout.trim();
}

async function taskContainers(lab: BenchLab, host: string): Promise<number> {
  const r = await hostDocker(lab.state, host, ['ps', '-aq', '--filter', 'label=com.docker.swarm.task.id']);
  return r.stdout.split('\n').filter(Boolean).length;
}

/** One Run Command of the tool, taken apart (tracing-runner.ts): seconds per phase, and the result polls it took. */
interface CallParts {
  readonly label: string;
  readonly parts: CallAnatomy;
  /** runner called → SendCommand answered (agent check and the request itself), from the lab's SSM request log */
  readonly toSend?: number;
  readonly polls: number;
}

type ToolRun = { total: number; steps: Steps; lost: string[]; runCommands: number; calls: CallParts[] };

/** The lab's SSM request log (every request's action and time, never a value). */
function requestLog(lab: BenchLab): { at: number; action: string }[] {
  const f = join(lab.state.labDir, 'logs', 'ssm-requests.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => {
    const x = JSON.parse(l) as { time: string; action: string };
    return { at: Date.parse(x.time), action: x.action };
  });
}

async function toolTeardown(lab: BenchLab): Promise<ToolRun> {
  const runner = new TracingRunner(lab.conn.runner);
  const steps: Steps = new Map();
  const inner = lab.conn.cloud;
  const cloud: CloudApi = {
    // The managers found by tag when the outputs name none (the ops lookup), timed like the other SSM calls.
    ...(inner.listManagerInstanceIds
      ? {
          listManagerInstanceIds: async () => {
            const t0 = performance.now();
            try {
              return await (inner as Required<CloudApi>).listManagerInstanceIds(); // a method call: keeps `this`
            } finally {
              add(steps, 'list managers (SSM DescribeInstanceInformation)', (performance.now() - t0) / 1000);
            }
          },
        }
      : {}),
    listWorkerInstanceIds: async () => {
      const t0 = performance.now();
      try {
        return await lab.conn.cloud.listWorkerInstanceIds();
      } finally {
        add(steps, 'list workers (SSM DescribeInstanceInformation, alongside the first Run Command)', (performance.now() - t0) / 1000);
      }
    },
    deleteRuntimeParameters: async () => {
      const t0 = performance.now();
      try {
        return await lab.conn.cloud.deleteRuntimeParameters();
      } finally {
        add(steps, 'delete parameters (SSM DeleteParameters)', (performance.now() - t0) / 1000);
      }
    },
  };
  const managers = lab.state.hosts.filter((h) => h.role === 'manager').map((h) => h.name);
  const before = await Promise.all(managers.map((m) => reconciler(lab, m)));
  if (before.some((x) => x !== 'running')) throw new Error(`the reconciler is not running before the teardown (${before.join(', ')}): the check could not tell`);
  const t0Epoch = Date.now();
  const t0 = performance.now();
  const report = await teardown({ ...lab.conn, runner, cloud });
  const total = (performance.now() - t0) / 1000;
  for (const c of runner.calls) add(steps, `Run Command: ${c.label}`, c.seconds);
  const lost: string[] = [];
  if (!report.complete) lost.push(`teardown says not complete: ${report.left.join('; ')}`);
  const states = await swarmStates(lab);
  states.forEach((s, i) => s !== 'inactive' && lost.push(`${lab.state.hosts[i].name} still ${s}`));
  for (const h of lab.state.hosts) {
    const n = await taskContainers(lab, h.name);
    if (n > 0) lost.push(`${h.name}: ${n} task container(s) left`);
  }
  for (const m of managers) if ((await reconciler(lab, m)) !== 'stopped') lost.push(`${m}: reconciler still running`);
  for (const p of await parametersLeft(lab)) lost.push(`parameter ${p} left`);
  const log = requestLog(lab).filter((x) => x.at >= Math.floor(t0Epoch));
  const calls: CallParts[] = [];
  for (const c of runner.calls) {
    const parts = anatomy(c);
    if (!parts) continue;
    const mine = log.filter((x) => x.at >= c.calledAt && x.at <= c.returnedAt);
    const send = mine.find((x) => x.action === 'SendCommand');
    calls.push({ label: c.label, parts, ...(send ? { toSend: (send.at - c.calledAt) / 1000 } : {}), polls: mine.filter((x) => x.action === 'GetCommandInvocation').length });
    process.stderr.write(`  ${c.label}: ${fmt(c.seconds)} s = to start ${fmt(parts.toStart)} (SendCommand answered at ${send ? fmt((send.at - c.calledAt) / 1000) : '?'}) + script ${fmt(parts.script)} + to result ${fmt(parts.toResult)}; ${calls.at(-1)!.polls} polls\n`);
    for (const x of parts.slowest.slice(0, 6)) process.stderr.write(`      ${fmt(x.seconds)} s  ${x.instance}  ${x.command}\n`);
    if (process.env.BENCH_TRACE) {
      for (const [id, steps] of c.steps) for (const x of steps) process.stderr.write(`      @${fmt((x.at - c.calledAt) / 1000)} ${id} ${x.command}\n`);
    }
  }
  return { total, steps, lost, runCommands: runner.calls.length, calls };
}

async function formByHand(lab: BenchLab): Promise<void> {
  const ip = lab.state.hosts[0].ip;
  await hostDocker(lab.state, 'h0', ['swarm', 'init', '--advertise-addr', ip]);
  const token = (await hostDocker(lab.state, 'h0', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim(); // never printed
  await Promise.all(lab.state.hosts.slice(1).map((h) => hostDocker(lab.state, h.name, ['swarm', 'join', '--advertise-addr', h.ip, '--token', token, `${ip}:2377`])));
}

async function handTeardown(lab: BenchLab): Promise<{ total: number; steps: Steps }> {
  const steps: Steps = new Map();
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      add(steps, name, (performance.now() - t0) / 1000);
    }
  };
  const workers = lab.state.hosts.slice(1);
  const t0 = performance.now();
  await step('docker stack rm (no wait)', () => hostDocker(lab.state, 'h0', ['stack', 'rm', 'demo']));
  await step('workers leave (docker swarm leave, parallel)', () => Promise.all(workers.map((h) => hostDocker(lab.state, h.name, ['swarm', 'leave']))));
  await step('manager leaves (docker swarm leave --force)', () => hostDocker(lab.state, 'h0', ['swarm', 'leave', '--force']));
  return { total: (performance.now() - t0) / 1000, steps };
}

function anatomyRows(tool: ToolRun[]): string[] {
  const labels = [...new Set(tool.flatMap((t) => t.calls.map((c) => c.label)))];
  return labels.map((l) => {
    const cs = tool.flatMap((t) => t.calls.filter((c) => c.label === l));
    const m = (f: (c: CallParts) => number | undefined): string => fmt(median(cs.map(f).filter((x): x is number => x !== undefined)));
    return `| ${l} | ${m((c) => c.toSend)} | ${m((c) => c.parts.toStart)} | ${m((c) => c.parts.script)} | ${m((c) => c.parts.toResult)} | ${m((c) => c.polls)} |`;
  });
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 2);
  const start = environment();
  const tool: ToolRun[] = [];
  const hand: { total: number; steps: Steps }[] = [];
  for (let r = 0; r < args.runs; r++) {
    await withLab({ workers: 3 }, async (lab) => {
      const d = await deploy(lab.conn, { file: DEMO_COMPOSE, wait: true, timeoutSeconds: 180, resolveImage: 'never' });
      if (!d.verify?.converged) throw new Error('the demo stack did not converge');
      tool.push(await toolTeardown(lab));
      await formByHand(lab);
      const d2 = await deploy(lab.conn, { file: DEMO_COMPOSE, wait: true, timeoutSeconds: 180, resolveImage: 'never' });
      if (!d2.verify?.converged) throw new Error('the demo stack did not converge (second time)');
      hand.push(await handTeardown(lab));
      process.stderr.write(`run ${r + 1}/${args.runs}: tool ${fmt(tool.at(-1)!.total)}s, by hand ${fmt(hand.at(-1)!.total)}s\n`);
    });
  }
  const end = environment();
  const stepRows = (xs: { steps: Steps }[]): string[] =>
    [...new Set(xs.flatMap((x) => [...x.steps.keys()]))].map((k) => `| ${k} | ${spread(xs.map((x) => x.steps.get(k) ?? 0))} |`);
  const toolMedian = median(tool.map((t) => t.total));
  const lost = tool.flatMap((t) => t.lost);
  const med = (xs: { steps: Steps }[], k: string): number => median(xs.map((x) => x.steps.get(k) ?? NaN));
  const rc = (k: string): number => med(tool, `Run Command: ${k}`);
  const handMedian = median(hand.map((h) => h.total));
  const overhead = toolMedian - handMedian;
  writeSection(
    'teardown',
    [
      '## 7. Teardown (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/teardown.ts --runs ${args.runs}`, end),
      ...labNotes(),
      `- method: per run one lab (1 manager + 3 workers) with the demo stack (web × 6, worker × 3, \`init: true\`). *Tool*: the ops API's \`teardown\` (what \`ec2-swarm teardown\` runs), every Run Command and SSM call timed (the worker list runs alongside the first Run Command, so the steps add up to more than the total); then checked: every host \`inactive\`, no swarm task container on any host, the manager's reconciler stopped (checked running before), no parameter left, and the report complete. *By hand*, on the same lab right after (swarm formed again and the stack deployed again, untimed): the same steps with the docker CLI on the hosts. Tool first, then by hand, in every lab; ${args.runs} runs. Seconds.`,
      '',
      `Tool — total ${spread(tool.map((t) => t.total))}, ${median(tool.map((t) => t.runCommands))} Run Commands; nothing lost: ${lost.length === 0 ? 'yes (every host inactive, no task container, reconciler stopped, no parameter left, report complete)' : `**no**: ${lost.join('; ')}`}`,
      '',
      '| step (tool) | s, median (min–max) |',
      '|---|---:|',
      ...stepRows(tool),
      '',
      'Each Run Command taken apart (medians; the script traced on the host with a bash DEBUG trap printing `$EPOCHREALTIME`, the same clock: `bench/lib/tracing-runner.ts`): from the runner being called to SendCommand answered (the agent check and the request, from the lab\'s SSM request log), to the script\'s shell starting on the host, the script itself, and from its end to the result returned (result polling), with the GetCommandInvocation calls it took.',
      '',
      '| Run Command | to SendCommand answered | to script start | script | script end to result | result polls |',
      '|---|---:|---:|---:|---:|---:|',
      ...anatomyRows(tool),
      '',
      `By hand — total ${spread(hand.map((h) => h.total))}`,
      '',
      '| step (by hand) | s, median (min–max) |',
      '|---|---:|',
      ...stepRows(hand),
      '',
      `- Goal: ≤ 5 s for the 1 + 3 lab with nothing lost — ${verdict(toolMedian <= 5 && lost.length === 0)} (${fmt(toolMedian)} s${lost.length ? ', something was lost' : ''}).`,
      `- Where the time goes (medians): the workers' leave ${fmt(rc('workers leave'))} s as a Run Command (${fmt(med(hand, 'workers leave (docker swarm leave, parallel)'))} s by hand), the workload removal on the manager ${fmt(rc('remove stacks and services'))} s (\`docker stack rm\` by hand ${fmt(med(hand, 'docker stack rm (no wait)'))} s), the managers' leave ${fmt(rc('manager leaves'))} s (${fmt(med(hand, 'manager leaves (docker swarm leave --force)'))} s by hand). The tool costs ${fmt(overhead)} s more than the same docker commands by hand: the SSM round trips (agent check and SendCommand, the lab starting the script in the host, a first result poll after 0.1 s, then every ×1.5 up to 0.25 s: decision 22) and what each script checks besides the docker command (swarm state before, task containers and state after); the table above says which.`,
      `- What would close it: the tool adds ${fmt(toolMedian - handMedian)} s to the same docker steps run by hand (${fmt(handMedian)} s${handMedian > 5 ? ', by themselves over 5 s on these 2 shared cores' : ''}); the rest is docker's own work, which shrinks on hosts with their own CPU (EC2). On the tool's side one round trip (~0.2 s) could go by folding the manager's leave into the workers' Run Command; decision 22 keeps them apart (the manager sees a left worker as down only ~10 s later).`,
    ].join('\n'),
  );
  process.stdout.write(`teardown: tool ${fmt(toolMedian)}s (lost: ${lost.length}), by hand ${fmt(handMedian)}s\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`teardown: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
