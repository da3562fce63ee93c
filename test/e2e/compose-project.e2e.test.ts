/**
 * A real compose project deployed from a "pipeline" to the lab swarm (issue 11): `.env`, `${TAG}` from the
 * environment, an override file, a config, a secret and an env_file. The bundle goes the way it goes on AWS: staged
 * in the lab's S3 (lib/lab/s3/), the SSM command carries only bucket, key and SHA-256, the manager fetches it with
 * the AWS CLI, and the operator deletes the object. The containers see the right values; a changed config rolls the
 * service under a new hashed name and the old one goes; no secret or environment value appears in any SSM command,
 * CLI output or lab log; `logs` shows a failing service's output. Root; one lab (1 manager + 1 worker).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logFiles, runInHost } from '../../lib/lab/lab';
import { e2eLabIdentity, recordedCommands, REPO, startLab, stopLab, waitFor, type CliRun, type E2eLab } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2c', prefix: 'e2c', net: 233 });
const TSX = join(REPO, 'node_modules', '.bin', 'tsx');
const CLI = join(REPO, 'bin', 'ec2-swarm.ts');

// Values that must reach the containers and nowhere else.
const SECRET = `db-password-${randomBytes(9).toString('hex')}`;
const API_KEY = `api-key-${randomBytes(9).toString('hex')}`;
const GREETING = `greeting-${randomBytes(9).toString('hex')}`;
const VALUES = { SECRET, API_KEY, GREETING };
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let lab: E2eLab;
let work: string;
let project: string;
let broken: string;

/** The CLI as a pipeline runs it: the pipeline's environment (TAG) on top of the lab's. */
function cli(args: readonly string[], timeoutSeconds = 240): Promise<CliRun> {
  const env = { ...process.env, EC2_SWARM_LAB_DIR: LAB.labDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', TAG: 'v7' };
  return new Promise((done) => {
    const t0 = Date.now();
    execFile(TSX, [CLI, ...args, '--target', 'lab'], { cwd: REPO, env, timeout: timeoutSeconds * 1000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      lab.outputs.push(stdout, stderr);
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const manager = async (argv: string[]): Promise<string> => {
  const r = await runInHost(lab.state, 'h0', argv);
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout.trim();
};

/** Hashed names of the stack's configs or secrets, sorted. */
const objects = async (kind: 'config' | 'secret', stack: string): Promise<string[]> =>
  (await manager(['docker', kind, 'ls', '--filter', `label=com.docker.stack.namespace=${stack}`, '--format', '{{.Name}}'])).split('\n').filter(Boolean).sort();

function writeProject(conf: string): void {
  writeFileSync(join(project, 'app.conf'), conf);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ec2-swarm-e2c-'));
  project = join(work, 'shop');
  mkdirSync(project);
  // .env: GREETING for the file, and a TAG the pipeline's environment overrides (as Compose does).
  writeFileSync(join(project, '.env'), `GREETING=${GREETING}\nTAG=not-this-tag\n`);
  writeFileSync(join(project, 'web.env'), `# from env_file\nAPI_KEY=${API_KEY}\n`);
  writeFileSync(join(project, 'db_password.txt'), SECRET);
  writeProject('conf-v1');
  // The container prints hashes of what it sees (values themselves would be in `logs` output).
  writeFileSync(
    join(project, 'docker-compose.yml'),
    [
      'services:',
      '  web:',
      '    image: local/busybox:${TAG}',
      '    init: true',
      '    command:',
      '      - sh',
      '      - -c',
      '      - |',
      '        h() { printf %s "$$1" | sha256sum | cut -c1-64; }',
      '        echo "seen GREETING=$$(h "$$GREETING") API_KEY=$$(h "$$API_KEY") MODE=$$MODE"',
      '        echo "seen SECRET=$$(sha256sum < /run/secrets/db_password | cut -c1-64)"',
      '        echo "seen CONF=$$(cat /etc/app/app.conf)"',
      '        exec sleep 100000',
      '    env_file: web.env',
      '    environment:',
      '      GREETING: ${GREETING}',
      '    configs:',
      '      - source: app_conf',
      '        target: /etc/app/app.conf',
      '    secrets: [db_password]',
      '    deploy:',
      '      replicas: 1',
      '      endpoint_mode: dnsrr',
      'configs:',
      '  app_conf:',
      '    file: ./app.conf',
      'secrets:',
      '  db_password:',
      '    file: ./db_password.txt',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(project, 'docker-compose.prod.yml'),
    ['services:', '  web:', '    environment:', '      MODE: prod', '    deploy:', '      replicas: 2', ''].join('\n'),
  );
  broken = join(work, 'broken');
  mkdirSync(broken);
  writeFileSync(
    join(broken, 'docker-compose.yml'),
    [
      'services:',
      '  app:',
      '    image: local/busybox:latest',
      '    command: ["sh", "-c", "echo starting-the-app; echo cannot open /data/db: no such file >&2; exit 3"]',
      '    deploy: { replicas: 1, endpoint_mode: dnsrr, restart_policy: { condition: any, delay: 1s } }',
      '',
    ].join('\n'),
  );

  lab = await startLab({ ...LAB, workers: 1 });
  // ${TAG} = v7 exists only as a second tag of the lab's image, on every host: a wrong TAG cannot run.
  for (const h of lab.state.hosts) {
    const t = await runInHost(lab.state, h.name, ['docker', 'tag', 'local/busybox:latest', 'local/busybox:v7']);
    expect(t.exitCode).toBe(0);
  }
}, 400_000);

afterAll(async () => {
  await stopLab(lab, LAB.labDir);
  rmSync(work, { recursive: true, force: true });
}, 120_000);

const deployArgs = ['deploy', '-f', '', '-f', '', '--resolve-image', 'never', '--wait', '--timeout', '200'];
const deployProject = (): Promise<CliRun> => {
  const a = [...deployArgs];
  a[2] = join(project, 'docker-compose.yml');
  a[4] = join(project, 'docker-compose.prod.yml');
  return cli(a);
};

/** S3 requests the lab recorded for one object key. */
function s3Requests(key: string): { via: string; action: string; status: number; instanceId?: string }[] {
  const log = join(LAB.labDir, 'logs', 's3-requests.jsonl');
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { via: string; action: string; status: number; key?: string; instanceId?: string })
    .filter((r) => r.key === key);
}


let firstConfig: string;

describe('deploy a compose project (.env, ${TAG} from the environment, -f a -f b, config, secret, env_file)', () => {
  test('deploy --wait converges, through the staging bucket', async () => {
    const r = await deployProject();
    expect(r.stderr).not.toMatch(/no staging bucket/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^converged:/m);

    // The SSM command named the staged object only; the lab S3 saw it put, read by the manager, deleted.
    const staged = recordedCommands(LAB.labDir).filter((c) => c.includes('aws s3api get-object'));
    expect(staged).toHaveLength(1);
    const key = /--key '([^']+)'/.exec(staged[0])![1];
    expect(key).toMatch(/^bundles\/shop\/[0-9a-f-]{36}\.tgz$/);
    expect(staged[0]).toMatch(/sha256sum -c/);
    expect(s3Requests(key).map((q) => `${q.via} ${q.action} ${q.status}`)).toEqual(['tcp PutObject 200', 'unix GetObject 200', 'tcp DeleteObject 204']);
    expect(s3Requests(key)[1].instanceId).toBe(lab.state.hosts[0].instanceId);
    const bucketDirs = existsSync(join(LAB.labDir, 's3')) ? readdirSync(join(LAB.labDir, 's3')) : [];
    for (const b of bucketDirs) expect(readdirSync(join(LAB.labDir, 's3', b))).toEqual([]);
  });

  test('the service runs the image ${TAG} named, the override merged, hashed config and secret names', async () => {
    const spec = JSON.parse(await manager(['docker', 'service', 'inspect', '--format', '{{json .Spec}}', 'shop_web'])) as {
      TaskTemplate: { ContainerSpec: { Image: string; Configs: { ConfigName: string }[]; Secrets: { SecretName: string }[] } };
      Mode: { Replicated: { Replicas: number } };
    };
    expect(spec.TaskTemplate.ContainerSpec.Image).toBe('local/busybox:v7');
    expect(spec.Mode.Replicated.Replicas).toBe(2);
    firstConfig = spec.TaskTemplate.ContainerSpec.Configs[0].ConfigName;
    expect(firstConfig).toBe(`shop_app_conf_${sha('conf-v1').slice(0, 12)}`);
    expect(spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName).toBe(`shop_db_password_${sha(SECRET).slice(0, 12)}`);
  });

  test('the containers see the right values (ec2-swarm logs)', async () => {
    const seen = await waitFor('both tasks printed what they see', 60, async () => {
      const r = await cli(['logs', 'shop_web', '--tail', '20'], 120);
      expect(r.code).toBe(0);
      return (r.stdout.match(/seen CONF=conf-v1/g) ?? []).length >= 2 ? r.stdout : undefined;
    });
    expect(seen).toContain(`seen GREETING=${sha(GREETING)} API_KEY=${sha(API_KEY)} MODE=prod`);
    expect(seen).toContain(`seen SECRET=${sha(SECRET)}`);
  });
});

describe('a changed config', () => {
  test('rolls the service under a new hashed name; the superseded one is removed once unused', async () => {
    writeProject('conf-v2');
    let r = await deployProject();
    expect(r.code).toBe(0);
    const second = `shop_app_conf_${sha('conf-v2').slice(0, 12)}`;
    expect(await manager(['docker', 'service', 'inspect', '--format', '{{(index .Spec.TaskTemplate.ContainerSpec.Configs 0).ConfigName}}', 'shop_web'])).toBe(second);
    const seen = await waitFor('the new tasks printed the new config', 60, async () => {
      const l = await cli(['logs', 'shop_web', '--tail', '20'], 120);
      return (l.stdout.match(/seen CONF=conf-v2/g) ?? []).length >= 2 ? l.stdout : undefined;
    });
    expect(seen).toContain('seen CONF=conf-v2');
    // Swarm refuses to remove a config a service still uses: then the next deploy removes it.
    if (/kept superseded config/.test(r.stderr + r.stdout)) r = await deployProject();
    expect(r.stderr + r.stdout).toContain(`removed superseded config ${firstConfig}`);
    expect(await objects('config', 'shop')).toEqual([second]);
    expect(await objects('secret', 'shop')).toEqual([`shop_db_password_${sha(SECRET).slice(0, 12)}`]);
  });
});

describe('a failing service', () => {
  test('deploy --wait fails naming the next command, and logs shows its output', async () => {
    const d = await cli(['deploy', '-f', join(broken, 'docker-compose.yml'), '--resolve-image', 'never', '--wait', '--timeout', '150']);
    expect(d.code).toBe(1);
    expect(d.stdout).toContain('next: ec2-swarm logs broken_app');
    const r = await cli(['logs', 'broken_app', '--tail', '20']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('starting-the-app');
    expect(r.stdout).toContain('cannot open /data/db: no such file');
  });
});

describe('nothing sensitive anywhere', () => {
  /** The value and its base64 at each of the three alignments (inline bundles travel base64-encoded). */
  const needles = (v: string): string[] => [v, ...[0, 1, 2].map((i) => Buffer.from(v.slice(i)).toString('base64').replace(/=+$/, '').slice(0, -4))];

  test('no secret or environment value in any recorded SSM command, CLI output or lab log', () => {
    const commands = recordedCommands(LAB.labDir);
    expect(commands.filter((c) => c.includes('aws s3api get-object')).length).toBeGreaterThanOrEqual(3);
    const files = logFiles(lab.state).filter((f) => existsSync(f));
    expect(files.map((f) => f.split('/').pop())).toEqual(expect.arrayContaining(['ssm-send-command.jsonl', 's3-requests.jsonl', 'controller.log', 'h0-cloud-init-output.log']));
    const places: [string, string][] = [
      ...commands.map((c, i): [string, string] => [`SSM command #${i}`, c]),
      ...lab.outputs.map((o, i): [string, string] => [`CLI output #${i}`, o]),
      ...files.map((f): [string, string] => [f, readFileSync(f, 'latin1')]),
    ];
    const leaks: string[] = [];
    for (const [name, value] of Object.entries(VALUES)) {
      for (const n of needles(value)) for (const [where, text] of places) if (text.includes(n)) leaks.push(`${name} in ${where}`);
    }
    expect(leaks).toEqual([]);
  });
});
