#!/usr/bin/env node
/**
 * Failover (lab, root; needs `lab up --managers 3`): from stopping the leader manager to `status` answering through
 * another manager (with a new leader), and to a deploy succeeding (one service, converged). The leader is stopped the
 * way an instance stops (the lab's stopHost where the lab has it; else its link cut and its dockerd killed).
 * Alongside, a connection opened before the stop whose first manager is the stopped leader (a long-lived `Connection`
 * of an IaC pipeline) asks `status` too, and the deploy's Run Commands are timed (where its time after `status` goes).
 *
 *   npx tsx bench/failover.ts [--runs N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lab from '../lib/lab/lab';
import { deploy, status, type Connection, type StatusReport } from '../lib/ops';
import { parseBenchArgs } from './lib/args';
import { freshConnection, hostDocker, pollUntil, withLab, type BenchLab, labNotes } from './lib/lab';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { fmt, median, spread } from './lib/stats';
import { DEFAULT_MONITOR_MS } from '../lib/ops/swarm/convergence';
import { MANAGER_DELIVERY_BOUND_S, preferManager } from '../lib/ops/swarm/manager';
import { RecordingRunner, type RecordedCall } from './lib/recording-runner';

function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Stops a host as an instance stops: the lab's stopHost (EC2 StopInstances) when it exists. */
async function stopInstance(b: BenchLab, host: string): Promise<string> {
  const stopHost = (lab as unknown as { stopHost?: (s: lab.LabState, n: string) => Promise<unknown> }).stopHost;
  if (typeof stopHost === 'function') {
    await stopHost(b.state, host);
    return 'the lab\'s stopHost (EC2 StopInstances: dockerd and every process of the host stopped)';
  }
  await lab.cutLink(b.state, host);
  await lab.stopDocker(b.state, host, { signal: 'SIGKILL' });
  return 'its link cut and its dockerd killed (SIGKILL)';
}

interface Run {
  /** Seconds from the stop: a surviving manager's own `docker node ls` shows another leader (outside the tool). */
  readonly election: number;
  readonly status: number;
  /** The same, through a connection opened before the stop, its first manager the stopped leader. */
  readonly statusLongLived: number;
  readonly deploy: number;
  /** The successful deploy's Run Commands (label, seconds). */
  readonly deployCalls: readonly RecordedCall[];
  /** When the successful deploy attempt started (its connection made), seconds from the stop. */
  readonly deployStart: number;
  readonly how: string;
}

async function once(b: BenchLab, specFile: string, managers: string[]): Promise<Run> {
  const q = async (h: string): Promise<string[]> => (await hostDocker(b.state, h, ['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}'], { allowFail: true, timeoutMs: 10_000 })).stdout.split('\n').filter(Boolean);
  let leaderHostname = '';
  await pollUntil('3 managers, one leader', async () => {
    const rows = await q(managers[0]);
    leaderHostname = rows.find((r) => r.endsWith(' Leader'))?.split(' ')[0] ?? '';
    return rows.filter((r) => / (Leader|Reachable)$/.test(r)).length === managers.length && leaderHostname !== '';
  }, 120_000, 500);
  const leader = b.state.hosts.find((h) => h.hostname === leaderHostname);
  if (!leader) throw new Error(`leader ${leaderHostname} is not a lab host`);
  const survivor = managers.find((m) => m !== leader.name) as string;
  // Each attempt as a user's `ec2-swarm` command makes it: a new connection (managers listed again, online first).
  const attempt = async <T>(fn: (c: Connection) => Promise<T>, ms: number): Promise<T> => {
    const c = await freshConnection(b.state);
    try {
      return await bounded(fn(c), ms);
    } finally {
      c.close();
    }
  };
  // The long-lived connection: it answered before the stop, through the leader, so it asks the leader first after.
  const longLived = await freshConnection(b.state);
  await status(longLived);
  preferManager(longLived, leader.instanceId);
  const t0 = Date.now();
  const how = await stopInstance(b, leader.name);
  const election = pollUntil('a new leader, seen on a surviving manager', async () => (await q(survivor)).some((r) => r.endsWith(' Leader') && !r.startsWith(`${leaderHostname} `)), 300_000, 250);
  const longLivedStatus = (async () => {
    try {
      for (;;) {
        try {
          const s = await bounded(status(longLived), 60_000);
          if (s.nodes.some((n) => n.leader && n.hostname !== leaderHostname)) return Date.now();
        } catch {
          /* no leader yet: ask again on the same connection */
        }
        if (Date.now() - t0 > 300_000) throw new Error('status on the long-lived connection did not answer with a new leader within 300 s');
      }
    } finally {
      longLived.close();
    }
  })();
  // Awaited below; marked handled so a failure of the other loop first does not end the process before lab down.
  longLivedStatus.catch(() => undefined);
  let answered: StatusReport | undefined;
  while (!answered) {
    try {
      const s = await attempt((c) => status(c), 30_000);
      if (s.nodes.some((n) => n.leader && n.hostname !== leaderHostname)) answered = s;
    } catch {
      /* no leader yet, or no manager answered: ask again */
    }
    if (Date.now() - t0 > 300_000) throw new Error('status did not answer with a new leader within 300 s');
  }
  const tStatus = Date.now();
  let deployCalls: RecordedCall[] = [];
  let deployStartedAt = 0;
  for (;;) {
    const recording = { runner: undefined as RecordingRunner | undefined, at: 0 };
    try {
      const d = await attempt((c) => {
        recording.runner = new RecordingRunner(c.runner);
        recording.at = Date.now();
        return deploy({ ...c, runner: recording.runner }, { file: specFile, wait: true, timeoutSeconds: 60, resolveImage: 'never' });
      }, 90_000);
      if (d.verify?.converged) {
        deployCalls = recording.runner?.calls ?? [];
        deployStartedAt = recording.at;
        break;
      }
    } catch {
      /* try again */
    }
    if (Date.now() - t0 > 300_000) throw new Error('no deploy succeeded within 300 s');
  }
  const tDeploy = Date.now();
  const tLongLived = await longLivedStatus;
  return {
    election: ((await election) - t0) / 1000,
    status: (tStatus - t0) / 1000,
    statusLongLived: (tLongLived - t0) / 1000,
    deploy: (tDeploy - t0) / 1000,
    deployCalls,
    deployStart: (deployStartedAt - t0) / 1000,
    how,
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 2);
  const start = environment();
  const dir = mkdtempSync(join(tmpdir(), 'bench-fo-'));
  const spec = join(dir, 'services.yml');
  writeFileSync(spec, 'services:\n  - name: after-failover\n    image: local/busybox:latest\n    replicas: 2\n    endpointMode: dnsrr\n    command: ["sleep", "86400"]\n');
  const runs: Run[] = [];
  let notMeasured: string | undefined;
  try {
    for (let r = 0; r < args.runs && !notMeasured; r++) {
      try {
        await withLab({ workers: 2, managers: 3 } as never, async (b) => {
          const managers = b.state.hosts.filter((h) => h.role === 'manager').map((h) => h.name);
          runs.push(await once(b, spec, managers));
          process.stderr.write(`run ${r + 1}/${args.runs}: new leader ${fmt(runs.at(-1)!.election)}s, status ${fmt(runs.at(-1)!.status)}s, deploy ${fmt(runs.at(-1)!.deploy)}s\n`);
        });
      } catch (e) {
        const m = (e as Error).message;
        if (/managers/.test(m) && runs.length === 0) notMeasured = m.split('\n').slice(0, 3).join(' ').replace(/\s+/g, ' ');
        else throw e;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const end = environment();
  const s = median(runs.map((x) => x.status));
  const sl = median(runs.map((x) => x.statusLongLived));
  const d = median(runs.map((x) => x.deploy));
  const e = median(runs.map((x) => x.election));
  // Where the deploy's time after `status` goes: the new connection and any failed attempt, its Run Commands.
  const sum = (calls: readonly RecordedCall[], label: string) => calls.filter((c) => c.label === label).reduce((t, c) => t + c.seconds, 0);
  const deployCommand = median(runs.map((x) => sum(x.deployCalls, 'deploy services')));
  const verifyLooks = median(runs.map((x) => x.deployCalls.filter((c) => c.label === 'swarm state').length));
  const firstLook = median(runs.map((x) => x.deployCalls.find((c) => c.label === 'swarm state')?.seconds ?? NaN));
  const verifyTotal = median(runs.map((x) => sum(x.deployCalls, 'swarm state')));
  const beforeDeploy = median(runs.map((x) => x.deployStart - x.status));
  writeSection(
    'failover',
    [
      '## 8. Failover (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/failover.ts --runs ${args.runs}`, end),
      ...labNotes(),
      ...(notMeasured
        ? ['', `**Not measured**: this commit's lab does not start 3 managers (\`${notMeasured}\`). The program is ready; it runs once \`lab up --managers 3\` exists.`]
        : [
            `- method: per run one lab of 3 managers + 2 workers; once 3 managers are Reachable, the leader is stopped (${runs[0]?.how}); then the ops API's \`status\` is asked again and again, each time on a new connection as each \`ec2-swarm\` command makes one (the managers listed again, online first; each bounded to 30 s), until it answers with another leader; then a one-service spec is deployed with \`wait\` (same way) until it converges, its Run Commands timed. Alongside: outside the tool, a surviving manager's \`docker node ls\` every 0.25 s until it shows another leader; and \`status\` asked again and again on ONE connection opened before the stop, which had answered through the leader and so asks the stopped leader first (a long-lived \`Connection\` in an IaC pipeline; each bounded to 60 s). ${args.runs} runs. Seconds from the stop.`,
            '',
            '| from stopping the leader to | s, median (min–max) |',
            '|---|---:|',
            `| a surviving manager's \`docker node ls\` shows a new leader (outside the tool) | ${spread(runs.map((x) => x.election))} |`,
            `| \`status\` answers through another manager, new leader (a new connection per attempt) | ${spread(runs.map((x) => x.status))} |`,
            `| the same on a connection opened before the stop (the stopped leader its first manager) | ${spread(runs.map((x) => x.statusLongLived))} |`,
            `| a deploy succeeded (converged) | ${spread(runs.map((x) => x.deploy))} |`,
            '',
            `- Goal: ≤ 15 s — status ${verdict(s <= 15)} (${fmt(s)} s; long-lived connection ${fmt(sl)} s), deploy ${verdict(d <= 15)} (${fmt(d)} s).`,
            `- Where it goes: the engine itself took ${fmt(e)} s to elect a new leader (outside the tool, the first row); \`status\` answered ${fmt(s - e)} s after that (${fmt(sl - e)} s on the long-lived connection: a manager whose SSM agent is not Online is skipped, one that does not start a command within ${MANAGER_DELIVERY_BOUND_S} s is left for the next; design.md decision 23), and the deploy converged ${fmt(d - s)} s after \`status\`: ${fmt(beforeDeploy)} s to its start (a new connection; attempts that met no leader yet), its Run Command ${fmt(deployCommand)} s, then verify ${fmt(verifyTotal)} s in ${fmt(verifyLooks, 0)} looks (the first ${fmt(firstLook)} s; then long polls on the manager until the tasks run and the ${DEFAULT_MONITOR_MS / 1000} s stability window, design.md decision 14, is over). ${e > 15 ? 'The tool cannot answer with a leader before the swarm has one, so while the election alone takes longer than 15 s here the goal is out of reach from the tool\'s side.' : `The election alone took ${fmt(e)} s of the 15 s, leaving ${fmt(15 - e)} s for everything after it.`}`,
            `- Can the election be made faster? Not on this Docker, and not through the API: swarm's Raft waits 10 ticks of a fixed 1 s, plus a random 0–9 more, before a follower campaigns (etcd raft's randomized election timeout; swarmkit \`manager/state/raft/raft.go\`: \`TickInterval\` 1 s, \`ElectionTick\` 10); \`SwarmSpec.Raft.ElectionTick\` given to \`swarm init\`/\`update\` is stored in the cluster object but never used by the running Raft (swarmkit \`manager/manager.go\` builds it from the daemon's start configuration only), and dockerd's own \`swarm-raft-election-tick\` config field has no flag, so its daemon.json loader refuses the key (moby \`daemon/config/config.go\`, \`findConfigurationConflicts\`, v20.10.24). Details and the risks of a shorter timeout (spurious elections under load: swarmkit raised it from 3 to 10 ticks for that, moby/swarmkit#2564): design.md decision 23. What would close it: managers on less loaded hosts than these 2 shared cores (12.7 s measured by hand on a quiet machine, lab notes), and for the deploy, a service deployed with a shorter \`update_config.monitor\`.`,
          ]),
    ].join('\n'),
  );
  process.stdout.write(notMeasured ? `failover: not measured (${notMeasured})\n` : `failover: status ${fmt(s)}s, deploy ${fmt(d)}s\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`failover: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
