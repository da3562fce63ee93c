/**
 * deploy --registry-auth (docs/design.md decision 15): the operator's docker credentials for exactly the images'
 * registries travel in the staged bundle, never in the SSM command, and are used and removed on the manager.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { StagingChannel } from '../../lib/ops/compose/staging';
import { deploy, planDeploy } from '../../lib/ops/deploy';
import { collectRegistryAuth, registryOf } from '../../lib/ops/registry-auth';
import { FakeRunner, makeCtx } from './swarm/harness';

const PASSWORD = 'correct-horse-battery-staple';
const USER = 'deployer';
const AUTH = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
const PRIVATE = 'registry.example.com:5000';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rg-auth-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The error `f` throws (the test fails when it throws none). */
function thrown(f: () => unknown): { exitCode: number; message: string } {
  try {
    f();
  } catch (e) {
    return e as { exitCode: number; message: string };
  }
  throw new Error('expected an error');
}

function dockerConfig(config: unknown): Record<string, string> {
  mkdirSync(join(dir, 'docker'), { recursive: true });
  writeFileSync(join(dir, 'docker/config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return { DOCKER_CONFIG: join(dir, 'docker') };
}

function compose(images: string[]): string {
  mkdirSync(join(dir, 'shop'), { recursive: true });
  const f = join(dir, 'shop/docker-compose.yml');
  writeFileSync(f, `services:\n${images.map((img, i) => `  s${i}:\n    image: ${img}\n`).join('')}`);
  return f;
}

class MemoryChannel implements StagingChannel {
  readonly bucket = 'staging-bucket-1';
  readonly region = 'eu-west-1';
  readonly objects = new Map<string, Buffer>();
  readonly deleted: string[] = [];
  readonly uploads: Buffer[] = [];
  async put(key: string, body: Buffer) {
    this.objects.set(key, body);
    this.uploads.push(body);
  }
  async delete(key: string) {
    this.deleted.push(key);
    this.objects.delete(key);
  }
}

/** Entries of a ustar archive (enough for the bundle's regular files). */
function untar(tgz: Buffer): Map<string, Buffer> {
  const t = gunzipSync(tgz);
  const out = new Map<string, Buffer>();
  for (let off = 0; off + 512 <= t.length; ) {
    const name = t.subarray(off, off + 100).toString('utf8').replace(/\0.*$/s, '');
    if (!name) break;
    const size = parseInt(t.subarray(off + 124, off + 136).toString('utf8').replace(/\0.*$/s, '').trim(), 8);
    out.set(name, t.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

describe('which registry an image names (as docker normalises references)', () => {
  test.each([
    ['nginx', 'docker.io'],
    ['library/nginx:1.27', 'docker.io'],
    ['acme/app@sha256:' + 'a'.repeat(64), 'docker.io'],
    ['index.docker.io/acme/app', 'docker.io'],
    ['registry.example.com:5000/shop/web:1', 'registry.example.com:5000'],
    ['123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1', '123456789012.dkr.ecr.eu-west-1.amazonaws.com'],
    ['localhost/app', 'localhost'],
    ['192.168.243.1:5443/app:1', '192.168.243.1:5443'],
  ])('%s → %s', (image, registry) => {
    expect(registryOf(image)).toBe(registry);
  });
});

describe('reading the operator\'s credentials as the docker CLI does', () => {
  test('auths: only the registries the images name are shipped; the others are anonymous', () => {
    const env = dockerConfig({ auths: { [`https://${PRIVATE}`]: { auth: AUTH }, 'other.example.com': { auth: 'b3RoZXI6c2VjcmV0' } } });
    const a = collectRegistryAuth([`${PRIVATE}/shop/web:1`, 'redis:7'], { env });
    expect(JSON.parse(a.config.toString())).toEqual({ auths: { [PRIVATE]: { auth: AUTH } } });
    expect(a.registries).toEqual([PRIVATE]);
    expect(a.anonymous).toEqual(['docker.io']);
  });

  test('credHelpers win over auths; an identity token stays an identity token; Docker Hub is keyed as docker does', () => {
    const asked: string[] = [];
    const env = dockerConfig({ auths: { [PRIVATE]: { auth: 'c3RhbGU6c3RhbGU=' } }, credHelpers: { [PRIVATE]: 'vault' }, credsStore: 'desktop' });
    const a = collectRegistryAuth([`${PRIVATE}/web`, 'acme/app'], {
      env,
      runHelper: (helper, url) => {
        asked.push(`${helper} ${url}`);
        return helper === 'vault' ? JSON.stringify({ ServerURL: url, Username: '<token>', Secret: 'id-token' }) : JSON.stringify({ ServerURL: url, Username: USER, Secret: PASSWORD });
      },
    });
    expect(asked.sort()).toEqual([`desktop https://index.docker.io/v1/`, `vault ${PRIVATE}`]);
    expect(JSON.parse(a.config.toString())).toEqual({ auths: { [PRIVATE]: { identitytoken: 'id-token' }, 'https://index.docker.io/v1/': { auth: AUTH } } });
  });

  test('a credsStore without an entry ("credentials not found") falls back to auths', () => {
    const env = dockerConfig({ auths: { [PRIVATE]: { auth: AUTH } }, credsStore: 'pass' });
    const notFound = Object.assign(new Error('exit 1'), { stdout: 'credentials not found in native keychain\n' });
    const a = collectRegistryAuth([`${PRIVATE}/web`], { env, runHelper: () => { throw notFound; } });
    expect(JSON.parse(a.config.toString()).auths[PRIVATE]).toEqual({ auth: AUTH });
  });

  test('no credentials for any of the registries is a usage error (exit 2) naming the file and the login to run', () => {
    const env = dockerConfig({ auths: { 'other.example.com': { auth: AUTH } } });
    const err = thrown(() => collectRegistryAuth([`${PRIVATE}/web`], { env }));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`${join(dir, 'docker/config.json')} has no credentials for ${PRIVATE}`);
    expect(err.message).toContain(`docker login ${PRIVATE}`);
    expect(err.message).not.toContain(AUTH);
  });

  test('a broken config or a failing helper is named without quoting what it holds', () => {
    const broken = dockerConfig(`{"auths": {"${PRIVATE}": {"auth": "${AUTH}"`);
    const e1 = thrown(() => collectRegistryAuth([`${PRIVATE}/web`], { env: broken }));
    expect(e1.exitCode).toBe(2);
    expect(e1.message).not.toContain(AUTH);
    const env = dockerConfig({ credHelpers: { [PRIVATE]: 'leaky' } });
    const e2 = thrown(() =>
      collectRegistryAuth([`${PRIVATE}/web`], { env, runHelper: () => { throw Object.assign(new Error(`failed for ${PASSWORD}`), { stdout: PASSWORD, stderr: PASSWORD }); } }),
    );
    expect(e2.exitCode).toBe(2);
    expect(e2.message).toBe(`--registry-auth: docker-credential-leaky could not give the credentials for ${PRIVATE}`);
  });
});

/** The manager side: aws fetches the staged object, docker records what it saw at `stack deploy`. */
const AWS_STUB = `#!/bin/bash
set -eu
key=; out=; while [ $# -gt 0 ]; do case "$1" in --key) key=$2; shift 2 ;; --region|--bucket) shift 2 ;; s3api|get-object) shift ;; *) out=$1; shift ;; esac; done
cp "$STUB_DIR/objects/$(printf '%s' "$key" | tr / _)" "$out"
`;
const DOCKER_STUB = `#!/bin/bash
printf '%s\\n' "$*" >> "$STUB_DIR/docker-calls"
if [ "$1 $2" = "stack deploy" ]; then
  printf '%s\\n' "\${DOCKER_CONFIG:-unset}" > "$STUB_DIR/docker-config-dir"
  [ -z "\${DOCKER_CONFIG:-}" ] || { cp "$DOCKER_CONFIG/config.json" "$STUB_DIR/config-seen"; stat -c %a "$DOCKER_CONFIG/config.json" > "$STUB_DIR/config-mode"; }
fi
`;

function runStaged(channel: MemoryChannel, script: string): { status: number | null; stderr: string; stub: string } {
  const stub = join(dir, 'stub');
  mkdirSync(join(stub, 'bin'), { recursive: true });
  mkdirSync(join(stub, 'objects'), { recursive: true });
  writeFileSync(join(stub, 'bin/aws'), AWS_STUB);
  writeFileSync(join(stub, 'bin/docker'), DOCKER_STUB);
  chmodSync(join(stub, 'bin/aws'), 0o755);
  chmodSync(join(stub, 'bin/docker'), 0o755);
  for (const [k, v] of channel.objects) writeFileSync(join(stub, 'objects', k.replace(/\//g, '_')), v);
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const r = spawnSync('bash', ['-c', script], { env: { ...process.env, PATH: `${join(stub, 'bin')}:${process.env.PATH}`, STUB_DIR: stub, TMPDIR: join(dir, 'tmp') }, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, stub };
}

describe('deploy --registry-auth', () => {
  test('the credentials reach the manager only inside the staged bundle; docker stack deploy uses them with --with-registry-auth; they are gone afterwards', async () => {
    const env = { ...dockerConfig({ auths: { [PRIVATE]: { auth: AUTH } } }) };
    const file = compose([`${PRIVATE}/shop/web:1`]);
    const channel = new MemoryChannel();
    let ran: ReturnType<typeof runStaged> | undefined;
    const runner = new FakeRunner((script) => {
      ran = runStaged(channel, script);
      return { exitCode: ran.status ?? 1, stderr: ran.stderr };
    });
    const ctx = makeCtx(runner, { staging: channel });

    await deploy(ctx, { file, env, registryAuth: true, resolveImage: 'never' });

    // The command: no credential in any form, the deploy line as designed.
    const script = runner.calls[0].script;
    for (const v of [PASSWORD, AUTH, USER]) expect(script).not.toContain(v);
    expect(script).toContain('DOCKER_CONFIG="$bundle/auth" docker stack deploy --with-registry-auth --resolve-image');
    expect(script.indexOf('rm -rf "$bundle/auth"')).toBeGreaterThan(script.indexOf('docker stack deploy'));
    // The staged object carried them (0600 in a 0700 directory on the manager), and was deleted.
    const entries = untar(channel.uploads[0]);
    expect(JSON.parse(entries.get('auth/config.json')!.toString())).toEqual({ auths: { [PRIVATE]: { auth: AUTH } } });
    expect(channel.objects.size).toBe(0);
    expect(ran?.status).toBe(0);
    expect(JSON.parse(readFileSync(join(ran!.stub, 'config-seen'), 'utf8')).auths).toEqual({ [PRIVATE]: { auth: AUTH } });
    expect(readFileSync(join(ran!.stub, 'config-mode'), 'utf8').trim()).toBe('600');
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    // What the operator reads names the registry, never the credentials.
    const said = ctx.reporter.lines.join('\n');
    expect(said).toContain(`registry credentials for ${PRIVATE} travel in the staged bundle`);
    for (const v of [PASSWORD, AUTH]) expect(said).not.toContain(v);
  });

  test('without a staging channel it is refused (exit 2) before anything is sent: never inline in the SSM command', async () => {
    const env = dockerConfig({ auths: { [PRIVATE]: { auth: AUTH } } });
    const runner = new FakeRunner(() => ({}));
    const err = await deploy(makeCtx(runner), { file: compose([`${PRIVATE}/web:1`]), env, registryAuth: true }).catch((e) => e);
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('--registry-auth needs the cluster\'s staging bucket');
    expect(runner.calls).toHaveLength(0);
  });

  test('missing credentials are found while planning (before any connection); service spec files are refused', () => {
    const env = dockerConfig({});
    expect(() => planDeploy({ file: compose([`${PRIVATE}/web:1`]), env, registryAuth: true })).toThrow(/has no credentials for registry\.example\.com:5000/);
    const specFile = join(dir, 'services.yml');
    writeFileSync(specFile, JSON.stringify({ services: [{ name: 'web', image: 'nginx' }] }));
    expect(() => planDeploy({ file: specFile, registryAuth: true })).toThrow('--registry-auth applies to compose files only');
  });

  test('every stack deploy passes --with-registry-auth (the ECR helper answers on AWS) and without the option ships no auth file', async () => {
    const channel = new MemoryChannel();
    const runner = new FakeRunner(() => ({}));
    await deploy(makeCtx(runner, { staging: channel }), { file: compose([`${PRIVATE}/web:1`]), env: dockerConfig({ auths: { [PRIVATE]: { auth: AUTH } } }), resolveImage: 'never' });
    expect(runner.calls[0].script).toMatch(/^docker stack deploy --with-registry-auth --resolve-image 'never' /m);
    expect(runner.calls[0].script).not.toContain('DOCKER_CONFIG');
    expect([...untar(channel.uploads[0]).keys()]).toEqual(['docker-compose.yml']);
  });
});
