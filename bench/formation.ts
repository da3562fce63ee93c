#!/usr/bin/env node
/**
 * Formation (lab, root): from the user-data starting to every node Ready — the project's path (labUp runs the
 * synthesized user-data unchanged on every host: install checks, IMDS, swarm init, tokens to Parameter Store, workers
 * fetch them and join, signals) — against the ideal by hand on the same hosts right after: every node leaves, then
 * `docker swarm init`, `docker swarm join-token -q worker` and the N `docker swarm join` in parallel.
 * Readiness is observed directly on the manager (`docker node ls`, every 100 ms), outside the tool, for both.
 *
 *   npx tsx bench/formation.ts [--runs N] [--quick]        (N = 3 and 5 workers; --quick: N = 3 only)
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseBenchArgs } from './lib/args';
import { hostDocker, LAB_DIR, pendingLab, pollUntil, readyNodes, sleep, withLab } from './lib/lab';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';

/** The earliest moment a host's user-data was handed to it (labUp writes the file, then runs it). */
function userDataStart(since: number): number | undefined {
  const dir = join(LAB_DIR, 'hosts');
  if (!existsSync(dir)) return undefined;
  const times = readdirSync(dir)
    .map((h) => join(dir, h, 'user-data'))
    .filter((f) => existsSync(f))
    .map((f) => statSync(f).mtimeMs)
    .filter((t) => t >= since);
  return times.length ? Math.min(...times) : undefined;
}

/** Watches a lab coming up: user-data start → all `nodes` Ready on the manager. Seconds, and the start (ms epoch). */
async function watchToolFormation(nodes: number, since: number, stop: { stopped: boolean }): Promise<{ seconds: number; start: number }> {
  let start: number | undefined;
  while (start === undefined) {
    if (stop.stopped) throw new Error('lab up ended before any user-data started');
    start = userDataStart(since);
    await sleep(50);
  }
  const ready = await pollUntil('tool formation', async () => (await readyNodes(pendingLab())) === nodes, 600_000, 100);
  return { seconds: (ready - start) / 1000, start };
}

/** What a host's user-data logged (`<time> ec2-swarm: <message>`, second resolution), as offsets from `start`. */
function timeline(host: string, start: number): string[] {
  const log = join(LAB_DIR, 'logs', `${host}-cloud-init-output.log`);
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .map((l) => /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) ec2-swarm: (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `+${Math.max(0, Math.round((Date.parse(m[1]) - start) / 1000))} s ${m[2].slice(0, 100)}`);
}

async function handFormation(workers: number, ips: Map<string, string>): Promise<number> {
  const lab = pendingLab();
  const hosts = Array.from({ length: workers + 1 }, (_, i) => `h${i}`);
  // Untimed: every node leaves (workers first), so the same hosts start from no swarm.
  await Promise.all(hosts.slice(1).map((h) => hostDocker(lab, h, ['swarm', 'leave', '--force'], { allowFail: true })));
  await hostDocker(lab, 'h0', ['swarm', 'leave', '--force'], { allowFail: true });
  await pollUntil('all inactive', async () => (await Promise.all(hosts.map((h) => hostDocker(lab, h, ['info', '--format', '{{.Swarm.LocalNodeState}}'])))).every((r) => r.stdout.trim() === 'inactive'), 60_000, 200);

  const t0 = Date.now();
  const managerIp = ips.get('h0') as string;
  await hostDocker(lab, 'h0', ['swarm', 'init', '--advertise-addr', managerIp]);
  // The token stays in this process's memory and the docker client's argv inside this machine; never printed.
  const token = (await hostDocker(lab, 'h0', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
  await Promise.all(hosts.slice(1).map((h) => hostDocker(lab, h, ['swarm', 'join', '--advertise-addr', ips.get(h) as string, '--token', token, `${managerIp}:2377`])));
  const ready = await pollUntil('hand formation', async () => (await readyNodes(lab)) === workers + 1, 120_000, 100);
  return (ready - t0) / 1000;
}

interface Sizes {
  tool: number[];
  hand: number[];
  labUp: number[];
  /** The last run's user-data log of the manager and of one worker. */
  timeline: { manager: string[]; worker: string[] };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 3);
  const start = environment();
  const sizes = args.quick ? [3] : [3, 5];
  const results = new Map<number, Sizes>(sizes.map((n) => [n, { tool: [], hand: [], labUp: [], timeline: { manager: [], worker: [] } }]));
  for (let r = 0; r < args.runs; r++) {
    for (const n of r % 2 === 0 ? sizes : [...sizes].reverse()) {
      const since = Date.now();
      const stop = { stopped: false };
      const watcher = watchToolFormation(n + 1, since, stop);
      watcher.catch(() => undefined);
      await withLab({ workers: n }, async ({ state }) => {
        stop.stopped = true;
        const { seconds: tool, start: udStart } = await watcher;
        results.get(n)!.timeline = { manager: timeline('h0', udStart), worker: timeline('h1', udStart) };
        const hand = await handFormation(n, new Map(state.hosts.map((h) => [h.name, h.ip])));
        const s = results.get(n)!;
        s.tool.push(tool);
        s.hand.push(hand);
        s.labUp.push(state.upSeconds);
        process.stderr.write(`run ${r + 1}/${args.runs} N=${n}: tool ${fmt(tool)}s, by hand ${fmt(hand)}s (lab up ${state.upSeconds}s)\n`);
      });
    }
  }
  const end = environment();
  const rows = sizes.map((n) => {
    const s = results.get(n)!;
    return `| ${n} | ${spread(s.tool)} | ${spread(s.hand)} | ${fmt(median(s.tool) / median(s.hand))} | ${spread(s.labUp, 1)} |`;
  });
  const ratios = sizes.map((n) => median(results.get(n)!.tool) / median(results.get(n)!.hand));
  writeSection(
    'formation',
    [
      '## 3. Formation (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/formation.ts --runs ${args.runs}${args.quick ? ' --quick' : ''}`, end),
      `- method: per run, one lab of 1 manager + N workers. *Tool*: from the first host's user-data being handed to it (labUp writes the file, then runs it as cloud-init would; all hosts start together) to every node Ready in \`docker node ls\` on the manager, polled every 100 ms from outside the tool. *By hand*, on the same hosts right after (every node left the swarm first, untimed): \`docker swarm init\`, \`docker swarm join-token -q worker\`, the N \`docker swarm join\` in parallel, until every node is Ready (same poll). The two are taken in the same lab one after the other, the sizes alternate between runs. ${args.runs} runs. Seconds.`,
      '',
      '| workers N | tool, user-data → all Ready | by hand, init → all Ready | ratio | lab up (for reference) |',
      '|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      `- Goal: ratio ≤ 1.3 — ${sizes.map((n, i) => `N = ${n} ${verdict(ratios[i] <= 1.3)} (${fmt(ratios[i])})`).join(', ')}.`,
      '- Where the difference goes: the user-data does what a hand formation skips — it checks for Docker, cfn-signal and the tools it needs, reads IMDSv2 (a session token, the instance facts in one request, the instance role\'s credentials), sets the engine label (daemon.json merged with python3, SIGHUP, wait), and hands the token over through Parameter Store. Since decision 20 every Parameter Store call is one `curl --aws-sigv4` request (milliseconds of CPU; before, each was an AWS CLI start of ~1.3 CPU-s). On the way to the first worker Ready: the manager\'s `init-lock` put (the `cluster-id` read alongside), `swarm init`, the worker token, `manager-addresses` and `cluster-id` written at once, then the worker\'s next poll (every second for its first 15 polls, with jitter; decision 25), its `GetParameters` and the join. Since decision 25 the label is set in the background while the credentials are read (waited for before the election), and after `swarm init` one `docker info` and no node listing stand before the publication. All hosts share the same 2 cores (on EC2 every host has its own CPU). By hand the token is handed over in memory.',
      '- What would close the rest: the fixed costs of a boot that a hand formation does not have (the install checks, IMDS, the label: a python3 merge and a reload, now beside the credentials but still before the election), the hand-over through Parameter Store (a put, then a poll up to a second later), and the docker CLI starts on the manager\'s path (`docker info`, `swarm join-token`), each slow when 1 + N hosts share 2 cores; on EC2 every host has its own CPU.',
      '- The user-data logs of the last run (seconds from the user-data start, second resolution):',
      '',
      ...sizes.flatMap((n) => {
        const t = results.get(n)!.timeline;
        return [`  N = ${n}, manager (h0):`, '', ...t.manager.map((l) => `    ${l}`), '', `  N = ${n}, a worker (h1):`, '', ...t.worker.map((l) => `    ${l}`), ''];
      }),
    ].join('\n'),
  );
  process.stdout.write(`formation: ratios ${sizes.map((n, i) => `N=${n} ${fmt(ratios[i])}`).join(', ')}\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`formation: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
