/**
 * Pass 6: the deploy bundle: the resolved compose file plus every file it references, and nothing else.
 * Configs and secrets from files get content-hashed names (`STACK_KEY_<hash>`): swarm configs and secrets are
 * immutable, so a changed file becomes a new object and the services using it roll; the superseded ones are
 * pruned after the deploy (deploy-script.ts). `$` is escaped as `$$` because `docker stack deploy` interpolates
 * the file again on the manager, where the operator's values must reach the containers unchanged.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { ComposeProject } from './project';

type Obj = Record<string, unknown>;

export interface BundleFile {
  /** Relative to the bundle's directory, e.g. `files/config-0`. */
  readonly path: string;
  readonly content: Buffer;
}

export interface SwarmObjectName {
  readonly kind: 'config' | 'secret';
  readonly key: string;
  readonly name: string;
}

export interface ComposeBundle {
  readonly stack: string;
  /** The resolved compose file, what `docker stack deploy -c` reads on the manager. */
  readonly compose: string;
  readonly files: readonly BundleFile[];
  /** The content-hashed config and secret names this deploy creates. */
  readonly objects: readonly SwarmObjectName[];
}

/** Hex digits of the content hash kept in names: enough to never collide within a stack's history. */
export const HASH_LENGTH = 12;
/** Swarm's limit on config and secret names. */
const NAME_MAX = 64;

export function contentHash(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex').slice(0, HASH_LENGTH);
}

/** `STACK_KEY_<hash>` (or the file's own `name:` plus the hash), cut to swarm's 64 characters. */
export function hashedName(base: string, content: Buffer): string {
  const suffix = `_${contentHash(content)}`;
  return base.slice(0, NAME_MAX - suffix.length).replace(/[-_.]+$/, '') + suffix;
}

function escapeDollars(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\$/g, '$$$$');
  if (Array.isArray(v)) return v.map(escapeDollars);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeDollars(x)]));
  return v;
}

/** The lowest 3.x that reads what the bundle writes (long syntax and `name:` on configs/secrets need 3.5). */
function outputVersion(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const minor = v === '3' ? 99 : Number(String(v).split('.')[1] ?? 0);
  return minor >= 5 ? String(v) : '3.5';
}

export function buildComposeBundle(project: ComposeProject): ComposeBundle {
  const files: BundleFile[] = [];
  const objects: SwarmObjectName[] = [];
  const out: Obj = {};
  const version = outputVersion(project.model.version);
  if (version !== undefined) out.version = version;
  out.services = project.model.services;
  for (const k of ['networks', 'volumes'] as const) if (project.model[k] !== undefined) out[k] = project.model[k];
  for (const kind of ['configs', 'secrets'] as const) {
    const defs = project.model[kind] as Record<string, Obj> | undefined;
    if (!defs) continue;
    const rewritten: Record<string, Obj> = {};
    for (const [key, d] of Object.entries(defs)) {
      if (typeof d.file !== 'string') {
        rewritten[key] = d;
        continue;
      }
      const content = readFileSync(d.file);
      const path = `files/${kind.slice(0, -1)}-${files.length}`;
      const name = hashedName(typeof d.name === 'string' ? d.name : `${project.name}_${key}`, content);
      files.push({ path, content });
      objects.push({ kind: kind === 'configs' ? 'config' : 'secret', key, name });
      rewritten[key] = { ...d, name, file: `./${path}` };
    }
    out[kind] = rewritten;
  }
  const compose = stringify(escapeDollars(out), { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0 });
  return { stack: project.name, compose, files, objects };
}
