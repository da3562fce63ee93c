/**
 * Checks an AWS Signature Version 4 `Authorization` header the way AWS does for a JSON-protocol POST, so the fake
 * Parameter Store (parameter-store.ts) accepts only what the real service would: the node scripts sign with
 * `curl --aws-sigv4` and the instance role's keys. Returns the credential's access key id, or throws SigV4Error
 * with the error code and message the service answers with.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SigningKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly region: string;
}

export class SigV4Error extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
/** AWS refuses requests whose X-Amz-Date is further than this from its clock. */
const MAX_SKEW_MS = 15 * 60 * 1000;

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** Verifies `headers` + `body` of a `POST path`; `keys` finds the signer's key by access key id. */
export function verifySigV4<K extends SigningKey>(
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
  service: string,
  keys: (accessKeyId: string) => K | undefined,
  now: number = Date.now(),
): K {
  const auth = headers.authorization;
  if (typeof auth !== 'string') throw new SigV4Error('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH.exec(auth);
  if (!m) throw new SigV4Error('IncompleteSignatureException', `Authorization header requires Credential, SignedHeaders and Signature (got ${auth.slice(0, 40)}…)`);
  const [, keyId, day, region, svc, signedList, signature] = m;
  const key = keys(keyId);
  if (!key) throw new SigV4Error('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (headers['x-amz-security-token'] !== key.sessionToken) {
    throw new SigV4Error('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  if (svc !== service || region !== key.region) {
    throw new SigV4Error('InvalidSignatureException', `Credential should be scoped to a valid region and service (${key.region}/${service}), not ${region}/${svc}.`);
  }
  const signed = signedList.split(';');
  for (const h of ['host', 'x-amz-date']) {
    if (!signed.includes(h)) throw new SigV4Error('InvalidSignatureException', `'${h}' must be a signed header.`);
  }
  const amzDate = String(headers['x-amz-date'] ?? '');
  const t = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!t || amzDate.slice(0, 8) !== day) throw new SigV4Error('IncompleteSignatureException', `X-Amz-Date ${amzDate} does not match the credential date ${day}.`);
  const when = Date.UTC(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]);
  if (Math.abs(now - when) > MAX_SKEW_MS) throw new SigV4Error('InvalidSignatureException', 'Signature expired or not yet valid.');

  const canonicalHeaders = signed
    .map((h) => {
      const v = headers[h];
      if (v === undefined) throw new SigV4Error('InvalidSignatureException', `Signed header ${h} is missing.`);
      return `${h}:${(Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalRequest = [method, path, '', canonicalHeaders, signedList, sha256(body)].join('\n');
  const scope = `${day}/${region}/${svc}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, day), region), svc), 'aws4_request');
  const expected = hmac(signingKey, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw new SigV4Error('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
  }
  return key;
}
