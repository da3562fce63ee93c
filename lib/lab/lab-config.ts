/**
 * Lab options (directory, name prefix, underlay /24), their validation, and the check that the machine can run a
 * lab at all (root, tools, cgroups) with an error naming exactly what is missing and which Debian package has it.
 */
import { accessSync, constants, existsSync, openSync, readSync, closeSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve, sep } from 'node:path';
import { z } from 'zod';
import { SwarmError } from '../errors';

export const DEFAULT_PREFIX = 'e2s';
export const DEFAULT_NET = 240;
/** Machine paths each host gets a private copy of (bind mounts inside the host's mount namespace). */
// /var/lib/cloud: cloud-init's per-boot scripts are per instance and survive a stop (the instance's disk).
export const PRIVATE_DIRS = ['/etc/docker', '/var/lib/docker', '/opt', '/tmp', '/var/lib/cloud'] as const;
/** Paths the host's mount namespace replaces wholesale: the lab dir must not live below any of them. */
const MASKED_PATHS = [...PRIVATE_DIRS, '/run', '/var/run', '/sys', '/proc', '/dev'];

export interface LabOptions {
  /**
   * Where the lab keeps everything it creates (data roots, logs, resources.json).
   *
   * @default - `$EC2_SWARM_LAB_DIR`, else `<repo>/.lab`
   */
  readonly labDir?: string;
  /**
   * Prefix of every namespace and cgroup name, so parallel labs do not collide.
   *
   * @default 'e2s'
   */
  readonly prefix?: string;
  /**
   * Third octet of the underlay network 192.168.<net>.0/24 (bridge .1, host i at .10+i).
   *
   * @default 240
   */
  readonly net?: number;
}

export interface LabConfig {
  readonly labDir: string;
  readonly prefix: string;
  readonly net: number;
  readonly hubNs: string;
  /** The hub bridge's address, where the gateway listens (the hosts' `ssm.<region>.amazonaws.com`). */
  readonly hubAddress: string;
}

export const IMDS_ADDRESS = '169.254.169.254';
export const BRIDGE = 'br0';
/** Hosts are at .10 … .254. */
export const MAX_HOSTS = 245;

import { defaultLabDir } from '../lab-location';

export { defaultLabDir };

/** True when `child` is `parent` or below it. */
export function isWithin(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

const labOptionsSchema = z.strictObject({
  labDir: z
    .string()
    .refine(isAbsolute, { message: 'must be an absolute path' })
    .refine((d) => !MASKED_PATHS.some((m) => isWithin(resolve(d), m)), {
      message: `must not be below ${MASKED_PATHS.join(', ')}: each host replaces those with private copies, so dockerd would not see its data`,
    })
    // dockerd puts containerd's sockets in <labDir>/<ns>/exec/containerd/ (54 more bytes at most); unix socket
    // paths are limited to 107 bytes.
    .refine((d) => resolve(d).length <= 50, { message: 'must be at most 50 characters long (unix socket paths below it are limited to 107)' })
    .optional(),
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,9}$/, { message: 'must be 1-10 lowercase letters or digits, starting with a letter' })
    .optional(),
  net: z
    .number({ message: 'must be a whole number from 0 to 255 (the third octet of 192.168.<net>.0/24)' })
    .int({ message: 'must be a whole number from 0 to 255 (the third octet of 192.168.<net>.0/24)' })
    .min(0, { message: 'must be a whole number from 0 to 255 (the third octet of 192.168.<net>.0/24)' })
    .max(255, { message: 'must be a whole number from 0 to 255 (the third octet of 192.168.<net>.0/24)' })
    .optional(),
});

/** Parse `input` with `schema`; bad input → SwarmError(LAB_OPTIONS_INVALID, fault user) naming each field. */
export function parseOptions<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw SwarmError.user('LAB_OPTIONS_INVALID', `Invalid ${what}:\n${z.prettifyError(r.error)}`, r.error);
  return r.data;
}

/** Options split off a larger options object (the rest is validated by the caller). */
export function pickLabOptions(o: LabOptions): LabOptions {
  const { labDir, prefix, net } = o;
  return Object.fromEntries(Object.entries({ labDir, prefix, net }).filter(([, v]) => v !== undefined)) as LabOptions;
}

export function labConfig(opts: LabOptions = {}): LabConfig {
  const o = parseOptions(labOptionsSchema, pickLabOptions(opts), 'lab options');
  const labDir = resolve(o.labDir ?? defaultLabDir());
  if (o.labDir === undefined) parseOptions(labOptionsSchema, { labDir }, 'lab directory (EC2_SWARM_LAB_DIR or /var/lib/ec2-swarm-lab)');
  // The environment gives the defaults, so the CLI, npm start and the e2e tests agree on which lab is which.
  const fromEnv = envLabOptions();
  const prefix = o.prefix ?? fromEnv.prefix ?? DEFAULT_PREFIX;
  const net = o.net ?? fromEnv.net ?? DEFAULT_NET;
  return { labDir, prefix, net, hubNs: `${prefix}-hub`, hubAddress: `192.168.${net}.1` };
}

/** EC2_SWARM_LAB_PREFIX / EC2_SWARM_LAB_NET, validated like the options (errors name the variable). */
function envLabOptions(): { prefix?: string; net?: number } {
  const { EC2_SWARM_LAB_PREFIX: prefix, EC2_SWARM_LAB_NET: net } = process.env;
  const input = {
    ...(prefix ? { prefix } : {}),
    ...(net ? { net: /^\d+$/.test(net) ? Number(net) : net } : {}),
  };
  return parseOptions(labOptionsSchema, input, 'lab environment (EC2_SWARM_LAB_PREFIX, EC2_SWARM_LAB_NET)');
}

export function hostNs(cfg: LabConfig, index: number): string {
  return `${cfg.prefix}-h${index}`;
}

export function hostAddress(cfg: LabConfig, index: number): string {
  return `192.168.${cfg.net}.${10 + index}`;
}

/** The bridge port in the hub for host `index` (interface names are per namespace; the hub is ours). */
export function hubInterface(index: number): string {
  return `veth-h${index}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Environment

/** Tools the lab runs, and the Debian package that provides each. */
export const REQUIRED_TOOLS = {
  dockerd: 'docker.io',
  docker: 'docker.io',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  ip: 'iproute2',
  busybox: 'busybox-static',
  tar: 'tar',
  sleep: 'coreutils',
  hostname: 'hostname',
  bash: 'bash',
} as const;

export type Tool = keyof typeof REQUIRED_TOOLS;
export type Tools = Record<Tool, string>;

const EXTRA_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The PATH the lab gives the processes it starts in hosts (like a root login shell). */
export const HOST_PATH = EXTRA_BIN_DIRS.join(':');

/** First executable `name` in the PATH-style list `dirs`. */
export function findExecutable(name: string, dirs: string): string | undefined {
  for (const d of dirs.split(delimiter).filter(Boolean)) {
    const f = join(d, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True if the ELF file has no program interpreter (PT_INTERP), i.e. runs in an empty image. */
export function isStaticElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // not ELF64
    const le = head[5] === 1;
    const phoff = Number(le ? head.readBigUInt64LE(0x20) : head.readBigUInt64BE(0x20));
    const phentsize = le ? head.readUInt16LE(0x36) : head.readUInt16BE(0x36);
    const phnum = le ? head.readUInt16LE(0x38) : head.readUInt16BE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const type = le ? ph.readUInt32LE(i * phentsize) : ph.readUInt32BE(i * phentsize);
      if (type === 3) return false; // PT_INTERP: dynamically linked
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

export interface EnvironmentProbe {
  /** @default process.getuid() === 0 */
  readonly isRoot?: boolean;
  /** Where to look for the tools. @default - $PATH, then the usual root bin directories (sbin may be off PATH) */
  readonly path?: string;
  /** @default '/sys/fs/cgroup' */
  readonly cgroupRoot?: string;
}

/**
 * Check the machine can run lab hosts; return the absolute path of each tool. Throws SwarmError (environment,
 * exit 3) listing everything missing at once, with the Debian packages to install.
 */
export function checkEnvironment(probe: EnvironmentProbe = {}): Tools {
  const problems: string[] = [];
  const isRoot = probe.isRoot ?? process.getuid?.() === 0;
  if (!isRoot) problems.push('must run as root (it creates network namespaces, mounts and cgroups)');

  const tools: Partial<Tools> = {};
  const missing = new Map<string, string[]>();
  for (const [tool, pkg] of Object.entries(REQUIRED_TOOLS) as [Tool, string][]) {
    const f = findExecutable(tool, probe.path ?? [process.env.PATH ?? '', HOST_PATH].join(delimiter));
    if (f) tools[tool] = f;
    else missing.set(pkg, [...(missing.get(pkg) ?? []), tool]);
  }
  if (tools.busybox && !isStaticElf(tools.busybox)) {
    missing.set('busybox-static', [...(missing.get('busybox-static') ?? []), `a static busybox (${tools.busybox} is dynamically linked)`]);
  }
  if (missing.size > 0) {
    const list = [...missing].map(([pkg, t]) => `${t.join(', ')} (Debian package ${pkg})`).join('; ');
    problems.push(`missing: ${list}; install with: apt-get install -y ${[...missing.keys()].join(' ')}`);
  }

  const cg = probe.cgroupRoot ?? '/sys/fs/cgroup';
  const v2 = existsSync(join(cg, 'cgroup.controllers'));
  const v1 = existsSync(join(cg, 'devices', 'devices.allow')) && existsSync(join(cg, 'memory'));
  if (!v1 && !v2) {
    problems.push(
      `cgroup layout unexpected: neither cgroup v2 (${cg}/cgroup.controllers) nor cgroup v1 with the devices and memory controllers (${cg}/devices, ${cg}/memory) is mounted; dockerd needs one of them`,
    );
  }
  if (problems.length > 0) {
    throw SwarmError.environment('LAB_ENVIRONMENT', `This machine cannot run the lab:\n${problems.map((p) => `  ✖ ${p}`).join('\n')}`);
  }
  return tools as Tools;
}

let cachedTools: Tools | undefined;

/** Absolute path of a tool; the first call checks the whole environment (and throws if anything is missing). */
export function tool(name: Tool): string {
  cachedTools ??= checkEnvironment();
  return cachedTools[name];
}
