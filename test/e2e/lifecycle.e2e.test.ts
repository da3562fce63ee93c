/**
 * The lifecycle a user runs, on a real lab swarm (1 manager + 3 workers formed by the synthesized user-data):
 * deploy the demo stack and a service spec, verify, scale, tear down twice — through the CLI where a user would
 * (exit codes and output), through the ops API where the test needs exact numbers. Root; one lab for the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deploy, status } from '../../lib/ops';
import { runInHost } from '../../lib/lab/lab';
import { DEMO_COMPOSE, REPO, e2eLabIdentity, findJoinTokens, runningOn, service, startLab, stopLab, waitFor, type E2eLab } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2l', prefix: 'e2l', net: 238 });
let lab: E2eLab;

beforeAll(async () => {
  lab = await startLab(LAB);
}, 240_000);

afterAll(async () => {
  await stopLab(lab, LAB.labDir);
}, 120_000);

const managerSwarmState = async (host: string): Promise<string> =>
  (await runInHost(lab.state, host, ['docker', 'info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim();

test('deploy the demo compose file with the CLI: stack demo by its folder, exit 0, exactly 6 web and 3 worker replicas', async () => {
  const r = await lab.cli(['deploy', '-f', DEMO_COMPOSE, '--resolve-image', 'never', '--wait', '--timeout', '120']);
  expect(r.stderr).not.toMatch(/^error:/m);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('deployed stack demo: demo_web, demo_worker');
  expect(r.stdout).toMatch(/^converged: every service runs its desired replicas/m);

  const report = await status(lab.conn);
  expect(service(report, 'demo_web')).toMatchObject({ desired: 6, running: 6 });
  expect(service(report, 'demo_worker')).toMatchObject({ desired: 3, running: 3 });
  // The scheduler spreads the replicas: the swarm really has several nodes taking work.
  expect(new Set(runningOn(service(report, 'demo_web'))).size).toBeGreaterThanOrEqual(3);
});

test('the demo works across hosts: worker tasks reach web by its DNS name (dnsrr over the overlay network)', async () => {
  const answered = await waitFor('a worker log line with the web page', 60, async () => {
    const r = await runInHost(lab.state, 'h0', ['docker', 'service', 'logs', '--raw', 'demo_worker'], { timeoutMs: 20_000 });
    return /demo web on [0-9a-f]{12}/.test(r.stdout + r.stderr) ? true : undefined;
  });
  expect(answered).toBe(true);
});

test('verify with the CLI: exit 0, the table and --json agree with the exact counts', async () => {
  const human = await lab.cli(['verify', '--timeout', '30']);
  expect(human.code).toBe(0);
  expect(human.stdout).toMatch(/demo_web\s*│\s*replicated\s*│\s*6\s*│\s*6\s*│/);
  expect(human.stdout).toMatch(/demo_worker\s*│\s*replicated\s*│\s*3\s*│\s*3\s*│/);

  const json = await lab.cli(['verify', '--timeout', '30', '--json']);
  expect(json.code).toBe(0);
  const v = JSON.parse(json.stdout) as { converged: boolean; services: { name: string; desired: number; running: number }[] };
  expect(v.converged).toBe(true);
  expect(v.services.map((s) => [s.name, s.desired, s.running])).toEqual([
    ['demo_web', 6, 6],
    ['demo_worker', 3, 3],
  ]);
});

test('scale with the CLI: demo_web=8 demo_worker=2, exit 0, the swarm runs exactly that', async () => {
  const r = await lab.cli(['scale', 'demo_web=8', 'demo_worker=2', '--timeout', '90']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^converged:/m);
  const report = await status(lab.conn);
  expect(service(report, 'demo_web')).toMatchObject({ desired: 8, running: 8 });
  expect(service(report, 'demo_worker')).toMatchObject({ desired: 2, running: 2 });
  expect(runningOn(service(report, 'demo_worker'))).toHaveLength(2);
});

test('a service spec file (examples/spec/services.yml) deploys: constraints and global mode hold on the real swarm', async () => {
  const r = await deploy(lab.conn, { file: join(REPO, 'examples', 'spec', 'services.yml'), wait: true, timeoutSeconds: 120, resolveImage: 'never' });
  expect(r.kind).toBe('services');
  expect(r.verify?.converged).toBe(true);

  const report = await status(lab.conn);
  const workers = lab.state.hosts.filter((h) => h.role === 'worker').map((h) => h.hostname);
  const echo = service(report, 'echo');
  expect(echo).toMatchObject({ desired: 2, running: 2 });
  for (const node of runningOn(echo)) expect(workers).toContain(node); // constraints: node.role==worker
  expect(service(report, 'ticker')).toMatchObject({ mode: 'global', desired: 4, running: 4 }); // one per node

  // The env value travelled base64-encoded and reached the task literally.
  const page = await runInHost(lab.state, 'h0', ['docker', 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}}', 'echo']);
  expect(JSON.parse(page.stdout)).toEqual(['GREETING=hello from a service spec']);
});

test('teardown with the CLI removes everything and the swarm is gone; a second run exits 0 and says what it skipped', async () => {
  const first = await lab.cli(['teardown'], 300);
  expect(first.code).toBe(0);
  expect(first.stdout).toContain('done: removed stack demo');
  expect(first.stdout).toContain('done: removed service echo');
  expect(first.stdout).toContain('done: removed service ticker');
  for (const w of lab.state.hosts.filter((h) => h.role === 'worker')) expect(first.stdout).toContain(`done: worker ${w.instanceId} left the swarm`);
  expect(first.stdout).toContain(`done: manager ${lab.state.hosts[0].instanceId} left the swarm`);
  expect(first.stdout).toMatch(/^done: deleted parameters .*\/ec2-swarm\/lab\/worker-token/m);

  for (const h of lab.state.hosts) expect(await managerSwarmState(h.name)).toBe('inactive');

  const second = await lab.cli(['teardown'], 300);
  expect(second.code).toBe(0);
  expect(second.stdout).not.toMatch(/^done:/m);
  expect(second.stdout).toContain(`skipped: stacks and services: manager ${lab.state.hosts[0].instanceId} is not in a swarm`);
  expect(second.stdout).toContain('skipped: parameters under /ec2-swarm/lab: none left');
  expect(await managerSwarmState('h0')).toBe('inactive');
});

test('no join token (SWMTKN) in any lab log, in the SendCommand log, or in any CLI output of this file', () => {
  const { files, leaks } = findJoinTokens(lab.state, lab.outputs);
  const sendCommandLog = files.find((f) => f.endsWith('ssm-send-command.jsonl'));
  expect(sendCommandLog).toBeDefined();
  expect(readFileSync(sendCommandLog as string, 'utf8')).toMatch(/docker/); // it recorded this file's commands
  expect(files.filter((f) => f.endsWith('-cloud-init-output.log'))).toHaveLength(4);
  expect(lab.outputs.length).toBeGreaterThanOrEqual(12);
  expect(leaks).toEqual([]);
});
