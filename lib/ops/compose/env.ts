/**
 * The variables a project is interpolated with: the process environment over the project's `.env` (beside the
 * first compose file) or the `--env-file` chosen instead, as docker compose does. `.env` is read with the
 * `dotenv` package; `env_file:` files are read as docker reads them (KEY=VALUE lines taken literally).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { SwarmError } from '../../errors';
import { composeError } from './errors';
import type { Lookup } from './interpolate';

export interface ProjectEnvOptions {
  readonly workingDir: string;
  /** An env file to use instead of `<workingDir>/.env` (which may be absent; this one must exist). */
  readonly envFile?: string;
  /** The process environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function loadProjectEnv(opts: ProjectEnvOptions): Lookup {
  const file = opts.envFile ?? join(opts.workingDir, '.env');
  let fromFile: Record<string, string> = {};
  if (opts.envFile !== undefined || existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw SwarmError.user('COMPOSE_INVALID', `--env-file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`, e);
    }
    fromFile = parseDotenv(text);
  }
  return (name) => opts.env[name] ?? (Object.prototype.hasOwnProperty.call(fromFile, name) ? fromFile[name] : undefined);
}

/**
 * An `env_file:` as docker's CLI reads it: `KEY=VALUE` taken literally (no quotes, no interpolation), `#`
 * comments, a bare `KEY` takes its value from the environment (dropped when unset).
 */
export function parseEnvFile(text: string, lookup: Lookup, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((rawLine, i) => {
      const line = rawLine.replace(/^\s+/, '');
      if (line === '' || line.startsWith('#')) return;
      const eq = line.indexOf('=');
      const key = eq < 0 ? line : line.slice(0, eq);
      if (key === '') throw composeError(source, undefined, `line ${i + 1}: no variable name`);
      if (/[ \t]/.test(key)) throw composeError(source, undefined, `line ${i + 1}: the variable name contains whitespace`);
      if (eq >= 0) out[key] = line.slice(eq + 1);
      else {
        const v = lookup(key);
        if (v !== undefined) out[key] = v;
      }
    });
  return out;
}
