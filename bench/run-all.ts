#!/usr/bin/env node
/**
 * `npm run bench`: every benchmark, one after another, each in its own process (so one's load and memory do not
 * bleed into the next), each writing its section of bench/RESULTS.md. Lab benchmarks need root; without it they are
 * skipped and say so. Options are passed on: `npm run bench -- --quick` (smallest sizes, 1 run each) or
 * `npm run bench -- --only formation,teardown`.
 *
 * Exit 0 when every benchmark that ran finished (a missed goal is a result, not a failure), 1 otherwise.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, SECTIONS, type SectionName } from './lib/report';

const LAB: ReadonlySet<SectionName> = new Set(['formation', 'deploy-verify', 'detection-latency', 'teardown', 'failover', 'lab-lifecycle']);

function main(): void {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? new Set((argv[onlyAt + 1] ?? '').split(',')) : undefined;
  const unknown = only && [...only].filter((n) => !(SECTIONS as readonly string[]).includes(n));
  if (unknown && unknown.length) {
    process.stderr.write(`--only: unknown benchmark(s) ${unknown.join(', ')}; known: ${SECTIONS.join(', ')}\n`);
    process.exit(2);
  }
  const root = process.getuid?.() === 0;
  const failed: string[] = [];
  // verify-cost's lab part (hundreds of services) leaves a load that takes minutes to settle: it runs last, so the
  // other lab figures are not taken in its wake. RESULTS.md keeps its section order.
  const order = [...SECTIONS.filter((n) => n !== 'verify-cost'), 'verify-cost' as const];
  for (const name of order) {
    if (only && !only.has(name)) continue;
    if (LAB.has(name) && !root) {
      process.stdout.write(`— ${name}: skipped (the lab needs root)\n`);
      continue;
    }
    const args = [...(quick ? ['--quick', '--runs', '1'] : []), ...(name === 'verify-cost' && root ? ['--lab'] : [])];
    if (quick && name === 'lab-lifecycle') args.splice(0, 1); // it has no sizes to shrink
    process.stdout.write(`▶ ${name}\n`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO, 'bench', `${name}.ts`), ...args], { cwd: REPO, stdio: 'inherit' });
    const s = ((Date.now() - t0) / 1000).toFixed(0);
    if (r.status === 0) process.stdout.write(`✔ ${name} (${s}s)\n`);
    else {
      failed.push(name);
      process.stdout.write(`✖ ${name} (${s}s, exit ${r.status ?? r.signal})\n`);
    }
  }
  process.stdout.write(failed.length ? `failed: ${failed.join(', ')} (see their output above)\n` : 'every benchmark finished: bench/RESULTS.md\n');
  process.exit(failed.length ? 1 : 0);
}

main();
