/**
 * Lab hosts: "an EC2 instance from an AMI with Docker baked in and running", on one machine.
 *
 * Lab architecture (agreed between the lab's parts; kept here because it is the reference for this code):
 * - Lab dir: `$EC2_SWARM_LAB_DIR` or `<repo>/.lab` (gitignored). Everything the lab creates is recorded in
 *   `<labDir>/resources.json` as it is created, so teardown undoes it even after a crash. A lab has a prefix
 *   (default `e2s`; tests use their own) in every namespace/cgroup name, so parallel labs do not collide.
 * - Network (netns.ts): hub netns `<pfx>-hub` with bridge br0 = 192.168.<net>.1/24 (net default 240) and
 *   169.254.169.254/32. One netns per host `<pfx>-h<i>`: eth0 (veth into br0) = 192.168.<net>.(10+i)/24, lo up,
 *   route `169.254.169.254/32 dev eth0` (link scope), NO default route. The machine's own namespace is never touched.
 * - A gateway process (the lab cloud) runs in the hub netns: IMDSv2 on 169.254.169.254:80 answering per source IP,
 *   HTTPS for `ssm.<region>.amazonaws.com` on 192.168.<net>.1:443, the cfn-signal stand-in's reports; it proxies to
 *   the controller's unix socket `<labDir>/cloud.sock`. The controller serves the SSM JSON protocol on 127.0.0.1.
 * - Each host = its netns + a long-lived "holder" process
 *   (`nsenter --net=/run/netns/<ns> unshare --mount --uts --propagation private`, scripts/lab/host-holder.sh)
 *   with private mounts: a sysfs for the netns with the cgroup tree rebound (lab-notes pitfall 1), tmpfs on /run,
 *   private /etc/docker, /var/lib/docker, /opt (so /opt/ec2-swarm and /opt/aws/bin/cfn-signal are per host), /tmp,
 *   and a private /etc/hosts (e.g. `ssm.<region>.amazonaws.com` → 192.168.<net>.1); hostname = the host's name.
 *   dockerd runs in it with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 (swarm tasks never pull; not in a lab started with
 *   `pullImages`, marked by `<labDir>/pull-images`: its tasks pull, e.g. from the lab registry), the default socket /var/run/docker.sock (in the
 *   private /run), its own data-root/exec-root/pidfile under `<labDir>/<ns>/`, `--cgroup-parent /<ns>`.
 *   The image local/busybox:latest is built once and loaded on every host (image.ts).
 * - Commands run IN a host with `nsenter --target <holderPid> --net --mount --uts -- <argv>` (execInHost): that is
 *   how user-data runs (as cloud-init would) and how the lab's Run Command executes scripts.
 * - Instance ids look real (`i-` + 17 hex), derived from the lab id + host index (the lab cloud's business).
 * - Teardown (teardown.ts) stops processes by recorded PID + start time, never by name, and only deletes recorded
 *   namespaces.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { dirname, join, normalize, posix } from 'node:path';
import { z } from 'zod';
import { SwarmError } from '../../errors';
import {
  HOST_PATH,
  LabOptions,
  MAX_HOSTS,
  PRIVATE_DIRS,
  hostAddress,
  hostNs,
  hubInterface,
  isWithin,
  labConfig,
  parseOptions,
  tool,
} from '../lab-config';
import { netnsExists } from './netns';
import {
  isAlive,
  readResources,
  recordCgroup,
  recordDir,
  recordHost,
  recordMountPoint,
  recordProcess,
  stopProcesses,
} from '../resources';
import { LabHost, dockerSocketOf, requireHolder } from './host-exec';

// One import point for the lab's host API.
export type { ExecOptions, ExecResult, LabHost } from './host-exec';
export { dockerSocketOf, execInHost, isHostRunning } from './host-exec';
export { LAB_IMAGE, loadImage } from './image';
export type { LabConfig, LabOptions } from '../lab-config';
export { checkEnvironment, labConfig } from '../lab-config';
export type { LabNetwork, SpawnedProcess, SpawnInNetnsOptions } from './netns';
export { createNetwork, cutLink, restoreLink, spawnInNetns, startProcessInHub } from './netns';
export type { TeardownReport } from '../teardown';
export { teardown } from '../teardown';


export interface OptFile {
  /** Absolute path below /opt (e.g. `/opt/aws/bin/cfn-signal`) or a path relative to /opt. */
  readonly path: string;
  readonly content: string | Buffer;
  /** @default 0o644 */
  readonly mode?: number;
}

export interface HostsEntry {
  readonly ip: string;
  readonly names: readonly string[];
}

export interface StartHostOptions extends LabOptions {
  /** Host index: namespace `<prefix>-h<index>` (created by createNetwork), address 192.168.<net>.<10+index>. */
  readonly index: number;
  /**
   * The host's hostname (what `docker node ls` shows).
   *
   * @default - the namespace name, `<prefix>-h<index>`
   */
  readonly hostname?: string;
  /** Extra /etc/hosts lines, e.g. `{ ip: '192.168.240.1', names: ['ssm.eu-west-1.amazonaws.com'] }`. */
  readonly extraHosts?: readonly HostsEntry[];
  /** Files placed in the host's private /opt before anything runs (e.g. the cfn-signal stand-in). */
  readonly optFiles?: readonly OptFile[];
  /** Extra dockerd arguments (tests: a bad flag to exercise a failed start). */
  readonly dockerdArgs?: readonly string[];
  /** Upper bound for each step of the start: the namespace holder ready, then dockerd answering. @default 60000 */
  readonly readyTimeoutMs?: number;
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const hostnameSchema = z.string().regex(HOSTNAME, { message: 'must be a DNS name: letters, digits, hyphens and dots' });

const startHostSchema = z.object({
  index: z
    .number({ message: `must be a whole number from 0 to ${MAX_HOSTS - 1}` })
    .int({ message: `must be a whole number from 0 to ${MAX_HOSTS - 1}` })
    .min(0, { message: `must be a whole number from 0 to ${MAX_HOSTS - 1}` })
    .max(MAX_HOSTS - 1, { message: `must be a whole number from 0 to ${MAX_HOSTS - 1}` }),
  hostname: z.string().max(63, { message: 'must be at most 63 characters' }).pipe(hostnameSchema).optional(),
  extraHosts: z
    .array(
      z.strictObject({
        ip: z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address' }),
        names: z.array(hostnameSchema).min(1, { message: 'list at least one name' }),
      }),
    )
    .optional(),
  optFiles: z
    .array(
      z.strictObject({
        path: z
          .string()
          .refine((p) => !p.includes('\0') && !p.split('/').includes('..') && (!p.startsWith('/') || p.startsWith('/opt/')) && optPath(p) !== '/opt', {
            message: 'must name a file below /opt, e.g. /opt/aws/bin/cfn-signal (no "..")',
          }),
        content: z.union([z.string(), z.instanceof(Buffer)]),
        mode: z.number().int().min(0).max(0o7777).optional(),
      }),
    )
    .optional(),
  dockerdArgs: z.array(z.string().refine((s) => !s.includes('\0'), { message: 'must not contain NUL' })).optional(),
  readyTimeoutMs: z.number().int().min(1).max(600_000).optional(),
});

/** `/opt/x/y` or `x/y` → `/opt/x/y`. */
function optPath(p: string): string {
  return posix.normalize(p.startsWith('/opt/') ? p : posix.join('/opt', p));
}

/** Where a host's private copy of a machine path lives: `/var/lib/docker` → `<dir>/private/var-lib-docker`. */
function privateSource(dir: string, machinePath: string): string {
  return join(dir, 'private', machinePath.slice(1).replace(/\//g, '-'));
}

function holderScript(): string {
  for (const up of ['../../..', '../../../..']) {
    const f = join(__dirname, up, 'scripts', 'lab', 'host-holder.sh');
    if (existsSync(f)) return f;
  }
  throw SwarmError.environment('LAB_SCRIPT_MISSING', `scripts/lab/host-holder.sh not found near ${__dirname}`);
}

function hostsFile(address: string, hostname: string, extra: readonly HostsEntry[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `${address}\t${hostname}`];
  for (const e of extra) lines.push(`${e.ip}\t${e.names.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** Wait for the holder to print READY (its mounts are in place), or fail with what it printed. */
function waitForHolder(child: ChildProcess, timeoutMs: number, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const done = (e?: Error): void => {
      clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      child.removeAllListeners('exit');
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.unref();
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(
      () => done(SwarmError.environment('LAB_HOST_START', `host ${label}: namespace holder not ready after ${timeoutMs} ms: ${err.trim()}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('READY\n')) done();
    });
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('exit', (code) =>
      done(SwarmError.environment('LAB_HOST_START', `host ${label}: namespace holder exited (${code}) while setting up: ${err.trim()}`)),
    );
  });
}

/** Ensure a machine directory exists to mount over; one we had to create is recorded and removed at teardown. */
function ensureMountPoint(labDir: string, dir: string): void {
  if (existsSync(dir)) return;
  recordMountPoint(labDir, dir);
  mkdirSync(dir, { recursive: true });
}

/**
 * Start a host in its (already created) namespace: the holder with the private mounts, then dockerd; resolves
 * once dockerd answers on its socket (bounded by readyTimeoutMs). Everything is recorded as it is created.
 */
export async function startHost(opts: StartHostOptions): Promise<LabHost> {
  const cfg = labConfig(opts);
  const { labDir: _l, prefix: _p, net: _n, ...rest } = opts;
  const o = parseOptions(startHostSchema, rest, 'host options');
  const ns = hostNs(cfg, o.index);
  const hostname = o.hostname ?? ns;
  const label = `${ns} (${hostname})`;
  if (!netnsExists(ns) || !readResources(cfg.labDir)?.netns.includes(ns)) {
    throw SwarmError.environment('LAB_NETNS_MISSING', `network namespace ${ns} of lab ${cfg.labDir} does not exist: create the network first`);
  }
  const running = readResources(cfg.labDir)?.hosts.find((h) => h.ns === ns);
  if (running && isAlive({ pid: running.holderPid, startTime: running.holderStartTime })) {
    throw SwarmError.environment('LAB_HOST_RUNNING', `host ${ns} is already running (holder PID ${running.holderPid})`);
  }

  const dir = join(cfg.labDir, ns);
  recordDir(cfg.labDir, dir);
  rmSync(dir, { recursive: true, force: true }); // leftovers of an earlier run: this host starts as a fresh instance
  for (const d of ['cg', 'data', 'exec']) mkdirSync(join(dir, d), { recursive: true });
  const binds: string[] = [];
  for (const p of PRIVATE_DIRS) {
    const src = privateSource(dir, p);
    mkdirSync(src, { recursive: true });
    chmodSync(src, p === '/tmp' ? 0o1777 : 0o755);
    ensureMountPoint(cfg.labDir, p);
    binds.push(src, p);
  }
  const address = hostAddress(cfg, o.index);
  writeFileSync(join(dir, 'hosts'), hostsFile(address, hostname, o.extraHosts ?? []));
  binds.push(join(dir, 'hosts'), '/etc/hosts');
  for (const f of o.optFiles ?? []) {
    const target = join(privateSource(dir, '/opt'), posix.relative('/opt', optPath(f.path)));
    if (!isWithin(normalize(target), privateSource(dir, '/opt'))) {
      throw SwarmError.user('LAB_OPTIONS_INVALID', `Invalid host options:\n✖ must name a file below /opt\n  → at optFiles.path (${f.path})`);
    }
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    writeFileSync(target, f.content);
    chmodSync(target, f.mode ?? 0o644);
  }

  const holder = spawn(
    tool('nsenter'),
    [`--net=/run/netns/${ns}`, '--', tool('unshare'), '--mount', '--uts', '--propagation', 'private', '--', tool('bash'), holderScript(), dir, hostname, ...binds],
    { env: { PATH: HOST_PATH, LANG: 'C.UTF-8' }, cwd: '/', detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (holder.pid === undefined) throw SwarmError.environment('LAB_HOST_START', `host ${label}: cannot start the namespace holder`);
  // nsenter and unshare exec (no fork): this PID is the holder itself, whose namespaces execInHost enters.
  const holderRec = recordProcess(cfg.labDir, holder.pid, 'holder', ns);
  // The same bound as dockerd's start: a loaded machine (two labs starting at once) takes longer than a few seconds here.
  await waitForHolder(holder, o.readyTimeoutMs ?? 60_000, label);

  const logsDir = join(cfg.labDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const base: LabHost = {
    labDir: cfg.labDir,
    index: o.index,
    ns,
    hubNs: cfg.hubNs,
    hubInterface: hubInterface(o.index),
    hostname,
    address,
    dir,
    holderPid: holder.pid,
    holderStartTime: holderRec.startTime,
    dockerdLog: join(logsDir, `${ns}-dockerd.log`),
  };
  recordHost(base);
  writeFileSync(base.dockerdLog, ''); // a fresh log per host start; restarts append
  return startDocker(base, { readyTimeoutMs: o.readyTimeoutMs, dockerdArgs: o.dockerdArgs });
}

/** The lab-wide marker of `labUp({ pullImages: true })`: hosts launched later (replacements) pull too. */
export function pullImagesMarker(labDir: string): string {
  return join(labDir, 'pull-images');
}
function pullImages(labDir: string): boolean {
  return existsSync(pullImagesMarker(labDir));
}

/** GET /_ping on the host's dockerd socket: true when it answers OK. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * (Re)start dockerd in a running host (its holder must be alive); resolves when it answers. Used by startHost,
 * and by tests that stopped it (stopDocker) to bring the "instance's" Docker back.
 */
export async function startDocker(
  host: LabHost,
  opts: { readyTimeoutMs?: number; dockerdArgs?: readonly string[] } = {},
): Promise<LabHost> {
  requireHolder(host);
  if (host.dockerdPid !== undefined) {
    const rec = readResources(host.labDir)?.processes.find((p) => p.pid === host.dockerdPid && p.role === 'dockerd');
    if (rec && isAlive(rec)) throw SwarmError.environment('LAB_DOCKERD_RUNNING', `dockerd of ${host.ns} is already running (PID ${rec.pid})`);
  }
  const args = [
    '--target', String(host.holderPid), '--net', '--mount', '--uts', '--',
    tool('dockerd'),
    '--data-root', join(host.dir, 'data'),
    '--exec-root', join(host.dir, 'exec'),
    // The default path, in the host's private /run: node scripts signal dockerd through it (reload on SIGHUP).
    '--pidfile', '/var/run/docker.pid',
    '-H', 'unix:///var/run/docker.sock',
    '--cgroup-parent', `/${host.ns}`,
    '--shutdown-timeout', '2',
    ...(opts.dockerdArgs ?? []),
  ];
  recordCgroup(host.labDir, host.ns);
  const fd = openSync(host.dockerdLog, 'a');
  let child: ChildProcess;
  try {
    child = spawn(tool('nsenter'), args, {
      env: { PATH: HOST_PATH, HOME: '/root', LANG: 'C.UTF-8', ...(pullImages(host.labDir) ? {} : { DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1' }) },
      cwd: '/',
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw SwarmError.environment('LAB_HOST_START', `host ${host.ns}: cannot start dockerd`);
  const rec = recordProcess(host.labDir, child.pid, 'dockerd', host.ns);
  child.unref();
  const started: LabHost = { ...host, dockerdPid: child.pid };
  recordHost(started);

  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const socket = dockerSocketOf(host);
  for (;;) {
    if (await ping(socket)) return started;
    if (!isAlive(rec)) {
      throw SwarmError.environment('LAB_DOCKERD_FAILED', `dockerd of host ${host.ns} exited during start-up; last lines of ${host.dockerdLog}:\n${logTail(host.dockerdLog)}`);
    }
    if (Date.now() > deadline) {
      throw SwarmError.environment('LAB_DOCKERD_TIMEOUT', `dockerd of host ${host.ns} did not answer within ${timeoutMs} ms; last lines of ${host.dockerdLog}:\n${logTail(host.dockerdLog)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stop a host's dockerd by its PID (fault injection: "the instance's Docker died"). SIGTERM stops it cleanly
 * (containers stopped, swarm sees the node go down); SIGKILL simulates a crash. The holder stays: the host can
 * get its dockerd back with startDocker.
 */
export async function stopDocker(host: LabHost, opts: { signal?: 'SIGTERM' | 'SIGKILL'; timeoutMs?: number } = {}): Promise<void> {
  const rec = readResources(host.labDir)?.processes.find((p) => p.pid === host.dockerdPid && p.role === 'dockerd');
  if (!rec) return;
  const left = await stopProcesses([rec], { sig: opts.signal ?? 'SIGTERM', graceMs: opts.timeoutMs ?? 20_000 });
  if (left.length > 0) throw SwarmError.environment('LAB_DOCKERD_STOP', `dockerd of ${host.ns} (PID ${rec.pid}) did not stop`);
}

/** The hosts recorded in a lab dir (for processes other than the one that started them, e.g. the controller). */
export function recordedHosts(labDir?: string): LabHost[] {
  const cfg = labConfig(labDir !== undefined ? { labDir } : {});
  return readResources(cfg.labDir)?.hosts ?? [];
}

