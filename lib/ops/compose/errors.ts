/**
 * Errors of the compose loader: always the user's input (exit 2), always naming the file and the key path,
 * never echoing a value (values may be secrets or environment values).
 */
import { SwarmError } from '../../errors';

export type KeyPath = readonly (string | number)[];

/** `services.web.ports[0].published`, the way docker's loader names keys. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out === '' ? '(top level)' : out;
}

export function composeError(source: string, path: KeyPath | undefined, message: string, cause?: unknown): SwarmError {
  const where = path === undefined ? '' : `${formatPath(path)}: `;
  return SwarmError.user('COMPOSE_INVALID', `${source}: ${where}${message}`, cause);
}
