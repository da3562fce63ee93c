/**
 * `deploy -f FILE`: a compose file becomes a stack (`docker stack deploy`), a service spec file becomes
 * services created or updated idempotently. One runner call per deploy; the file and every free-form value
 * travel base64-encoded. Everything is validated before the first runner call.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SwarmError } from '../errors';
import type { DeployResult, OpsContext } from './types';
import { parseServiceSpecFile, type ServiceSpec } from './service-spec';
import { failed, runOnManager } from './swarm/manager';
import { decodeToFile, decodeToVar, script, sh } from './swarm/script';
import { assertServiceName, assertStackName, normaliseProjectName } from './swarm/validate';
import { verify } from './verify';

export type ResolveImage = 'always' | 'changed' | 'never';

export interface DeployOptions {
  readonly file: string;
  /** Stack name (compose only); default: the compose file's directory, normalised as docker compose does. */
  readonly name?: string;
  readonly wait?: boolean;
  readonly timeoutSeconds?: number;
  readonly intervalSeconds?: number;
  /** @default 'always' (Docker's default); the lab has no registry: 'never'. */
  readonly resolveImage?: ResolveImage;
}

const COMPOSE_FILE = /^(docker-)?compose([.-].*)?\.ya?ml$/i;

export type DeployPlan =
  | { readonly kind: 'stack'; readonly stack: string; readonly services: string[]; readonly script: string }
  | { readonly kind: 'services'; readonly services: string[]; readonly script: string };

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads, classifies and validates FILE and builds the one script; throws SwarmError(user) on bad input. */
export function planDeploy(opts: DeployOptions, content?: string): DeployPlan {
  const resolveImage = opts.resolveImage ?? 'always';
  if (!['always', 'changed', 'never'].includes(resolveImage)) {
    throw SwarmError.user('INVALID_OPTION', `resolveImage: ${JSON.stringify(resolveImage)} must be always, changed or never`);
  }
  let text = content;
  if (text === undefined) {
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw SwarmError.user('FILE_UNREADABLE', `-f ${opts.file}: ${(e as Error).message}`, e);
    }
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw SwarmError.user('FILE_INVALID', `-f ${opts.file}: not valid YAML or JSON: ${(e as Error).message}`, e);
  }
  const services = isMapping(doc) ? doc.services : undefined;
  if (COMPOSE_FILE.test(basename(opts.file)) || isMapping(services)) return planStack(opts, text, doc, resolveImage);
  if (Array.isArray(services)) {
    if (opts.name !== undefined) throw SwarmError.user('INVALID_OPTION', '--name applies to compose files only (a service spec names its services)');
    return planServices(parseServiceSpecFile(doc, opts.file), resolveImage);
  }
  throw SwarmError.user(
    'FILE_INVALID',
    `-f ${opts.file}: neither a compose file (a 'services:' mapping) nor a service spec (a 'services:' list of {name, image, …})`,
  );
}

function planStack(opts: DeployOptions, text: string, doc: unknown, resolveImage: ResolveImage): DeployPlan {
  const services = isMapping(doc) && isMapping(doc.services) ? Object.keys(doc.services) : [];
  if (services.length === 0) throw SwarmError.user('FILE_INVALID', `-f ${opts.file}: services: a compose file needs at least one service`);
  let stack: string;
  if (opts.name !== undefined) {
    stack = assertStackName(opts.name, '--name');
  } else {
    const dir = basename(dirname(resolve(opts.file)));
    stack = normaliseProjectName(dir);
    if (!stack) throw SwarmError.user('INVALID_STACK_NAME', `stack name: directory ${JSON.stringify(dir)} gives no valid name once normalised; pass --name`);
    assertStackName(stack, `stack name (from directory ${JSON.stringify(dir)}; pass --name to choose one)`);
  }
  // The stack's services are named STACK_SERVICE: check them now rather than after a half-applied deploy.
  const names = services.map((s) => assertServiceName(`${stack}_${s}`, `services.${s} (as service ${stack}_${s})`));
  return {
    kind: 'stack',
    stack,
    services: names,
    script: script(decodeToFile('compose', text), sh`docker stack deploy --resolve-image ${resolveImage} -c "$compose" ${stack}`),
  };
}

/** Words for `docker service update --args`, which docker splits with shlex rules: double-quote each. */
function shlexJoin(words: readonly string[]): string {
  return words.map((w) => `"${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(' ');
}

/** The long --publish syntax, also how current ports are listed: --publish-rm matches mode and published port too. */
function portWord(p: ServiceSpec['ports'][number]): string {
  return `published=${p.published},target=${p.target},protocol=${p.protocol},mode=${p.mode}`;
}

function serviceScript(s: ServiceSpec, i: number, resolveImage: ResolveImage): string {
  const lines: string[] = [`# service ${i}`];
  const common: string[] = []; // shell words shared by create and update (already quoted / variable refs)
  const create: string[] = [];
  const update: string[] = [];
  const envKeys = Object.keys(s.env);
  Object.entries(s.env).forEach(([k, v], j) => {
    lines.push(decodeToVar(`env_${i}_${j}`, `${k}=${v}`));
    create.push('--env', `"$env_${i}_${j}"`);
    update.push('--env-add', `"$env_${i}_${j}"`);
  });
  for (const c of s.constraints) {
    create.push(sh`--constraint ${c}`);
    update.push(sh`--constraint-add ${c}`);
  }
  for (const p of s.ports) {
    const v = portWord(p);
    create.push(sh`--publish ${v}`);
    update.push(sh`--publish-add ${v}`);
  }
  if (s.replicas !== undefined) {
    create.push(sh`--replicas ${s.replicas}`);
    update.push(sh`--replicas ${s.replicas}`);
  }
  if (s.endpointMode) common.push(sh`--endpoint-mode ${s.endpointMode}`);
  if (s.update?.parallelism !== undefined) common.push(sh`--update-parallelism ${s.update.parallelism}`);
  if (s.update?.delay !== undefined) common.push(sh`--update-delay ${s.update.delay}`);
  if (s.update?.failureAction) common.push(sh`--update-failure-action ${s.update.failureAction}`);
  if (s.update?.order) common.push(sh`--update-order ${s.update.order}`);
  if (resolveImage === 'never') common.push('--no-resolve-image');
  if (s.command) {
    s.command.forEach((w, j) => lines.push(decodeToVar(`arg_${i}_${j}`, w)));
    lines.push(decodeToVar(`args_${i}`, shlexJoin(s.command)));
    update.push('--args', `"$args_${i}"`);
  }
  const positional = s.command ? s.command.map((_, j) => `"$arg_${i}_${j}"`) : [];
  lines.push(
    sh`name=${s.name}`,
    'if grep -qxF -- "$name" "$EC2SWARM_TMP/names"; then',
    // Settings the spec no longer lists are removed, so an update leaves exactly the spec.
    `  docker service inspect --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{index (split . "=") 0}}{{println}}{{end}}' -- "$name" > "$EC2SWARM_TMP/env"`,
    `  docker service inspect --format '{{range .Spec.TaskTemplate.Placement.Constraints}}{{println .}}{{end}}' -- "$name" > "$EC2SWARM_TMP/constraints"`,
    `  docker service inspect --format '{{range .Spec.EndpointSpec.Ports}}published={{.PublishedPort}},target={{.TargetPort}},protocol={{.Protocol}},mode={{.PublishMode}}{{println}}{{end}}' -- "$name" > "$EC2SWARM_TMP/ports"`,
    '  rm_args=()',
    `  while IFS= read -r k; do [ -z "$k" ] || keep ${sh`${envKeys}`} -- "$k" || rm_args+=(--env-rm "$k"); done < "$EC2SWARM_TMP/env"`,
    `  while IFS= read -r c; do [ -z "$c" ] || keep ${sh`${s.constraints}`} -- "$c" || rm_args+=(--constraint-rm "$c"); done < "$EC2SWARM_TMP/constraints"`,
    `  while IFS= read -r p; do [ -z "$p" ] || keep ${sh`${s.ports.map(portWord)}`} -- "$p" || rm_args+=(--publish-rm "$p"); done < "$EC2SWARM_TMP/ports"`,
    `  docker service update --detach --quiet ${sh`--image ${s.image}`} ${[...common, ...update].join(' ')} "\${rm_args[@]}" -- "$name" > /dev/null`,
    '  echo "EC2SWARM-UPDATED $name"',
    'else',
    `  docker service create --detach --quiet ${sh`--name ${s.name} --mode ${s.mode}`} ${[...common, ...create].join(' ')} -- ${sh`${s.image}`} ${positional.join(' ')} > /dev/null`,
    '  echo "EC2SWARM-CREATED $name"',
    'fi',
  );
  return lines.join('\n');
}

function planServices(file: { services: ServiceSpec[] }, resolveImage: ResolveImage): DeployPlan {
  const body = [
    // keep WORD… -- X: true when X is one of the words (the spec's values, each quoted).
    'keep() { local x; local -a set=(); while [ "$1" != -- ]; do set+=("$1"); shift; done; x=$2; for s in "${set[@]}"; do [ "$s" = "$x" ] && return 0; done; return 1; }',
    `docker service ls --format '{{.Name}}' > "$EC2SWARM_TMP/names"`,
    ...file.services.map((s, i) => serviceScript(s, i, resolveImage)),
  ];
  return { kind: 'services', services: file.services.map((s) => s.name), script: script(...body) };
}

export async function deploy(ctx: OpsContext, opts: DeployOptions): Promise<DeployResult> {
  const plan = planDeploy(opts);
  if (opts.wait && opts.timeoutSeconds !== undefined && !(opts.timeoutSeconds >= 0)) {
    throw SwarmError.user('INVALID_TIMEOUT', `timeout: ${opts.timeoutSeconds} must be a number of seconds ≥ 0`);
  }
  const r = await runOnManager(ctx, plan.script, { label: plan.kind === 'stack' ? `deploy stack ${plan.stack}` : 'deploy services' });
  if (r.exitCode !== 0) throw failed(plan.kind === 'stack' ? `docker stack deploy ${plan.stack}` : 'docker service create/update', r);
  if (plan.kind === 'stack') ctx.reporter.info(`deployed stack ${plan.stack} (${plan.services.length} services)`);
  for (const m of r.stdout.matchAll(/^EC2SWARM-(CREATED|UPDATED) (.+)$/gm)) ctx.reporter.info(`${m[1].toLowerCase()} service ${m[2]}`);
  const result: DeployResult = {
    kind: plan.kind,
    ...(plan.kind === 'stack' ? { name: plan.stack } : {}),
    services: plan.services,
  };
  if (!opts.wait) return result;
  const v = await verify(ctx, { timeoutSeconds: opts.timeoutSeconds ?? 300, intervalSeconds: opts.intervalSeconds, services: plan.services });
  return { ...result, verify: v };
}
