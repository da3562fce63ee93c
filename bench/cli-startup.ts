#!/usr/bin/env node
/**
 * CLI start-up: the installed CLI (`npm run build` → dist/bin/ec2-swarm.js) `--help` and `status --help`, against
 * `node -e 0` (Node's own start-up, the floor), alternated in every run; the checkout path
 * (`npx tsx bin/ec2-swarm.ts --help`) for information. Builds dist/ first when it is missing (or with `--build`).
 *
 *   npx tsx bench/cli-startup.ts [--runs N] [--build]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseBenchArgs } from './lib/args';
import { environment, environmentBlock, REPO, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';

const CLI = join(REPO, 'dist', 'bin', 'ec2-swarm.js');

function timeOnce(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 120_000 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 300)}`);
  return ms / 1000;
}

async function main(): Promise<void> {
  const build = process.argv.includes('--build');
  const args = parseBenchArgs(process.argv.slice(2).filter((a) => a !== '--build'), 15);
  if (build || !existsSync(CLI)) {
    process.stderr.write('building dist/ (npm run build)\n');
    const b = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  const start = environment();
  const variants: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'ec2-swarm --help': [CLI, '--help'],
    'ec2-swarm status --help': [CLI, 'status', '--help'],
  };
  const names = Object.keys(variants);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) timeOnce(process.execPath, variants[n]); // warm the page cache once
  for (let r = 0; r < args.runs; r++) {
    for (const n of r % 2 === 0 ? names : [...names].reverse()) samples[n].push(timeOnce(process.execPath, variants[n]));
  }
  const tsxRuns = Math.max(1, Math.min(5, Math.ceil(args.runs / 3)));
  const tsx: number[] = [];
  const floorForTsx: number[] = [];
  for (let r = 0; r < tsxRuns; r++) {
    tsx.push(timeOnce('npx', ['tsx', 'bin/ec2-swarm.ts', '--help']));
    floorForTsx.push(timeOnce(process.execPath, ['-e', '0']));
  }
  const end = environment();

  const floor = median(samples['node -e 0']);
  const help = median(samples['ec2-swarm --help']) / floor;
  const statusHelp = median(samples['ec2-swarm status --help']) / floor;
  writeSection(
    'cli-startup',
    [
      '## 6. CLI start-up',
      '',
      ...environmentBlock(start, `npx tsx bench/cli-startup.ts --runs ${args.runs}`, end),
      `- method: wall time of each process from spawn to exit (Node ${process.version}, \`${process.execPath}\`), the three commands alternated, ${args.runs} runs each after one warm-up; the checkout path ${tsxRuns} runs beside \`node -e 0\`. Seconds.`,
      '',
      '| command | s, median (min–max) | ÷ node -e 0 |',
      '|---|---:|---:|',
      ...names.map((n) => `| \`${n === 'node -e 0' ? n : `node dist/bin/${n.replace('ec2-swarm', 'ec2-swarm.js')}`}\` | ${spread(samples[n], 3)} | ${fmt(median(samples[n]) / floor)} |`),
      `| \`npx tsx bin/ec2-swarm.ts --help\` (checkout, for information) | ${spread(tsx, 3)} | ${fmt(median(tsx) / median(floorForTsx))} |`,
      '',
      `- Goal: ≤ 1.5 × \`node -e 0\` — \`--help\` ${verdict(help <= 1.5)} (${fmt(help)}×), \`status --help\` ${verdict(statusHelp <= 1.5)} (${fmt(statusHelp)}×). The CLI loads commander only; the ops module and the AWS SDK are required when a command runs.`,
    ].join('\n'),
  );
  process.stdout.write(`cli-startup: --help ${fmt(help)}×, status --help ${fmt(statusHelp)}× node -e 0\n`);
}

void main().catch((e: unknown) => {
  process.stderr.write(`cli-startup: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
