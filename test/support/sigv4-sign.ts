/**
 * Signs a hand-built request as SDK v3 would (its own signer), for tests that speak to the lab's endpoints with
 * node:http: the headers to send, Authorization included.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { LAB_OPERATOR_CREDENTIALS } from '../../lib/lab/credentials';
import { NodeSha256, SigV4Key } from '../../lib/lab/sigv4';

export async function signHeaders(o: {
  readonly host: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly region: string;
  readonly service: string;
  readonly creds?: SigV4Key;
  readonly method?: string;
  readonly path?: string;
}): Promise<Record<string, string>> {
  const signer = new SignatureV4({ credentials: o.creds ?? LAB_OPERATOR_CREDENTIALS, region: o.region, service: o.service, sha256: NodeSha256, uriEscapePath: o.service !== 's3', applyChecksum: o.service === 's3' });
  const out = await signer.sign({ method: o.method ?? 'POST', protocol: 'http:', hostname: o.host, path: o.path ?? '/', query: {}, headers: { ...o.headers, host: o.host }, ...(o.body !== undefined ? { body: o.body } : {}) });
  return out.headers;
}
