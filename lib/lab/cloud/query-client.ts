/**
 * The operator's client for the lab's Query APIs (EC2, Auto Scaling) on loopback: what `aws ec2 …` and
 * `aws autoscaling …` would send, signed (SigV4, @smithy/signature-v4) with the lab operator's key, which the lab
 * verifies like AWS. Errors carry the service's error code.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { SwarmError } from '../../errors';
import { LAB_OPERATOR_CREDENTIALS } from '../credentials';
import { NodeSha256 } from '../sigv4';
import { EC2_VERSION } from '../ec2/query-api';

export class LabApiError extends SwarmError {}

/** POSTs one Query action; resolves with the XML answer, throws SwarmError (cluster fault) naming the code. */
export async function queryLab(
  endpoint: string,
  region: string,
  version: string,
  action: string,
  params: Record<string, string | number | boolean> = {},
  timeoutMs = 30_000,
): Promise<string> {
  const body = new URLSearchParams({ Action: action, Version: version, ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])) }).toString();
  const url = new URL(endpoint);
  const signer = new SignatureV4({ credentials: LAB_OPERATOR_CREDENTIALS, region, service: version === EC2_VERSION ? 'ec2' : 'autoscaling', sha256: NodeSha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  let res: Response;
  try {
    // fetch sets Host itself, to the value signed.
    const { host: _host, ...headers } = signed.headers;
    res = await fetch(new URL('/', endpoint), { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw SwarmError.environment('LAB_API_UNREACHABLE', `the lab cloud at ${endpoint} did not answer ${action}: ${(e as Error).message}`, e);
  }
  const text = await res.text();
  if (res.status !== 200) {
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `HTTP ${res.status}`;
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? text.slice(0, 300);
    throw SwarmError.cluster('LAB_API_ERROR', `${action}: ${code}: ${message}`);
  }
  return text;
}
