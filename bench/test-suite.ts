#!/usr/bin/env node
/**
 * Test suite: wall time of `npm run test:unit` (jest, unit config) on this machine, and which files take it — from
 * jest's own per-file timings (`--json`). Files that need root, namespaces or dockerd are marked: they belong to
 * the end-to-end suite if they dominate.
 *
 *   npx tsx bench/test-suite.ts [--runs N]            (default 1: one run is minutes)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseBenchArgs } from './lib/args';
import { environment, environmentBlock, REPO, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';

interface JestJson {
  numTotalTests: number;
  numFailedTests: number;
  numPendingTests: number;
  success: boolean;
  testResults: { name: string; perfStats: { start: number; end: number }; assertionResults: { status: string }[] }[];
}

/** Files that start namespaces, dockerd or need root: they skip themselves when not root, and cost most when root. */
const NEEDS_ROOT = /process\.getuid\?\.\(\)\s*===\s*0|canRunLab\(\)|describeIfRoot|describeLab\b/;

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 1);
  const start = environment();
  const walls: number[] = [];
  const perFile = new Map<string, number[]>();
  let last: JestJson | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'bench-jest-'));
  try {
    for (let r = 0; r < args.runs; r++) {
      const out = join(dir, `run-${r}.json`);
      const t0 = performance.now();
      const p = spawnSync('npm', ['run', '--silent', 'test:unit', '--', '--json', `--outputFile=${out}`], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 1_800_000 });
      walls.push((performance.now() - t0) / 1000);
      last = JSON.parse(readFileSync(out, 'utf8')) as JestJson;
      for (const t of last.testResults) {
        const f = relative(REPO, t.name);
        perFile.set(f, [...(perFile.get(f) ?? []), (t.perfStats.end - t.perfStats.start) / 1000]);
      }
      process.stderr.write(`run ${r + 1}/${args.runs}: ${fmt(walls.at(-1)!, 1)}s, exit ${p.status}, ${last.numTotalTests} tests, ${last.numFailedTests} failed\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const end = environment();
  const files = [...perFile.entries()].map(([f, xs]) => ({ f, s: median(xs), root: NEEDS_ROOT.test(readFileSync(join(REPO, f), 'utf8')) })).sort((a, b) => b.s - a.s);
  const total = files.reduce((n, x) => n + x.s, 0);
  const rootTotal = files.filter((x) => x.root).reduce((n, x) => n + x.s, 0);
  const wall = median(walls);
  writeSection(
    'test-suite',
    [
      '## 9. Unit test suite',
      '',
      ...environmentBlock(start, `npx tsx bench/test-suite.ts --runs ${args.runs}`, end),
      `- method: \`npm run test:unit -- --json\` (jest, its default workers on this machine's cores), wall time of the whole command; per-file times from jest's own perfStats (files run in parallel, so they add up to more than the wall time). Run as ${process.getuid?.() === 0 ? 'root: the files that need root ran' : 'non-root: the files that need root skipped themselves'}. ${args.runs} run(s). Seconds.`,
      `- result: ${last ? `${last.numTotalTests} tests, ${last.numFailedTests} failed, ${last.numPendingTests} skipped` : 'no result'}; wall ${spread(walls, 1)}.`,
      '',
      '| test file (slowest 12) | s | needs root / namespaces / dockerd |',
      '|---|---:|---|',
      ...files.slice(0, 12).map((x) => `| ${x.f} | ${fmt(x.s, 1)} | ${x.root ? 'yes' : ''} |`),
      '',
      `- Goal: ≤ 60 s on 2 cores — ${verdict(wall <= 60)} (${fmt(wall, 1)} s, load at start ${start.load.split(' (')[0]}). Files that need root take ${fmt(rootTotal, 1)} of the ${fmt(total, 1)} file-seconds (${fmt((100 * rootTotal) / Math.max(total, 1e-9), 0)} %): ${files.filter((x) => x.root).map((x) => x.f).join(', ') || 'none'}.`,
    ].join('\n'),
  );
  process.stdout.write(`test-suite: wall ${fmt(wall, 1)}s\n`);
}

void main().catch((e: unknown) => {
  process.stderr.write(`test-suite: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
