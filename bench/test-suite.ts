#!/usr/bin/env node
/**
 * Test suite: `npm run test:unit` on this machine — wall time, CPU time of the whole process tree (npm, jest, its
 * workers and every process a test started and waited for), and where the CPU goes, per test file (jest's
 * setupFilesAfterEnv test/support/cpu-probe.js reads /proc/self/stat in the worker around each file) and per
 * folder. The machine's load is sampled during the run: on a shared machine the wall time says as much about the
 * others as about the tests, the CPU time much less.
 *
 *   npx tsx bench/test-suite.ts [--runs N]            (default 1: one run is minutes)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseBenchArgs } from './lib/args';
import { environment, environmentBlock, REPO, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';

interface JestJson {
  numTotalTests: number;
  numFailedTests: number;
  numPendingTests: number;
  /** jest's --json output: start and end time of each file (ms since the epoch). */
  testResults: { name: string; startTime?: number; endTime?: number; assertionResults: { status: string; fullName: string }[] }[];
}

interface ProbeLine {
  pid: number;
  file: string;
  start: number;
  end: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux architecture the project supports). */
const HZ = 100;

/** This process's children's CPU seconds (user + system of every child it has waited for, and theirs). */
function childrenCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) / HZ;
}

/** CPU seconds per test file: from its start to the next file's start in the same worker, the last one to its end. */
function cpuPerFile(lines: ProbeLine[]): Map<string, number> {
  const byPid = new Map<number, ProbeLine[]>();
  for (const l of lines) byPid.set(l.pid, [...(byPid.get(l.pid) ?? []), l]);
  const out = new Map<string, number>();
  for (const ls of byPid.values()) {
    ls.sort((a, b) => a.start - b.start);
    ls.forEach((l, i) => out.set(relative(REPO, l.file), ((i + 1 < ls.length ? ls[i + 1].start : l.end) - l.start) / HZ));
  }
  return out;
}

interface Run {
  wall: number;
  cpu: number;
  exit: number | null;
  load: number[];
  jest: JestJson;
  cpuByFile: Map<string, number>;
  wallByFile: Map<string, number>;
  workers: number;
}

async function once(dir: string, r: number): Promise<Run> {
  const out = join(dir, `run-${r}.json`);
  const probe = join(dir, `cpu-${r}.jsonl`);
  const load: number[] = [];
  const sampler = setInterval(() => load.push(loadavg()[0]), 5000);
  const cpu0 = childrenCpu();
  const t0 = performance.now();
  const exit = await new Promise<number | null>((done, fail) => {
    const p = spawn('npm', ['run', '--silent', 'test:unit', '--', '--json', `--outputFile=${out}`], {
      cwd: REPO,
      env: { ...process.env, BENCH_JEST_CPU_OUT: probe },
      stdio: ['ignore', 'ignore', 'ignore'],
      timeout: 3_600_000,
    });
    p.once('error', fail);
    p.once('close', (code) => done(code));
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = childrenCpu() - cpu0;
  clearInterval(sampler);
  const jest = JSON.parse(readFileSync(out, 'utf8')) as JestJson;
  const lines = readFileSync(probe, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ProbeLine);
  const wallByFile = new Map(jest.testResults.map((t) => [relative(REPO, t.name), ((t.endTime ?? 0) - (t.startTime ?? 0)) / 1000]));
  return { wall, cpu, exit, load, jest, cpuByFile: cpuPerFile(lines), wallByFile, workers: new Set(lines.map((l) => l.pid)).size };
}

/** Measurements before this program measured CPU (kept so the section shows where the suite came from). */
const HISTORY = [
  'Earlier measurements (by hand: `/usr/bin/time` around `npx jest`, per file from the same /proc/self/stat readings):',
  '',
  '| when | commit | how | files / tests | wall | CPU (user + sys) | load |',
  '|---|---|---|---|---:|---:|---|',
  '| 2026-11-30 15:25 | b5b5ef2 | in band | 67 / 758 | 3287 s | 744 | 15–30 |',
  '| 2026-11-30 17:00 | 7e7f86e | in band | 71 / 820 | 1003 s | 407 | 6–13 |',
  '| 2026-11-30 18:12 | 056e486 | one worker (jest\'s default on 2 cores: in band) | 72 / 821 | 378 s | 286 (CPU / wall 0.75: one core mostly idle) | 1.4 → 7 |',
  '',
  'Since 056e486 (607b411): two jest workers on 2 cores (jest.config.js `maxWorkers`: in band one core waited while a file\'s shell scripts ran); the CloudFormation validation of all five configuration shapes and its positive control in ONE synth (the rule engine starts once, ~10 CPU-s, then ~2.5 CPU-s a synth: 20 → 15 CPU-s measured back to back); two of the three bin/app.ts bad-config processes in-process (~2.5 CPU-s each; the process keeps the construct-phase error, all take the same exit path); two redundant runs of the real AWS CLI (~1.5 CPU-s each: Python start-up); the gateway-main process started as the lab starts it (one node, no tsx launcher). The node-script sandbox (test/node-scripts, user-data-run) is being cut separately (fewer processes per script run, worker tests that set "a manager published the swarm" directly).',
  '',
  'What is left, and what would close the gap: on 2 cores the floor is the suite\'s CPU / 2 (220 CPU-s on 5e8b0ab; 266 on 146efea and 329 before that: at least 110 s). Since 146efea the node-script tests load neither aws-cdk-lib nor zod (nodeEnvironment has its own module), scenarios that shared a code path are checked on one run of the script (manager.sh 4 runs → 2 in the election test, 2 fewer in the recovery tests, 1 fewer for the ECR helper), teardown\'s script tests start bash with SHLVL=1 (13.2 → 3.4 CPU-s: Debian\'s bash read ~/.bashrc, pyenv\'s init, on every start), and the sandbox records curl in-process. Half of what is left is still the node-script sandbox: each manager.sh / worker.sh run is the real script, about 80 processes (10–20 ms of CPU each here), and the remaining runs are different scenarios (refusals, waits, retries). 60 s would need the scripts to start fewer processes (e.g. the ~14 `timeout` wrappers per run) or those scenarios moved to the e2e suite, where the lab runs the same scripts for real; then template validation (14.8 CPU-s, the rule engine) and the user-data run (10.5).',
];

/** The failed tests by file and name, so a failed run says which. */
function failedTests(j: JestJson): string {
  const failed = j.testResults.flatMap((t) => t.assertionResults.filter((a) => a.status === 'failed').map((a) => `${relative(REPO, t.name)}: ${a.fullName}`));
  return failed.length ? ` Failed: ${failed.join('; ')}.` : '';
}

/** test/node-scripts/x.test.ts → test/node-scripts; test/config.test.ts → test (top level). */
const folder = (f: string): string => (f.split('/').length > 2 ? f.split('/').slice(0, 2).join('/') : 'test (top level)');

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 1);
  const start = environment();
  const runs: Run[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'bench-jest-'));
  try {
    for (let r = 0; r < args.runs; r++) {
      const run = await once(dir, r);
      runs.push(run);
      process.stderr.write(
        `run ${r + 1}/${args.runs}: wall ${fmt(run.wall, 1)} s, CPU ${fmt(run.cpu, 1)} s, exit ${run.exit}, ${run.jest.numTotalTests} tests, ${run.jest.numFailedTests} failed, load ${fmt(median(run.load), 1)}\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const end = environment();
  const walls = runs.map((r) => r.wall);
  const cpus = runs.map((r) => r.cpu);
  const files = [...new Set(runs.flatMap((r) => [...r.cpuByFile.keys()]))]
    .map((f) => ({ f, cpu: median(runs.map((r) => r.cpuByFile.get(f) ?? 0)), wall: median(runs.map((r) => r.wallByFile.get(f) ?? 0)) }))
    .sort((a, b) => b.cpu - a.cpu);
  const folders = new Map<string, { cpu: number; n: number }>();
  for (const x of files) {
    const g = folders.get(folder(x.f)) ?? { cpu: 0, n: 0 };
    folders.set(folder(x.f), { cpu: g.cpu + x.cpu, n: g.n + 1 });
  }
  const fileCpu = files.reduce((n, x) => n + x.cpu, 0);
  const wall = median(walls);
  const cpu = median(cpus);
  const last = runs.at(-1)!;
  writeSection(
    'test-suite',
    [
      '## 9. Unit test suite',
      '',
      ...environmentBlock(start, `npx tsx bench/test-suite.ts --runs ${args.runs}`, end),
      `- method: \`npm run test:unit -- --json\` (jest.config.js: ${last.workers} worker(s) here), ${args.runs} run(s); wall time of the whole command; CPU = user + system of the whole process tree (npm, jest, its workers, every process the tests started and waited for); per file the same from inside its worker (test/support/cpu-probe.js), from the file's start to the next file's start in that worker. The 1-minute load average sampled every 5 s during each run (median). Run as ${process.getuid?.() === 0 ? 'root (every test ran)' : 'non-root (tests that need root skipped themselves)'}. Seconds.`,
      `- result (last run): ${last.jest.numTotalTests} tests, ${last.jest.numFailedTests} failed, ${last.jest.numPendingTests} skipped, exit ${last.exit}.${failedTests(last.jest)}`,
      '',
      '| run | wall | CPU (user + sys) | CPU / wall | load during the run (median, max) |',
      '|---|---:|---:|---:|---|',
      ...runs.map((r, i) => `| ${i + 1} | ${fmt(r.wall, 1)} | ${fmt(r.cpu, 1)} | ${fmt(r.cpu / r.wall, 2)} | ${fmt(median(r.load), 1)}, ${fmt(Math.max(...r.load, 0), 1)} |`),
      '',
      `- wall ${spread(walls, 1)}; CPU ${spread(cpus, 1)}; the files account for ${fmt(fileCpu, 1)} CPU-s of the median run's ${fmt(cpu, 1)} (the rest: npm, jest's start-up, haste map, reporters).`,
      '',
      '| folder | files | CPU-s | share |',
      '|---|---:|---:|---:|',
      ...[...folders.entries()].sort((a, b) => b[1].cpu - a[1].cpu).map(([g, x]) => `| ${g} | ${x.n} | ${fmt(x.cpu, 1)} | ${fmt((100 * x.cpu) / Math.max(fileCpu, 1e-9), 0)} % |`),
      '',
      '| test file (the 20 costliest) | CPU-s | wall s |',
      '|---|---:|---:|',
      ...files.slice(0, 20).map((x) => `| ${x.f} | ${fmt(x.cpu, 1)} | ${fmt(x.wall, 1)} |`),
      '',
      `- Goal: ≤ 60 s on 2 cores — ${verdict(wall <= 60)} (median wall ${fmt(wall, 1)} s; ${fmt(cpu, 1)} CPU-s, so at least ${fmt(cpu / 2, 1)} s on 2 idle cores; and no less than the costliest file, which one worker runs alone: ${files[0] ? `${files[0].f}, ${fmt(files[0].cpu, 1)} CPU-s` : 'none'}).`,
      '',
      ...HISTORY,
    ].join('\n'),
  );
  process.stdout.write(`test-suite: wall ${fmt(wall, 1)} s, CPU ${fmt(cpu, 1)} s\n`);
}

void main().catch((e: unknown) => {
  process.stderr.write(`test-suite: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
