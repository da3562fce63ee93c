#!/usr/bin/env node
/**
 * Benchmark of the lab lifecycle `npm start` runs (the same code: bin/start.ts's Lifecycle), phase by phase:
 * lab up (user-data → every signal), formation, deploy → converged, scale → converged, teardown, lab down.
 * Writes its section of bench/RESULTS.md. Root; runs beside other labs (the bench lab identity, bench/lib/lab.ts).
 *
 *   npx tsx bench/lab-lifecycle.ts [--runs N]      (default 3; each run's full log in <lab dir>/bench-run-<i>.log)
 *
 * Times are for reading, never asserted by a test: they depend on the machine and its load.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Lifecycle, type LifecycleResult } from '../bin/start';
import { parseBenchArgs } from './lib/args';
import { LAB_DIR } from './lib/lab';
import { environment, environmentBlock, writeSection, type BenchEnvironment } from './lib/report';
import { fmt, median } from './lib/stats';

const f1 = (x: number): string => fmt(x, 1);

function report(results: LifecycleResult[], start: BenchEnvironment, end: BenchEnvironment, runs: number): string {
  const phases = [...new Set(results.flatMap((r) => r.phases.map((p) => p.phase))), 'total'];
  const secondsOf = (r: LifecycleResult, phase: string): number | undefined =>
    phase === 'total' ? r.totalSeconds : r.phases.find((p) => p.phase === phase)?.seconds;
  const rows = phases.map((phase) => {
    const xs = results.map((r) => secondsOf(r, phase)).filter((x): x is number => x !== undefined);
    return `| ${phase} | ${xs.length ? f1(median(xs)) : '–'} | ${xs.length ? f1(Math.min(...xs)) : '–'} | ${xs.length ? f1(Math.max(...xs)) : '–'} | ${results.map((r) => (secondsOf(r, phase) !== undefined ? f1(secondsOf(r, phase) as number) : '–')).join(' / ')} |`;
  });
  const failed = results.filter((r) => r.exitCode !== 0);
  return [
    '## Lab lifecycle (`npm start`), for reference',
    '',
    ...environmentBlock(start, `npx tsx bench/lab-lifecycle.ts --runs ${runs}`, end),
    '- What `npm start` does, timed per phase by the same code (bin/start.ts). Seconds.',
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
    'for demo_web=8; *teardown* = ops teardown (stacks and services removed, workers left, managers left, parameters',
    'deleted); *lab down* = every process, namespace, mount and cgroup of the lab removed.',
  ].join('\n');
}

async function main(): Promise<void> {
  const { runs } = parseBenchArgs(process.argv.slice(2), 3);
  const start = environment();
  const results: LifecycleResult[] = [];
  const lab = { labDir: LAB_DIR, prefix: process.env.EC2_SWARM_LAB_PREFIX as string, net: Number(process.env.EC2_SWARM_LAB_NET) };
  mkdirSync(LAB_DIR, { recursive: true });
  for (let i = 1; i <= runs; i++) {
    const log = join(LAB_DIR, `bench-run-${i}.log`);
    const out = createWriteStream(log);
    const lc = new Lifecycle({ ...lab, out });
    const onSignal = (): void => void lc.interrupt('interrupted').finally(() => process.exit(130));
    process.once('SIGINT', onSignal);
    const r = await lc.run();
    process.removeListener('SIGINT', onSignal);
    await new Promise((done) => out.end(done));
    results.push(r);
    process.stdout.write(`run ${i}/${runs}: ${r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`} in ${f1(r.totalSeconds)}s — ${r.phases.map((p) => `${p.phase} ${f1(p.seconds)}`).join(', ')}  (log: ${log})\n`);
  }
  writeSection('lab-lifecycle', report(results, start, environment(), runs));
  process.exit(results.every((r) => r.exitCode === 0) ? 0 : 1);
}

void main();
