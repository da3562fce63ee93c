/**
 * What a user sees when the cluster is not as asked, on a real lab swarm: a service whose image does not exist,
 * and a worker lost (its network unplugged). verify must report the truth (exit 1, the real running count, the
 * task error) within its timeout, and pass again once the swarm has rescheduled onto the survivors.
 * Root; one lab for the file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, verify } from '../../lib/ops';
import { cutLink, runInHost } from '../../lib/lab/lab';
import { e2eLabIdentity, findJoinTokens, runningOn, service, startLab, stopLab, waitFor, type E2eLab } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2x', prefix: 'e2x', net: 239 });
let lab: E2eLab;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ec2-swarm-e2x-'));
  lab = await startLab(LAB);
}, 240_000);

afterAll(async () => {
  await stopLab(lab, LAB.labDir);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('a service whose image does not exist', () => {
  let spec: string;
  beforeAll(() => {
    spec = join(work, 'missing-image.yml');
    writeFileSync(spec, 'services:\n  - name: broken\n    image: local/missing:1\n    replicas: 2\n    endpointMode: dnsrr\n');
  });

  test('deploy --wait with the CLI exits 1 within its timeout and names the image error', async () => {
    const r = await lab.cli(['deploy', '-f', spec, '--resolve-image', 'never', '--wait', '--timeout', '20']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/not converged after [\d.]+s: 1 service\(s\) short/);
    expect(r.stdout).toMatch(/broken: 0\/2 running; last task error: .*No such image: local\/missing:1/);
    expect(r.seconds).toBeLessThan(20 + 30); // its own timeout, plus CLI start-up and one last poll
  });

  test('verify (ops API) returns converged=false with running 0 of 2 and the task error', async () => {
    const v = await verify(lab.conn, { timeoutSeconds: 2 });
    expect(v.converged).toBe(false);
    expect(service(v, 'broken')).toMatchObject({ desired: 2, running: 0 });
    expect(service(v, 'broken').lastError).toMatch(/No such image: local\/missing:1/);
  });

  afterAll(async () => {
    await runInHost(lab.state, 'h0', ['docker', 'service', 'rm', 'broken']);
  });
});

describe('a worker lost', () => {
  // Its own stack: a long restart delay holds the rescheduled tasks back for a while after the node is marked Down,
  // so verify is sure to see the lowered count (with the default 5 s delay the window is too short to be certain).
  const RESTART_DELAY_S = 25;
  let compose: string;
  beforeAll(() => {
    mkdirSync(join(work, 'faults'));
    compose = join(work, 'faults', 'docker-compose.yml');
    writeFileSync(
      compose,
      [
        'version: "3.8"',
        'services:',
        '  web:',
        '    image: local/busybox:latest',
        '    init: true',
        '    command: ["sh", "-c", "while true; do sleep 5; done"]',
        '    deploy:',
        '      replicas: 6',
        '      endpoint_mode: dnsrr',
        `      restart_policy: { condition: any, delay: ${RESTART_DELAY_S}s }`,
        '',
      ].join('\n'),
    );
  });

  test('verify reports the lower running count and exits 1 within its timeout; after rescheduling it passes on the survivors', async () => {
    const deployed = await lab.cli(['deploy', '-f', compose, '--resolve-image', 'never', '--wait', '--timeout', '120']);
    expect(deployed.code).toBe(0);
    expect(deployed.stdout).toContain('deployed stack faults: faults_web');

    // The worker running the most replicas is lost.
    const before = await status(lab.conn);
    const workers = lab.state.hosts.filter((h) => h.role === 'worker');
    const perWorker = workers.map((h) => ({ h, n: runningOn(service(before, 'faults_web')).filter((node) => node === h.hostname).length }));
    const { h: victim, n: lost } = perWorker.sort((a, b) => b.n - a.n)[0];
    expect(lost).toBeGreaterThanOrEqual(1);
    await cutLink(lab.state, victim.name);

    // The managers mark it Down after missed heartbeats (12-17 s in the lab notes).
    await waitFor(`node ${victim.hostname} Down`, 90, async () => {
      const s = await status(lab.conn);
      return s.nodes.find((n) => n.hostname === victim.hostname)?.status === 'Down' ? true : undefined;
    });

    // The truth, not `docker service ls`'s over-count: its tasks no longer count, none replaced yet.
    const short = await verify(lab.conn, { timeoutSeconds: 2, services: ['faults_web'] });
    expect(short.converged).toBe(false);
    expect(service(short, 'faults_web')).toMatchObject({ desired: 6, running: 6 - lost });

    const cli = await lab.cli(['verify', '--timeout', '4']);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(new RegExp(`faults_web: ${6 - lost}/6 running`));
    expect(cli.seconds).toBeLessThan(4 + 20);

    // The swarm reschedules onto the three survivors; verify passes, none of the counted tasks is on the lost node.
    const healed = await verify(lab.conn, { timeoutSeconds: 120, services: ['faults_web'] });
    expect(healed.converged).toBe(true);
    const after = await status(lab.conn);
    expect(service(after, 'faults_web')).toMatchObject({ desired: 6, running: 6 });
    expect(runningOn(service(after, 'faults_web')).filter((n) => n !== victim.hostname)).toHaveLength(6);
    const ready = new Set(after.nodes.filter((n) => n.status === 'Ready').map((n) => n.hostname));
    expect(ready.has(victim.hostname)).toBe(false);

    const ok = await lab.cli(['verify', '--timeout', '30']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/faults_web\s*│\s*replicated\s*│\s*6\s*│\s*6\s*│/);
  });
});

test('no join token (SWMTKN) in any lab log, in the SendCommand log, or in any CLI output of this file', () => {
  const { files, leaks } = findJoinTokens(lab.state, lab.outputs);
  expect(files.some((f) => f.endsWith('ssm-send-command.jsonl'))).toBe(true);
  expect(lab.outputs.length).toBeGreaterThanOrEqual(8);
  expect(leaks).toEqual([]);
});
