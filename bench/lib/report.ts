/**
 * bench/RESULTS.md: one section per benchmark, each written by its own program, so a benchmark run alone replaces
 * only its section. Every section starts with the facts a figure needs to be read: machine, date, load, Docker and
 * Node versions, commit, and the command that reruns it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ||= 'true';

export const REPO = resolve(__dirname, '..', '..');
export const RESULTS = join(REPO, 'bench', 'RESULTS.md');

/** Section order in RESULTS.md (run-all runs them in this order too). */
export const SECTIONS = [
  'template-scale',
  'verify-cost',
  'formation',
  'deploy-verify',
  'detection-latency',
  'cli-startup',
  'teardown',
  'failover',
  'test-suite',
  'lab-lifecycle',
] as const;
export type SectionName = (typeof SECTIONS)[number];

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 15_000, cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export interface BenchEnvironment {
  readonly date: string;
  readonly machine: string;
  readonly load: string;
  readonly node: string;
  readonly docker: string;
  readonly commit: string;
}

export function environment(): BenchEnvironment {
  const cpu = cpus();
  const [l1, l5, l15] = loadavg();
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/RESULTS.md']) ? ' (with uncommitted changes)' : '';
  return {
    date: new Date().toISOString(),
    machine: `${cpu.length} × ${cpu[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}`,
    load: `${l1.toFixed(1)} / ${l5.toFixed(1)} / ${l15.toFixed(1)} (1/5/15 min, \`uptime\`; ${cpu.length} cores)`,
    node: process.version,
    docker: [run('dockerd', ['--version']) ?? 'dockerd: not found', run('docker', ['--version'])].filter(Boolean).join('; client: '),
    commit: `${run('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown'}${dirty}`,
  };
}

/** The lines every section starts with. `end` is the environment taken when the measurement finished. */
export function environmentBlock(start: BenchEnvironment, rerun: string, end?: BenchEnvironment): string[] {
  return [
    `- date: ${start.date}${end ? ` → ${end.date}` : ''}`,
    `- machine: ${start.machine}`,
    `- load at start: ${start.load}${end ? `; at end: ${end.load}` : ''}`,
    `- Node ${start.node}; ${start.docker}`,
    `- commit: ${start.commit}`,
    `- rerun: \`${rerun}\``,
  ];
}

const begin = (name: string): string => `<!-- bench:${name} -->`;
const finish = (name: string): string => `<!-- /bench:${name} -->`;

const HEADER = [
  '# Benchmarks',
  '',
  'Written by the programs in `bench/` (`npm run bench` runs them all; each also runs alone, e.g.',
  '`npx tsx bench/template-scale.ts`, and replaces only its own section below). For reading only: no test asserts a',
  'time. The machine is shared and noisy, so every time is measured beside its baseline in the same run, alternating,',
  'over several runs, and reported as medians (min–max) with the ratio. Lab benchmarks need root and run with their',
  'own lab identity (`EC2_SWARM_LAB_DIR`, `EC2_SWARM_LAB_PREFIX`, `EC2_SWARM_LAB_NET`; default `/var/lib/ec2-swarm-bench`,',
  '`e2b`, 235), so they run beside another lab.',
  '',
].join('\n');

/** Replaces (or adds, in SECTIONS order) the section `name` of RESULTS.md. */
export function writeSection(name: SectionName, markdown: string): void {
  const text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const sections = new Map<string, string>();
  for (const n of SECTIONS) {
    const i = text.indexOf(begin(n));
    const j = text.indexOf(finish(n));
    if (i >= 0 && j > i) sections.set(n, text.slice(i, j + finish(n).length));
  }
  sections.set(name, `${begin(name)}\n${markdown.trim()}\n${finish(name)}`);
  const body = SECTIONS.filter((n) => sections.has(n)).map((n) => sections.get(n)).join('\n\n');
  writeFileSync(RESULTS, `${HEADER}\n${body}\n`);
}

/** Goal met / missed, in words a reader scans for. */
export function verdict(met: boolean | undefined): string {
  return met === undefined ? 'not measured' : met ? '**met**' : '**missed**';
}
