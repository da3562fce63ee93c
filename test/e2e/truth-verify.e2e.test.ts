/**
 * Verification tells the truth on a real lab swarm (design.md decision 14): a crash-looping service never passes,
 * however lucky the poll; an update that fails and rolls back fails `deploy --wait` naming the rollback; a redeploy
 * with a new image passes only once every task runs it; a service that can never converge fails in seconds with
 * the engine's reason, not at the timeout. Root; one lab for the file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInHost } from '../../lib/lab/lab';
import { startLab, stopLab, type E2eLab } from './ops-cli-support';

const LAB = {
  labDir: process.env.EC2_SWARM_LAB_DIR ?? '/var/lib/ec2-swarm-e2t',
  prefix: process.env.EC2_SWARM_LAB_PREFIX ?? 'e2t',
  net: Number(process.env.EC2_SWARM_LAB_NET ?? 237),
};
let lab: E2eLab;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ec2-swarm-e2t-'));
  lab = await startLab(LAB);
}, 300_000);

afterAll(async () => {
  await stopLab(lab, LAB.labDir);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

/** A compose file in its own directory (the directory names the stack). */
function compose(stack: string, lines: string[]): string {
  mkdirSync(join(work, stack), { recursive: true });
  const f = join(work, stack, 'docker-compose.yml');
  writeFileSync(f, ['services:', ...lines, ''].join('\n'));
  return f;
}

const app = (image: string, command: string, extra: string[] = []): string[] => [
  '  app:',
  `    image: ${image}`,
  '    init: true',
  `    command: ["sh", "-c", ${JSON.stringify(command)}]`,
  '    deploy:',
  '      replicas: 2',
  '      endpoint_mode: dnsrr',
  ...extra,
];

const removeStack = (stack: string) => runInHost(lab.state, 'h0', ['docker', 'stack', 'rm', stack]);

describe('a service whose container exits after 3 s (restart policy any)', () => {
  let file: string;
  beforeAll(() => {
    file = compose('crash', app('local/busybox:latest', 'sleep 3'));
  });
  afterAll(() => removeStack('crash'));

  test('deploy --wait never passes: exit 1 naming the crash loop, well before its timeout', async () => {
    const r = await lab.cli(['deploy', '-f', file, '--resolve-image', 'never', '--wait', '--timeout', '150']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/crash_app: \d\/2 running; FAILED: tasks keep failing \(\d+ in a row\)/);
    expect(r.seconds).toBeLessThan(150);
  });

  test('verify never passes either, however often it is asked (a lucky poll must not pass)', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await lab.cli(['verify', '--timeout', '15']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/crash_app: \d\/2 running/);
    }
  });
});

describe('updates', () => {
  const stack = 'upd';
  afterAll(() => removeStack(stack));

  test('a redeploy with a new image passes --wait only when every running task runs the new image', async () => {
    // A second tag of the local image on every host: a real image change, no registry needed.
    for (const h of lab.state.hosts) {
      const t = await runInHost(lab.state, h.name, ['docker', 'tag', 'local/busybox:latest', 'local/busybox:v2']);
      expect(t.exitCode).toBe(0);
    }
    const loop = 'while true; do sleep 5; done';
    const v1 = await lab.cli(['deploy', '-f', compose(stack, app('local/busybox:latest', loop)), '--resolve-image', 'never', '--wait', '--timeout', '120']);
    expect(v1.code).toBe(0);

    const v2 = await lab.cli(['deploy', '-f', compose(stack, app('local/busybox:v2', loop)), '--resolve-image', 'never', '--wait', '--timeout', '180']);
    expect(v2.code).toBe(0);
    expect(v2.stdout).toMatch(/^converged:/m);
    // The moment --wait returned: only the new image runs, and no old task is still desired running.
    const ps = await runInHost(lab.state, 'h0', ['docker', 'service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Image}} {{.CurrentState}}', `${stack}_app`]);
    const rows = ps.stdout.trim().split('\n');
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatch(/^local\/busybox:v2 Running/);
  });

  test('an update whose new tasks fail rolls back: deploy --wait exits 1 naming the rollback', async () => {
    const failing = app('local/busybox:latest', 'sleep 1; exit 3', [
      '      update_config: { failure_action: rollback, monitor: 10s, parallelism: 1 }',
      '      restart_policy: { condition: any, delay: 1s }',
    ]);
    const r = await lab.cli(['deploy', '-f', compose(stack, failing), '--resolve-image', 'never', '--wait', '--timeout', '180']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/upd_app: .*FAILED: the update failed and (is being|was) rolled back/);
  });
});

describe('services that can never converge fail in seconds with the reason, not at the timeout', () => {
  afterAll(() => removeStack('never'));

  test('a constraint no node satisfies', async () => {
    const f = compose('never', app('local/busybox:latest', 'sleep 1000', ['      placement: { constraints: ["node.labels.nosuch==yes"] }']));
    const r = await lab.cli(['deploy', '-f', f, '--resolve-image', 'never', '--wait', '--timeout', '300']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/never_app: 0\/2 running.*no suitable node/);
    expect(r.seconds).toBeLessThan(90);
  });

  test('an image no host has', async () => {
    const f = compose('never', app('local/missing:1', 'sleep 1000'));
    const r = await lab.cli(['deploy', '-f', f, '--resolve-image', 'never', '--wait', '--timeout', '300']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/never_app: 0\/2 running; last task error: .*No such image: local\/missing:1/);
    expect(r.seconds).toBeLessThan(120);
  });
});
