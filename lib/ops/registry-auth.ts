/**
 * `deploy --registry-auth` (design.md, "Private images"): the operator's `docker login` credentials for the
 * registries the stack's images name, read where the operator runs `ec2-swarm` (docker's own config and
 * credential helpers), reduced to a `config.json` holding only those registries. It travels in the deploy bundle
 * (the staging channel: never in an SSM command), the manager deploys with it and `--with-registry-auth`, and the
 * file goes with the bundle's private directory when the deploy script ends.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SwarmError } from '../errors';

/** Docker Hub's key in a docker config (what `docker login` writes for docker.io). */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
/** Where the credentials sit inside the bundle (the manager points DOCKER_CONFIG at its directory). */
export const REGISTRY_AUTH_PATH = 'auth/config.json';

const HELPER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The registry an image reference names, as docker normalises it: the first path component when it has a dot or
 * a port or is `localhost`, otherwise Docker Hub.
 */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  if (first === 'localhost' || first.includes('.') || first.includes(':')) return first === 'index.docker.io' ? 'docker.io' : first;
  return 'docker.io';
}

/** A config key (`https://host/v1/`, `host`, `http://host`) as a registry host. */
function hostOfKey(key: string): string {
  const h = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? 'docker.io' : h;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string; username?: string; password?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface AuthEntry {
  readonly auth?: string;
  readonly identitytoken?: string;
}

export interface RegistryAuthOptions {
  /** @default process.env (DOCKER_CONFIG, HOME) */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Runs `docker-credential-<helper> get` (tests inject it). */
  readonly runHelper?: (helper: string, serverUrl: string) => string;
}

export interface RegistryAuth {
  /** The config.json shipped in the bundle: `auths` for exactly `registries`. Never print it. */
  readonly config: Buffer;
  /** The registries with credentials, for messages (host names only). */
  readonly registries: readonly string[];
  /** The images' registries the operator has no credentials for (pulled anonymously). */
  readonly anonymous: readonly string[];
}

function defaultRunHelper(helper: string, serverUrl: string): string {
  return execFileSync(`docker-credential-${helper}`, ['get'], { input: serverUrl, encoding: 'utf8', timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
}

function readDockerConfig(env: Readonly<Record<string, string | undefined>>): { file: string; config: DockerConfig } {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { file, config: {} };
    throw SwarmError.user('REGISTRY_AUTH_UNREADABLE', `--registry-auth: cannot read ${file}: ${(e as Error).message}`, e);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return { file, config: parsed as DockerConfig };
  } catch (e) {
    // The parser's message may quote the file's text: name the file only.
    throw SwarmError.user('REGISTRY_AUTH_UNREADABLE', `--registry-auth: ${file} is not a docker config (a JSON object)`, e);
  }
}

/** Asks a credential helper; its error output may carry anything, so only the helper's name is reported. */
function fromHelper(helper: string, registry: string, opts: RegistryAuthOptions): AuthEntry | undefined {
  if (!HELPER.test(helper)) throw SwarmError.user('REGISTRY_AUTH_HELPER', `--registry-auth: credential helper name ${JSON.stringify(helper)} is not valid`);
  const serverUrl = registry === 'docker.io' ? DOCKER_HUB_KEY : registry;
  let out: string;
  try {
    out = (opts.runHelper ?? defaultRunHelper)(helper, serverUrl);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string };
    // "credentials not found in native keychain" is the protocol's answer for "none": anonymous.
    if (typeof err.stdout === 'string' && /credentials not found/i.test(err.stdout)) return undefined;
    if (err.code === 'ENOENT') throw SwarmError.user('REGISTRY_AUTH_HELPER', `--registry-auth: docker-credential-${helper} (the credential helper your docker config names for ${registry}) is not on PATH`);
    throw SwarmError.user('REGISTRY_AUTH_HELPER', `--registry-auth: docker-credential-${helper} could not give the credentials for ${registry}`);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(out) as typeof answer;
  } catch {
    throw SwarmError.user('REGISTRY_AUTH_HELPER', `--registry-auth: docker-credential-${helper} answered for ${registry} with something that is not JSON`);
  }
  if (typeof answer.Secret !== 'string' || answer.Secret === '') return undefined;
  // `<token>` is the protocol's marker for an identity token instead of a password.
  if (answer.Username === '<token>') return { identitytoken: answer.Secret };
  if (typeof answer.Username !== 'string') return undefined;
  return { auth: Buffer.from(`${answer.Username}:${answer.Secret}`).toString('base64') };
}

function fromAuths(config: DockerConfig, registry: string): AuthEntry | undefined {
  for (const [key, v] of Object.entries(config.auths ?? {})) {
    if (hostOfKey(key) !== registry || typeof v !== 'object' || v === null) continue;
    if (typeof v.identitytoken === 'string' && v.identitytoken) return { identitytoken: v.identitytoken };
    if (typeof v.auth === 'string' && v.auth) return { auth: v.auth };
    if (typeof v.username === 'string' && typeof v.password === 'string') return { auth: Buffer.from(`${v.username}:${v.password}`).toString('base64') };
  }
  return undefined;
}

/**
 * The credentials for the images' registries, looked up as the docker CLI does: a `credHelpers` entry for the
 * registry, else the `credsStore`, else `auths`. A registry without credentials is listed as anonymous; none at
 * all is the user's error (exit 2: `--registry-auth` would ship nothing).
 */
export function collectRegistryAuth(images: readonly string[], opts: RegistryAuthOptions = {}): RegistryAuth {
  const registries = [...new Set(images.map(registryOf))].sort();
  if (registries.length === 0) throw SwarmError.user('REGISTRY_AUTH_NO_IMAGES', '--registry-auth: the stack names no image');
  const { file, config } = readDockerConfig(opts.env ?? process.env);
  const helpers = Object.fromEntries(Object.entries(config.credHelpers ?? {}).map(([k, v]) => [hostOfKey(k), v]));
  const auths: Record<string, AuthEntry> = {};
  const anonymous: string[] = [];
  for (const r of registries) {
    const helper = helpers[r];
    const entry = helper
      ? fromHelper(helper, r, opts)
      : (config.credsStore ? fromHelper(config.credsStore, r, opts) : undefined) ?? fromAuths(config, r);
    if (entry) auths[r === 'docker.io' ? DOCKER_HUB_KEY : r] = entry;
    else anonymous.push(r);
  }
  const found = registries.filter((r) => !anonymous.includes(r));
  if (found.length === 0) {
    throw SwarmError.user(
      'REGISTRY_AUTH_NONE',
      `--registry-auth: ${file} has no credentials for ${registries.join(', ')} (the registries of the stack's images): run \`docker login${registries[0] === 'docker.io' ? '' : ` ${registries[0]}`}\` first`,
    );
  }
  return { config: Buffer.from(JSON.stringify({ auths }, null, 2) + '\n'), registries: found, anonymous };
}

/** The images of a resolved compose model's services (interpolated already). */
export function imagesOfModel(model: Record<string, unknown>): string[] {
  const services = (model.services ?? {}) as Record<string, { image?: unknown }>;
  return Object.values(services)
    .map((s) => s?.image)
    .filter((i): i is string => typeof i === 'string' && i !== '');
}
