/**
 * The lab network: a hub namespace `<prefix>-hub` with bridge br0 (192.168.<net>.1/24 and 169.254.169.254/32),
 * and per host a namespace `<prefix>-h<i>` whose eth0 is a veth into br0 (192.168.<net>.<10+i>/24), lo up, a
 * link-scope route to 169.254.169.254 and NO default route: nothing can leave. The machine's own namespace is
 * never touched. Every namespace is recorded before use; only recorded namespaces are ever changed or deleted.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { SwarmError } from '../../errors';
import {
  BRIDGE,
  IMDS_ADDRESS,
  LabConfig,
  LabOptions,
  MAX_HOSTS,
  hostAddress,
  hostNs,
  hubInterface,
  labConfig,
  tool,
} from '../lab-config';
import { readResources, recordNetns, recordProcess, unrecordNetns } from '../resources';
import { runChecked } from '../run-process';

const NETNS_DIR = '/run/netns';

export function netnsExists(ns: string): boolean {
  return existsSync(`${NETNS_DIR}/${ns}`);
}

function ip(args: string[]): Promise<unknown> {
  return runChecked(tool('ip'), args, { timeoutMs: 15_000, what: `ip ${args.join(' ')}` });
}

/** Create a namespace we own; refuses one that already exists (another lab, or a leftover: run teardown). */
async function addNetns(cfg: LabConfig, ns: string): Promise<void> {
  if (netnsExists(ns)) {
    const ours = readResources(cfg.labDir)?.netns.includes(ns);
    throw SwarmError.environment(
      'LAB_NETNS_EXISTS',
      ours
        ? `network namespace ${ns} is left over from a previous lab in ${cfg.labDir}: run the lab teardown first`
        : `network namespace ${ns} already exists and is not this lab's (${cfg.labDir}): another lab uses prefix '${cfg.prefix}'; choose another prefix (EC2_SWARM_LAB_PREFIX, and EC2_SWARM_LAB_NET for its subnet)`,
    );
  }
  recordNetns(cfg.labDir, ns); // before creating: a crash right after `ip netns add` must not leak it
  try {
    await ip(['netns', 'add', ns]);
  } catch (e) {
    if (!netnsExists(ns)) unrecordNetns(cfg.labDir, ns);
    throw e;
  }
}

export interface NetworkOptions extends LabOptions {
  /** Number of hosts to wire (indexes 0 … hosts-1). */
  readonly hosts: number;
}

export interface LabNetwork {
  readonly config: LabConfig;
  readonly hubNs: string;
  readonly hubAddress: string;
  readonly hosts: readonly { index: number; ns: string; address: string; hubInterface: string }[];
}

/** The hub namespace, its bridge and addresses. */
export async function createHub(cfg: LabConfig): Promise<void> {
  tool('ip'); // checks the whole environment first
  await addNetns(cfg, cfg.hubNs);
  const n = cfg.hubNs;
  await ip(['-n', n, 'link', 'set', 'lo', 'up']);
  await ip(['-n', n, 'link', 'add', BRIDGE, 'type', 'bridge']);
  await ip(['-n', n, 'addr', 'add', `${cfg.hubAddress}/24`, 'dev', BRIDGE]);
  // The gateway's IMDS listens here; hosts reach it through their link-scope route.
  await ip(['-n', n, 'addr', 'add', `${IMDS_ADDRESS}/32`, 'dev', BRIDGE]);
  await ip(['-n', n, 'link', 'set', BRIDGE, 'up']);
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_HOSTS) {
    throw SwarmError.user('LAB_OPTIONS_INVALID', `Invalid host:\n✖ must be a whole number from 0 to ${MAX_HOSTS - 1}\n  → at index`);
  }
}

/** A host's namespace, wired into the hub's bridge. */
export async function addHostNetwork(cfg: LabConfig, index: number): Promise<{ index: number; ns: string; address: string; hubInterface: string }> {
  checkIndex(index);
  const ns = hostNs(cfg, index);
  const port = hubInterface(index);
  const address = hostAddress(cfg, index);
  await addNetns(cfg, ns);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  await ip(['-n', cfg.hubNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await ip(['-n', cfg.hubNs, 'link', 'set', port, 'master', BRIDGE, 'up']);
  await ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
  await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', ns, 'route', 'add', `${IMDS_ADDRESS}/32`, 'dev', 'eth0', 'scope', 'link']);
  return { index, ns, address, hubInterface: port };
}

/** Hub + `hosts` host namespaces. Hosts are wired in parallel (independent namespaces). */
export async function createNetwork(opts: NetworkOptions): Promise<LabNetwork> {
  const cfg = labConfig(opts);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw SwarmError.user('LAB_OPTIONS_INVALID', `Invalid network options:\n✖ must be a whole number from 1 to ${MAX_HOSTS}\n  → at hosts`);
  }
  await createHub(cfg);
  const hosts = await Promise.all(Array.from({ length: opts.hosts }, (_, i) => addHostNetwork(cfg, i)));
  return { config: cfg, hubNs: cfg.hubNs, hubAddress: cfg.hubAddress, hosts };
}

// ---------------------------------------------------------------------------------------------------------------
// Fault injection: a host's cable is its bridge port in the hub.

export interface LinkRef {
  readonly labDir: string;
  readonly hubNs: string;
  readonly hubInterface: string;
  readonly ns: string;
}

function requireRecorded(labDir: string, ns: string): void {
  if (!readResources(labDir)?.netns.includes(ns)) {
    throw SwarmError.user('LAB_NETNS_UNKNOWN', `network namespace ${ns} is not recorded in ${labDir}: the lab only touches namespaces it created`);
  }
}

/** Unplug a host: its bridge port goes down, so its eth0 loses carrier (like a dead instance's network). */
export async function cutLink(host: LinkRef): Promise<void> {
  requireRecorded(host.labDir, host.hubNs);
  await ip(['-n', host.hubNs, 'link', 'set', host.hubInterface, 'down']);
}

export async function restoreLink(host: LinkRef): Promise<void> {
  requireRecorded(host.labDir, host.hubNs);
  await ip(['-n', host.hubNs, 'link', 'set', host.hubInterface, 'up']);
}

// ---------------------------------------------------------------------------------------------------------------
// Long-lived processes inside a namespace of the lab (e.g. the gateway in the hub)

export interface SpawnInNetnsOptions extends LabOptions {
  /** Complete environment. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** stdout+stderr appended here. @default - piped to the returned ChildProcess */
  readonly logFile?: string;
  /** Name recorded for messages and teardown. @default argv[0] */
  readonly label?: string;
  readonly cwd?: string;
}

export interface SpawnedProcess {
  readonly pid: number;
  /** The child; when logging to a file it is unref'ed and may outlive this Node process. */
  readonly child: ChildProcess;
}

/**
 * Start a long-lived process in one of this lab's network namespaces (only the network namespace: it shares the
 * machine's filesystem). Recorded for teardown, which stops it by PID. Its own session (setsid), so a Ctrl-C of
 * the starting terminal does not reach it.
 */
export function spawnInNetns(ns: string, argv: readonly string[], opts: SpawnInNetnsOptions = {}): SpawnedProcess {
  const cfg = labConfig(opts);
  if (argv.length === 0) throw SwarmError.user('LAB_OPTIONS_INVALID', 'Invalid process:\n✖ must name a program\n  → at argv');
  requireRecorded(cfg.labDir, ns);
  if (!netnsExists(ns)) throw SwarmError.environment('LAB_NETNS_MISSING', `network namespace ${ns} does not exist (lab not up?)`);
  let fd: number | undefined;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    fd = openSync(opts.logFile, 'a');
  }
  try {
    const child = spawn(tool('nsenter'), [`--net=${NETNS_DIR}/${ns}`, '--', ...argv], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
      stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw SwarmError.environment('LAB_SPAWN_FAILED', `cannot start ${argv[0]} in ${ns}`);
    recordProcess(cfg.labDir, child.pid, 'helper', opts.label ?? `${argv[0]}@${ns}`);
    if (fd !== undefined) child.unref();
    return { pid: child.pid, child };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** spawnInNetns in the hub namespace (where the gateway serves IMDS and the SSM endpoint). */
export function startProcessInHub(argv: readonly string[], opts: SpawnInNetnsOptions = {}): SpawnedProcess {
  return spawnInNetns(labConfig(opts).hubNs, argv, opts);
}
