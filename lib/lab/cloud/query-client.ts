/**
 * The operator's client for the lab's Query APIs (EC2, Auto Scaling) on loopback: what `aws ec2 …` and
 * `aws autoscaling …` would send, for the lab's test helpers. Errors carry the service's error code.
 */
import { SwarmError } from '../../errors';

export class LabApiError extends SwarmError {}

/** POSTs one Query action; resolves with the XML answer, throws SwarmError (cluster fault) naming the code. */
export async function queryLab(endpoint: string, version: string, action: string, params: Record<string, string | number | boolean> = {}, timeoutMs = 30_000): Promise<string> {
  const body = new URLSearchParams({ Action: action, Version: version, ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])) });
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', authorization: 'AWS4-HMAC-SHA256 Credential=lab-operator' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
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
