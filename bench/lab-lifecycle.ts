#!/usr/bin/env node
/**
 * Benchmark of the lab lifecycle `npm start` runs (the same code: bin/start.ts's Lifecycle), phase by phase:
 * lab up (user-data → every signal), formation, deploy → converged, scale → converged, teardown, lab down.
 * Writes bench/RESULTS.md. Root; runs beside other labs (own dir, prefix and network).
 *
 *   npx tsx bench/lab-lifecycle.ts [--runs N]      (default 3; each run's full log in <lab dir>/bench-run-<i>.log)
 *
 * Times are for reading, never asserted by a test: they depend on the machine and its load.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { Lifecycle, type LifecycleResult } from '../bin/start';

const LAB = { labDir: '/var/lib/ec2-swarm-bench', prefix: 'e2b', net: 235 };
const RESULTS = join(__dirname, 'RESULTS.md');

function parseRuns(argv: string[]): number {
  const i = argv.indexOf('--runs');
  if (i < 0) return 3;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 20) {
    process.stderr.write(`--runs must be a whole number from 1 to 20 (got ${JSON.stringify(argv[i + 1])})\n`);
    process.exit(2);
  }
  return n;
}

function dockerdVersion(): string {
  try {
    return execFileSync('dockerd', ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return 'dockerd: unknown';
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f1 = (x: number): string => x.toFixed(1);

function report(results: LifecycleResult[], started: Date): string {
  const phases = [...new Set(results.flatMap((r) => r.phases.map((p) => p.phase))), 'total'];
  const secondsOf = (r: LifecycleResult, phase: string): number | undefined =>
    phase === 'total' ? r.totalSeconds : r.phases.find((p) => p.phase === phase)?.seconds;
  const rows = phases.map((phase) => {
    const xs = results.map((r) => secondsOf(r, phase)).filter((x): x is number => x !== undefined);
    return `| ${phase} | ${xs.length ? f1(median(xs)) : '–'} | ${xs.length ? f1(Math.min(...xs)) : '–'} | ${xs.length ? f1(Math.max(...xs)) : '–'} | ${results.map((r) => (secondsOf(r, phase) !== undefined ? f1(secondsOf(r, phase) as number) : '–')).join(' / ')} |`;
  });
  const failed = results.filter((r) => r.exitCode !== 0);
  return [
    '# Lab lifecycle benchmark',
    '',
    'What `npm start` does, timed per phase by `npx tsx bench/lab-lifecycle.ts --runs N` (the same code, bin/start.ts).',
    'For reading only: no test asserts these times. Seconds.',
    '',
    `- date: ${started.toISOString()}`,
    `- machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}`,
    `- ${dockerdVersion()}`,
    `- lab: 1 manager + 3 workers; demo stack web × 6 + worker × 3, then web scaled to 8`,
    `- runs: ${results.length}${failed.length ? ` (${failed.length} failed: ${failed.map((r) => `exit ${r.exitCode}${r.error ? ` ${r.error}` : ''}`).join('; ')})` : ', all succeeded'}`,
    '',
    '| phase | median | min | max | each run |',
    '|---|---:|---:|---:|---|',
    ...rows,
    '',
    'Phases: *lab up* = synthesize the template, start 4 hosts (netns + dockerd) and the lab cloud, run the user-data,',
    'wait for every signal (the swarm is formed when the workers signal); *formation* = ops `status` until every node',
    'is Ready; *deploy* = `docker stack deploy` through SSM Run Command until every replica runs; *scale* = the same',
    'for demo_web=8; *teardown* = ops teardown (stack removed, workers drained and left, manager left, parameters',
    'deleted); *lab down* = every process, namespace, mount and cgroup of the lab removed.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const runs = parseRuns(process.argv.slice(2));
  const started = new Date();
  const results: LifecycleResult[] = [];
  mkdirSync(LAB.labDir, { recursive: true });
  for (let i = 1; i <= runs; i++) {
    const log = join(LAB.labDir, `bench-run-${i}.log`);
    const out = createWriteStream(log);
    const lc = new Lifecycle({ ...LAB, out });
    const onSignal = (): void => void lc.interrupt('interrupted').finally(() => process.exit(130));
    process.once('SIGINT', onSignal);
    const r = await lc.run();
    process.removeListener('SIGINT', onSignal);
    await new Promise((done) => out.end(done));
    results.push(r);
    process.stdout.write(`run ${i}/${runs}: ${r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`} in ${f1(r.totalSeconds)}s — ${r.phases.map((p) => `${p.phase} ${f1(p.seconds)}`).join(', ')}  (log: ${log})\n`);
  }
  writeFileSync(RESULTS, report(results, started));
  process.stdout.write(`wrote ${RESULTS}\n`);
  process.exit(results.every((r) => r.exitCode === 0) ? 0 : 1);
}

void main();
