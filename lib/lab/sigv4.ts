/**
 * Verifies AWS Signature Version 4 as the services do, for the lab's stand-ins (SSM, EC2/Auto Scaling Query, S3)
 * and the node-script tests' fake Parameter Store: a request signed with a key the lab did not issue, the wrong
 * secret, region or service, or altered after signing is refused, as on AWS (docs/design.md, decision 24).
 *
 * The signature is recomputed with @smithy/signature-v4 (the AWS SDK's own signer) over the request as it arrived:
 * the headers the client listed as signed, the raw path and query, and the payload hash (the body's, or S3's
 * `x-amz-content-sha256`, so aws-chunked uploads are checked by their seed signature). Header-signed requests and
 * S3 presigned URLs are handled; a failure is a SigV4Error whose `reason` each endpoint turns into its service's
 * error (sigv4-errors.ts).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SigV4Key {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials (an instance role's): the request must carry it in X-Amz-Security-Token. */
  readonly sessionToken?: string;
  /** The region this key's requests must be scoped to, when it differs from the endpoint's. */
  readonly region?: string;
}

export type SigV4Reason =
  | 'missing' // no Authorization header, no presigned query
  | 'malformed' // not a well-formed AWS4-HMAC-SHA256 signature
  | 'unknown-key' // the access key id is not one the lab issued
  | 'bad-token' // the session token does not belong to the key (or is missing)
  | 'wrong-region'
  | 'wrong-service'
  | 'mismatch' // the signature does not match
  | 'skewed' // X-Amz-Date more than 15 minutes from now
  | 'expired'; // a presigned URL past its X-Amz-Expires

export class SigV4Error extends Error {
  constructor(
    readonly reason: SigV4Reason,
    message: string,
    /** What the client put in its credential scope (region/service), for the services' messages. */
    readonly scope: { readonly region?: string; readonly service?: string; readonly accessKeyId?: string } = {},
  ) {
    super(message);
    this.name = 'SigV4Error';
  }
}

export interface SignedRequest {
  readonly method: string;
  /** The raw request target: path and query exactly as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The body (not needed when `x-amz-content-sha256` is signed, as S3 clients do). */
  readonly body?: Buffer;
}

export interface VerifyOptions<K extends SigV4Key> {
  /** The signing name the endpoint answers to: 'ssm', 'ec2', 'autoscaling', 's3'. */
  readonly service: string;
  /** The endpoint's region (a key's own `region` overrides it). */
  readonly region: string;
  /** The secret of an access key id the lab issued, or undefined. */
  readonly keys: (accessKeyId: string) => K | undefined;
  /** @default Date.now() */
  readonly now?: number;
}

/** AWS refuses requests whose X-Amz-Date is further than this from its clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
const ALGORITHM = 'AWS4-HMAC-SHA256';
const AUTH = /^AWS4-HMAC-SHA256 +Credential=([^,\s]+) *, *SignedHeaders=([^,\s]+) *, *Signature=([0-9a-f]{64})$/;
const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token'];

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data): string | Buffer => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d));

/** node:crypto in the shape the smithy signer asks for (a hash, or an HMAC when given a key). */
export class NodeSha256 {
  private readonly h;
  constructor(secret?: Data) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Data): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.h.digest());
  }
}

/** Splits a raw query into decoded names and values (repeated names become lists), as the canonical query needs. */
function parseRawQuery(q: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const part of q.split('&')) {
    if (part === '') continue;
    const i = part.indexOf('=');
    const dec = (s: string): string => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    };
    const k = dec(i < 0 ? part : part.slice(0, i));
    const v = i < 0 ? '' : dec(part.slice(i + 1));
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function parseAmzDate(v: string): number | undefined {
  const t = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  return t ? Date.UTC(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]) : undefined;
}

const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
};

/**
 * Checks the request's SigV4 signature; resolves with the signer's key, or rejects with a SigV4Error. S3 (service
 * 's3') also takes presigned URLs and signs its path as sent; the other services' paths are normalized and
 * encoded twice, as AWS does.
 */
export async function verifySigV4<K extends SigV4Key>(req: SignedRequest, opts: VerifyOptions<K>): Promise<K> {
  const now = opts.now ?? Date.now();
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = parseRawQuery(q < 0 ? '' : req.url.slice(q + 1));
  const auth = header(req.headers, 'authorization');
  const presigned = auth === undefined && query['X-Amz-Algorithm'] !== undefined;
  if (auth === undefined && !presigned) throw new SigV4Error('missing', 'Missing Authentication Token');

  let credential: string;
  let signedList: string;
  let signature: string;
  let amzDate: string;
  let expires: number | undefined;
  let token: string | undefined;
  if (presigned) {
    const p = (k: string): string | undefined => (typeof query[k] === 'string' ? (query[k] as string) : undefined);
    if (opts.service !== 's3') throw new SigV4Error('missing', 'Missing Authentication Token');
    if (p('X-Amz-Algorithm') !== ALGORITHM) throw new SigV4Error('malformed', `X-Amz-Algorithm must be ${ALGORITHM}`);
    const missing = ['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'].filter((k) => p(k) === undefined);
    if (missing.length) throw new SigV4Error('malformed', `the presigned URL lacks ${missing.join(', ')}`);
    [credential, signedList, signature, amzDate] = [p('X-Amz-Credential')!, p('X-Amz-SignedHeaders')!, p('X-Amz-Signature')!, p('X-Amz-Date')!];
    expires = Number(p('X-Amz-Expires'));
    if (!Number.isInteger(expires) || expires < 1 || expires > 604800) throw new SigV4Error('malformed', 'X-Amz-Expires must be between 1 and 604800 seconds');
    if (!/^[0-9a-f]{64}$/.test(signature)) throw new SigV4Error('malformed', 'X-Amz-Signature must be 64 hex digits');
    token = p('X-Amz-Security-Token');
  } else {
    const m = AUTH.exec(auth!.trim());
    if (!m) {
      throw new SigV4Error('malformed', `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters in the ${ALGORITHM} form.`);
    }
    [, credential, signedList, signature] = m;
    amzDate = header(req.headers, 'x-amz-date') ?? '';
    token = header(req.headers, 'x-amz-security-token');
  }

  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1])) {
    throw new SigV4Error('malformed', `Credential must be <access key id>/<yyyymmdd>/<region>/<service>/aws4_request (got ${parts.slice(1).join('/')})`);
  }
  const [keyId, day, region, service] = parts;
  const scope = { region, service, accessKeyId: keyId };
  const when = parseAmzDate(amzDate);
  if (when === undefined) throw new SigV4Error('malformed', `X-Amz-Date must be yyyymmddThhmmssZ (got ${JSON.stringify(amzDate)})`, scope);
  if (amzDate.slice(0, 8) !== day) throw new SigV4Error('malformed', `the credential date ${day} is not the day of X-Amz-Date ${amzDate}`, scope);
  const signed = signedList.split(';');
  if (!signed.includes('host')) throw new SigV4Error('malformed', "'Host' must be a signed header.", scope);

  const key = opts.keys(keyId);
  if (!key) throw new SigV4Error('unknown-key', `the access key id ${keyId} was not issued by the lab`, scope);
  if ((key.sessionToken ?? undefined) !== token) throw new SigV4Error('bad-token', 'the security token does not belong to the access key', scope);
  const expectRegion = key.region ?? opts.region;
  if (region !== expectRegion) throw new SigV4Error('wrong-region', `the credential is scoped to region ${region}, the endpoint is in ${expectRegion}`, scope);
  if (service !== opts.service) throw new SigV4Error('wrong-service', `the credential is scoped to service ${service}, the endpoint is ${opts.service}`, scope);

  if (presigned) {
    if (now > when + expires! * 1000) throw new SigV4Error('expired', 'Request has expired', scope);
    if (when - now > MAX_SKEW_MS) throw new SigV4Error('skewed', 'Request is not yet valid', scope);
  } else if (Math.abs(now - when) > MAX_SKEW_MS) {
    throw new SigV4Error('skewed', `Signature expired: ${amzDate} is more than 15 minutes from the server's time ${new Date(now).toISOString()}`, scope);
  }

  // The request as the client signed it: only its signed headers (the signer adds X-Amz-Date and the token itself).
  const headers: Record<string, string> = {};
  for (const h of signed) {
    const v = header(req.headers, h);
    if (v === undefined) throw new SigV4Error('mismatch', `the signed header ${h} is missing from the request`, scope);
    if (h !== 'x-amz-date' && h !== 'x-amz-security-token') headers[h] = v;
  }
  const s3 = opts.service === 's3';
  const payloadHeader = header(req.headers, 'x-amz-content-sha256');
  let body: Buffer | undefined = req.body;
  if (!s3 && payloadHeader !== undefined && payloadHeader !== createHash('sha256').update(req.body ?? Buffer.alloc(0)).digest('hex')) {
    // Outside S3 the service hashes the body itself: a header claiming another hash cannot be right.
    throw new SigV4Error('mismatch', 'the body does not match its x-amz-content-sha256', scope);
  }
  if (s3 && !presigned && payloadHeader === undefined) throw new SigV4Error('malformed', 'Missing required header for this request: x-amz-content-sha256', scope);
  if (s3) body = undefined;
  const unsigned = new Set<string>();
  if (!signed.includes('x-amz-date')) unsigned.add('x-amz-date');
  if (presigned) {
    headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    if (!signed.includes('x-amz-content-sha256')) unsigned.add('x-amz-content-sha256');
  } else if (s3) {
    headers['x-amz-content-sha256'] = payloadHeader!;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: keyId, secretAccessKey: key.secretAccessKey, ...(token !== undefined ? { sessionToken: token } : {}) },
    region,
    service,
    sha256: NodeSha256,
    uriEscapePath: !s3,
    applyChecksum: false,
  });
  const unsignedQuery = Object.fromEntries(Object.entries(query).filter(([k]) => !(presigned && PRESIGN_PARAMS.includes(k))));
  const request = { method: req.method, protocol: 'https:', hostname: headers.host, path, query: unsignedQuery, headers, ...(body !== undefined ? { body } : {}) };
  const signedSet = new Set(signed);
  let expected: string;
  if (presigned) {
    const out = await signer.presign(request, { signingDate: new Date(when), expiresIn: expires, signableHeaders: signedSet, unsignableHeaders: unsigned, unhoistableHeaders: new Set(Object.keys(headers)) });
    expected = String(out.query?.['X-Amz-Signature']);
    if (out.query?.['X-Amz-SignedHeaders'] !== signedList) throw new SigV4Error('mismatch', `SignedHeaders ${signedList} are not in canonical order`, scope);
  } else {
    if (token !== undefined && !signed.includes('x-amz-security-token')) {
      // The token travels unsigned (allowed); sign as the client did, then the header must not be listed.
      unsigned.add('x-amz-security-token');
    }
    const out = await signer.sign(request, { signingDate: new Date(when), signableHeaders: signedSet, unsignableHeaders: unsigned });
    const m = AUTH.exec(String(out.headers.authorization));
    if (!m || m[2] !== signedList) throw new SigV4Error('mismatch', `SignedHeaders ${signedList} are not the request's headers in canonical order`, scope);
    expected = m[3];
  }
  if (!timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(signature, 'hex'))) {
    throw new SigV4Error('mismatch', 'The request signature we calculated does not match the signature you provided.', scope);
  }
  return key;
}
