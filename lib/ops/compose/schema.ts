/**
 * Pass 3: the Compose file schema that `docker stack deploy` enforces (version 3.x, the keys of 3.13, the
 * newest 3.x), written here with zod so an error names the key: `services.web.deploy.replicas: must be an
 * integer`. Run on each file after interpolation, as docker's loader does.
 */
import { z } from 'zod';
import { composeError, formatPath } from './errors';

const str = z.string({ error: 'must be a string' });
const int = z.int({ error: 'must be an integer' });
const nonNegInt = z.int({ error: 'must be an integer' }).min(0, { error: 'must be ≥ 0' });
const num = z.number({ error: 'must be a number' });
const bool = z.boolean({ error: 'must be a boolean (true or false)' });
const NAME = /^[a-zA-Z0-9._-]+$/;

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object';
function kindOf(v: unknown): Kind | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'object' ? t : 'other';
}

/** JSON-schema `oneOf` by the value's type, so errors inside the chosen branch keep their exact key path. */
function oneOf(options: Partial<Record<Kind, z.ZodType>>, message: string): z.ZodType {
  return z.unknown().superRefine((v, ctx) => {
    const kind = kindOf(v);
    const schema = kind === 'other' ? undefined : options[kind];
    if (!schema) {
      ctx.addIssue({ code: 'custom', message });
      return;
    }
    const r = schema.safeParse(v);
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path });
  });
}

/** A mapping with these keys only (plus `x-*` extensions where Compose allows them). */
function mapping(shape: z.ZodRawShape, opts: { extensions?: boolean } = {}): z.ZodType {
  const optional = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, (v as z.ZodType).optional()]));
  return z
    .looseObject(optional, { error: 'must be a mapping' })
    .superRefine((o, ctx) => {
      for (const k of Object.keys(o)) {
        if (k in shape || (opts.extensions && k.startsWith('x-'))) continue;
        ctx.addIssue({ code: 'custom', message: `unknown key (allowed: ${Object.keys(shape).join(', ')})`, path: [k] });
      }
    });
}

function dictOf(value: z.ZodType, keyPattern?: RegExp, what = 'key'): z.ZodType {
  return z.record(z.string(), value, { error: 'must be a mapping' }).superRefine((o, ctx) => {
    if (!keyPattern) return;
    for (const k of Object.keys(o)) {
      if (!keyPattern.test(k)) ctx.addIssue({ code: 'custom', message: `invalid ${what} name: use letters, digits, '.', '_' and '-'`, path: [k] });
    }
  });
}

const uniqueStrings = z.array(str, { error: 'must be a list of strings' }).superRefine((a, ctx) => {
  if (new Set(a).size !== a.length) ctx.addIssue({ code: 'custom', message: 'has duplicate items' });
});
const stringOrList = oneOf({ string: str, array: uniqueStrings }, 'must be a string or a list of strings');
const listOrDict = oneOf(
  {
    array: uniqueStrings,
    object: dictOf(oneOf({ string: str, number: num, null: z.null() }, 'must be a string, a number or null')),
  },
  'must be a list of "KEY=value" strings or a mapping',
);
const external = oneOf({ boolean: bool, object: mapping({ name: str }) }, 'must be a boolean or {name: …}');
const driverOpts = dictOf(oneOf({ string: str, number: num }, 'must be a string or a number'));

const healthcheck = mapping({
  disable: bool,
  interval: str,
  retries: num,
  test: oneOf({ string: str, array: z.array(str, { error: 'must be a list of strings' }) }, 'must be a string or a list of strings'),
  timeout: str,
  start_period: str,
  start_interval: str,
});

const updateConfig = mapping({
  parallelism: int,
  delay: str,
  failure_action: str,
  monitor: str,
  max_failure_ratio: num,
  order: z.enum(['start-first', 'stop-first'], { error: 'must be start-first or stop-first' }),
});

const deployment = mapping({
  mode: str,
  endpoint_mode: str,
  replicas: int,
  labels: listOrDict,
  rollback_config: updateConfig,
  update_config: updateConfig,
  resources: mapping({
    limits: mapping({ cpus: oneOf({ string: str, number: num }, 'must be a string or a number'), memory: str, pids: int }),
    reservations: mapping({
      cpus: oneOf({ string: str, number: num }, 'must be a string or a number'),
      memory: str,
      generic_resources: z.array(mapping({ discrete_resource_spec: mapping({ kind: str, value: num }) })),
    }),
  }),
  restart_policy: mapping({ condition: str, delay: str, max_attempts: int, window: str }),
  placement: mapping({
    constraints: z.array(str, { error: 'must be a list of strings' }),
    preferences: z.array(mapping({ spread: str })),
    max_replicas_per_node: int,
  }),
});

const portObject = mapping({ mode: str, target: int, published: int, protocol: str });
const volumeObject = z
  .unknown()
  .pipe(
    mapping({
      type: str,
      source: str,
      target: str,
      read_only: bool,
      consistency: str,
      bind: mapping({ propagation: str }),
      volume: mapping({ nocopy: bool }),
      tmpfs: mapping({ size: nonNegInt }),
    }),
  )
  .superRefine((v, ctx) => {
    if ((v as { type?: unknown }).type === undefined) ctx.addIssue({ code: 'custom', message: 'is required', path: ['type'] });
  });
const fileRef = oneOf(
  { string: str, object: mapping({ source: str, target: str, uid: str, gid: str, mode: num }) },
  'must be a name or {source, target, uid, gid, mode}',
);
const serviceNetworks = oneOf(
  {
    array: uniqueStrings,
    object: dictOf(
      oneOf(
        { null: z.null(), object: mapping({ aliases: uniqueStrings, driver_opts: driverOpts, ipv4_address: str, ipv6_address: str }) },
        'must be null or {aliases, ipv4_address, ipv6_address}',
      ),
      NAME,
      'network',
    ),
  },
  'must be a list of network names or a mapping',
);
const strings = z.array(str, { error: 'must be a list of strings' });

const service = mapping(
  {
    deploy: deployment,
    build: oneOf({ string: str, object: z.looseObject({}) }, 'must be a path or a mapping'),
    cap_add: uniqueStrings,
    cap_drop: uniqueStrings,
    cgroupns_mode: str,
    cgroup_parent: str,
    command: oneOf({ string: str, array: strings }, 'must be a string or a list of strings'),
    configs: z.array(fileRef, { error: 'must be a list' }),
    container_name: str,
    credential_spec: mapping({ config: str, file: str, registry: str }),
    depends_on: uniqueStrings,
    devices: uniqueStrings,
    dns: stringOrList,
    dns_search: stringOrList,
    domainname: str,
    entrypoint: oneOf({ string: str, array: strings }, 'must be a string or a list of strings'),
    env_file: stringOrList,
    environment: listOrDict,
    expose: z.array(oneOf({ string: str, number: num }, 'must be a string or a number'), { error: 'must be a list' }),
    external_links: uniqueStrings,
    extra_hosts: listOrDict,
    healthcheck,
    hostname: str,
    image: str,
    init: bool,
    ipc: str,
    isolation: str,
    labels: listOrDict,
    links: uniqueStrings,
    logging: mapping({ driver: str, options: dictOf(oneOf({ string: str, number: num, null: z.null() }, 'must be a string or a number')) }),
    mac_address: str,
    network_mode: str,
    networks: serviceNetworks,
    pid: z.union([str, z.null()]),
    ports: z.array(oneOf({ number: num, string: str, object: portObject }, 'must be a port ("8080:80") or {target, published, protocol, mode}'), {
      error: 'must be a list',
    }),
    privileged: bool,
    read_only: bool,
    restart: str,
    security_opt: uniqueStrings,
    shm_size: oneOf({ number: num, string: str }, 'must be a number or a string'),
    secrets: z.array(fileRef, { error: 'must be a list' }),
    sysctls: listOrDict,
    stdin_open: bool,
    stop_grace_period: str,
    stop_signal: str,
    tmpfs: stringOrList,
    tty: bool,
    ulimits: dictOf(oneOf({ number: int, object: mapping({ hard: int, soft: int }) }, 'must be an integer or {soft, hard}')),
    oom_score_adj: int,
    user: str,
    userns_mode: str,
    volumes: z.array(oneOf({ string: str, object: volumeObject }, 'must be a volume ("src:/path") or {type, source, target, …}'), { error: 'must be a list' }),
    working_dir: str,
  },
  { extensions: true },
);

const network = mapping(
  {
    name: str,
    driver: str,
    driver_opts: driverOpts,
    ipam: mapping({ driver: str, config: z.array(mapping({ subnet: str })) }),
    external,
    internal: bool,
    attachable: bool,
    labels: listOrDict,
  },
  { extensions: true },
);
const volume = mapping(
  { name: str, driver: str, driver_opts: driverOpts, external, labels: listOrDict, 'x-cluster-spec': z.looseObject({}) },
  { extensions: true },
);
const secret = mapping(
  { name: str, file: str, external, labels: listOrDict, driver: str, driver_opts: driverOpts, template_driver: str },
  { extensions: true },
);
const config = mapping({ name: str, file: str, external, labels: listOrDict, template_driver: str }, { extensions: true });
const nullable = (s: z.ZodType) => oneOf({ null: z.null(), object: s }, 'must be a mapping');

const composeFile = mapping(
  {
    version: str,
    services: dictOf(nullable(service), NAME, 'service'),
    networks: dictOf(nullable(network), NAME, 'network'),
    volumes: dictOf(nullable(volume), NAME, 'volume'),
    secrets: dictOf(nullable(secret), NAME, 'secret'),
    configs: dictOf(nullable(config), NAME, 'config'),
  },
  { extensions: true },
);

/** Versions `docker stack deploy` accepts; absent or "3" means the newest 3.x. */
export const SUPPORTED_VERSIONS = ['3', '3.0', '3.1', '3.2', '3.3', '3.4', '3.5', '3.6', '3.7', '3.8', '3.9', '3.10', '3.11', '3.12', '3.13'];

/** Throws SwarmError(user) naming the first few invalid keys of one interpolated compose file. */
export function validateCompose(data: Record<string, unknown>, source: string): void {
  const r = composeFile.safeParse(data);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 5).map((i) => `${formatPath(i.path as (string | number)[])}: ${i.message}`);
    const more = r.error.issues.length > 5 ? `\n(and ${r.error.issues.length - 5} more)` : '';
    throw composeError(source, undefined, `does not match the Compose file schema:\n${lines.join('\n')}${more}`);
  }
  const v = data.version;
  if (v !== undefined && !SUPPORTED_VERSIONS.includes(v as string)) {
    throw composeError(source, ['version'], `unsupported Compose file version ${JSON.stringify(v)}: docker stack deploy reads version 3.x`);
  }
}
