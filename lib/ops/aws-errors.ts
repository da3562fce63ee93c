/**
 * AWS SDK errors turned into SwarmErrors a person can act on. Loads no SDK: it only reads error names.
 */
import { SwarmError } from '../errors';

/** Join tokens must never reach output; anything echoed from a remote command passes through here. */
export function redactSecrets(text: string): string {
  return text.replace(/SWMTKN-[0-9A-Za-z-]+/g, 'SWMTKN-<redacted>');
}

/** The last lines of a command's stderr for an error message, redacted and bounded. */
export function stderrTail(stderr: string | undefined, maxLines = 20, maxChars = 2000): string {
  if (!stderr) return '';
  const lines = stderr.replace(/\s+$/, '').split('\n');
  let tail = lines.slice(-maxLines).join('\n');
  if (tail.length > maxChars) tail = '…' + tail.slice(-maxChars);
  return redactSecrets(tail);
}

function errorName(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { name?: unknown; code?: unknown; Code?: unknown };
    for (const v of [o.name, o.Code, o.code]) if (typeof v === 'string' && v !== 'Error') return v;
  }
  return 'Error';
}

export function isAwsError(e: unknown, ...names: string[]): boolean {
  return names.includes(errorName(e));
}

/**
 * Wraps an SDK failure of `what` (e.g. "SSM SendCommand") as an environment error with a hint: the cluster and
 * the user's input are fine, the credentials, network or permissions are not.
 */
export function fromAwsError(e: unknown, what: string, hints: { endpoint?: string } = {}): SwarmError {
  if (e instanceof SwarmError) return e;
  const name = errorName(e);
  const message = redactSecrets(e instanceof Error ? e.message : String(e));
  const netCode = (e as { code?: string } | undefined)?.code;
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return SwarmError.environment(
      'AWS_CREDENTIALS',
      `${what}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run on a machine with a role`,
      e,
    );
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH'].includes(netCode ?? '')) {
    return SwarmError.environment(
      'AWS_UNREACHABLE',
      `${what}: cannot reach ${hints.endpoint ?? 'the AWS endpoint'} (${netCode}); check the network and the region`,
      e,
    );
  }
  if (['AccessDeniedException', 'AccessDenied', 'UnauthorizedOperation', 'UnrecognizedClientException', 'ExpiredTokenException', 'InvalidClientTokenId'].includes(name)) {
    return SwarmError.environment('AWS_ACCESS_DENIED', `${what}: ${name}: ${message}; check the credentials and their IAM permissions`, e);
  }
  return SwarmError.environment('AWS_ERROR', `${what} failed: ${name === 'Error' ? '' : name + ': '}${message}`, e);
}
