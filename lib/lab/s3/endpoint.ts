/**
 * The lab's S3 (the staging bucket, design.md decision 12): the REST API's object calls — PutObject, GetObject,
 * HeadObject, DeleteObject, HeadBucket — on node:http, so the real AWS SDK and the real AWS CLI work unchanged.
 *
 * Listens on 127.0.0.1:<port> for the operator (path-style requests) and on a unix socket for the hosts: the
 * gateway's HTTPS front sends it every request for `s3.<region>.amazonaws.com` and `<bucket>.s3…` (virtual-hosted
 * style, what the AWS CLI on an instance uses), adding `x-lab-source-ip`, trusted ONLY on the socket.
 *
 * Like the real service: a SigV4 signature is required (`Authorization: AWS4-HMAC-SHA256 …` or a presigned URL)
 * and verified with the secret of a key the lab issued (../sigv4.ts; SignatureDoesNotMatch, InvalidAccessKeyId, … as
 * S3 answers: ../sigv4-errors.ts); a signed payload hash is checked against the body; aws-chunked uploads are
 * decoded and their seed signature verified (not the per-chunk signatures); errors are S3's XML (`<Error><Code>NoSuchKey</Code>…`), HEAD errors have no body. Every
 * request is recorded (action, bucket, key, caller, status; never a body).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { normalizeIp } from '../imds/imds';
import { closeServer, serveEndpoint, SOURCE_IP_HEADER } from '../ssm/endpoint';
import { ObjectStore } from './object-store';
import { LabKey, labKeys } from '../credentials';
import { SigV4Error, verifySigV4 } from '../sigv4';
import { s3AuthError } from '../sigv4-errors';

export type S3Action = 'PutObject' | 'GetObject' | 'HeadObject' | 'DeleteObject' | 'HeadBucket';

export interface S3Caller {
  readonly via: 'tcp' | 'unix';
  readonly sourceIp?: string;
  /** The lab instance at `sourceIp` (requests from hosts only). */
  readonly instanceId?: string;
}

/** One request as the stand-in saw it (for tests and `<labDir>/logs/s3-requests.jsonl`): never a body. */
export interface S3RequestRecord {
  readonly time: string;
  readonly via: 'tcp' | 'unix';
  readonly sourceIp?: string;
  readonly instanceId?: string;
  readonly method: string;
  readonly host: string;
  readonly action?: S3Action;
  readonly bucket?: string;
  readonly key?: string;
  readonly status: number;
  readonly error?: string;
  readonly bytes?: number;
}

export class S3ServiceError extends Error {
  constructor(
    public readonly code: string,
    message: string,
    public readonly statusCode: number,
    public readonly extra: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = code;
  }
}

export interface LabS3Options {
  readonly region: string;
  /** Where objects live (created 0700). */
  readonly dir: string;
  /** The buckets that exist. */
  readonly buckets: readonly string[];
  /** TCP listener for the operator. @default { host: '127.0.0.1', port: 0 } */
  readonly tcp?: { readonly host?: string; readonly port?: number } | false;
  /** Unix socket for the gateway (hosts). Created 0600. */
  readonly socketPath?: string;
  /** JSON lines, one per request. */
  readonly requestLog?: string;
  /** The instance id at a host's address (the lab EC2's table). */
  readonly instanceByIp?: (ip: string) => string | undefined;
  /** Throw an S3ServiceError (AccessDenied) to refuse; the default allows everything. */
  readonly authorize?: (caller: S3Caller, action: S3Action, bucket: string, key?: string) => void;
  /** The secret of an access key id, for verifying signatures. @default the lab operator's key only */
  readonly keys?: (accessKeyId: string) => LabKey | undefined;
  /** @default 64 MiB */
  readonly maxObjectBytes?: number;
}

export interface LabS3 {
  /** `http://127.0.0.1:<port>` (when TCP is on). */
  readonly endpoint?: string;
  readonly socketPath?: string;
  readonly store: ObjectStore;
  /** Every request so far, oldest first. */
  requests(): readonly S3RequestRecord[];
  close(): Promise<void>;
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** Every name under which hosts reach the lab S3 (TLS names, /etc/hosts lines): regional and global, both styles. */
export function s3Hostnames(region: string, buckets: readonly string[]): string[] {
  if (!REGION.test(region)) throw new Error(`region must look like us-east-1 (got ${JSON.stringify(region)})`);
  const bases = [`s3.${region}.amazonaws.com`, 's3.amazonaws.com'];
  return [...bases, ...buckets.flatMap((b) => bases.map((base) => `${b}.${base}`))];
}

/** `{bucket}` from a virtual-hosted name, `''` for a path-style S3 name, undefined when the name is not S3's. */
export function bucketOfHost(host: string, region: string): string | undefined {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  for (const base of [`s3.${region}.amazonaws.com`, 's3.amazonaws.com']) {
    if (name === base) return '';
    if (name.endsWith(`.${base}`)) return name.slice(0, -base.length - 1);
  }
  return undefined;
}

/** True for a request the gateway must send to the S3 stand-in. */
export function isS3Host(host: string | undefined, region: string): boolean {
  return host !== undefined && bucketOfHost(host, region) !== undefined;
}

const XML = 'application/xml';

function errorXml(e: S3ServiceError, requestId: string, resource: string): string {
  const extra = Object.entries(e.extra)
    .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${e.code}</Code><Message>${escapeXml(e.message)}</Message>${extra}<Resource>${escapeXml(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/**
 * The body of an aws-chunked upload (`x-amz-content-sha256: STREAMING-…`): `<hex size>[;chunk-signature=…]\r\n`
 * `<data>\r\n` … up to a zero-size chunk, then optional trailers (checksums) and a blank line.
 */
export function decodeAwsChunked(raw: Buffer): { body: Buffer; trailers: Record<string, string> } {
  const parts: Buffer[] = [];
  let at = 0;
  const line = (): string => {
    const end = raw.indexOf('\r\n', at);
    if (end < 0) throw new S3ServiceError('IncompleteBody', 'The request body terminated unexpectedly', 400);
    const text = raw.subarray(at, end).toString('latin1');
    at = end + 2;
    return text;
  };
  for (;;) {
    const header = line();
    const size = parseInt(header.split(';')[0], 16);
    if (!Number.isFinite(size) || size < 0) throw new S3ServiceError('InvalidRequest', 'aws-chunked: bad chunk header', 400);
    if (size === 0) break;
    if (at + size + 2 > raw.length) throw new S3ServiceError('IncompleteBody', 'The request body terminated unexpectedly', 400);
    parts.push(raw.subarray(at, at + size));
    at += size + 2;
  }
  const trailers: Record<string, string> = {};
  while (at < raw.length) {
    const t = line();
    if (t === '') break;
    const i = t.indexOf(':');
    if (i > 0) trailers[t.slice(0, i).trim().toLowerCase()] = t.slice(i + 1).trim();
  }
  return { body: Buffer.concat(parts), trailers };
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new S3ServiceError('EntityTooLarge', `Your proposed upload exceeds the maximum allowed size (${max} bytes in the lab)`, 400));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const ACTIONS: Record<string, S3Action> = { PUT: 'PutObject', GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject' };

export async function startLabS3(opts: LabS3Options): Promise<LabS3> {
  const store = new ObjectStore(opts.dir, opts.buckets);
  const max = opts.maxObjectBytes ?? 64 * 1024 * 1024;
  const keys = opts.keys ?? labKeys(() => []);
  const records: S3RequestRecord[] = [];
  if (opts.requestLog) mkdirSync(dirname(opts.requestLog), { recursive: true });
  const record = (r: S3RequestRecord): void => {
    records.push(r);
    if (records.length > 10_000) records.shift();
    if (!opts.requestLog) return;
    try {
      appendFileSync(opts.requestLog, JSON.stringify(r) + '\n');
    } catch {
      /* diagnostics only */
    }
  };

  const handle = (via: 'tcp' | 'unix') => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const asserted = req.headers[SOURCE_IP_HEADER];
    const sourceIp = via === 'unix' ? (typeof asserted === 'string' ? asserted : undefined) : normalizeIp(req.socket.remoteAddress);
    const instanceId = via === 'unix' && sourceIp ? opts.instanceByIp?.(sourceIp) : undefined;
    const caller: S3Caller = { via, ...(sourceIp ? { sourceIp } : {}), ...(instanceId ? { instanceId } : {}) };
    const host = String(req.headers.host ?? '');
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://lab');
    // Not url.pathname: URL resolves `..` segments, and S3 keys may contain them literally.
    const rawPath = (req.url ?? '/').split('?')[0];
    let action: S3Action | undefined;
    let bucket: string | undefined;
    let key: string | undefined;
    const common = { 'x-amz-request-id': requestId, 'x-amz-id-2': randomUUID(), 'x-amz-bucket-region': opts.region };
    const base = (): Omit<S3RequestRecord, 'status'> => ({
      time: new Date().toISOString(),
      via,
      ...(sourceIp ? { sourceIp } : {}),
      ...(instanceId ? { instanceId } : {}),
      method,
      host,
      ...(action ? { action } : {}),
      ...(bucket !== undefined ? { bucket } : {}),
      ...(key !== undefined ? { key } : {}),
    });
    try {
      // Virtual-hosted style names the bucket in the host; path style (and the operator on loopback) in the path.
      const fromHost = bucketOfHost(host, opts.region);
      const segments = rawPath.replace(/^\//, '');
      let rawKey: string;
      if (fromHost) {
        bucket = fromHost;
        rawKey = segments;
      } else {
        const slash = segments.indexOf('/');
        bucket = decodeURIComponent(slash < 0 ? segments : segments.slice(0, slash));
        rawKey = slash < 0 ? '' : segments.slice(slash + 1);
      }
      key = rawKey === '' ? undefined : decodeURIComponent(rawKey);
      if (!bucket) throw new S3ServiceError('NotImplemented', 'The lab S3 serves object operations only (no ListBuckets)', 501);
      action = key === undefined ? (method === 'HEAD' ? 'HeadBucket' : undefined) : ACTIONS[method];
      const subresources = [...url.searchParams.keys()].filter((k) => k !== 'x-id' && !k.startsWith('X-Amz-'));
      if (!action || subresources.length > 0) {
        throw new S3ServiceError('NotImplemented', `The lab S3 does not implement ${method} ${key === undefined ? 'on a bucket' : 'on an object'}${subresources.length ? ` with ?${subresources.join('&')}` : ''}`, 501);
      }
      try {
        await verifySigV4({ method, url: req.url ?? '/', headers: req.headers }, { service: 's3', region: opts.region, keys });
      } catch (e) {
        if (!(e instanceof SigV4Error)) throw e;
        const a = s3AuthError(e, opts.region);
        throw new S3ServiceError(a.code, a.message, a.status, a.extra);
      }
      if (!store.hasBucket(bucket)) throw new S3ServiceError('NoSuchBucket', 'The specified bucket does not exist', 404, { BucketName: bucket });
      opts.authorize?.(caller, action, bucket, key);

      if (action === 'HeadBucket') {
        res.writeHead(200, common);
        res.end();
        return record({ ...base(), status: 200 });
      }
      const k = key!;
      if (action === 'PutObject') {
        const raw = await readBody(req, max);
        const payload = String(req.headers['x-amz-content-sha256'] ?? '');
        let body = raw;
        const checksums: Record<string, string> = {};
        if (payload.startsWith('STREAMING-') || String(req.headers['content-encoding'] ?? '').includes('aws-chunked')) {
          const decoded = decodeAwsChunked(raw);
          body = decoded.body;
          for (const [h, v] of Object.entries(decoded.trailers)) if (h.startsWith('x-amz-checksum-')) checksums[h] = v;
          const declared = req.headers['x-amz-decoded-content-length'];
          if (declared !== undefined && Number(declared) !== body.length) throw new S3ServiceError('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header', 400);
        } else if (/^[0-9a-f]{64}$/.test(payload) && createHash('sha256').update(body).digest('hex') !== payload) {
          throw new S3ServiceError('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", 400);
        }
        for (const [h, v] of Object.entries(req.headers)) {
          if (h.startsWith('x-amz-checksum-') && h !== 'x-amz-checksum-algorithm' && typeof v === 'string') checksums[h] = v;
        }
        const md5 = req.headers['content-md5'];
        if (typeof md5 === 'string' && createHash('md5').update(body).digest('base64') !== md5) {
          throw new S3ServiceError('BadDigest', 'The Content-MD5 you specified did not match what we received.', 400);
        }
        const ct = req.headers['content-type'];
        const meta = store.put(bucket, k, body, { ...(typeof ct === 'string' ? { contentType: ct } : {}), checksums });
        // Every object is encrypted at rest on S3 (SSE-S3 by default); the lab says so as S3 does.
        res.writeHead(200, { ...common, etag: meta.etag, 'x-amz-server-side-encryption': 'AES256', 'content-length': 0 });
        res.end();
        return record({ ...base(), status: 200, bytes: body.length });
      }
      if (action === 'DeleteObject') {
        store.delete(bucket, k);
        res.writeHead(204, common);
        res.end();
        return record({ ...base(), status: 204 });
      }
      // GetObject / HeadObject
      const found = action === 'GetObject' ? store.get(bucket, k) : undefined;
      const meta = found?.meta ?? store.head(bucket, k);
      if (!meta) throw new S3ServiceError('NoSuchKey', 'The specified key does not exist.', 404, { Key: k });
      const checksumHeaders = req.headers['x-amz-checksum-mode'] === 'ENABLED' ? meta.checksums : {};
      res.writeHead(200, {
        ...common,
        ...checksumHeaders,
        'content-type': meta.contentType,
        'content-length': meta.size,
        etag: meta.etag,
        'last-modified': new Date(meta.lastModified).toUTCString(),
        'accept-ranges': 'bytes',
        'x-amz-server-side-encryption': 'AES256',
      });
      res.end(found ? found.body : undefined);
      return record({ ...base(), status: 200, bytes: meta.size });
    } catch (e) {
      const err = e instanceof S3ServiceError ? e : new S3ServiceError('InternalError', `The lab S3 failed: ${(e as Error)?.message}`, 500);
      record({ ...base(), status: err.statusCode, error: err.code });
      if (res.headersSent) return void res.destroy();
      if (method === 'HEAD') {
        // HEAD answers carry no body: the SDKs read the status code alone.
        res.writeHead(err.statusCode, common);
        return void res.end();
      }
      const text = errorXml(err, requestId, rawPath);
      res.writeHead(err.statusCode, { ...common, 'content-type': XML, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  };

  const { servers, port } = await serveEndpoint(handle, opts);
  const endpoint = port !== undefined ? `http://127.0.0.1:${port}` : undefined;
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(opts.socketPath ? { socketPath: opts.socketPath } : {}),
    store,
    requests: () => records.slice(),
    close: async () => {
      await Promise.all(servers.map((s) => closeServer(s)));
    },
  };
}

/**
 * What the construct's policies intend (lib/cluster/staging-bucket.ts): the operator on loopback is the account's
 * administrator (its role has `grantStage`); managers may only read objects; workers and unknown callers nothing.
 */
export function labS3Authorizer(
  accountId: string,
  clusterName: string,
  roleOf: (instanceId: string) => 'manager' | 'worker' | undefined,
): (caller: S3Caller, action: S3Action, bucket: string, key?: string) => void {
  return (caller, action, bucket, key) => {
    if (caller.via === 'tcp') return;
    const role = caller.instanceId ? roleOf(caller.instanceId) : undefined;
    if (role === 'manager' && (action === 'GetObject' || action === 'HeadObject' || action === 'HeadBucket')) return;
    const who = role ? `arn:aws:sts::${accountId}:assumed-role/ec2-swarm-${clusterName}-${role}/${caller.instanceId}` : `unknown caller ${caller.sourceIp ?? '?'}`;
    const s3Action = action === 'HeadObject' ? 'GetObject' : action === 'HeadBucket' ? 'ListBucket' : action;
    throw new S3ServiceError(
      'AccessDenied',
      `User: ${who} is not authorized to perform: s3:${s3Action} on resource: "arn:aws:s3:::${bucket}${key !== undefined ? `/${key}` : ''}" because no identity-based policy allows the s3:${s3Action} action`,
      403,
    );
  };
}
