/**
 * The lab's SigV4 verifier (lib/lab/sigv4.ts) against what real clients send: the SDK's signer (as SDK v3 signs
 * SSM, EC2 and S3 requests, and S3 presigned URLs) and curl --aws-sigv4 (the node scripts' Parameter Store calls).
 * Pure computation except one curl run.
 */
import { execFile } from 'node:child_process';
import { createServer, IncomingMessage } from 'node:http';
import { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256, SigV4Error, SigV4Key, SigV4Reason, verifySigV4 } from '../../lib/lab/sigv4';
import { awsJsonAuthError, queryAuthError, s3AuthError } from '../../lib/lab/sigv4-errors';
import { instanceRoleCredentials, labKeys, LAB_OPERATOR_CREDENTIALS } from '../../lib/lab/credentials';

const REGION = 'eu-west-1';
const ROLE = instanceRoleCredentials('i-0123456789abcdef0');
const keys = labKeys(() => ['i-0123456789abcdef0']);
const T0 = Date.UTC(2026, 11, 1, 3, 0, 0);

interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** Signs like SDK v3 does (the same signer), returning what goes on the wire. */
async function sdkSign(o: { creds?: SigV4Key; region?: string; service?: string; method?: string; path?: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string; s3?: boolean; at?: number }): Promise<Req> {
  const signer = new SignatureV4({ credentials: o.creds ?? LAB_OPERATOR_CREDENTIALS, region: o.region ?? REGION, service: o.service ?? 'ssm', sha256: NodeSha256, uriEscapePath: !o.s3, applyChecksum: !!o.s3 });
  const query = o.query ?? {};
  const out = await signer.sign(
    { method: o.method ?? 'POST', protocol: 'https:', hostname: 'ssm.eu-west-1.amazonaws.com', path: o.path ?? '/', query, headers: { host: 'ssm.eu-west-1.amazonaws.com', ...(o.headers ?? {}) }, ...(o.body !== undefined ? { body: o.body } : {}) },
    { signingDate: new Date(o.at ?? T0) },
  );
  // As the SDK writes a query: RFC 3986 escapes (a space is %20, never +).
  const qs = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return { method: out.method, url: (o.path ?? '/') + (qs ? `?${qs}` : ''), headers: out.headers, ...(o.body !== undefined ? { body: Buffer.from(o.body) } : {}) };
}

const SSM_BODY = '{"Name":"/swarm/c1/cluster-id"}';
const ssmHeaders = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.GetParameter' };
const verify = (r: Req, service = 'ssm', now = T0) => verifySigV4({ method: r.method, url: r.url, headers: r.headers, body: r.body }, { service, region: REGION, keys, now });
async function reason(p: Promise<unknown>): Promise<SigV4Reason> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SigV4Error) return e.reason;
    throw e;
  }
  throw new Error('the request was accepted');
}

describe('header-signed requests (SDK v3 signer)', () => {
  test('a request signed with a key the lab issued is accepted and names its key', async () => {
    const op = await verify(await sdkSign({ headers: ssmHeaders, body: SSM_BODY }));
    expect(op.accessKeyId).toBe(LAB_OPERATOR_CREDENTIALS.accessKeyId);
    const role = await verify(await sdkSign({ creds: ROLE, headers: ssmHeaders, body: SSM_BODY }));
    expect(role).toMatchObject({ instanceId: 'i-0123456789abcdef0' });
  });

  test('the wrong secret, region, service, an unknown key or a missing session token are refused', async () => {
    expect(await reason(verify(await sdkSign({ creds: { ...LAB_OPERATOR_CREDENTIALS, secretAccessKey: 'wrong' }, headers: ssmHeaders, body: SSM_BODY })))).toBe('mismatch');
    expect(await reason(verify(await sdkSign({ region: 'us-east-1', headers: ssmHeaders, body: SSM_BODY })))).toBe('wrong-region');
    expect(await reason(verify(await sdkSign({ service: 'ec2', headers: ssmHeaders, body: SSM_BODY })))).toBe('wrong-service');
    expect(await reason(verify(await sdkSign({ creds: { accessKeyId: 'AKIDSOMEONEELSE00000', secretAccessKey: 'x' }, headers: ssmHeaders, body: SSM_BODY })))).toBe('unknown-key');
    expect(await reason(verify(await sdkSign({ creds: { ...ROLE, sessionToken: undefined }, headers: ssmHeaders, body: SSM_BODY })))).toBe('bad-token');
  });

  test('a body or a signed header changed after signing is refused; an unsigned header may change', async () => {
    const r = await sdkSign({ headers: ssmHeaders, body: SSM_BODY });
    expect(await reason(verify({ ...r, body: Buffer.from('{"Name":"/swarm/c1/worker-token"}') }))).toBe('mismatch');
    expect(await reason(verify({ ...r, headers: { ...r.headers, 'x-amz-target': 'AmazonSSM.PutParameter' } }))).toBe('mismatch');
    await expect(verify({ ...r, headers: { ...r.headers, 'user-agent': 'other' } })).resolves.toBeDefined();
  });

  test('a request dated more than 15 minutes from now is refused; 14 minutes is fine', async () => {
    const r = await sdkSign({ headers: ssmHeaders, body: SSM_BODY });
    expect(await reason(verify(r, 'ssm', T0 + 16 * 60_000))).toBe('skewed');
    expect(await reason(verify(r, 'ssm', T0 - 16 * 60_000))).toBe('skewed');
    await expect(verify(r, 'ssm', T0 + 14 * 60_000)).resolves.toBeDefined();
  });

  test('no Authorization is "missing"; a truncated one "malformed"', async () => {
    expect(await reason(verify({ method: 'POST', url: '/', headers: {} }))).toBe('missing');
    expect(await reason(verify({ method: 'POST', url: '/', headers: { authorization: 'AWS4-HMAC-SHA256 Credential=lab-operator' } }))).toBe('malformed');
  });

  test('a Query (EC2) form POST with a query string is verified', async () => {
    const body = 'Action=DescribeInstances&Version=2016-11-15';
    const r = await sdkSign({ service: 'ec2', query: { a: 'b c' }, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body });
    await expect(verify(r, 'ec2')).resolves.toBeDefined();
    expect(await reason(verify({ ...r, url: '/?a=b' }, 'ec2'))).toBe('mismatch');
  });
});

describe('S3', () => {
  const put = (o: { creds?: SigV4Key; body?: string; sha?: string } = {}) =>
    sdkSign({ s3: true, service: 's3', method: 'PUT', path: '/staging/bundles/a%20b/..%2F1.tgz', creds: o.creds, headers: o.sha ? { 'x-amz-content-sha256': o.sha } : {}, body: o.body ?? 'bytes' });

  test('a PutObject is verified by its signed payload hash, the path as sent (S3 encodes once)', async () => {
    const r = await put();
    await expect(verifySigV4({ ...r, body: undefined }, { service: 's3', region: REGION, keys, now: T0 })).resolves.toBeDefined();
    expect(await reason(verifySigV4({ ...r, url: '/staging/bundles/a%20b/x.tgz' }, { service: 's3', region: REGION, keys, now: T0 }))).toBe('mismatch');
  });

  test('an aws-chunked upload is verified by its seed signature', async () => {
    const r = await put({ sha: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', body: '' });
    await expect(verifySigV4(r, { service: 's3', region: REGION, keys, now: T0 })).resolves.toBeDefined();
    const forged = { ...r, headers: { ...r.headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } };
    expect(await reason(verifySigV4(forged, { service: 's3', region: REGION, keys, now: T0 }))).toBe('mismatch');
  });

  test('a presigned GET is accepted until X-Amz-Expires, then "expired"; a changed URL is refused', async () => {
    const signer = new SignatureV4({ credentials: ROLE, region: REGION, service: 's3', sha256: NodeSha256, uriEscapePath: false });
    const p = await signer.presign(
      { method: 'GET', protocol: 'https:', hostname: 'staging.s3.eu-west-1.amazonaws.com', path: '/bundles/1.tgz', query: { 'x-id': 'GetObject' }, headers: { host: 'staging.s3.eu-west-1.amazonaws.com', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { signingDate: new Date(T0), expiresIn: 300, unsignableHeaders: new Set(['x-amz-content-sha256']), unhoistableHeaders: new Set(['x-amz-content-sha256']) },
    );
    const url = `/bundles/1.tgz?${new URLSearchParams(p.query as Record<string, string>).toString()}`;
    const req = { method: 'GET', url, headers: { host: 'staging.s3.eu-west-1.amazonaws.com' } };
    const opts = { service: 's3', region: REGION, keys };
    await expect(verifySigV4(req, { ...opts, now: T0 + 299_000 })).resolves.toMatchObject({ instanceId: 'i-0123456789abcdef0' });
    expect(await reason(verifySigV4(req, { ...opts, now: T0 + 301_000 }))).toBe('expired');
    expect(await reason(verifySigV4({ ...req, url: url.replace('/1.tgz', '/2.tgz') }, { ...opts, now: T0 }))).toBe('mismatch');
    expect(await reason(verifySigV4(req, { ...opts, service: 'ssm', now: T0 }))).toBe('missing');
  });
});

describe("each protocol's answer", () => {
  const e = (r: SigV4Reason) => new SigV4Error(r, 'x', { region: 'us-east-1', service: 'ssm', accessKeyId: 'AKIDX' });
  test('SSM (JSON), EC2 and Auto Scaling (Query), S3 (REST) answer as the services do', () => {
    expect(awsJsonAuthError(e('mismatch'), 'ssm')).toMatchObject({ code: 'InvalidSignatureException', status: 400 });
    expect(awsJsonAuthError(e('unknown-key'), 'ssm')).toMatchObject({ code: 'UnrecognizedClientException', status: 400 });
    expect(awsJsonAuthError(e('wrong-region'), 'ssm').message).toBe("Credential should be scoped to a valid region, not 'us-east-1'.");
    expect(queryAuthError(e('unknown-key'), 'ec2')).toMatchObject({ code: 'AuthFailure', status: 401 });
    expect(queryAuthError(e('unknown-key'), 'autoscaling')).toMatchObject({ code: 'InvalidClientTokenId', status: 403 });
    expect(queryAuthError(e('mismatch'), 'autoscaling')).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(queryAuthError(e('malformed'), 'ec2')).toMatchObject({ code: 'IncompleteSignature', status: 400 });
    expect(s3AuthError(e('mismatch'), REGION)).toMatchObject({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(s3AuthError(e('unknown-key'), REGION)).toMatchObject({ code: 'InvalidAccessKeyId', status: 403, extra: { AWSAccessKeyId: 'AKIDX' } });
    expect(s3AuthError(e('wrong-region'), REGION)).toMatchObject({ code: 'AuthorizationHeaderMalformed', status: 400, extra: { Region: REGION } });
  });
});

test('curl --aws-sigv4 (what the node scripts send to Parameter Store) verifies; with the wrong secret it does not', async () => {
  const seen: Array<Promise<SigV4Reason | 'ok'>> = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const r = verifySigV4({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }, { service: 'ssm', region: REGION, keys }).then(
        () => 'ok' as const,
        (err: unknown) => (err instanceof SigV4Error ? err.reason : Promise.reject(err)),
      );
      seen.push(r);
      void r.finally(() => res.end('{}'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const curl = (secret: string) =>
    new Promise<void>((resolve, reject) =>
      execFile(
        'curl',
        ['-q', '-sS', '--max-time', '10', '--aws-sigv4', `aws:amz:${REGION}:ssm`, '--user', `${ROLE.accessKeyId}:${secret}`, '-H', `X-Amz-Security-Token: ${ROLE.sessionToken}`, '-H', 'Content-Type: application/x-amz-json-1.1', '-H', 'X-Amz-Target: AmazonSSM.GetParameter', '--data-binary', SSM_BODY, url],
        { timeout: 15_000 },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  try {
    await curl(ROLE.secretAccessKey);
    await curl('0'.repeat(40));
    expect(await Promise.all(seen)).toEqual(['ok', 'mismatch']);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
