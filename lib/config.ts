/**
 * Cluster configuration: one zod schema, three sources (defaults < JSON config file < `-c key=value` context),
 * and errors printed the way zod's prettifyError prints them. Loads no CDK: ops and the lab use it too.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_OVERLAY_ADDRESS_POOL, DEFAULT_OVERLAY_ADDRESS_POOL_MASK } from './overlay-pool';
import { SwarmError } from './errors';

// Re-exported: they live where the node-script tests can load them without zod (~0.2 CPU-s a test file).
export { DEFAULT_OVERLAY_ADDRESS_POOL, DEFAULT_OVERLAY_ADDRESS_POOL_MASK } from './overlay-pool';
export { parameterNames, parameterPrefix } from './parameter-names';
export type { RuntimeParameterNames } from './parameter-names';

/** Ports Docker Swarm itself uses; never published to the outside. */
export const SWARM_PORTS = [
  { port: 2377, protocol: 'tcp', what: 'cluster management' },
  { port: 7946, protocol: 'tcp', what: 'node communication' },
  { port: 7946, protocol: 'udp', what: 'node communication' },
  { port: 4789, protocol: 'udp', what: 'overlay network (VXLAN)' },
] as const;

/** Manager counts a Raft quorum makes sense with: odd (an even count adds no fault tolerance), at most 7. */
export const SUPPORTED_MANAGER_COUNTS = [1, 3, 5, 7] as const;

/** Failures a Raft quorum of `managers` survives: a majority must stay up. */
export function failuresTolerated(managers: number): number {
  return Math.floor((managers - 1) / 2);
}

function managersMessage(n: number): string {
  const why = !Number.isInteger(n)
    ? 'a whole number of managers'
    : n < 1
      ? 'a swarm needs at least one manager'
      : n % 2 === 0
        ? 'an even count adds no fault tolerance'
        : 'more managers slow every Raft write, and 7 already survive 3 failures';
  return `managers must be 1, 3, 5 or 7 (got ${n}): ${why}`;
}

function ipv4Cidr(value: string): boolean {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(value);
  return !!m && isIP(m[1]) === 4 && Number(m[2]) <= 32;
}

const CLUSTER_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9]+$/;
const AMI_ID = /^ami-[0-9a-f]{8}([0-9a-f]{9})?$/;
const VPC_ID = /^vpc-[0-9a-f]{8}([0-9a-f]{9})?$/;

/** True for an IPv4 or IPv6 CIDR whose prefix length fits the address family. */
export function isCidr(value: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(value);
  if (!m) return false;
  const family = isIP(m[1]);
  const bits = Number(m[2]);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}

const cidr = z.string().refine(isCidr, { message: 'must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32' });

export const publishedPortSchema = z.strictObject({
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  /**
   * Who may connect. No default on purpose: opening a port to the world must be written down. May be empty only
   * when the construct is given other sources for the port (`peers`); parseClusterConfig checks that.
   */
  cidrs: z.array(cidr).default([]),
});

/** Spot allocation strategies of an Auto Scaling group's instances distribution. */
export const SPOT_ALLOCATION_STRATEGIES = ['price-capacity-optimized', 'capacity-optimized', 'capacity-optimized-prioritized', 'lowest-price'] as const;

/** Workers on Spot: how many stay On-Demand, and how Spot capacity is chosen (the worker group's instances distribution). */
export const workerSpotSchema = z.strictObject({
  /** Workers that are always On-Demand, before any Spot. */
  onDemandBaseCapacity: z.number().int().min(0).max(1000).default(0),
  /** Percentage of the workers above the base that are On-Demand; the rest are Spot. */
  onDemandPercentageAboveBaseCapacity: z.number().int().min(0).max(100).default(0),
  allocationStrategy: z.enum(SPOT_ALLOCATION_STRATEGIES).default('price-capacity-optimized'),
});

const WORKER_COUNT_MESSAGE = 'must be a whole number from 0 to 1000';
const workerCount = () =>
  z.number({ message: WORKER_COUNT_MESSAGE }).int({ message: WORKER_COUNT_MESSAGE }).min(0, { message: WORKER_COUNT_MESSAGE }).max(1000, { message: WORKER_COUNT_MESSAGE });

export const clusterConfigSchema = z
  .strictObject({
    name: z
      .string()
      .regex(CLUSTER_NAME, {
        message: 'must be 1-32 characters: lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen',
      })
      .default('swarm'),
    managers: z
      .number({ message: 'managers must be 1, 3, 5 or 7' })
      .superRefine((n, ctx) => {
        if (!(SUPPORTED_MANAGER_COUNTS as readonly number[]).includes(n)) ctx.addIssue({ code: 'custom', message: managersMessage(n) });
      })
      .default(1),
    /** Desired number of workers: the group's size at creation (and its min and max unless minWorkers/maxWorkers say otherwise). */
    workers: workerCount().default(3),
    /** The worker group's minimum size; absent → `workers`. */
    minWorkers: workerCount().optional(),
    /** The worker group's maximum size; absent → `workers`. */
    maxWorkers: workerCount().optional(),
    managerInstanceType: z.string().regex(INSTANCE_TYPE, { message: 'must be an EC2 instance type such as t3.small' }).default('t3.small'),
    workerInstanceType: z.string().regex(INSTANCE_TYPE, { message: 'must be an EC2 instance type such as t3.small' }).default('t3.small'),
    /**
     * Several worker instance types, in priority order (the worker group's mixed instances policy); the first is
     * the launch template's. Absent → `workerInstanceType` alone.
     */
    workerInstanceTypes: z
      .array(z.string().regex(INSTANCE_TYPE, { message: 'must be an EC2 instance type such as t3.small' }))
      .min(1, { message: 'list at least one instance type' })
      .max(40, { message: 'an Auto Scaling group takes at most 40 instance types' })
      .optional(),
    /** Workers on Spot (a mixed instances policy); absent → every worker On-Demand. */
    workerSpot: workerSpotSchema.optional(),
    rootVolumeGiB: z.number().int().min(8, { message: 'must be at least 8 (the Amazon Linux 2023 image needs 8 GiB)' }).max(16384).default(20),
    /** An AMI id; absent → the latest Amazon Linux 2023 image from its public SSM parameter. */
    ami: z.string().regex(AMI_ID, { message: 'must be an AMI id such as ami-0123456789abcdef0' }).optional(),
    /** An existing VPC; absent → a new VPC (public subnets, no NAT gateway). */
    vpcId: z.string().regex(VPC_ID, { message: 'must be a VPC id such as vpc-0123456789abcdef0' }).optional(),
    maxAzs: z.number().int().min(1).max(6).default(2),
    publishedPorts: z.array(publishedPortSchema).max(50).default([]),
    /** A Network Load Balancer in front of the workers, one listener per published port. */
    loadBalancer: z.boolean().default(false),
    /** Open ESP (IP protocol 50) inside the cluster so `docker network create --opt encrypted` works. */
    encryptedOverlay: z.boolean().default(false),
    /** `swarm init --default-addr-pool`: where overlay networks get their subnets. Must not overlap the VPC. */
    overlayAddressPool: z
      .string()
      .refine(ipv4Cidr, { message: 'must be an IPv4 CIDR such as 172.20.0.0/16' })
      .default(DEFAULT_OVERLAY_ADDRESS_POOL),
    /** `--default-addr-pool-mask-length`: the prefix length of each overlay network's subnet. */
    overlayAddressPoolMask: z.number().int().min(16).max(28, { message: 'must be 16 to 28 (a /29 leaves too few addresses for tasks)' }).default(DEFAULT_OVERLAY_ADDRESS_POOL_MASK),
  })
  .superRefine((cfg, ctx) => {
    cfg.publishedPorts.forEach((p, i) => {
      const clash = SWARM_PORTS.find((s) => s.port === p.port && s.protocol === p.protocol);
      if (clash) {
        ctx.addIssue({
          code: 'custom',
          path: ['publishedPorts', i, 'port'],
          message: `${p.port}/${p.protocol} is Docker Swarm's ${clash.what} port and is never published`,
        });
      }
      const dup = cfg.publishedPorts.findIndex((q) => q.port === p.port && q.protocol === p.protocol);
      if (dup !== i) {
        ctx.addIssue({ code: 'custom', path: ['publishedPorts', i], message: `${p.port}/${p.protocol} is listed twice (also at index ${dup})` });
      }
    });
    if (cfg.loadBalancer && cfg.publishedPorts.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['loadBalancer'], message: 'needs at least one entry in publishedPorts to listen on' });
    }
    const poolBits = Number(cfg.overlayAddressPool.split('/')[1]);
    if (poolBits > cfg.overlayAddressPoolMask) {
      ctx.addIssue({
        code: 'custom',
        path: ['overlayAddressPoolMask'],
        message: `must be at least the pool's own prefix length /${poolBits} (overlayAddressPool ${cfg.overlayAddressPool} cannot hold a /${cfg.overlayAddressPoolMask})`,
      });
    }
    if (cfg.loadBalancer && cfg.workers === 0) {
      ctx.addIssue({ code: 'custom', path: ['loadBalancer'], message: 'needs workers > 0 (the load balancer targets the worker group)' });
    }
    if (cfg.minWorkers !== undefined && cfg.maxWorkers !== undefined && cfg.minWorkers > cfg.maxWorkers) {
      // Said alone: comparing either with workers adds nothing (and workers may be a token's stand-in here).
      ctx.addIssue({ code: 'custom', path: ['maxWorkers'], message: `must be at least minWorkers (${cfg.minWorkers})` });
    } else {
      if (cfg.minWorkers !== undefined && cfg.minWorkers > cfg.workers) {
        ctx.addIssue({ code: 'custom', path: ['minWorkers'], message: `must be at most workers (${cfg.workers}), the group's size at creation` });
      }
      if (cfg.maxWorkers !== undefined && cfg.maxWorkers < cfg.workers) {
        ctx.addIssue({ code: 'custom', path: ['maxWorkers'], message: `must be at least workers (${cfg.workers}), the group's size at creation` });
      }
    }
    const types = cfg.workerInstanceTypes ?? [];
    types.forEach((t, i) => {
      const dup = types.indexOf(t);
      if (dup !== i) ctx.addIssue({ code: 'custom', path: ['workerInstanceTypes', i], message: `${t} is listed twice (also at index ${dup})` });
    });
  });

export type ClusterConfigInput = z.input<typeof clusterConfigSchema>;
export type ClusterConfig = z.output<typeof clusterConfigSchema>;

export const CONFIG_KEYS = Object.keys(clusterConfigSchema.shape) as (keyof ClusterConfig)[];

/**
 * Fixed Auto Scaling group names: the node environment and the managers' policy name them without referring to the
 * groups themselves (a launch template cannot Ref the group that uses it).
 */
export function autoScalingGroupNames(clusterName: string): { managers: string; workers: string } {
  return { managers: `ec2-swarm-${clusterName}-managers`, workers: `ec2-swarm-${clusterName}-workers` };
}

/** Prints zod issues the way `z.prettifyError` does (`✖ message` then `→ at path`), with the offending source. */
export function formatIssues(error: z.ZodError, source?: string): string {
  const head = source ? `Invalid cluster configuration (${source}):\n` : 'Invalid cluster configuration:\n';
  return head + z.prettifyError(error);
}

export interface ParseClusterConfigOptions {
  /**
   * Indexes of `publishedPorts` that have sources besides their CIDRs (the construct's `peers`): their `cidrs` may
   * be empty.
   *
   * @default - none: every published port needs at least one CIDR
   */
  readonly portsWithOtherSources?: ReadonlySet<number>;
}

/** Validate an already-merged object. Throws SwarmError(CONFIG_INVALID, fault user) with every issue. */
export function parseClusterConfig(input: unknown, source?: string, options: ParseClusterConfigOptions = {}): ClusterConfig {
  const schema = clusterConfigSchema.superRefine((cfg, ctx) => {
    cfg.publishedPorts.forEach((p, i) => {
      if (p.cidrs.length === 0 && !options.portsWithOtherSources?.has(i)) {
        ctx.addIssue({ code: 'custom', path: ['publishedPorts', i, 'cidrs'], message: 'list at least one CIDR allowed to reach this port' });
      }
    });
    // Both given (and different): which one is the launch template's type would be a guess. A parsed config carries
    // both, the first of the list copied into workerInstanceType, and parses again unchanged.
    const raw = input as Record<string, unknown>;
    if (cfg.workerInstanceTypes && raw.workerInstanceType !== undefined && raw.workerInstanceType !== cfg.workerInstanceTypes[0]) {
      ctx.addIssue({ code: 'custom', path: ['workerInstanceTypes'], message: 'pass either workerInstanceType or workerInstanceTypes, not both' });
    }
  });
  const result = schema.safeParse(input);
  if (!result.success) throw SwarmError.user('CONFIG_INVALID', formatIssues(result.error, source), result.error);
  const cfg = result.data;
  // The launch template carries the first of several worker types: the image's architecture follows it.
  return cfg.workerInstanceTypes ? { ...cfg, workerInstanceType: cfg.workerInstanceTypes[0] } : cfg;
}

const NUMERIC_KEYS = new Set<string>(['managers', 'workers', 'minWorkers', 'maxWorkers', 'rootVolumeGiB', 'maxAzs', 'overlayAddressPoolMask']);
const BOOLEAN_KEYS = new Set<string>(['loadBalancer', 'encryptedOverlay']);
const JSON_KEYS = new Set<string>(['publishedPorts', 'workerInstanceTypes', 'workerSpot']);

/**
 * Context values arrive as strings from `-c key=value`. Coerce only well-formed values; anything else is
 * passed through unchanged so the schema names the field ("expected number, received string").
 */
function coerceContextValue(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim();
  if (NUMERIC_KEYS.has(key)) return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : value;
  if (BOOLEAN_KEYS.has(key)) return v === 'true' ? true : v === 'false' ? false : value;
  if (JSON_KEYS.has(key)) {
    try {
      return JSON.parse(v);
    } catch {
      return value;
    }
  }
  return value;
}

/** Context keys CDK or its users put there for other reasons: feature flags (`@aws-cdk/…`), lookups (`x:y`). */
function isForeignContextKey(key: string): boolean {
  return key.startsWith('@') || key.includes(':') || key === 'config' || key.startsWith('aws-cdk') || key.startsWith('cdk');
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function closest(key: string): string | undefined {
  const lower = key.toLowerCase();
  const best = CONFIG_KEYS.map((k) => ({ k, d: editDistance(lower, k.toLowerCase()) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(key.length / 4)) ? best.k : undefined;
}

/**
 * Build the cluster config from CDK context: defaults < the JSON file named by `config` < individual keys.
 * `readFile` is injectable for tests. Throws SwarmError (fault user) naming the field; synthesizes nothing.
 */
export function configFromContext(
  context: Record<string, unknown>,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): ClusterConfig {
  let fromFile: Record<string, unknown> = {};
  const file = context.config;
  if (file !== undefined) {
    if (typeof file !== 'string' || file.length === 0) {
      throw SwarmError.user('CONFIG_INVALID', '✖ must be the path of a JSON file\n  → at config');
    }
    let text: string;
    try {
      text = readFile(file);
    } catch (e) {
      throw SwarmError.user('CONFIG_FILE_UNREADABLE', `✖ cannot read config file ${file}: ${(e as Error).message}\n  → at config`, e);
    }
    try {
      fromFile = JSON.parse(text);
    } catch (e) {
      throw SwarmError.user('CONFIG_INVALID', `✖ config file ${file} is not valid JSON: ${(e as Error).message}\n  → at config`, e);
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw SwarmError.user('CONFIG_INVALID', `✖ config file ${file} must hold a JSON object\n  → at config`);
    }
  }

  const fromContext: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(context)) {
    if ((CONFIG_KEYS as string[]).includes(key)) fromContext[key] = coerceContextValue(key, value);
    else if (!isForeignContextKey(key)) unknown.push(key);
  }
  if (unknown.length > 0) {
    const lines = unknown.map((k) => {
      const hint = closest(k);
      return `✖ unknown configuration key "${k}"${hint ? ` (did you mean "${hint}"?)` : ''}; known keys: ${CONFIG_KEYS.join(', ')}\n  → at ${k}`;
    });
    throw SwarmError.user('CONFIG_INVALID', `Invalid cluster configuration (-c context):\n${lines.join('\n')}`);
  }

  const source = file !== undefined ? `${String(file)} and -c context` : '-c context';
  return parseClusterConfig({ ...fromFile, ...fromContext }, source);
}
