/**
 * A compose project loaded on the operator's side, pass by pass as docker's loader does it (design.md decision
 * 12): for each `-f` file parse → interpolate → validate; then normalise and merge the files in order, resolve
 * paths and collect the files they name, and fold `env_file:` and environment-taken values into each service's
 * environment with the operator's values. Every error is a SwarmError(user): exit 2 before any connection.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { SwarmError } from '../../errors';
import { normaliseProjectName, assertStackName, assertServiceName } from '../swarm/validate';
import { loadProjectEnv, parseEnvFile } from './env';
import { composeError } from './errors';
import { interpolateCompose, type Lookup } from './interpolate';
import { mergeComposeFiles } from './merge';
import { normaliseCompose } from './normalise';
import { parseComposeYaml, type ParseOptions } from './parse';
import { resolvePaths, type ReferencedFile } from './paths';
import { validateCompose } from './schema';

type Obj = Record<string, unknown>;

export interface LoadComposeOptions extends ParseOptions {
  /** Compose files in merge order (`-f a.yml -f b.yml`); the first one's directory is the project directory. */
  readonly files: readonly string[];
  /** Instead of `<project dir>/.env`. */
  readonly envFile?: string;
  /** Stack name; default: the project directory's name, normalised as docker compose does. */
  readonly projectName?: string;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** File contents by path, for callers that already read them (tests, stdin). */
  readonly contents?: Readonly<Record<string, string>>;
}

export interface ComposeProject {
  readonly name: string;
  readonly workingDir: string;
  readonly files: readonly string[];
  /** The resolved model: merged, interpolated, long syntax, absolute paths, env_file folded into environment. */
  readonly model: Obj;
  /** Service keys of the model (the stack's services are NAME_KEY). */
  readonly services: readonly string[];
  /** Files the model names (configs, secrets, env files), each checked readable. */
  readonly referencedFiles: readonly ReferencedFile[];
  /** Notes for the operator (unset variables, ignored host IPs); never values. */
  readonly warnings: readonly string[];
}

function readSource(file: string, given: string, contents: LoadComposeOptions['contents']): string {
  if (contents && Object.prototype.hasOwnProperty.call(contents, given)) return contents[given];
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw SwarmError.user('FILE_UNREADABLE', `-f ${given}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
}

/** docker's resolveEnvironment, on the operator's side: env files in order, then `environment:`, null → lookup. */
function foldEnvironment(service: Obj, lookup: Lookup, name: string): Obj {
  const env: Record<string, string> = {};
  for (const [i, f] of ((service.env_file as string[] | undefined) ?? []).entries()) {
    Object.assign(env, parseEnvFile(readFileSync(f, 'utf8'), lookup, `services.${name}.env_file[${i}] (${f})`));
  }
  for (const [k, v] of Object.entries((service.environment as Record<string, string | null> | undefined) ?? {})) {
    if (v !== null) env[k] = v;
    else {
      const x = lookup(k);
      if (x !== undefined) env[k] = x;
      else delete env[k];
    }
  }
  const out: Obj = { ...service };
  delete out.env_file;
  if (Object.keys(env).length > 0 || service.environment !== undefined) out.environment = env;
  return out;
}

export function loadComposeProject(opts: LoadComposeOptions): ComposeProject {
  if (opts.files.length === 0) throw SwarmError.user('INVALID_OPTION', '-f: name at least one compose file');
  const files = opts.files.map((f) => resolve(f));
  const workingDir = dirname(files[0]);
  const lookup = loadProjectEnv({ workingDir, envFile: opts.envFile, env: opts.env ?? process.env });
  const warnings: string[] = [];
  const unset = new Set<string>();
  const loaded = files.map((file, i) => {
    const source = opts.files[i];
    const parsed = parseComposeYaml(readSource(file, source, opts.contents), source, opts);
    const interpolated = interpolateCompose(parsed, lookup, source);
    interpolated.unset.forEach((v) => unset.add(v));
    validateCompose(interpolated.value, source);
    return normaliseCompose(interpolated.value, source, warnings);
  });
  for (const v of unset) warnings.push(`the ${v} variable is not set: defaulting to a blank string`);
  const label = opts.files.join(' + ');
  const merged = mergeComposeFiles(loaded);
  const { model, files: referencedFiles } = resolvePaths(merged, workingDir, label);
  const services = Object.keys((model.services as Obj | undefined) ?? {});
  if (services.length === 0) throw composeError(label, ['services'], 'a stack needs at least one service');
  const resolvedServices: Obj = {};
  for (const name of services) resolvedServices[name] = foldEnvironment((model.services as Record<string, Obj>)[name], lookup, name);

  let name: string;
  if (opts.projectName !== undefined) name = assertStackName(opts.projectName, '--name');
  else {
    const dir = basename(workingDir);
    name = normaliseProjectName(dir);
    if (!name) throw SwarmError.user('INVALID_STACK_NAME', `stack name: directory ${JSON.stringify(dir)} gives no valid name once normalised; pass --name`);
    assertStackName(name, `stack name (from directory ${JSON.stringify(dir)}; pass --name to choose one)`);
  }
  // Services are named STACK_SERVICE: check them now rather than after a half-applied deploy.
  for (const s of services) assertServiceName(`${name}_${s}`, `services.${s} (as service ${name}_${s})`);
  return { name, workingDir, files, model: { ...model, services: resolvedServices }, services, referencedFiles, warnings };
}
