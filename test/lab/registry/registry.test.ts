/**
 * The lab registry's pieces on loopback (no namespaces, no dockerd): Debian's docker-registry with the files
 * writeRegistryFiles makes (htpasswd, TLS from a lab CA) accepts a push with the right credentials only, and the
 * password is in none of its files or its log. The lab wiring (hub namespace, hosts' trust, pulls by the swarm) is
 * covered by test/e2e/registry.e2e.test.ts.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLabTls } from '../../../lib/lab/cloud/tls';
import { HOST_PATH } from '../../../lib/lab/lab-config';
import { pushImage } from '../../../lib/lab/registry/push';
import { registryArgv, waitForRegistry, writeRegistryFiles } from '../../../lib/lab/registry/registry';
import { processStartTime } from '../../../lib/lab/resources';


const USER = 'pipeline';
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}-registry`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A `docker save`-shaped archive: manifest.json, the config, one uncompressed layer. */
function imageArchive(dir: string): string {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'hello'), 'hello from the lab registry\n');
  const out = join(dir, 'save');
  mkdirSync(join(out, 'layer0'), { recursive: true });
  execFileSync('tar', ['--numeric-owner', '-C', root, '-cf', join(out, 'layer0', 'layer.tar'), '.']);
  const diff = createHash('sha256').update(readFileSync(join(out, 'layer0', 'layer.tar'))).digest('hex');
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${diff}`] } });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  writeFileSync(join(out, configName), config);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['local/test:latest'], Layers: ['layer0/layer.tar'] }]));
  const tar = join(dir, 'image.tar');
  execFileSync('tar', ['-C', out, '-cf', tar, 'manifest.json', configName, 'layer0']);
  return tar;
}

function get(port: number, ca: Buffer, path: string, auth?: string): Promise<{ status: number; digest?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json', ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: res.headers['docker-content-digest'] as string | undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

// Needs Debian's docker-registry and apache2-utils (scripts/dev/install-prereqs.sh); without them it fails naming them.
describe('lab registry on loopback: htpasswd + TLS from the lab CA', () => {
  let dir: string;
  let child: ChildProcess;
  let port: number;
  let ca: Buffer;
  let log: string;
  let files: ReturnType<typeof writeRegistryFiles>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rg-registry-'));
    const tls = ensureLabTls({ dir: join(dir, 'tls'), region: 'us-east-1' });
    ca = readFileSync(tls.caCert);
    port = await freePort();
    files = writeRegistryFiles({ dir: join(dir, 'registry'), listen: `127.0.0.1:${port}`, caCert: tls.caCert, caKey: tls.caKey, ipAddresses: ['127.0.0.1'], username: USER, password: PASSWORD });
    log = join(dir, 'registry.log');
    const fd = openSync(log, 'a');
    const [bin, ...args] = registryArgv(files.config);
    child = spawn(bin, args, { stdio: ['ignore', fd, fd], env: { PATH: HOST_PATH } });
    closeSync(fd);
    await waitForRegistry(log, { pid: child.pid!, startTime: processStartTime(child.pid!) });
  }, 60_000);

  afterAll(async () => {
    if (child?.pid && child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('anonymous requests are refused; a push with the right credentials is served back with the same digest', async () => {
    expect((await get(port, ca, '/v2/')).status).toBe(401);
    const digest = await pushImage({ registry: `127.0.0.1:${port}`, repository: 'private/app', tag: '1', imageTar: imageArchive(dir), ca, username: USER, password: PASSWORD });
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await get(port, ca, '/v2/private/app/manifests/1', `${USER}:${PASSWORD}`)).toEqual({ status: 200, digest });
    expect((await get(port, ca, '/v2/private/app/manifests/1')).status).toBe(401);
    expect((await get(port, ca, '/v2/private/app/manifests/1', `${USER}:wrong-password`)).status).toBe(401);
  });

  test('a push with a wrong password fails naming the 401, without the password', async () => {
    const err = await pushImage({ registry: `127.0.0.1:${port}`, repository: 'private/other', tag: '1', imageTar: imageArchive(join(dir, 'w')), ca, username: USER, password: 'wrong-password-123' }).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/HTTP 401 \(unauthorized/);
    expect(String((err as Error).message)).not.toContain('wrong-password-123');
  });

  test('TLS is verified against the lab CA: another CA is refused', async () => {
    const other = ensureLabTls({ dir: join(dir, 'other-tls'), region: 'us-east-1' });
    const err = await pushImage({ registry: `127.0.0.1:${port}`, repository: 'private/app', tag: '2', imageTar: imageArchive(join(dir, 'x')), ca: readFileSync(other.caCert), username: USER, password: PASSWORD }).catch((e: Error) => e);
    expect(String((err as Error).message)).toMatch(/certificate|self.signed|verify/i);
  });

  test('the password is in none of the registry files nor its log; the secrets are private', () => {
    const texts = [files.config, files.htpasswd, log].map((f) => readFileSync(f, 'utf8'));
    for (const t of texts) expect(t).not.toContain(PASSWORD);
    expect(readFileSync(files.htpasswd, 'utf8')).toMatch(new RegExp(`^${USER}:\\$2y\\$`));
    for (const f of [files.config, files.htpasswd, files.key]) expect(execFileSync('stat', ['-c', '%a', f], { encoding: 'utf8' }).trim()).toBe('600');
    expect(existsSync(files.data)).toBe(true);
    expect(readdirSync(files.dir).sort()).toEqual(['config.yml', 'data', 'htpasswd', 'registry.key', 'registry.pem']);
  });
});
