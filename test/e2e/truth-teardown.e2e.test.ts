/**
 * Answers that stay true and bounded when the manager fails (design.md decision 13), on a real lab swarm:
 * - the manager host gone (its network unplugged): `status`, `verify --timeout 10` and `teardown --timeout 20` each
 *   return within their bound plus the documented margin, with a clear message and exit 3;
 * - the manager's dockerd dead (host and SSM agent up): teardown exits non-zero, says what is left, keeps the
 *   runtime parameters and the workers' membership; once dockerd is back, teardown completes (exit 0).
 * Root; one lab for the file.
 */
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TIMEOUT_MARGIN_S } from '../../lib/cli/program';
import { cutLink, restoreLink, runInHost, startDocker, stopDocker } from '../../lib/lab/lab';
import { resolveTarget } from '../../lib/ops';
import { startLab, stopLab, waitFor, type E2eLab } from './ops-cli-support';

const LAB = {
  labDir: process.env.EC2_SWARM_LAB_DIR ?? '/var/lib/ec2-swarm-e2d',
  prefix: process.env.EC2_SWARM_LAB_PREFIX ?? 'e2d',
  net: Number(process.env.EC2_SWARM_LAB_NET ?? 236),
};
/** The CLI's own start-up (tsx compiling, SDK loading) on a loaded 2-core machine, on top of --timeout + margin. */
const STARTUP_S = 20;
let lab: E2eLab;
let work: string;
let manager: { name: string; instanceId: string };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ec2-swarm-e2d-'));
  lab = await startLab(LAB);
  manager = lab.state.hosts.find((h) => h.role === 'manager') ?? lab.state.hosts[0];
  mkdirSync(join(work, 'keep'));
  const f = join(work, 'keep', 'docker-compose.yml');
  writeFileSync(f, 'services:\n  app:\n    image: local/busybox:latest\n    init: true\n    command: ["sh", "-c", "while true; do sleep 5; done"]\n    deploy:\n      replicas: 2\n      endpoint_mode: dnsrr\n');
  const r = await lab.cli(['deploy', '-f', f, '--resolve-image', 'never', '--wait', '--timeout', '120']);
  expect(r.code).toBe(0);
}, 400_000);

afterAll(async () => {
  await stopLab(lab, LAB.labDir);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

async function runtimeParameters(): Promise<string[]> {
  const t = await resolveTarget({ target: 'lab', env: { ...process.env, EC2_SWARM_LAB_DIR: LAB.labDir } });
  const ssm = new SSMClient({ region: t.region ?? 'us-east-1', endpoint: t.endpoint, ...(t.credentials ? { credentials: t.credentials } : {}) });
  try {
    const out = await ssm.send(new GetParametersByPathCommand({ Path: '/ec2-swarm/lab', Recursive: true }));
    return (out.Parameters ?? []).map((p) => p.Name ?? '');
  } finally {
    ssm.destroy();
  }
}

const swarmState = async (host: string): Promise<string> =>
  (await runInHost(lab.state, host, ['docker', 'info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim();

describe('the manager host is gone (network unplugged)', () => {
  beforeAll(async () => {
    await cutLink(lab.state, manager.name);
  });
  afterAll(async () => {
    await restoreLink(lab.state, manager.name);
  });

  test.each([
    ['status', ['status', '--timeout', '10'], 10],
    ['verify --timeout 10', ['verify', '--timeout', '10'], 10],
    ['teardown --timeout 20', ['teardown', '--timeout', '20'], 20],
  ])('%s returns within its bound plus the margin, exit 3, with a clear message', async (_what, args, bound) => {
    const r = await lab.cli(args as string[], 200);
    expect(r.code).toBe(3);
    expect(r.seconds).toBeLessThan((bound as number) + TIMEOUT_MARGIN_S + STARTUP_S);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`${manager.instanceId}.*(ConnectionLost|unreachable|no answer within)`));
  });

  test('the teardown that could not reach the manager left everything in place', async () => {
    expect((await runtimeParameters()).length).toBeGreaterThan(0);
    for (const h of lab.state.hosts.filter((x) => x.role === 'worker')) expect(await swarmState(h.name)).toBe('active');
  });
});

describe("the manager's dockerd is dead, the host and its SSM agent are up", () => {
  test('teardown exits non-zero, says what is left, keeps the parameters and the workers; after dockerd is back it completes', async () => {
    // The agent comes back Online after the link is restored.
    await waitFor('manager reachable again', 120, async () => ((await lab.cli(['status', '--timeout', '20'])).code === 0 ? true : undefined));
    await stopDocker(lab.state, manager.name, { signal: 'SIGKILL' });

    const broken = await lab.cli(['teardown', '--timeout', '60'], 200);
    expect(broken.code).toBe(3);
    expect(broken.stdout).toContain(`left: manager ${manager.instanceId}: docker is not answering`);
    expect(broken.stdout).toMatch(/^left: parameters under \/ec2-swarm\/lab: kept for a retry$/m);
    expect(broken.stdout).toContain('teardown NOT complete');
    expect(broken.stdout).not.toMatch(/^done:/m);
    expect((await runtimeParameters()).length).toBeGreaterThan(0);
    for (const h of lab.state.hosts.filter((x) => x.role === 'worker')) expect(await swarmState(h.name)).toBe('active');

    await startDocker(lab.state, manager.name);
    // Back as a manager (raft up, control available): until then a teardown rightly says it is not done.
    await waitFor('manager answers again', 180, async () => ((await lab.cli(['status', '--timeout', '20'])).code === 0 ? true : undefined));
    const fixed = await lab.cli(['teardown', '--timeout', '300'], 400);
    expect(fixed.stderr).not.toMatch(/^error:/m);
    expect(fixed.stdout).not.toMatch(/^left:/m); // first: on failure it shows the whole report
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain('done: removed stack keep');
    expect(fixed.stdout).toContain(`done: manager ${manager.instanceId} left the swarm`);
    expect(await runtimeParameters()).toEqual([]);
    for (const h of lab.state.hosts) expect(await swarmState(h.name)).toBe('inactive');
    // Each line once: stderr carries progress, never the result lines.
    expect(fixed.stderr).not.toContain('removed stack keep');
  });
});
