/**
 * Pass 5: relative paths resolved against the project's working directory (the first file's directory, for every
 * file, as docker's loader does), and the list of local files the project needs: configs' and secrets' `file:`
 * and services' `env_file:`. Every one must exist and be readable now, before anything is contacted.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { composeError, type KeyPath } from './errors';

type Obj = Record<string, unknown>;

export interface ReferencedFile {
  /** Where it is named, e.g. `configs.nginx.file` or `services.web.env_file[0]`. */
  readonly path: KeyPath;
  readonly file: string;
}

function absolute(p: string, workingDir: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(workingDir, p);
}

function mustBeReadableFile(source: string, ref: ReferencedFile): void {
  try {
    if (!statSync(ref.file).isFile()) throw new Error('not a regular file');
    accessSync(ref.file, constants.R_OK);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw composeError(source, ref.path, `file ${ref.file} cannot be read (${why})`, e);
  }
}

/** Returns the model with absolute paths and the files it references (each checked readable). */
export function resolvePaths(model: Obj, workingDir: string, source: string): { model: Obj; files: ReferencedFile[] } {
  const files: ReferencedFile[] = [];
  const out: Obj = { ...model };
  for (const kind of ['configs', 'secrets'] as const) {
    const defs = model[kind] as Record<string, Obj> | undefined;
    if (!defs) continue;
    const resolved: Record<string, Obj> = {};
    for (const [name, d] of Object.entries(defs)) {
      if (typeof d.file === 'string') {
        const file = absolute(d.file, workingDir);
        files.push({ path: [kind, name, 'file'], file });
        resolved[name] = { ...d, file };
      } else {
        if (!d.external && !(kind === 'secrets' && d.driver)) {
          throw composeError(source, [kind, name], `needs file: (a local file) or external: true`);
        }
        resolved[name] = d;
      }
    }
    out[kind] = resolved;
  }
  const services: Record<string, Obj> = {};
  for (const [name, s0] of Object.entries((model.services as Record<string, Obj>) ?? {})) {
    const s = { ...s0 };
    if (Array.isArray(s.env_file)) {
      s.env_file = (s.env_file as string[]).map((f, i) => {
        const file = absolute(f, workingDir);
        files.push({ path: ['services', name, 'env_file', i], file });
        return file;
      });
    }
    if (Array.isArray(s.volumes)) {
      // Bind sources are paths on the node; docker resolves relative ones against the working directory too.
      s.volumes = (s.volumes as Obj[]).map((v) =>
        v.type === 'bind' && typeof v.source === 'string' && !isAbsolute(v.source) ? { ...v, source: absolute(v.source, workingDir) } : v,
      );
    }
    for (const kind of ['configs', 'secrets'] as const) {
      for (const [i, r] of ((s[kind] as Obj[] | undefined) ?? []).entries()) {
        const defs = (model[kind] as Obj | undefined) ?? {};
        if (!(String(r.source) in defs)) {
          throw composeError(source, ['services', name, kind, i], `${kind.slice(0, -1)} ${JSON.stringify(r.source)} is not defined under top-level ${kind}:`);
        }
      }
    }
    services[name] = s;
  }
  out.services = services;
  for (const ref of files) mustBeReadableFile(source, ref);
  return { model: out, files };
}
