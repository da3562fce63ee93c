#!/usr/bin/env node
/**
 * Template scale: resources, template bytes and synthesis time of the cluster stack for workers N = 1, 10, 100, 1000
 * (and managers 1/3/5/7 where the configuration accepts them). Synthesis is the project's own (bin/app.ts's
 * addSwarmStack, cdk-nag enforced, cdk.json's feature flags), in-process, three warm-up syntheses discarded, the sizes
 * alternated in every run.
 *
 *   npx tsx bench/template-scale.ts [--runs N] [--quick]
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { addSwarmStack, packageCdkContext } from '../lib/cluster/swarm-app';
import { parseClusterConfig } from '../lib/config';
import { parseBenchArgs } from './lib/args';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';

const CFN_RESOURCE_LIMIT = 500;

interface Synth {
  readonly seconds: number;
  readonly resources: number;
  readonly bytes: number;
  readonly types: Record<string, number>;
}

function synth(config: Record<string, unknown>): Synth {
  const outdir = mkdtempSync(join(tmpdir(), 'bench-synth-'));
  try {
    const t0 = performance.now();
    const app = new App({ context: packageCdkContext(), outdir });
    const { stack } = addSwarmStack(app, parseClusterConfig({ name: 'bench', ...config }));
    app.synth();
    const seconds = (performance.now() - t0) / 1000;
    const file = readdirSync(outdir).find((f) => f === `${stack.stackName}.template.json`);
    if (!file) throw new Error(`no template for ${stack.stackName} in ${outdir}`);
    const text = readFileSync(join(outdir, file), 'utf8');
    const resources = (JSON.parse(text) as { Resources: Record<string, { Type: string }> }).Resources;
    const types: Record<string, number> = {};
    for (const r of Object.values(resources)) types[r.Type] = (types[r.Type] ?? 0) + 1;
    return { seconds, resources: Object.keys(resources).length, bytes: Buffer.byteLength(text), types };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function accepts(config: Record<string, unknown>): string | undefined {
  try {
    parseClusterConfig({ name: 'bench', ...config });
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n').slice(0, 3).join(' ').replace(/\s+/g, ' ');
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 15);
  const start = environment();
  const workerSizes = args.quick ? [1, 1000] : [1, 10, 100, 1000];
  const managerSizes = [1, 3, 5, 7];
  const managerRefused = new Map(managerSizes.map((m) => [m, accepts({ managers: m })]));
  const managersOk = managerSizes.filter((m) => managerRefused.get(m) === undefined);

  // Warm-up: module loading and JIT, not what a later synth costs (one was not enough: a ~0.1 s synth is easily
  // moved 20 % by the JIT and GC settling, which made N = 1 look slower or faster than N = 1000 by chance).
  for (let w = 0; w < 3; w++) synth({ workers: 1 });
  const byWorkers = new Map<number, Synth[]>(workerSizes.map((n) => [n, []]));
  const byManagers = new Map<number, Synth[]>(managersOk.map((m) => [m, []]));
  for (let r = 0; r < args.runs; r++) {
    const order = r % 2 === 0 ? workerSizes : [...workerSizes].reverse();
    for (const n of order) byWorkers.get(n)!.push(synth({ workers: n }));
    for (const m of r % 2 === 0 ? managersOk : [...managersOk].reverse()) byManagers.get(m)!.push(synth({ managers: m, workers: 3 }));
    process.stderr.write(`run ${r + 1}/${args.runs}: ${workerSizes.map((n) => `N=${n} ${fmt(byWorkers.get(n)!.at(-1)!.seconds)}s`).join(', ')}\n`);
  }
  const end = environment();

  const first = byWorkers.get(workerSizes[0])![0];
  const last = byWorkers.get(workerSizes.at(-1)!)![0];
  const constant = workerSizes.every((n) => byWorkers.get(n)!.every((s) => s.resources === first.resources));
  const bytesDelta = Math.max(...workerSizes.map((n) => byWorkers.get(n)![0].bytes)) - Math.min(...workerSizes.map((n) => byWorkers.get(n)![0].bytes));
  const synthRatio = median(byWorkers.get(workerSizes.at(-1)!)!.map((s) => s.seconds)) / median(first ? byWorkers.get(workerSizes[0])!.map((s) => s.seconds) : []);
  // A design with one AWS::EC2::Instance per node keeps everything else and swaps each group's machinery
  // (group, launch template, lifecycle hook) for one instance per node: shared + managers + N resources.
  const minRatio = Math.min(...byWorkers.get(workerSizes.at(-1)!)!.map((x) => x.seconds)) / Math.min(...byWorkers.get(workerSizes[0])!.map((x) => x.seconds));
  const groupParts = ['AWS::AutoScaling::AutoScalingGroup', 'AWS::EC2::LaunchTemplate', 'AWS::AutoScaling::LifecycleHook'].reduce((n, t) => n + (first.types[t] ?? 0), 0);
  const shared = first.resources - groupParts;
  const perNodeLimit = CFN_RESOURCE_LIMIT - shared - 1; // workers that fit beside 1 manager

  const rows = workerSizes.map((n) => {
    const s = byWorkers.get(n)!;
    return `| workers ${n} (1 manager) | ${s[0].resources} | ${s[0].bytes.toLocaleString('en')} | ${spread(s.map((x) => x.seconds))} | ${fmt(median(s.map((x) => x.seconds)) / median(byWorkers.get(workerSizes[0])!.map((x) => x.seconds)))} |`;
  });
  const managerRows = managersOk.map((m) => {
    const s = byManagers.get(m)!;
    return `| managers ${m} (3 workers) | ${s[0].resources} | ${s[0].bytes.toLocaleString('en')} | ${spread(s.map((x) => x.seconds))} | – |`;
  });
  const refused = managerSizes.filter((m) => managerRefused.get(m) !== undefined);

  writeSection(
    'template-scale',
    [
      '## 1. Template scale',
      '',
      ...environmentBlock(start, `npx tsx bench/template-scale.ts --runs ${args.runs}${args.quick ? ' --quick' : ''}`, end),
      `- method: in-process synthesis as bin/app.ts does it (addSwarmStack, cdk-nag enforced, cdk.json feature flags), template file as written to cdk.out; three warm-up syntheses discarded; sizes alternated, ${args.runs} runs each. Seconds.`,
      '',
      '| cluster | resources | template bytes | synth s, median (min–max) | synth ÷ synth(N=1) |',
      '|---|---:|---:|---:|---:|',
      ...rows,
      ...managerRows,
      '',
      `- Goal: resources and bytes constant in N — ${verdict(constant && bytesDelta < 64)}: ${first.resources} resources for every N; bytes differ by ${bytesDelta} (the digits of N in the group's sizes).`,
      `- Goal: synth(${workerSizes.at(-1)}) ÷ synth(1) ≤ 1.1 — ${verdict(synthRatio <= 1.1)}: ${fmt(synthRatio)} by medians, ${fmt(minRatio)} by the fastest runs (the least disturbed by other load; the template itself does not grow with N).`,
      `- Managers: ${managersOk.length ? `measured ${managersOk.join('/')}` : 'not measured'}${refused.length ? `; ${refused.join('/')} refused by the \`managers\` configuration on this commit (${managerRefused.get(refused[0])})` : ''}.`,
      `- One resource per node instead: the ${first.resources} resources here are ${shared} shared ones plus the two groups' machinery (Auto Scaling group, launch template, lifecycle hook: ${groupParts}). A design with one \`AWS::EC2::Instance\` per node and nothing else per node has ${shared} + 1 manager + N workers resources and passes CloudFormation's ${CFN_RESOURCE_LIMIT}-resource limit at N = ${perNodeLimit + 1} workers (with a second resource per node, e.g. a wait condition or an ENI: N = ${Math.floor(perNodeLimit / 2) + 1}). Resource types at N = 1: ${Object.entries(first.types).map(([t, c]) => `${t.replace(/^AWS::/, '')} ${c}`).join(', ')}.`,
      `- Template bytes at N = ${workerSizes.at(-1)}: ${last.bytes.toLocaleString('en')} (CloudFormation's limit for a template body from S3 is 1,000,000).`,
    ].join('\n'),
  );
  process.stdout.write(`template-scale: ${first.resources} resources for every N (${constant}), synth ratio ${fmt(synthRatio)}\n`);
}

void main().catch((e: unknown) => {
  process.stderr.write(`template-scale: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
