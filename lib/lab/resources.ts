/**
 * What a lab created, recorded in `<labDir>/resources.json` as it is created, so `teardown` can undo it even after
 * a crash or a half-failed `up`. Processes are recorded with their kernel start time: a PID is only ever signalled
 * while it still names the process we started (PIDs are reused). Nothing is ever found "by name".
 *
 * Writes are synchronous read-modify-write + atomic rename: safe within one Node process (the event loop never
 * interleaves them); the lab has one writer at a time (`lab up`, then the controller it starts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmError } from '../errors';

export const RESOURCES_FILE = 'resources.json';

export type ProcessRole = 'holder' | 'dockerd' | 'helper';

export interface RecordedProcess {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): together with the PID, identifies the process. */
  readonly startTime: string;
  readonly role: ProcessRole;
  /** Host or helper name, for messages. */
  readonly label: string;
}

/** Everything needed to reach a started host from another process (the controller, `lab down`). */
export interface HostRecord {
  readonly labDir: string;
  readonly index: number;
  /** Network namespace name, also the host's cgroup parent: `<prefix>-h<index>`. */
  readonly ns: string;
  readonly hubNs: string;
  /** Interface in the hub namespace (bridge port) whose link is this host's cable. */
  readonly hubInterface: string;
  readonly hostname: string;
  readonly address: string;
  /** `<labDir>/<ns>`: data-root, exec-root, pidfile, the private /opt, /tmp, /etc/docker… */
  readonly dir: string;
  readonly holderPid: number;
  readonly holderStartTime: string;
  readonly dockerdPid?: number;
  readonly dockerdLog: string;
}

export interface Resources {
  version: 1;
  labDir: string;
  /** Network namespaces this lab created (hosts and hub). Only these are ever deleted. */
  netns: string[];
  /** Cgroup names (`/sys/fs/cgroup/<controller>/<name>`) used as dockerd `--cgroup-parent`. */
  cgroups: string[];
  processes: RecordedProcess[];
  /** Directories under labDir removed at teardown. */
  dirs: string[];
  /** Directories of the machine that did not exist and were created as mount points (removed only if empty). */
  createdMountPoints: string[];
  hosts: HostRecord[];
}

export function resourcesPath(labDir: string): string {
  return join(labDir, RESOURCES_FILE);
}

function empty(labDir: string): Resources {
  return { version: 1, labDir, netns: [], cgroups: [], processes: [], dirs: [], createdMountPoints: [], hosts: [] };
}

/** The record of a lab, or undefined when nothing was recorded (never started, or fully torn down). */
export function readResources(labDir: string): Resources | undefined {
  const file = resourcesPath(labDir);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<Resources>;
    return { ...empty(labDir), ...parsed, labDir };
  } catch (e) {
    throw SwarmError.environment('LAB_RESOURCES_UNREADABLE', `cannot read ${file}: ${(e as Error).message}`, e);
  }
}

export function writeResources(r: Resources): void {
  mkdirSync(r.labDir, { recursive: true });
  const file = resourcesPath(r.labDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n');
  renameSync(tmp, file);
}

/** Synchronously apply `change` to the record (created on first use). */
export function record(labDir: string, change: (r: Resources) => void): void {
  const r = readResources(labDir) ?? empty(labDir);
  change(r);
  writeResources(r);
}

function addUnique(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value);
}

export const recordNetns = (labDir: string, ns: string): void => record(labDir, (r) => addUnique(r.netns, ns));
export const unrecordNetns = (labDir: string, ns: string): void =>
  record(labDir, (r) => {
    r.netns = r.netns.filter((n) => n !== ns);
  });
export const recordCgroup = (labDir: string, name: string): void => record(labDir, (r) => addUnique(r.cgroups, name));
export const recordDir = (labDir: string, dir: string): void => record(labDir, (r) => addUnique(r.dirs, dir));
export const recordMountPoint = (labDir: string, dir: string): void =>
  record(labDir, (r) => addUnique(r.createdMountPoints, dir));

export function recordHost(host: HostRecord): void {
  record(host.labDir, (r) => {
    r.hosts = [...r.hosts.filter((h) => h.ns !== host.ns), host];
  });
}

/** Record a process we just spawned. Call in the same tick as spawn(), before awaiting anything. */
export function recordProcess(labDir: string, pid: number, role: ProcessRole, label: string): RecordedProcess {
  const startTime = processStartTime(pid);
  if (startTime === undefined) {
    throw SwarmError.environment('LAB_PROCESS_VANISHED', `${role} ${label} (PID ${pid}) exited immediately`);
  }
  const p: RecordedProcess = { pid, startTime, role, label };
  record(labDir, (r) => r.processes.push(p));
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Process identity and stopping by PID

interface ProcStat {
  state: string;
  startTime: string;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: fields after the LAST ')' are fixed.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], startTime: rest[19] };
  } catch {
    return undefined;
  }
}

export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** True while `p` is running (not a zombie) and its PID still names the process we recorded. */
export function isAlive(p: { pid: number; startTime?: string }): boolean {
  const st = procStat(p.pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return p.startTime === undefined || st.startTime === p.startTime;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * Stop processes by PID: `sig` (default TERM), wait up to `graceMs`, then KILL and wait up to `killWaitMs`.
 * Processes whose PID no longer names the recorded process are left alone. Returns those still alive at the end.
 */
export async function stopProcesses(
  procs: readonly { pid: number; startTime?: string }[],
  opts: { sig?: NodeJS.Signals; graceMs?: number; killWaitMs?: number } = {},
): Promise<{ pid: number; startTime?: string }[]> {
  const self = new Set([process.pid, process.ppid]);
  let alive = procs.filter((p) => !self.has(p.pid) && isAlive(p));
  for (const p of alive) signal(p.pid, opts.sig ?? 'SIGTERM');
  const waitUntil = async (ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (alive.length > 0 && Date.now() < deadline) {
      await sleep(50);
      alive = alive.filter(isAlive);
    }
  };
  await waitUntil(opts.graceMs ?? 10_000);
  for (const p of alive) signal(p.pid, 'SIGKILL');
  await waitUntil(opts.killWaitMs ?? 5_000);
  return alive;
}

/** The mount namespace id of a process (`mnt:[4026532…]`), or undefined if it is gone. */
export function mountNamespaceOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/**
 * Whether any mount namespace of the machine but this process's own has something mounted at `dir` (a lab host's
 * private bind). Removing such a directory from the machine's view would detach those mounts (Linux ≥ 3.18), and
 * that host would then write into the machine's real directory.
 */
export function mountedInOtherNamespace(dir: string): boolean {
  const own = mountNamespaceOf(process.pid);
  const seen = new Set<string>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const ns = mountNamespaceOf(Number(p));
    if (!ns || ns === own || seen.has(ns)) continue;
    seen.add(ns);
    let info: string;
    try {
      info = readFileSync(`/proc/${p}/mountinfo`, 'utf8');
    } catch {
      continue; // the process ended meanwhile
    }
    // Field 5 is the mount point, octal-escaped (e.g. a space is \040).
    if (info.split('\n').some((line) => line.split(' ')[4] === dir)) return true;
  }
  return false;
}

/** Every process (with identity) sharing the given mount namespace, found by scanning /proc. */
export function processesInMountNamespace(mntNs: string): { pid: number; startTime?: string }[] {
  const out: { pid: number; startTime?: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (mountNamespaceOf(pid) !== mntNs) continue;
    const startTime = processStartTime(pid);
    if (startTime !== undefined) out.push({ pid, startTime });
  }
  return out;
}
