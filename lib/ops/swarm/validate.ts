/**
 * Validation of every value that reaches a shell on the manager (decision 6). Each check throws
 * SwarmError(fault user) naming the field, before any runner call. Quoting (script.ts) is the second line of
 * defence; these rules keep values to what Docker itself accepts, so errors are early and clear.
 */
import { SwarmError } from '../../errors';

/** swarmkit's controlapi rule for service names (isValidDNSName) plus its 63-character limit. */
export const SERVICE_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
export const SERVICE_NAME_MAX = 63;

/** A project (stack) name as docker compose accepts it: already normalised, non-empty. */
export const STACK_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * An image reference as the distribution reference grammar defines it: [host[:port]/]path[:tag][@digest].
 * Stricter than Docker in one way only: no uppercase in the host either.
 */
const NAME_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)';
const TAG = '(?::[\\w][\\w.-]{0,127})';
const DIGEST = '(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})';
export const IMAGE_REF = new RegExp(`^${HOST}?${NAME_COMPONENT}(?:/${NAME_COMPONENT})*${TAG}?${DIGEST}?$`);

export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Swarm node ids: 25 lowercase base-36 characters. */
export const NODE_ID = /^[a-z0-9]{25}$/;

function fail(code: string, field: string, value: unknown, rule: string): never {
  throw SwarmError.user(code, `${field}: ${JSON.stringify(value)} ${rule}`);
}

export function assertServiceName(name: unknown, field = 'service name'): string {
  if (typeof name !== 'string' || !SERVICE_NAME.test(name) || name.length > SERVICE_NAME_MAX) {
    fail('INVALID_SERVICE_NAME', field, name, `is not a valid service name: letters, digits, '-' and '_', starting and ending with a letter or digit, at most ${SERVICE_NAME_MAX} characters`);
  }
  return name;
}

export function assertStackName(name: unknown, field = 'stack name'): string {
  if (typeof name !== 'string' || !STACK_NAME.test(name) || name.length > SERVICE_NAME_MAX - 2) {
    fail('INVALID_STACK_NAME', field, name, 'is not a valid stack name: lowercase letters, digits, \'-\' and \'_\', starting with a letter or digit (as docker compose normalises project names)');
  }
  return name;
}

export function assertImage(image: unknown, field = 'image'): string {
  if (typeof image !== 'string' || image.length > 512 || !IMAGE_REF.test(image)) {
    fail('INVALID_IMAGE', field, image, 'is not an image reference such as nginx:1.27 or registry.example.com:5000/team/app@sha256:…');
  }
  return image;
}

export function assertEnvKey(key: unknown, field = 'env key'): string {
  if (typeof key !== 'string' || !ENV_KEY.test(key)) {
    fail('INVALID_ENV_KEY', field, key, 'is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)');
  }
  return key;
}

export function assertNodeId(id: unknown, field = 'node id'): string {
  if (typeof id !== 'string' || !NODE_ID.test(id)) fail('INVALID_NODE_ID', field, id, 'is not a swarm node id');
  return id;
}

/**
 * docker compose's project name normalisation (compose-go `NormalizeProjectName`): lowercase, keep only
 * [a-z0-9_-], then trim leading '_' and '-'. The default stack name is the compose file's directory, normalised.
 */
export function normaliseProjectName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
}
