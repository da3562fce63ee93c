/**
 * The lab S3 on loopback: the real AWS SDK v3 S3 client (as the operator's staging channel uses it), the real AWS
 * CLI a host runs (`/usr/bin/aws s3api get-object`), and the gateway's HTTPS front with virtual-hosted names (how a
 * host reaches it), with the construct's IAM intent: the operator stages, managers only read, workers nothing.
 * Every request names an explicit 127.0.0.x address: nothing reaches AWS.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway, parseGatewayConfig, startGateway } from '../../../lib/lab/cloud/gateway';
import { ensureLabTls, type LabTls } from '../../../lib/lab/cloud/tls';
import { bucketOfHost, decodeAwsChunked, labS3Authorizer, s3Hostnames, startLabS3, type LabS3 } from '../../../lib/lab/s3/endpoint';
import { s3StagingChannel } from '../../../lib/ops/compose/staging';
import { LAB_OPERATOR_CREDENTIALS } from '../../../lib/lab/credentials';
import type { SigV4Key } from '../../../lib/lab/sigv4';
import { signHeaders } from '../../support/sigv4-sign';

const REGION = 'us-east-1';
const BUCKET = 'lab-swarmstagingbucket-0a1b2c3d';
const CREDS = LAB_OPERATOR_CREDENTIALS;
const MANAGER = { instanceId: 'i-0aaaaaaaaaaaaaaa0', privateIp: '127.0.0.1', role: 'manager' as const };
const WORKER = { instanceId: 'i-0bbbbbbbbbbbbbbb1', privateIp: '127.0.0.2', role: 'worker' as const };
const INSTANCES = [MANAGER, WORKER];

let dir: string;
let s3: LabS3;
let tls: LabTls;
let gw: Gateway;
const clients: S3Client[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lab-s3-'));
  s3 = await startLabS3({
    region: REGION,
    dir: join(dir, 's3'),
    buckets: [BUCKET],
    socketPath: join(dir, 's3.sock'),
    requestLog: join(dir, 'logs', 's3-requests.jsonl'),
    instanceByIp: (ip) => INSTANCES.find((i) => i.privateIp === ip)?.instanceId,
    authorize: labS3Authorizer('123456789012', 'lab', (id) => INSTANCES.find((i) => i.instanceId === id)?.role),
  });
  tls = ensureLabTls({ dir: join(dir, 'tls'), region: REGION, dnsNames: s3Hostnames(REGION, [BUCKET]) });
  gw = await startGateway(
    parseGatewayConfig({
      region: REGION,
      instances: INSTANCES,
      controllerSocket: join(dir, 'no-controller.sock'),
      s3Socket: join(dir, 's3.sock'),
      imds: { host: '127.0.0.1', port: 0 },
      https: { host: '127.0.0.1', port: 0, certFile: tls.cert, keyFile: tls.key },
    }),
  );
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await gw?.close();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The operator's client: path style on the loopback endpoint (what lib/ops/connect.ts builds for the lab). */
function operator(): S3Client {
  const c = new S3Client({ region: REGION, endpoint: s3.endpoint, forcePathStyle: true, credentials: CREDS, maxAttempts: 1 });
  clients.push(c);
  return c;
}

/**
 * A host's client: S3's real regional endpoint and virtual-hosted names, but every name resolves to the gateway
 * on 127.0.0.1 (as /etc/hosts does in a lab host), from the host's own address, verified against the lab CA.
 */
function fromHost(ip: string): S3Client {
  const agent = new Agent({
    ca: readFileSync(tls.caCert),
    localAddress: ip,
    lookup: (_host, _opts, cb) => (cb as (e: null, a: string, f: number) => void)(null, '127.0.0.1', 4),
  });
  const c = new S3Client({
    region: REGION,
    endpoint: `https://s3.${REGION}.amazonaws.com:${gw.httpsPort}`,
    credentials: CREDS,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
  });
  clients.push(c);
  return c;
}

function raw(o: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  const port = Number(new URL(s3.endpoint!).port);
  return new Promise((resolve, reject) => {
    const q = request({ host: '127.0.0.1', port, method: o.method, path: o.path, headers: o.headers, timeout: 5000 }, (r) => {
      let b = '';
      r.on('data', (c) => (b += c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b }));
    });
    q.on('error', reject);
    q.end(o.body);
  });
}

const FAKE_AUTH = 'AWS4-HMAC-SHA256 Credential=AKIDX/20261130/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00';

describe('the operator (loopback, the real SDK)', () => {
  test('PutObject, HeadObject, GetObject return the bytes; DeleteObject removes them; then NoSuchKey', async () => {
    const c = operator();
    const body = Buffer.from('a bundle \u0000 with binary \xff bytes');
    const put = await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/shop/1.tgz', Body: body, ServerSideEncryption: 'AES256' }));
    expect(put.ETag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    expect(put.ServerSideEncryption).toBe('AES256');

    const head = await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'bundles/shop/1.tgz' }));
    expect(head.ContentLength).toBe(body.length);
    const got = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bundles/shop/1.tgz' }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(body);

    await c.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'bundles/shop/1.tgz' }));
    await expect(c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bundles/shop/1.tgz' }))).rejects.toMatchObject({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    await expect(c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'bundles/shop/1.tgz' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect(s3.store.keys(BUCKET)).toEqual([]);
  });

  test('a bucket the lab does not have is NoSuchBucket', async () => {
    await expect(operator().send(new PutObjectCommand({ Bucket: 'some-other-bucket', Key: 'k', Body: 'x' }))).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });

  test('objects are private on disk: folders 0700, files 0600, file names not the keys', async () => {
    await operator().send(new PutObjectCommand({ Bucket: BUCKET, Key: '../../escape/secret.txt', Body: 'db-password' }));
    expect(statSync(join(dir, 's3')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 's3', BUCKET)).mode & 0o777).toBe(0o700);
    const files = readdirSync(join(dir, 's3', BUCKET));
    expect(files.length).toBe(2);
    for (const f of files) {
      expect(f).toMatch(/^[0-9a-f]{64}\.(obj|json)$/);
      expect(statSync(join(dir, 's3', BUCKET, f)).mode & 0o777).toBe(0o600);
    }
    expect(readdirSync(dir).sort()).toEqual(['logs', 's3', 's3.sock', 'tls']);
    expect(s3.store.keys(BUCKET)).toEqual(['../../escape/secret.txt']);
    await operator().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: '../../escape/secret.txt' }));
  });

  test('the staging channel (lib/ops/compose/staging.ts) puts and deletes through it', async () => {
    const ch = s3StagingChannel({ bucket: BUCKET, region: REGION, endpoint: s3.endpoint, credentials: CREDS });
    try {
      await ch.put('bundles/x/2.tgz', Buffer.from('tgz'));
      expect(s3.store.get(BUCKET, 'bundles/x/2.tgz')?.body.toString()).toBe('tgz');
      await ch.delete('bundles/x/2.tgz');
      expect(s3.store.keys(BUCKET)).toEqual([]);
    } finally {
      ch.close();
    }
  });

  test('an unsigned request is AccessDenied; a wrong secret or unknown key is refused as S3 does; a body that does not match its signed hash is refused', async () => {
    const unsigned = await raw({ method: 'PUT', path: `/${BUCKET}/k`, body: 'x' });
    expect(unsigned.status).toBe(403);
    expect(unsigned.body).toContain('<Code>AccessDenied</Code>');
    const host = new URL(s3.endpoint!).host;
    const signedFor = (sha: string, creds?: SigV4Key) => signHeaders({ host, method: 'PUT', path: `/${BUCKET}/k`, headers: { 'x-amz-content-sha256': sha }, region: REGION, service: 's3', creds });
    const mismatch = await raw({ method: 'PUT', path: `/${BUCKET}/k`, headers: await signedFor(createHash('sha256').update('other').digest('hex')), body: 'x' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    const xHash = createHash('sha256').update('x').digest('hex');
    const wrongSecret = await raw({ method: 'PUT', path: `/${BUCKET}/k`, headers: await signedFor(xHash, { ...CREDS, secretAccessKey: 'not-the-lab-secret' }), body: 'x' });
    expect(wrongSecret.status).toBe(403);
    expect(wrongSecret.body).toContain('<Code>SignatureDoesNotMatch</Code>');
    const stranger = await raw({ method: 'PUT', path: `/${BUCKET}/k`, headers: await signedFor(xHash, { accessKeyId: 'AKIDNOTISSUED0000000', secretAccessKey: 'x' }), body: 'x' });
    expect(stranger.status).toBe(403);
    expect(stranger.body).toContain('<Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><AWSAccessKeyId>AKIDNOTISSUED0000000</AWSAccessKeyId>');
    expect(s3.store.keys(BUCKET)).toEqual([]);
  });

  test('operations it does not serve say NotImplemented (501)', async () => {
    const r = await raw({ method: 'GET', path: `/${BUCKET}?list-type=2`, headers: { authorization: FAKE_AUTH } });
    expect(r.status).toBe(501);
    expect(r.body).toContain('<Code>NotImplemented</Code>');
  });
});

describe('a host (the real AWS CLI; the gateway with S3 names)', () => {
  test('/usr/bin/aws s3api get-object downloads the exact bytes (sha256 as the manager script checks it)', async () => {
    const body = Buffer.from('the bundle bytes ' + 'x'.repeat(100_000));
    await operator().send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/cli/3.tgz', Body: body }));
    const out = join(dir, 'cli.tgz');
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        '/usr/bin/aws',
        ['s3api', 'get-object', '--endpoint-url', s3.endpoint!, '--region', REGION, '--bucket', BUCKET, '--key', 'bundles/cli/3.tgz', out],
        {
          env: { PATH: '/usr/bin:/bin', HOME: dir, AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true' },
          timeout: 60_000,
        },
        (err, _o, stderr) => resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stderr }),
      ),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(createHash('sha256').update(readFileSync(out)).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    const rec = s3.requests().filter((q) => q.key === 'bundles/cli/3.tgz' && q.action === 'GetObject');
    expect(rec).toEqual([expect.objectContaining({ status: 200, bucket: BUCKET, via: 'tcp', bytes: body.length })]);
    await operator().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'bundles/cli/3.tgz' }));
  }, 90_000);

  test('a manager reads through the gateway by virtual-hosted name, and may not write or delete', async () => {
    await operator().send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/gw/4.tgz', Body: 'for the manager' }));
    const m = fromHost(MANAGER.privateIp);
    const got = await m.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bundles/gw/4.tgz' }));
    expect(await got.Body!.transformToString()).toBe('for the manager');
    const rec = s3.requests().filter((q) => q.key === 'bundles/gw/4.tgz' && q.via === 'unix');
    expect(rec[0]).toMatchObject({ action: 'GetObject', host: `${BUCKET}.s3.${REGION}.amazonaws.com:${gw.httpsPort}`, instanceId: MANAGER.instanceId, status: 200 });

    await expect(m.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bundles/gw/4.tgz', Body: 'overwritten' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(m.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'bundles/gw/4.tgz' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    expect(s3.store.get(BUCKET, 'bundles/gw/4.tgz')?.body.toString()).toBe('for the manager');
  });

  test('a worker may not read the staging bucket', async () => {
    await expect(fromHost(WORKER.privateIp).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bundles/gw/4.tgz' }))).rejects.toMatchObject({
      name: 'AccessDenied',
      message: expect.stringContaining(`assumed-role/ec2-swarm-lab-worker/${WORKER.instanceId} is not authorized to perform: s3:GetObject`),
    });
    await operator().send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'bundles/gw/4.tgz' }));
  });

  test('the request log has actions, keys and callers, never a body', () => {
    const log = readFileSync(join(dir, 'logs', 's3-requests.jsonl'), 'utf8');
    expect(log).toContain('"action":"PutObject"');
    expect(log).toContain('"error":"AccessDenied"');
    expect(log).not.toContain('for the manager');
    expect(log).not.toContain('db-password');
  });
});

describe('parts', () => {
  test('host names: virtual-hosted names give the bucket, the service names path style, others nothing', () => {
    expect(bucketOfHost(`${BUCKET}.s3.us-east-1.amazonaws.com:443`, REGION)).toBe(BUCKET);
    expect(bucketOfHost(`${BUCKET}.s3.amazonaws.com`, REGION)).toBe(BUCKET);
    expect(bucketOfHost('s3.us-east-1.amazonaws.com', REGION)).toBe('');
    expect(bucketOfHost('ssm.us-east-1.amazonaws.com', REGION)).toBeUndefined();
    expect(bucketOfHost('127.0.0.1:8080', REGION)).toBeUndefined();
    expect(s3Hostnames(REGION, ['b1'])).toEqual(['s3.us-east-1.amazonaws.com', 's3.amazonaws.com', 'b1.s3.us-east-1.amazonaws.com', 'b1.s3.amazonaws.com']);
  });

  test('aws-chunked bodies decode to the payload and their trailing checksums', () => {
    const wire = Buffer.from('5;chunk-signature=ab\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n');
    expect(decodeAwsChunked(wire)).toEqual({ body: Buffer.from('hello world'), trailers: { 'x-amz-checksum-crc32': 'AAAAAA==' } });
    expect(() => decodeAwsChunked(Buffer.from('a\r\nshort'))).toThrow(/terminated unexpectedly/);
  });
});
