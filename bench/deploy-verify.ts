#!/usr/bin/env node
/**
 * Deploy + verify (lab, root): `ec2-swarm deploy --wait` of a compose file with S = 10 services against what an
 * operator does by hand on the manager — `docker network create` and then `docker service create` one service after
 * another, each waiting the way the docker CLI waits by default (attached: until the service converged and stayed so
 * for its monitor period). Same lab, same services (2 replicas each, init, dnsrr), alternated, clean-up untimed.
 *
 *   npx tsx bench/deploy-verify.ts [--runs N] [--quick]        (--quick: S = 3)
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy } from '../lib/ops';
import { parseBenchArgs } from './lib/args';
import { hostDocker, removeAllServices, withLab, labNotes } from './lib/lab';
import { environment, environmentBlock, verdict, writeSection } from './lib/report';
import { alternate, fmt, median, spread } from './lib/stats';

const IMAGE = 'local/busybox:latest';
const COMMAND = ['sleep', '86400'];

async function main(): Promise<void> {
  const args = parseBenchArgs(process.argv.slice(2), 3);
  const services = args.quick ? 3 : 10;
  const start = environment();
  const dir = mkdtempSync(join(tmpdir(), 'bench-dv-'));
  const compose = join(dir, 'bench', 'docker-compose.yml'); // stack `bench`, from the folder's name
  mkdirSync(join(dir, 'bench'));
  const names = Array.from({ length: services }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
  writeFileSync(
    compose,
    `services:\n${names
      .map((n) => `  ${n}:\n    image: ${IMAGE}\n    init: true\n    command: ${JSON.stringify(COMMAND)}\n    deploy: { replicas: 2, endpoint_mode: dnsrr }\n`)
      .join('')}`,
  );
  let samples: Record<'tool' | 'hand', number[]> = { tool: [], hand: [] };
  try {
    samples = await withLab({ workers: 3 }, async ({ state, conn }) => {
      const tool = async (): Promise<number> => {
        const t0 = performance.now();
        const r = await deploy(conn, { file: compose, wait: true, timeoutSeconds: 300, resolveImage: 'never' });
        const s = (performance.now() - t0) / 1000;
        if (!r.verify?.converged) throw new Error('tool: the stack did not converge');
        await removeAllServices(state);
        return s;
      };
      const hand = async (): Promise<number> => {
        const t0 = performance.now();
        await hostDocker(state, 'h0', ['network', 'create', '--driver', 'overlay', 'hand_default']);
        for (const n of names) {
          // Attached (the default since Docker 17.10): returns when the service converged and stayed so.
          await hostDocker(state, 'h0', ['service', 'create', '--quiet', '--name', `hand_${n}`, '--replicas', '2', '--init', '--endpoint-mode', 'dnsrr', '--network', 'hand_default', '--no-resolve-image', IMAGE, ...COMMAND], { timeoutMs: 300_000 });
        }
        const s = (performance.now() - t0) / 1000;
        await removeAllServices(state);
        await hostDocker(state, 'h0', ['network', 'rm', 'hand_default'], { allowFail: true });
        return s;
      };
      return alternate(args.runs, { tool, hand }, (v, r, x) => process.stderr.write(`run ${r}: ${v} ${fmt(x)}s\n`));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const end = environment();
  const ratio = median(samples.tool) / median(samples.hand);
  writeSection(
    'deploy-verify',
    [
      '## 4. Deploy + verify (lab)',
      '',
      ...environmentBlock(start, `npx tsx bench/deploy-verify.ts --runs ${args.runs}${args.quick ? ' --quick' : ''}`, end),
      ...labNotes(),
      `- method: one lab (1 manager + 3 workers). *Tool*: the ops API's \`deploy\` with \`wait\` (what \`ec2-swarm deploy -f docker-compose.yml --wait --resolve-image never\` runs, without the CLI's start-up, see section 6) of a compose file with ${services} services × 2 replicas (\`local/busybox\`, \`init: true\`, dnsrr); returns when verify saw every replica running. *By hand* on the manager: \`docker network create --driver overlay\`, then ${services} × \`docker service create --replicas 2 --init --endpoint-mode dnsrr --network … --no-resolve-image\`, one after another, each attached (Docker's own wait). Alternated, ${args.runs} runs each; removal between runs untimed. Seconds.`,
      '',
      '| S | tool: deploy --wait | by hand: service create × S | ratio |',
      '|---:|---:|---:|---:|',
      `| ${services} | ${spread(samples.tool)} | ${spread(samples.hand)} | ${fmt(ratio)} |`,
      '',
      `- Goal: ratio ≤ 0.35 — ${verdict(ratio <= 0.35)} (${fmt(ratio)}). The tool sends every service in one Run Command and then checks all of them in one query per poll; \`docker service create\` waits for each service in turn, including its ${'5 s'} monitor period (UpdateConfig.Monitor) once it converged.`,
      '- Why 0.35 is missed here, and what would close it: both sides start the same 20 containers on the same 4 hosts, which share 2 cores; that start is the floor of the tool\'s time (tasks start in parallel, then one 5 s window), while the hand path adds nine more 5 s windows. The tool\'s time over that floor is staging the bundle, `docker stack deploy` creating the services one by one on the manager, and the verify round trips (decision 19). On EC2, where each node has its own CPU, the parallel start shrinks and the ratio falls; on this machine the next step would be measuring the start alone (tasks scheduled → running) to split the floor from the tool\'s own cost. Not done this round.',
    ].join('\n'),
  );
  process.stdout.write(`deploy-verify: tool ${fmt(median(samples.tool))}s, hand ${fmt(median(samples.hand))}s, ratio ${fmt(ratio)}\n`);
  process.exit(0);
}

void main().catch((e: unknown) => {
  process.stderr.write(`deploy-verify: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
