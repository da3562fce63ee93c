/**
 * `deploy -f FILE`: a compose file becomes a stack (`docker stack deploy`), a service spec file becomes
 * services created or updated idempotently. One runner call per deploy; the file and every free-form value
 * travel base64-encoded. Everything is validated before the first runner call.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { SwarmError } from '../errors';
import type { CommandResult, DeployResult, OpsContext } from './types';
import type { DeployedVersion } from './swarm/convergence';
import { DOCKER_NOISE, dockerRejection } from './swarm/docker-errors';
import { summariseList } from './summary';
import { parseServiceSpecFile, type ServiceSpec } from './service-spec';
import { failed, runOnManager } from './swarm/manager';
import { decodeToVar, script, sh } from './swarm/script';
import { verify } from './verify';
import { composeDeployBody, parseComposeYaml, planComposeStack, reportComposeDeploy, runComposeStack, type ComposeStackPlan } from './compose';
import { collectRegistryAuth, imagesOfModel, REGISTRY_AUTH_PATH } from './registry-auth';

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
  /** Compose only: every `-f` file in merge order (`file` is the first); see lib/ops/compose/. */
  readonly files?: readonly string[];
  /** Compose only: the env file used instead of the project's `.env`. */
  readonly envFile?: string;
  /** Compose only: the environment for interpolation. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Compose only: ship the operator's `docker login` credentials for the images' registries in the staged bundle
   * and deploy with them (lib/ops/registry-auth.ts). Needs the cluster's staging channel.
   */
  readonly registryAuth?: boolean;
}

const COMPOSE_FILE = /^(docker-)?compose([.-].*)?\.ya?ml$/i;

export type DeployPlan =
  | (ComposeStackPlan & { readonly registryAuth?: { readonly registries: readonly string[]; readonly anonymous: readonly string[] } })
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
  // The compose parser bounds aliases by expansion (a 300-service file reusing an anchor is fine), merges `<<`.
  const doc: unknown = parseComposeYaml(text, `-f ${opts.file}`);
  const services = isMapping(doc) ? doc.services : undefined;
  if (COMPOSE_FILE.test(basename(opts.file)) || isMapping(services)) return planStack(opts, text, doc, resolveImage);
  if (Array.isArray(services)) {
    if ((opts.files?.length ?? 1) > 1 || opts.envFile !== undefined) throw SwarmError.user('INVALID_OPTION', 'several -f files and --env-file apply to compose files only');
    if (opts.name !== undefined) throw SwarmError.user('INVALID_OPTION', '--name applies to compose files only (a service spec names its services)');
    if (opts.registryAuth) throw SwarmError.user('INVALID_OPTION', '--registry-auth applies to compose files only');
    return planServices(parseServiceSpecFile(doc, opts.file), resolveImage);
  }
  throw SwarmError.user(
    'FILE_INVALID',
    `-f ${opts.file}: neither a compose file (a 'services:' mapping) nor a service spec (a 'services:' list of {name, image, …})`,
  );
}

function planStack(opts: DeployOptions, text: string, _doc: unknown, resolveImage: ResolveImage): DeployPlan {
  // Loading, validation and bundling live in lib/ops/compose/ (owned by the compose work, issue 11).
  const plan = planComposeStack({
    files: opts.files ?? [opts.file],
    ...(opts.envFile !== undefined ? { envFile: opts.envFile } : {}),
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    resolveImage,
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    content: text,
  });
  if (!opts.registryAuth) return { ...plan, script: stackScript(plan, composeDeployBody(plan.bundle, { resolveImage })) };
  // The credentials join the bundle as one more file: they travel only where the bundle does (the staging channel).
  const auth = collectRegistryAuth(imagesOfModel(plan.project.model), { env: opts.env ?? process.env });
  const bundle = { ...plan.bundle, files: [...plan.bundle.files, { path: REGISTRY_AUTH_PATH, content: auth.config }] };
  const withAuth = { ...plan, bundle, registryAuth: { registries: auth.registries, anonymous: auth.anonymous } };
  // No inline script: deploy() refuses a cluster without a staging channel before anything is sent.
  return { ...withAuth, script: '' };
}

/** The compose body (inline or staged), with the service versions around it (deploy --wait) and Docker's own output kept (below). */
function stackScript(plan: { stack: string; services: readonly string[]; registryAuth?: unknown }, body: readonly string[]): string {
  return script(versionsScript('BEFORE', plan.services), ...guardStackDeploy(body, plan.stack, { registryAuth: plan.registryAuth !== undefined }), versionsScript('AFTER', plan.services));
}

/**
 * Shell run before the deploy when the bundle carries the operator's registry credentials: the node's own
 * credential helpers (the ECR helper, scripts/node/common.sh) are kept for the registries the operator did not
 * log in to, so one stack may mix both.
 */
const MERGE_NODE_HELPERS = [
  'if [ -f /root/.docker/config.json ] && command -v python3 > /dev/null; then',
  `  python3 - "$bundle/auth/config.json" /root/.docker/config.json <<'EC2SWARM_PY' || true`,
  'import json, sys',
  'mine, node = sys.argv[1], sys.argv[2]',
  'conf = json.load(open(mine))',
  'helpers = json.load(open(node)).get("credHelpers") or {}',
  'conf["credHelpers"] = {k: v for k, v in helpers.items() if isinstance(v, str) and k not in conf.get("auths", {})}',
  'json.dump(conf, open(mine, "w"))',
  'EC2SWARM_PY',
  'fi',
];

/**
 * Wraps the body's `docker stack deploy` line: Docker's warnings (e.g. "Ignoring unsupported options: build") are
 * printed for the user, and when the deploy fails, what it left of the stack is listed before the script exits.
 */
export function guardStackDeploy(body: readonly string[], stack: string, opts: { registryAuth?: boolean } = {}): string[] {
  const i = body.findIndex((l) => l.startsWith('docker stack deploy '));
  if (i < 0) throw new Error('compose deploy body has no docker stack deploy line');
  // --with-registry-auth always: on AWS the manager's ECR credential helper answers for the cluster's registry;
  // with --registry-auth the CLI reads the shipped credentials (DOCKER_CONFIG) instead of the manager's own.
  const rest = body[i].slice('docker stack deploy '.length);
  const deployLine = opts.registryAuth
    ? `DOCKER_CONFIG="$bundle/auth" docker stack deploy --with-registry-auth ${rest}`
    : `docker stack deploy --with-registry-auth ${rest}`;
  return [
    ...body.slice(0, i),
    ...(opts.registryAuth ? MERGE_NODE_HELPERS : []),
    'rc=0',
    `${deployLine} > /dev/null 2> "$EC2SWARM_TMP/err" || rc=$?`,
    // The credentials are in the swarm's service specs now (raft, encrypted): the file goes at once.
    ...(opts.registryAuth ? ['rm -rf "$bundle/auth"'] : []),
    'if [ "$rc" -ne 0 ]; then',
    '  cat "$EC2SWARM_TMP/err" >&2',
    '  for kind in service network config secret; do',
    `    docker "$kind" ls --filter ${sh`label=com.docker.stack.namespace=${stack}`} --format '{{.Name}}' 2> /dev/null | sed "s/^/EC2SWARM-LEFT $kind /" || true`,
    '  done',
    '  exit "$rc"',
    'fi',
    `grep -v '^[[:space:]]*$' "$EC2SWARM_TMP/err" | sed 's/^/EC2SWARM-WARN /' || true`,
    ...body.slice(i + 1),
  ];
}

/** `EC2SWARM-<tag> NAME VERSION` for each of the services that exists (a deploy compares them before and after). */
function versionsScript(tag: 'BEFORE' | 'AFTER', names: readonly string[]): string {
  return `docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' -- ${sh`${names}`} 2> /dev/null | sed 's/^/EC2SWARM-${tag} /' || true`;
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
    versionsScript('BEFORE', file.services.map((s) => s.name)),
    ...file.services.map((s, i) => serviceScript(s, i, resolveImage)),
    versionsScript('AFTER', file.services.map((s) => s.name)),
  ];
  return { kind: 'services', services: file.services.map((s) => s.name), script: script(...body) };
}

/** Service versions printed by the deploy script before and after the change. */
export function deployedVersions(stdout: string): Map<string, DeployedVersion> {
  const out = new Map<string, { before?: number; after?: number }>();
  for (const m of stdout.matchAll(/^EC2SWARM-(BEFORE|AFTER) (\S+) (\d+)$/gm)) {
    const v = out.get(m[2]) ?? {};
    if (m[1] === 'BEFORE') v.before = Number(m[3]);
    else v.after = Number(m[3]);
    out.set(m[2], v);
  }
  return out;
}

/** A failed deploy: Docker's message, who is at fault (input Docker rejects is the user's), and what it left. */
function deployFailed(plan: DeployPlan, r: CommandResult): SwarmError {
  const what = plan.kind === 'stack' ? `docker stack deploy ${plan.stack}` : 'docker service create/update';
  const left = [...r.stdout.matchAll(/^EC2SWARM-LEFT (\S+) (.+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  const leftText =
    plan.kind === 'stack'
      ? left.length > 0
        ? `\nleft behind by the failed deploy: ${summariseList(left)} (remove with \`docker stack rm ${plan.stack}\` or \`ec2-swarm teardown\`)`
        : '\nnothing of the stack was left behind'
      : '';
  const base = failed(what, r);
  const rejection = dockerRejection(r.stderr);
  if (rejection) return SwarmError.user('DOCKER_REJECTED_INPUT', `${what}: Docker rejected the input: ${rejection}${leftText}`);
  return SwarmError.cluster(base.code, `${base.message}${leftText}`);
}

export async function deploy(ctx: OpsContext, opts: DeployOptions): Promise<DeployResult> {
  const plan = planDeploy(opts);
  if (opts.wait && opts.timeoutSeconds !== undefined && !(opts.timeoutSeconds >= 0)) {
    throw SwarmError.user('INVALID_TIMEOUT', `timeout: ${opts.timeoutSeconds} must be a number of seconds ≥ 0`);
  }
  if (plan.kind === 'stack' && plan.registryAuth) {
    if (!ctx.staging) {
      throw SwarmError.user(
        'REGISTRY_AUTH_NEEDS_STAGING',
        '--registry-auth needs the cluster\'s staging bucket (output SwarmStagingBucket): credentials never travel inside an SSM command',
      );
    }
    ctx.reporter.info(`registry credentials for ${plan.registryAuth.registries.join(', ')} travel in the staged bundle and are removed from the manager after the deploy`);
    for (const r of plan.registryAuth.anonymous) ctx.reporter.warn(`--registry-auth: no docker login for ${r}: its images are pulled without credentials`);
  }
  const started = (ctx.now ?? Date.now)();
  const label = plan.kind === 'stack' ? `deploy stack ${plan.stack}` : 'deploy services';
  // A compose bundle goes through the staging bucket when the cluster has one (lib/ops/compose/plan.ts).
  const r =
    plan.kind === 'stack'
      ? await runComposeStack(ctx, plan, (s) => runOnManager(ctx, s, { label }), (body) => stackScript(plan, body))
      : await runOnManager(ctx, plan.script, { label });
  if (r.exitCode !== 0) throw deployFailed(plan, r);
  const warnings = [...r.stdout.matchAll(/^EC2SWARM-WARN (.*)$/gm)]
    .map((m) => m[1].trim())
    .filter((w) => w && !DOCKER_NOISE.some((re) => re.test(w)));
  for (const w of warnings.slice(0, 20)) ctx.reporter.warn(`docker: ${w}`);
  if (plan.kind === 'stack') ctx.reporter.info(`deployed stack ${plan.stack} (${plan.services.length} services)`);
  if (plan.kind === 'stack') reportComposeDeploy(ctx.reporter, plan.warnings ?? [], r.stdout);
  for (const m of r.stdout.matchAll(/^EC2SWARM-(CREATED|UPDATED) (.+)$/gm)) ctx.reporter.info(`${m[1].toLowerCase()} service ${m[2]}`);
  const result: DeployResult = {
    kind: plan.kind,
    ...(plan.kind === 'stack' ? { name: plan.stack } : {}),
    services: plan.services,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
  if (!opts.wait) return result;
  const v = await verify(ctx, {
    // --timeout bounds the whole command: the deploy took some of it.
    timeoutSeconds: Math.max(0, (opts.timeoutSeconds ?? 300) - ((ctx.now ?? Date.now)() - started) / 1000),
    intervalSeconds: opts.intervalSeconds,
    services: plan.services,
    deployed: deployedVersions(r.stdout),
  });
  return { ...result, verify: v };
}
