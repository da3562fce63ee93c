/**
 * Private images (issue 11 item 4, docs/design.md decision 15) on the lab: a login-protected registry in the lab
 * network (Debian's docker-registry, htpasswd, TLS from the lab CA; lib/lab/registry/), filled from the operator's
 * side with the lab's busybox image (no network pull). A stack from it fails fast without credentials and deploys
 * with `deploy --registry-auth`, the credentials travelling in the staged bundle; the password is in no recorded
 * SSM command, CLI output or lab log, and nothing of it stays on the manager. Root; one lab (1 manager + 1 worker).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logFiles, runInHost } from '../../lib/lab/lab';
import { pushLabImage, startLabRegistry, stopLabRegistry, type LabRegistry } from '../../lib/lab/registry/registry';
import { isAlive, processStartTime } from '../../lib/lab/resources';
import { e2eLabIdentity, recordedCommands, REPO, startLab, stopLab, type CliRun, type E2eLab } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2r', prefix: 'e2r', net: 237 });
const TSX = join(REPO, 'node_modules', '.bin', 'tsx');
const CLI = join(REPO, 'bin', 'ec2-swarm.ts');

const USER = 'pipeline';
const PASSWORD = `registry-pw-${randomBytes(12).toString('hex')}`;

let lab: E2eLab;
let reg: LabRegistry;
let image: string;
let work: string;
let dockerConfig: string;
let noConfig: string;

/** The CLI as a pipeline runs it, with the given DOCKER_CONFIG (what `docker login` wrote, or nothing). */
function cli(args: readonly string[], dockerConfigDir: string, timeoutSeconds = 240): Promise<CliRun> {
  const env = { ...process.env, EC2_SWARM_LAB_DIR: LAB.labDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', DOCKER_CONFIG: dockerConfigDir };
  return new Promise((done) => {
    const t0 = Date.now();
    execFile(TSX, [CLI, ...args, '--target', 'lab'], { cwd: REPO, env, timeout: timeoutSeconds * 1000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      lab.outputs.push(stdout, stderr);
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const onHost = async (host: string, argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> => runInHost(lab.state, host, argv, { timeoutMs: 60_000 });


function composeFile(stackDir: string): string {
  mkdirSync(stackDir, { recursive: true });
  const f = join(stackDir, 'docker-compose.yml');
  writeFileSync(
    f,
    [
      'services:',
      '  web:',
      `    image: ${image}`,
      '    init: true',
      '    command: ["sh", "-c", "echo private image running; exec sleep 100000"]',
      '    deploy:',
      '      replicas: 2',
      '      endpoint_mode: dnsrr',
      '      placement: { max_replicas_per_node: 1 }',
      '',
    ].join('\n'),
  );
  return f;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ec2-swarm-e2r-'));
  // pullImages: the lab's dockerd otherwise never pulls for swarm tasks (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE).
  lab = await startLab({ ...LAB, workers: 1, pullImages: true });
  expect(lab.state.s3Endpoint).toBeDefined(); // the staging channel the credentials travel through
  reg = await startLabRegistry(lab.state, { username: USER, password: PASSWORD });
  image = await pushLabImage(lab.state, reg, { repository: 'private/app', tag: '1', username: USER, password: PASSWORD });
  // What `docker login <registry>` writes on the operator's machine.
  dockerConfig = join(work, 'docker');
  mkdirSync(dockerConfig, { mode: 0o700 });
  writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.address]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }), { mode: 0o600 });
  noConfig = join(work, 'no-docker-login');
  mkdirSync(noConfig);
}, 400_000);

afterAll(async () => {
  if (lab) await stopLabRegistry(lab.state).catch(() => undefined);
  await stopLab(lab, LAB.labDir);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('a login-protected registry in the lab network', () => {
  test('it refuses anonymous pulls: no host has the image and none can pull it without a login', async () => {
    expect(image).toBe(`${lab.state.hubAddress}:5000/private/app:1`);
    const pull = await onHost('h1', ['docker', 'pull', image]);
    expect(pull.exitCode).not.toBe(0);
    expect(pull.stderr).toMatch(/no basic auth credentials|unauthorized/i);
  });
});

describe('deploy a stack whose image is in the private registry', () => {
  test('without credentials: exit 1, fast, naming the image that could not be pulled', async () => {
    const r = await cli(['deploy', '-f', composeFile(join(work, 'noauth')), '--resolve-image', 'never', '--wait', '--timeout', '150'], noConfig);
    expect({ code: r.code, output: r.code === 1 ? '' : r.stdout + r.stderr }).toEqual({ code: 1, output: '' });
    expect(r.seconds).toBeLessThan(120);
    console.log(`deploy without credentials (${r.seconds.toFixed(1)} s):\n${r.stdout}${r.stderr}`);
    expect(r.stdout + r.stderr).toContain(image);
    expect(r.stdout + r.stderr).toMatch(/No such image|pull|unauthorized|no basic auth/i);
    // Both nodes' swarm executors tried and were refused by the registry (dockerd's own log says why).
    for (const h of ['h0', 'h1']) {
      const log = readFileSync(join(LAB.labDir, 'logs', `${LAB.prefix}-${h}-dockerd.log`), 'utf8');
      expect(log).toMatch(/pulling image failed.*no basic auth credentials|no basic auth credentials.*pulling image failed/);
    }
    const rm = await onHost('h0', ['docker', 'stack', 'rm', 'noauth']);
    expect(rm.exitCode).toBe(0);
  });

  test('with --registry-auth: converges on both nodes; the credentials travelled in the staged bundle and are gone from the manager', async () => {
    const before = recordedCommands(LAB.labDir).length;
    const r = await cli(['deploy', '-f', composeFile(join(work, 'shop')), '--registry-auth', '--resolve-image', 'never', '--wait', '--timeout', '200'], dockerConfig);
    expect(r.stderr).not.toMatch(/no staging bucket/);
    // (the output is shown when the code is not 0)
    expect({ code: r.code, output: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ code: 0, output: '' });
    expect(r.stdout).toMatch(/^converged:/m);
    expect(r.stderr + r.stdout).toContain(`registry credentials for ${reg.address} travel in the staged bundle`);

    const ps = await onHost('h0', ['docker', 'service', 'ps', 'shop_web', '--filter', 'desired-state=running', '--format', '{{.Node}} {{.CurrentState}}']);
    const running = ps.stdout.trim().split('\n').filter((l) => / Running /.test(` ${l} `));
    expect(running).toHaveLength(2);
    expect(new Set(running.map((l) => l.split(' ')[0])).size).toBe(2);

    const deployCmd = recordedCommands(LAB.labDir).slice(before).find((c) => c.includes('docker stack deploy'));
    expect(deployCmd).toContain('aws s3api get-object');
    expect(deployCmd).toContain('DOCKER_CONFIG="$bundle/auth" docker stack deploy --with-registry-auth');
    // Nothing left on the manager: no docker login, no bundle directory with the credentials.
    const left = await onHost('h0', ['sh', '-c', 'grep -rl -- "$1" /tmp /opt /var/lib/cloud /root/.docker 2>/dev/null; true', 'sh', Buffer.from(`${USER}:${PASSWORD}`).toString('base64')]);
    expect(left.stdout.trim()).toBe('');
  });
});

describe('nothing sensitive anywhere', () => {
  test('the password (plain or as the basic-auth value) is in no recorded SSM command, CLI output or lab log', () => {
    const basic = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    const needles = [PASSWORD, basic, ...[0, 1, 2].map((i) => Buffer.from(PASSWORD.slice(i)).toString('base64').replace(/=+$/, '').slice(0, -4))];
    const commands = recordedCommands(LAB.labDir);
    const files = logFiles(lab.state).filter((f) => existsSync(f));
    expect(files.map((f) => f.split('/').pop())).toEqual(expect.arrayContaining(['ssm-send-command.jsonl', 'registry.log', 'controller.log', `${LAB.prefix}-h0-dockerd.log`]));
    const places: [string, string][] = [
      ...commands.map((c, i): [string, string] => [`SSM command #${i}`, c]),
      ...lab.outputs.map((o, i): [string, string] => [`CLI output #${i}`, o]),
      ...files.map((f): [string, string] => [f, readFileSync(f, 'latin1')]),
    ];
    const leaks = places.filter(([, text]) => needles.some((n) => text.includes(n))).map(([where]) => where);
    expect(leaks).toEqual([]);
  });
});

describe('stopping the registry', () => {
  test('stops it by PID, removes its files and the hosts\' trust of it', async () => {
    const rec = JSON.parse(readFileSync(join(LAB.labDir, 'registry', 'registry.json'), 'utf8')) as { pid: number; startTime: string };
    expect(processStartTime(rec.pid)).toBe(rec.startTime);
    expect(await stopLabRegistry(lab.state)).toBe(true);
    expect(isAlive(rec)).toBe(false);
    expect(existsSync(join(LAB.labDir, 'registry'))).toBe(false);
    const certs = await onHost('h1', ['ls', '-A', '/etc/docker/certs.d']);
    expect(certs.stdout.trim()).toBe('');
    expect(await stopLabRegistry(lab.state)).toBe(false);
  });
});
