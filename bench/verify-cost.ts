#!/usr/bin/env node
/**
 * Verify cost: SSM API calls per verify poll, and how big the state snapshot gets, for S = 1, 10, 100, 500 services.
 *
 * Counted at the lab's SSM endpoint (lib/lab/ssm/endpoint.ts, its request log: one line per API call), with the
 * production runner (SsmRunner, real AWS SDK client) and the real query script. Two set-ups:
 * - synthetic (always): the endpoint's executor runs the script with bash right here against the ops tests' docker
 *   stand-in (test/ops/swarm/harness.ts) loaded with S services × 2 tasks — the only way to 500 services here;
 * - lab (`--lab`, root): a real 1 + 3 lab swarm with S services (S = 1, 10, 100), counted at the lab controller.
 *
 *   npx tsx bench/verify-cost.ts [--runs N] [--quick] [--lab]
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLabCloud } from '../lib/lab/ssm/endpoint';
import { spawnExecutor, STDOUT_LIMIT } from '../lib/lab/ssm/run-command';
import { controllerPaths } from '../lib/lab/cloud/controller';
import { createSsmClient, SsmRunner, status, verify, type OpsContext } from '../lib/ops';
import { querySwarm } from '../lib/ops/swarm/query';
import type { SwarmSnapshot } from '../lib/ops/swarm/snapshot';
import { PAGE_CHARS, QUERY_MAGIC } from '../lib/ops/swarm/query-script';
import { StubHost } from '../test/ops/swarm/harness';
import { parseBenchArgs } from './lib/args';
import { RecordingRunner } from './lib/recording-runner';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { median } from './lib/stats';
import { syntheticSwarm, type Naming } from './lib/synthetic-swarm';
import { LAB_OPERATOR_CREDENTIALS } from '../lib/lab/credentials';

const MANAGER = 'i-0be0c0000000000a0';
const REGION = 'us-east-1';
const quiet = { info: () => undefined, warn: () => undefined, progress: () => undefined, done: () => undefined };

interface PollCost {
  readonly setup: string;
  readonly services: number;
  /** SSM API calls per poll, by action (medians over the polls). */
  readonly calls: Record<string, number>;
  readonly total: number;
  readonly runCommands: number;
  readonly maxStdout: number;
  readonly snapshotChars: number;
  readonly pollSeconds: number;
  /** verify's later looks (synthetic only): Run Commands and largest stdout of a look after one task changed, one that found nothing changed at its wake-up, and one at its bound. */
  readonly later?: { readonly changed: LookCost; readonly same: LookCost; readonly bound: LookCost };
}

interface LookCost {
  readonly runCommands: number;
  readonly maxStdout: number;
}

/** API calls (by action) the request log gained since `offset`, operator calls only. */
function callsSince(log: string, offset: number): Record<string, number> {
  const text = existsSync(log) ? readFileSync(log, 'utf8').slice(offset) : '';
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as { action?: string; via?: string };
    if (e.via !== 'tcp' || !e.action) continue; // hosts' own calls (via the gateway) are not the operator's
    out[e.action] = (out[e.action] ?? 0) + 1;
  }
  return out;
}

const size = (f: string): number => (existsSync(f) ? statSync(f).size : 0);

/** One verify poll (timeout 0), `polls` times, after a warm-up status (agents known Online). */
async function measurePolls(setup: string, services: number, ctx: OpsContext & { runner: RecordingRunner }, log: string, polls: number): Promise<PollCost> {
  await status(ctx);
  const samples: { calls: Record<string, number>; runCommands: number; maxStdout: number; snapshotChars: number; seconds: number }[] = [];
  for (let p = 0; p < polls; p++) {
    ctx.runner.reset();
    const offset = size(log);
    const t0 = performance.now();
    const r = await verify(ctx, { timeoutSeconds: 0 });
    const seconds = (performance.now() - t0) / 1000;
    if (r.services.length !== services) throw new Error(`${setup}: verify saw ${r.services.length} services, expected ${services}`);
    await new Promise((d) => setTimeout(d, 50)); // the log line is appended after the response is sent
    const first = ctx.runner.calls[0];
    samples.push({
      calls: callsSince(log, offset),
      runCommands: ctx.runner.calls.length,
      maxStdout: Math.max(...ctx.runner.calls.map((c) => c.maxStdoutChars)),
      snapshotChars: first ? lastHeaderTotal : 0,
      seconds,
    });
  }
  const actions = [...new Set(samples.flatMap((s) => Object.keys(s.calls)))].sort();
  const calls = Object.fromEntries(actions.map((a) => [a, median(samples.map((s) => s.calls[a] ?? 0))]));
  return {
    setup,
    services,
    calls,
    total: median(samples.map((s) => Object.values(s.calls).reduce((x, y) => x + y, 0))),
    runCommands: median(samples.map((s) => s.runCommands)),
    maxStdout: Math.max(...samples.map((s) => s.maxStdout)),
    snapshotChars: median(samples.map((s) => s.snapshotChars)),
    pollSeconds: median(samples.map((s) => s.seconds)),
  };
}

/** The base64 length the query announced in its header (`<QUERY_MAGIC> <id> <total>`), seen through the runner. */
let lastHeaderTotal = 0;
class HeaderSpy extends RecordingRunner {
  override async run(...a: Parameters<RecordingRunner['run']>): ReturnType<RecordingRunner['run']> {
    const results = await super.run(...a);
    const m = new RegExp(`^${QUERY_MAGIC} \\S+ (\\d+)`).exec(results[0]?.stdout ?? '');
    if (m) lastHeaderTotal = Number(m[1]);
    return results;
  }
}

async function synthetic(services: number, naming: Naming, polls: number): Promise<PollCost> {
  const host = new StubHost();
  const log = join(host.dir, 'ssm-requests.jsonl');
  const swarm = syntheticSwarm(services, naming);
  host.load(swarm);
  const cloud = await startLabCloud({
    region: REGION,
    instances: [{ instanceId: MANAGER, privateIp: '192.168.250.10', role: 'manager' }],
    executor: spawnExecutor(() => [], { env: host.env(), drainMs: 200 }),
    requestLog: log,
  });
  const client = createSsmClient({ region: REGION, endpoint: cloud.endpoint, credentials: LAB_OPERATOR_CREDENTIALS });
  try {
    const runner = new HeaderSpy(new SsmRunner({ client }));
    const ctx = { cluster: { name: 'bench', region: REGION, managerInstanceIds: [MANAGER], parameterPrefix: '/ec2-swarm/bench' }, runner, reporter: quiet, cloud: { listWorkerInstanceIds: async () => [], deleteRuntimeParameters: async () => [] } };
    const first = await measurePolls(`synthetic, ${naming} names`, services, ctx, log, polls);
    return { ...first, later: await laterLooks(ctx, host, swarm) };
  } finally {
    client.destroy();
    await cloud.close();
    host.cleanup();
  }
}

/**
 * verify's looks after its first (design.md decision 21), as verify makes them (the fingerprint and snapshot held,
 * no wait): one after a task of the first service failed (the answer is the difference from the snapshot held), one
 * that finds nothing changed at its wake-up ("same"), and one that finds nothing changed at its bound (a snapshot
 * again: the difference, a few bytes).
 */
async function laterLooks(ctx: OpsContext & { runner: RecordingRunner }, host: StubHost, swarm: SwarmSnapshot): Promise<NonNullable<PollCost['later']>> {
  type Answer = Awaited<ReturnType<typeof querySwarm>>;
  const look = async (previous: Answer, wakeAtMs?: number): Promise<{ r: Answer; cost: LookCost }> => {
    if (!previous.active || !previous.fingerprint) throw new Error('synthetic: the first look came without a fingerprint');
    ctx.runner.reset();
    const watch = { since: previous.fingerprint, maxWaitMs: 0, base: previous.held.md5, ...(wakeAtMs !== undefined ? { wakeAtMs } : {}) };
    const r = await querySwarm(ctx, { watch, previous: previous.held });
    return { r, cost: { runCommands: ctx.runner.calls.length, maxStdout: Math.max(...ctx.runner.calls.map((c) => c.maxStdoutChars)) } };
  };
  const first = await querySwarm(ctx, { watch: { maxWaitMs: 0 } });
  const [t0, ...rest] = swarm.tasks;
  host.load({ ...swarm, tasks: [{ ...t0, state: 'failed', desired: 'shutdown', error: 'task: non-zero exit (1)', timestamp: swarm.nowMs }, ...rest] });
  const changed = await look(first);
  if (!changed.r.active || changed.r.unchanged) throw new Error('synthetic: the change was not seen');
  // The stand-in's clock stands at the swarm's own instant: a wake-up there has come.
  const same = await look(changed.r, swarm.nowMs);
  if (!same.r.active || !same.r.unchanged) throw new Error('synthetic: a look without a change did not answer "same" at its wake-up');
  const bound = await look(same.r);
  if (!bound.r.active || bound.r.unchanged) throw new Error('synthetic: a look at its bound did not answer with a snapshot');
  return { changed: changed.cost, same: same.cost, bound: bound.cost };
}

let labNote: () => string[] = () => [];

async function onLab(sizes: number[], polls: number): Promise<PollCost[]> {
  const { withLab, hostDocker, removeAllServices, LAB_DIR, labNotes } = await import('./lib/lab');
  labNote = labNotes;
  return withLab({ workers: 3 }, async ({ state, conn }) => {
    const out: PollCost[] = [];
    const log = controllerPaths(LAB_DIR).requestLog;
    const runner = new HeaderSpy(conn.runner);
    const ctx = { ...conn, runner };
    const dir = mkdtempSync(join(tmpdir(), 'bench-vc-'));
    try {
      for (const s of sizes) {
        const compose = join(dir, `s${s}.yml`);
        const svc = (i: number): string =>
          `  svc-${String(i).padStart(3, '0')}:\n    image: local/busybox:latest\n    init: true\n    command: ["sleep", "86400"]\n    deploy: { replicas: 1, endpoint_mode: dnsrr }\n`;
        writeFileSync(compose, `version: "3.8"\nservices:\n${Array.from({ length: s }, (_, i) => svc(i)).join('')}`);
        await hostDocker(state, 'h0', ['stack', 'deploy', '--resolve-image', 'never', '-c', compose, 'vc'], { timeoutMs: 600_000 });
        const v = await verify(conn, { timeoutSeconds: 600 });
        if (!v.converged) throw new Error(`lab: ${s} services did not converge`);
        out.push(await measurePolls('lab 1+3', s, ctx, log, polls));
        process.stderr.write(`lab S=${s}: ${out.at(-1)!.total} calls per poll\n`);
        await removeAllServices(state);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return out;
  });
}

function row(c: PollCost): string {
  const byAction = Object.entries(c.calls).map(([a, n]) => `${a} ${n}`).join(', ');
  const cost = (l: LookCost): string => `${l.runCommands} (${l.maxStdout.toLocaleString('en')})`;
  const later = c.later ? `${cost(c.later.changed)} / ${cost(c.later.same)} / ${cost(c.later.bound)}` : '–';
  return `| ${c.setup} | ${c.services} | ${c.total} (${byAction}) | ${c.runCommands} | ${c.snapshotChars.toLocaleString('en')} | ${c.maxStdout.toLocaleString('en')} | ${c.pollSeconds.toFixed(2)} | ${later} |`;
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2).filter((a) => a !== '--lab'), 3);
  const lab = process.argv.includes('--lab');
  const start = environment();
  const sizes = args.quick ? [1, 500] : [1, 10, 100, 500];
  const results: PollCost[] = [];
  for (const naming of ['typical', 'worst'] as const) {
    for (const s of sizes) {
      results.push(await synthetic(s, naming, args.runs));
      process.stderr.write(`synthetic ${naming} S=${s}: ${results.at(-1)!.total} calls per poll\n`);
    }
  }
  const labResults = lab ? await onLab(args.quick ? [1, 10] : [1, 10, 100], args.runs) : [];
  const end = environment();

  const all = [...results, ...labResults];
  const maxOut = Math.max(...all.flatMap((c) => [c.maxStdout, ...(c.later ? [c.later.changed, c.later.same, c.later.bound].map((l) => l.maxStdout) : [])]));
  const typical = results.filter((c) => c.setup.includes('typical'));
  const worst = results.filter((c) => c.setup.includes('worst'));
  const same = (xs: PollCost[]): boolean => xs.every((c) => c.runCommands === xs[0].runCommands);
  const laterOne = results.every((c) => c.later && c.later.changed.runCommands === 1 && c.later.same.runCommands === 1 && c.later.bound.runCommands === 1);
  const laterPages = (pick: (l: NonNullable<PollCost['later']>) => LookCost): string =>
    results.map((c) => `${c.setup.replace('synthetic, ', '')} S=${c.services}: ${c.later ? pick(c.later).runCommands : '–'}`).join(', ');
  const pages = (xs: PollCost[]): string => xs.map((c) => `S=${c.services}: ${c.runCommands}`).join(', ');
  writeSection(
    'verify-cost',
    [
      '## 2. Verify cost: SSM calls per poll and snapshot size',
      '',
      ...environmentBlock(start, `npx tsx bench/verify-cost.ts --runs ${args.runs}${args.quick ? ' --quick' : ''}${lab ? ' --lab' : ''}`, end),
      `- method: one \`verify\` poll (ops API, timeout 0) with the production SsmRunner and AWS SDK client; every SSM API call counted in the request log of the lab's SSM endpoint; medians of ${args.runs} polls after a warm-up \`status\` (the first command of a connection also makes one DescribeInstanceInformation call, not counted per poll). *Synthetic*: the endpoint runs the real query script with bash on this machine against the ops tests' docker stand-in holding S services × 2 tasks on 4 nodes (no lab can hold 500 services here). *Lab*: ${lab ? 'a real 1 + 3 lab swarm, S services of 1 task each.' : 'not run this time (`--lab`).'}`,
      ...labNote(),
      '- GetCommandInvocation calls depend on how long the script runs (the runner asks first 0.1 s after SendCommand, then ×1.5 up to 1 s); Run Commands are what scale with S.',
      '',
      '| set-up | S | SSM API calls per poll (by action) | Run Commands per poll | snapshot (base64 chars) | largest stdout (chars) | poll s | later looks: Run Commands (largest stdout, chars) — one task changed / nothing changed at the wake-up / nothing changed at the bound |',
      '|---|---:|---|---:|---:|---:|---:|---|',
      ...all.map(row),
      '',
      `- Goal: the same number of calls at S = 500 as at S = 1 — verify's first look (the whole state): typical names ${verdict(same(typical))} (Run Commands per poll ${pages(typical)}); 63-character random names ${verdict(same(worst))} (${pages(worst)}). Its later looks (what verify does while it waits): ${verdict(laterOne)} — after one task changed ${laterPages((c) => c.changed)}; nothing changed at the wake-up ${laterPages((c) => c.same)}; at the bound ${laterPages((c) => c.bound)}.`,
      `- What a look ships (design.md decisions 8 and 21): the snapshot of one instant, gzip + base64, with services numbered instead of their 25-character ids, times in whole ms, the engine's replica counts only for global services and jobs; a later look ships the \`diff -e\` from the snapshot verify holds (kept on the manager for it), or "same" when nothing changed. Above ${PAGE_CHARS.toLocaleString('en')} characters the first look still pages (one more Run Command per page). Why the worst first look cannot be one Run Command: 500 random 58-character names carry ~18.7 KB of information (58 × log2 36 bits each) and the worst-case images' random 25-character parts ~8 KB more: their base64 alone is ~36,000 characters, over SSM's 24,000-character cap whatever the text encoding; only another channel (an S3 output bucket, issue 11) or the snapshot already held (verify's later looks) avoids paging it.`,
      `- Goal: every output under ${STDOUT_LIMIT.toLocaleString('en')} characters — ${verdict(maxOut < STDOUT_LIMIT)}: the largest stdout seen was ${maxOut.toLocaleString('en')} characters.`,
    ].join('\n'),
  );
  process.stdout.write(`verify-cost: largest stdout ${maxOut}; run commands per poll typical ${pages(typical)}, worst ${pages(worst)}\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`verify-cost: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
