#!/usr/bin/env node
/**
 * Teardown (lab, root): where the time of `ec2-swarm teardown` goes, step by step, and what the same steps cost by
 * hand. Per run, one lab of 1 + 3 with the demo stack (what `npm start` deploys):
 * - tool: the ops API's `teardown`, each Run Command timed through a recording wrapper of the runner, the parameter
 *   deletion timed too; then checked: every node out of the swarm, no parameter left under the cluster's prefix;
 * - by hand, on the same hosts right after (swarm formed again by hand and the stack deployed again, untimed): the
 *   same steps with the docker CLI on each host, each timed — `docker stack rm` + wait for the tasks, the workers'
 *   `docker swarm leave` (in parallel), `docker node rm`, the manager's `docker swarm leave --force`.
 *
 *   npx tsx bench/teardown.ts [--runs N]
 */
import { GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import { DEMO_COMPOSE } from '../bin/start';
import { createSsmClient, deploy, teardown, type CloudApi } from '../lib/ops';
import { LAB_CREDENTIALS } from '../lib/ops/target';
import { parseBenchArgs } from './lib/args';
import { hostDocker, pollUntil, withLab, type BenchLab, labNotes } from './lib/lab';
import { RecordingRunner } from './lib/recording-runner';
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

async function toolTeardown(lab: BenchLab): Promise<{ total: number; steps: Steps; lost: string[]; runCommands: number }> {
  const runner = new RecordingRunner(lab.conn.runner);
  const steps: Steps = new Map();
  const cloud: CloudApi = {
    listWorkerInstanceIds: async () => {
      const t0 = performance.now();
      try {
        return await lab.conn.cloud.listWorkerInstanceIds();
      } finally {
        add(steps, 'list workers (SSM DescribeInstanceInformation)', (performance.now() - t0) / 1000);
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
  const t0 = performance.now();
  await teardown({ ...lab.conn, runner, cloud }, { taskWaitSeconds: 60 });
  const total = (performance.now() - t0) / 1000;
  for (const c of runner.calls) add(steps, `Run Command: ${c.label}`, c.seconds);
  const lost: string[] = [];
  const states = await swarmStates(lab);
  states.forEach((s, i) => s !== 'inactive' && lost.push(`${lab.state.hosts[i].name} still ${s}`));
  for (const p of await parametersLeft(lab)) lost.push(`parameter ${p} left`);
  return { total, steps, lost, runCommands: runner.calls.length };
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
  await step('docker stack rm + wait for tasks and network', async () => {
    await hostDocker(lab.state, 'h0', ['stack', 'rm', 'demo']);
    await pollUntil('tasks gone', async () => {
      const ps = await Promise.all(lab.state.hosts.map((h) => hostDocker(lab.state, h.name, ['ps', '-q'])));
      const nets = await hostDocker(lab.state, 'h0', ['network', 'ls', '-q', '--filter', 'label=com.docker.stack.namespace']);
      return ps.every((r) => r.stdout.trim() === '') && nets.stdout.trim() === '';
    }, 120_000, 200);
  });
  const ids = await step('worker node ids (docker info)', () => Promise.all(workers.map(async (h) => (await hostDocker(lab.state, h.name, ['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim())));
  await step('drain workers (docker node update)', () => hostDocker(lab.state, 'h0', ['node', 'update', '--availability', 'drain', ...ids.slice(0, 1)]).then(() => Promise.all(ids.slice(1).map((id) => hostDocker(lab.state, 'h0', ['node', 'update', '--availability', 'drain', id])))));
  await step('workers leave (docker swarm leave, parallel)', () => Promise.all(workers.map((h) => hostDocker(lab.state, h.name, ['swarm', 'leave']))));
  await step('remove worker nodes (docker node rm)', () => hostDocker(lab.state, 'h0', ['node', 'rm', '--force', ...ids]));
  await step('manager leaves (docker swarm leave --force)', () => hostDocker(lab.state, 'h0', ['swarm', 'leave', '--force']));
  return { total: (performance.now() - t0) / 1000, steps };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 2);
  const start = environment();
  const tool: { total: number; steps: Steps; lost: string[]; runCommands: number }[] = [];
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
  const leave = median(hand.map((h) => h.steps.get('manager leaves (docker swarm leave --force)') ?? NaN));
  writeSection(
    'teardown',
    [
      '## 7. Teardown (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/teardown.ts --runs ${args.runs}`, end),
      ...labNotes(),
      `- method: per run one lab (1 manager + 3 workers) with the demo stack (web × 6, worker × 3, \`init: true\`). *Tool*: the ops API's \`teardown\` (what \`ec2-swarm teardown\` runs), every Run Command and SSM call timed; then checked on every host and in Parameter Store. *By hand*, on the same lab right after (swarm formed again and the stack deployed again, untimed): the same steps with the docker CLI on the hosts. Tool first, then by hand, in every lab; ${args.runs} runs. Seconds.`,
      '',
      `Tool — total ${spread(tool.map((t) => t.total))}; nothing lost: ${lost.length === 0 ? 'yes (every node inactive, no parameter left)' : `**no**: ${lost.join('; ')}`}`,
      '',
      '| step (tool) | s, median (min–max) |',
      '|---|---:|',
      ...stepRows(tool),
      '',
      `By hand — total ${spread(hand.map((h) => h.total))}`,
      '',
      '| step (by hand) | s, median (min–max) |',
      '|---|---:|',
      ...stepRows(hand),
      '',
      `- Goal: ≤ 5 s for the 1 + 3 lab with nothing lost — ${verdict(toolMedian <= 5 && lost.length === 0)} (${fmt(toolMedian)} s${lost.length ? ', something was lost' : ''}).`,
      `- Where the time goes: the manager's \`docker swarm leave --force\` costs ${fmt(leave)} s even by hand; the rest is the stack's tasks stopping and ${median(tool.map((t) => t.runCommands))} SSM Run Commands in a row, each at least ~1 s (the runner asks for a result first after 1 s). What would bring it to ≤ 5 s (lib/ops/teardown.ts, helper "truth"): fewer Run Commands (the manager can drain, wait and remove nodes in one script; the workers' leave in parallel with it), a first result poll after ~100 ms, and stop grace periods of the workload (\`stop_grace_period\`, \`init: true\`) that let tasks stop at once.`,
    ].join('\n'),
  );
  process.stdout.write(`teardown: tool ${fmt(toolMedian)}s (lost: ${lost.length}), by hand ${fmt(median(hand.map((h) => h.total)))}s\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`teardown: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
