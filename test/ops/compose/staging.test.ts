import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveBundle, tar } from '../../../lib/ops/compose/archive';
import { planComposeStack, stageComposePlan } from '../../../lib/ops/compose/plan';
import type { StagingChannel } from '../../../lib/ops/compose/staging';
import { deploy } from '../../../lib/ops/deploy';
import { FakeRunner, makeCtx } from '../swarm/harness';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cp-staging-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'hunter2-the-db-password';
const ENV_VALUE = 'env-value-from-the-pipeline';

function project(): string {
  mkdirSync(join(dir, 'shop'));
  writeFileSync(join(dir, 'shop/db.txt'), SECRET);
  writeFileSync(join(dir, 'shop/web.env'), `API_KEY=${ENV_VALUE}-from-file\n`);
  const f = join(dir, 'shop/docker-compose.yml');
  writeFileSync(f, 'services:\n  web:\n    image: nginx\n    env_file: web.env\n    environment: [TOKEN]\n    secrets: [db]\nsecrets:\n  db:\n    file: ./db.txt\n');
  return f;
}

/** An in-memory staging bucket that records what happened. */
class MemoryChannel implements StagingChannel {
  readonly bucket = 'staging-bucket-1';
  readonly region = 'eu-west-1';
  readonly objects = new Map<string, Buffer>();
  readonly deleted: string[] = [];
  async put(key: string, body: Buffer) {
    this.objects.set(key, body);
  }
  async delete(key: string) {
    this.deleted.push(key);
    this.objects.delete(key);
  }
}

describe('archive: one gzip\'d tar the manager unpacks with tar', () => {
  test('system tar extracts exactly the entries, byte for byte', () => {
    const entries = [
      { path: 'docker-compose.yml', content: Buffer.from('services: {}\n') },
      { path: 'files/secret-0', content: Buffer.from([0, 1, 2, 255, 10]) },
      { path: 'files/config-1', content: Buffer.alloc(1500, 'x') },
    ];
    writeFileSync(join(dir, 'b.tar'), tar(entries));
    mkdirSync(join(dir, 'out'));
    const r = spawnSync('tar', ['-xf', join(dir, 'b.tar'), '-C', join(dir, 'out')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const e of entries) expect(readFileSync(join(dir, 'out', e.path))).toEqual(e.content);
    expect(readdirSync(join(dir, 'out/files')).sort()).toEqual(['config-1', 'secret-0']);
  });
});

/** `aws s3api get-object --region R --bucket B --key K FILE`: copies the object from the memory channel's dump. */
const AWS_STUB = `#!/bin/bash
set -eu
printf '%s\\n' "$*" >> "$STUB_DIR/aws-calls"
key=; out=; while [ $# -gt 0 ]; do case "$1" in --key) key=$2; shift 2 ;; --region|--bucket) shift 2 ;; s3api|get-object) shift ;; *) out=$1; shift ;; esac; done
cp "$STUB_DIR/objects/$(printf '%s' "$key" | tr / _)" "$out"
`;
const DOCKER_STUB = `#!/bin/bash
printf '%s\\n' "$*" >> "$STUB_DIR/docker-calls"
if [ "$1 $2" = "stack deploy" ]; then prev=; for a in "$@"; do [ "$prev" = -c ] && cp -r "$(dirname "$a")" "$STUB_DIR/bundle-copy"; prev=$a; done; fi
`;

function stubs(channel: MemoryChannel, corrupt = false): NodeJS.ProcessEnv {
  const stub = join(dir, 'stub');
  mkdirSync(join(stub, 'bin'), { recursive: true });
  mkdirSync(join(stub, 'objects'));
  writeFileSync(join(stub, 'bin/aws'), AWS_STUB);
  writeFileSync(join(stub, 'bin/docker'), DOCKER_STUB);
  chmodSync(join(stub, 'bin/aws'), 0o755);
  chmodSync(join(stub, 'bin/docker'), 0o755);
  for (const [k, v] of channel.objects) writeFileSync(join(stub, 'objects', k.replace(/\//g, '_')), corrupt ? Buffer.concat([v, Buffer.from('x')]) : v);
  mkdirSync(join(dir, 'tmp'));
  return { ...process.env, PATH: `${join(stub, 'bin')}:${process.env.PATH}`, STUB_DIR: stub, TMPDIR: join(dir, 'tmp') };
}

describe('staged deploy: the SSM command carries only the object\'s key and SHA-256', () => {
  test('the manager script fetches, checks and unpacks the bundle privately, then deploys it; nothing sensitive is in the script', async () => {
    const plan = planComposeStack({ files: [project()], env: { TOKEN: ENV_VALUE }, resolveImage: 'never' });
    const channel = new MemoryChannel();
    const staged = await stageComposePlan(plan, channel);
    const [[key, body]] = [...channel.objects];
    expect(key).toMatch(/^bundles\/shop\/[0-9a-f-]{36}\.tgz$/);
    expect(staged.script).toContain(key);
    expect(staged.script).toContain(archiveBundle(plan.bundle).sha256);
    for (const value of [SECRET, ENV_VALUE, Buffer.from(SECRET).toString('base64'), Buffer.from(ENV_VALUE).toString('base64').slice(0, 16)]) {
      expect(staged.script).not.toContain(value);
    }
    // The inline script (no staging bucket) does carry the bundle: that is what the staging channel avoids.
    expect(plan.script).toContain(Buffer.from(SECRET).toString('base64'));

    const env = stubs(channel);
    const r = spawnSync('bash', ['-c', staged.script], { env, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(env.STUB_DIR!, 'aws-calls'), 'utf8')).toContain(`s3api get-object --region eu-west-1 --bucket staging-bucket-1 --key ${key}`);
    expect(readFileSync(join(env.STUB_DIR!, 'bundle-copy/docker-compose.yml'), 'utf8')).toBe(plan.bundle.compose);
    expect(readFileSync(join(env.STUB_DIR!, 'bundle-copy/files/secret-0'), 'utf8')).toBe(SECRET);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(body.length).toBeGreaterThan(0);
    await staged.cleanup();
    expect(channel.deleted).toEqual([key]);
  });

  test('a bundle that does not match its SHA-256 is refused before anything is deployed', async () => {
    const plan = planComposeStack({ files: [project()], env: {}, resolveImage: 'never' });
    const channel = new MemoryChannel();
    const staged = await stageComposePlan(plan, channel);
    const env = stubs(channel, true);
    const r = spawnSync('bash', ['-c', staged.script], { env, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('the deploy bundle does not match its SHA-256: refused');
    expect(existsSync(join(env.STUB_DIR!, 'docker-calls'))).toBe(false);
  });

  test('deploy() stages through ctx.staging, the runner sees no value, and the object is deleted even when the deploy fails', async () => {
    const channel = new MemoryChannel();
    const file = project();
    const ok = new FakeRunner(() => ({ stdout: 'EC2SWARM-PRUNED secret shop_db_000000000000\n' }));
    const ctx = makeCtx(ok, { staging: channel });
    await deploy(ctx, { file, env: { TOKEN: ENV_VALUE }, resolveImage: 'never' });
    expect(ok.calls).toHaveLength(1);
    for (const value of [SECRET, ENV_VALUE]) expect(ok.calls[0].script).not.toContain(value);
    expect(ok.calls[0].script).toContain('aws s3api get-object');
    expect(channel.objects.size).toBe(0);
    expect(channel.deleted).toHaveLength(1);
    expect(ctx.reporter.lines.join('\n')).toContain('removed superseded secret shop_db_000000000000');

    const failing = new FakeRunner(() => ({ exitCode: 1, stderr: 'failed to create secret' }));
    await expect(deploy(makeCtx(failing, { staging: channel }), { file, env: {}, resolveImage: 'never' })).rejects.toThrow();
    expect(channel.objects.size).toBe(0);
    expect(channel.deleted).toHaveLength(2);
  });

  test('without a staging bucket the deploy still works inline, and says the bundle travels in the command', async () => {
    const runner = new FakeRunner(() => ({ stdout: '' }));
    const ctx = makeCtx(runner);
    await deploy(ctx, { file: project(), env: {}, resolveImage: 'never' });
    expect(ctx.reporter.lines.join('\n')).toMatch(/no staging bucket .*travels inside the SSM command/);
  });
});

describe('finding the staging bucket', () => {
  test('ops read it from the SwarmStagingBucket output; a stack without it has none', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { clusterFromOutputs } = require('../../../lib/ops/cluster-locator') as typeof import('../../../lib/ops/cluster-locator');
    const base = { SwarmClusterName: 'demo', SwarmManagerInstanceId: 'i-0123456789abcdef0', SwarmParameterPrefix: '/ec2-swarm/demo', SwarmRegion: 'eu-west-1' };
    expect(clusterFromOutputs({ ...base, SwarmStagingBucket: 'demo-staging-abc' }, 'o.json').stagingBucket).toBe('demo-staging-abc');
    expect(clusterFromOutputs(base, 'o.json').stagingBucket).toBeUndefined();
  });
});
