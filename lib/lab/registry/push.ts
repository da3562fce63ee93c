/**
 * Pushing an image to a registry without a docker daemon: the Registry HTTP API v2 from a `docker save` archive
 * (config blob, each layer gzip'd, a schema 2 manifest), so the operator's side can fill the lab registry from the
 * lab's own busybox image without any network pull. Basic authentication, TLS verified against the given CA.
 * Errors name the step and the HTTP status, never the credentials.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runChecked } from '../run-process';

export interface PushOptions {
  /** `host:port` of the registry. */
  readonly registry: string;
  readonly repository: string;
  readonly tag: string;
  /** A `docker save` archive holding one image. */
  readonly imageTar: string;
  /** PEM of the CA that signed the registry's certificate. */
  readonly ca: string | Buffer;
  readonly username: string;
  readonly password: string;
  /** Bound for each request. @default 60000 */
  readonly timeoutMs?: number;
}

const REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REGISTRY = /^[A-Za-z0-9.-]+:\d{1,5}$/;

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function call(o: PushOptions, method: string, path: string, body?: Buffer, contentType?: string): Promise<Reply> {
  const [host, port] = o.registry.split(':');
  const auth = Buffer.from(`${o.username}:${o.password}`).toString('base64');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: Number(port),
        method,
        path,
        ca: o.ca,
        servername: /^\d+\.\d+\.\d+\.\d+$/.test(host) ? undefined : host,
        timeout: o.timeoutMs ?? 60_000,
        headers: {
          authorization: `Basic ${auth}`,
          ...(body ? { 'content-length': body.length, 'content-type': contentType ?? 'application/octet-stream' } : { 'content-length': 0 }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, 500) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 60_000} ms`)));
    req.on('error', (e) => reject(new Error(`registry ${o.registry}: ${method} ${path.split('?')[0]}: ${e.message}`)));
    req.end(body);
  });
}

function expectStatus(r: Reply, ok: number[], what: string, registry: string): void {
  if (ok.includes(r.status)) return;
  const hint = r.status === 401 ? ' (unauthorized: wrong user name or password)' : '';
  throw new Error(`registry ${registry}: ${what} answered HTTP ${r.status}${hint}`);
}

async function uploadBlob(o: PushOptions, blob: Buffer): Promise<string> {
  const digest = digestOf(blob);
  const head = await call(o, 'HEAD', `/v2/${o.repository}/blobs/${digest}`);
  if (head.status === 200) return digest;
  expectStatus(head, [404], `HEAD blob ${digest}`, o.registry);
  const start = await call(o, 'POST', `/v2/${o.repository}/blobs/uploads/`);
  expectStatus(start, [202], 'starting an upload', o.registry);
  const location = String(start.headers.location ?? '');
  if (!location) throw new Error(`registry ${o.registry}: the upload has no Location`);
  const url = new URL(location, `https://${o.registry}`);
  url.searchParams.set('digest', digest);
  const put = await call(o, 'PUT', `${url.pathname}${url.search}`, blob);
  expectStatus(put, [201], `uploading blob ${digest}`, o.registry);
  return digest;
}

/** Pushes the archive's image as REGISTRY/REPOSITORY:TAG; resolves the manifest's digest. */
export async function pushImage(o: PushOptions): Promise<string> {
  if (!REGISTRY.test(o.registry)) throw new Error(`registry must be host:port (got ${JSON.stringify(o.registry)})`);
  if (!REPOSITORY.test(o.repository)) throw new Error(`repository ${JSON.stringify(o.repository)} is not a docker repository name`);
  if (!TAG.test(o.tag)) throw new Error(`tag ${JSON.stringify(o.tag)} is not a docker tag`);
  const dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-push-'));
  try {
    await runChecked('tar', ['-xf', o.imageTar, '-C', dir], { timeoutMs: 60_000, what: `tar -xf ${o.imageTar}` });
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
    if (manifest.length !== 1) throw new Error(`${o.imageTar} holds ${manifest.length} images, not one`);
    const config = readFileSync(join(dir, manifest[0].Config));
    const layers: { mediaType: string; size: number; digest: string }[] = [];
    for (const l of manifest[0].Layers) {
      // docker save writes layers uncompressed; pulls expect the usual gzip'd media type (the config's diff_ids stay).
      const gz = gzipSync(readFileSync(join(dir, l)));
      layers.push({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: await uploadBlob(o, gz) });
    }
    const configDigest = await uploadBlob(o, config);
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: configDigest },
        layers,
      }),
    );
    const put = await call(o, 'PUT', `/v2/${o.repository}/manifests/${o.tag}`, body, 'application/vnd.docker.distribution.manifest.v2+json');
    expectStatus(put, [201], `PUT manifest ${o.repository}:${o.tag}`, o.registry);
    return digestOf(body);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
