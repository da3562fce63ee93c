#!/usr/bin/env node
/**
 * Detection latency (lab, root): from the swarm actually converging to `verify` returning. Services are created
 * directly on the manager (`docker service create --detach`), verify starts at once; afterwards the moment of
 * convergence is read from the engine itself: the latest `Status.Timestamp` of the services' running tasks (when
 * the last task reached Running, as recorded by swarm — outside the tool; the lab's hosts share this machine's clock).
 *
 * Two variants, alternated: the ops defaults (what `ec2-swarm verify` does: the long poll on the manager, design.md
 * decision 19) and polling from the operator's side (the design before it: the same runner, but the manager's
 * fingerprint is withheld, so verify looks again every 2 s, or at the end of the stability window + 0.2 s).
 *
 *   npx tsx bench/detection-latency.ts [--runs N]
 */
import { verify, type CommandRunner } from '../lib/ops';
import { DEFAULT_MONITOR_MS } from '../lib/ops/swarm/convergence';
import { QUERY_MAGIC, SAME_WORD } from '../lib/ops/swarm/query-script';
import { parseBenchArgs } from './lib/args';
import { hostDocker, removeAllServices, withLab, type BenchLab, labNotes } from './lib/lab';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { alternate, fmt, median, spread } from './lib/stats';

const SERVICES = ['dl-a', 'dl-b', 'dl-c'];

async function convergedAt(lab: BenchLab): Promise<number> {
  const ids = (await hostDocker(lab.state, 'h0', ['service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=running', ...SERVICES])).stdout.split('\n').filter(Boolean);
  const r = await hostDocker(lab.state, 'h0', ['inspect', '--type', 'task', '--format', '{{.Status.State}} {{.Status.Timestamp.UnixNano}}', ...ids]);
  const rows = r.stdout.split('\n').filter(Boolean).map((l) => l.split(' '));
  if (rows.length !== SERVICES.length * 2 || rows.some(([s]) => s !== 'running')) throw new Error(`not converged when verify returned: ${r.stdout.trim()}`);
  return Math.max(...rows.map(([, ns]) => Number(BigInt(ns) / 1_000_000n)));
}

/** What the last look of a verify cost, from the manager's wake-up on (ms; the lab's hosts share this clock). */
interface LastLook {
  /** The wake-up the operator asked for (manager clock) → the manager's answer (negative: it answered before). */
  readonly wakeToAnswer: number;
  /** The manager's last look at the state (the fingerprint: four list calls). */
  readonly look: number;
  /** The answer printed → GetCommandInvocation returned it (the lab agent's upload, the runner's poll lag). */
  readonly transport: number;
  readonly same: boolean;
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 5);
  const start = environment();
  const converge: Record<string, number[]> = { defaults: [], polling: [] };
  const runCommands: Record<string, number[]> = { defaults: [], polling: [] };
  const lastLooks: LastLook[] = [];
  const samples = await withLab({ workers: 3 }, async (lab) => {
    let count = 0;
    let last: { script: string; stdout: string; receivedAt: number } | undefined;
    const counting: CommandRunner = {
      run: async (ids, script, o) => {
        count++;
        const r = await lab.conn.runner.run(ids, script, o);
        last = { script, stdout: r[0]?.stdout ?? '', receivedAt: Date.now() };
        return r;
      },
    };
    // The operator-side poll: the answer's fingerprint removed, so verify polls from here (its fallback).
    const header = new RegExp(`^(${QUERY_MAGIC} \\S+ \\d+) [0-9a-f]{32} `);
    const withheld: CommandRunner = { run: async (ids, script, o) => (await counting.run(ids, script, o)).map((r) => ({ ...r, stdout: r.stdout.replace(header, '$1 - ') })) };
    const ctxOf = { defaults: { ...lab.conn, runner: counting }, polling: { ...lab.conn, runner: withheld } };
    const once = (variant: 'defaults' | 'polling') => async (): Promise<number> => {
      const t0 = Date.now();
      for (const s of SERVICES) {
        await hostDocker(lab.state, 'h0', ['service', 'create', '--detach', '--quiet', '--name', s, '--replicas', '2', '--init', '--endpoint-mode', 'dnsrr', '--no-resolve-image', 'local/busybox:latest', 'sleep', '86400']);
      }
      count = 0;
      const r = await verify(ctxOf[variant], { timeoutSeconds: 180, services: SERVICES });
      const returned = Date.now();
      runCommands[variant].push(count);
      if (!r.converged) throw new Error('verify did not see convergence');
      if (variant === 'defaults' && last) {
        // Header: magic, same|id, instant|length, fingerprint, ms of the last look, manager clock at the answer (ns).
        const w = last.stdout.split('\n')[0].split(' ');
        const wake = Number(/^wake_ms='(\d+)'$/m.exec(last.script)?.[1] ?? 0);
        const answered = Number(BigInt(w[5]) / 1_000_000n);
        const lookMs = Number(w[4]);
        const same = w[1] === SAME_WORD;
        // From the wake-up to the answer: a "same" answer's last look; a snapshot answer's look and snapshot.
        lastLooks.push({ wakeToAnswer: wake > 0 ? answered - wake : NaN, look: lookMs, transport: last.receivedAt - answered, same });
      }
      const at = await convergedAt(lab);
      converge[variant].push((at - t0) / 1000);
      await removeAllServices(lab.state);
      return (returned - at) / 1000;
    };
    return alternate(args.runs, { defaults: once('defaults'), polling: once('polling') }, (v, r, x) => process.stderr.write(`run ${r}: ${v} latency ${fmt(x)}s\n`));
  });
  const end = environment();
  // Converged means stable for the update monitor (5 s when unset, as here): verify cannot return before that window.
  const windowS = DEFAULT_MONITOR_MS / 1000;
  const beyond = (xs: number[]): number[] => xs.map((x) => x - windowS);
  const d = median(beyond(samples.defaults));
  const f = median(beyond(samples.polling));
  writeSection(
    'detection-latency',
    [
      '## 5. Detection latency (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/detection-latency.ts --runs ${args.runs}`, end),
      ...labNotes(),
      `- method: one lab (1 + 3). Per run: ${SERVICES.length} services × 2 replicas created with \`docker service create --detach\` on the manager, then \`verify\` (ops API) for them; latency = verify returning − the latest \`Status.Timestamp\` of their running tasks (read from the engine afterwards). Variants alternated, ${args.runs} runs each. Seconds.`,
      '',
      `Verify counts a service as converged only once its tasks have run for the update monitor (${windowS} s when unset, as here; decision 14), so it cannot return before last task running + ${windowS} s: the detection latency is what comes after that window.`,
      '',
      '| variant | last task running → verify returns | of which after the stability window (detection) | create → last task running | Run Commands per verify |',
      '|---|---:|---:|---:|---:|',
      `| ops defaults: long poll on the manager (decisions 19, 21) | ${spread(samples.defaults)} | ${spread(beyond(samples.defaults))} | ${spread(converge.defaults)} | ${median(runCommands.defaults)} |`,
      `| poll from the operator (fingerprint withheld: every 2 s, or window end + 0.2 s) | ${spread(samples.polling)} | ${spread(beyond(samples.polling))} | ${spread(converge.polling)} | ${median(runCommands.polling)} |`,
      '',
      `- Goal: ≤ 1 s median detection — with the ops defaults ${verdict(d <= 1)} (${fmt(d)} s after the window); polling from the operator: ${fmt(f)} s.`,
      '',
      `Where the last look's time went (ops defaults, medians of ${lastLooks.length} runs, ms; the lab's hosts share this machine's clock): the wake-up verify asked for → the manager's answer ${spread(lastLooks.map((l) => l.wakeToAnswer), 0)} (a "same" answer: its last look; a snapshot answer: a look and the snapshot; negative: it answered before the wake-up, on a change); the manager's last look (four list calls) ${spread(lastLooks.map((l) => l.look), 0)}; the answer printed → seen by the operator (the lab agent's upload, the runner's poll) ${spread(lastLooks.map((l) => l.transport), 0)}. The last answer was "same" (no snapshot) in ${lastLooks.filter((l) => l.same).length} of ${lastLooks.length} runs.`,
      '',
      '- How: verify\'s query waits on the manager (design.md decisions 19 and 21): every 0.2 s a fingerprint of nodes, services (with their versions) and tasks (four list calls), answering with a snapshot when it changes; otherwise at the wake-up time verify passes — the end of the last stability window when only windows are missing (manager clock) — or after 10 s, with "same at T" (a few bytes: no snapshot taken or shipped), and verify judges the snapshot it holds at the manager\'s time T. The SSM runner is told when the answer is due (a quarter second early) and asks every 0.1 s from then for 1.5 s. On AWS add the agent\'s result upload (~0.1–0.5 s); the delivery of each Run Command is not in the path, as the wait started before convergence.',
    ].join('\n'),
  );
  process.stdout.write(`detection-latency: long poll ${fmt(d)}s, operator polling ${fmt(f)}s\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`detection-latency: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
