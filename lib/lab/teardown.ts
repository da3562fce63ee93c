/**
 * Undo everything a lab recorded in `<labDir>/resources.json`, leaving the machine as found. Idempotent, and works
 * after a half-failed `up` or a crash. It only ever acts on what was recorded:
 * - processes: the recorded ones (PID + start time must still match), plus those found INSIDE the lab's own
 *   recorded namespaces/cgroups (e.g. containerd, shims, containers, leftovers of commands run in a host);
 * - network namespaces, cgroup directories, directories: only recorded names.
 * Never by process name.
 */
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmError } from '../errors';
import { isWithin, labConfig, tool } from './lab-config';
import { netnsExists } from './ec2/netns';
import {
  Resources,
  isAlive,
  mountNamespaceOf,
  mountedInOtherNamespace,
  processStartTime,
  processesInMountNamespace,
  readResources,
  resourcesPath,
  stopProcesses,
  writeResources,
} from './resources';
import { runCommand } from './run-process';

export interface TeardownReport {
  readonly labDir: string;
  /** False when there was no record (nothing to do). */
  readonly recorded: boolean;
  readonly stoppedProcesses: number;
  readonly deletedNetns: readonly string[];
  readonly removedCgroupDirs: number;
  readonly unmounted: readonly string[];
  readonly removedDirs: readonly string[];
}

type Proc = { pid: number; startTime?: string };

const CGROUP_ROOT = '/sys/fs/cgroup';

/** `/sys/fs/cgroup/<name>` (v2) and `/sys/fs/cgroup/<controller>/<name>` (v1) that exist. */
export function cgroupDirs(name: string): string[] {
  const out: string[] = [];
  const v2 = join(CGROUP_ROOT, name);
  if (existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) && existsSync(v2)) out.push(v2);
  let controllers: string[] = [];
  try {
    controllers = readdirSync(CGROUP_ROOT);
  } catch {
    // no cgroup fs
  }
  for (const c of controllers) {
    const d = join(CGROUP_ROOT, c, name);
    try {
      if (statSync(join(CGROUP_ROOT, c)).isDirectory() && existsSync(join(d, 'cgroup.procs'))) out.push(d);
    } catch {
      // not a directory
    }
  }
  return out;
}

/** Every directory below (and including) `dir`, deepest first. */
function subtreeDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: import('node:fs').Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}

export function processesInCgroups(names: readonly string[]): Proc[] {
  const out: Proc[] = [];
  for (const name of names) {
    for (const top of cgroupDirs(name)) {
      for (const d of subtreeDeepestFirst(top)) {
        try {
          for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) {
            const pid = Number(line);
            if (pid > 0) out.push({ pid, startTime: processStartTime(pid) });
          }
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  return out;
}

export async function processesInNetns(ns: string): Promise<Proc[]> {
  if (!netnsExists(ns)) return [];
  const r = await runCommand(tool('ip'), ['netns', 'pids', ns], { timeoutMs: 15_000 });
  return r.stdout
    .split('\n')
    .map(Number)
    .filter((pid) => pid > 0)
    .map((pid) => ({ pid, startTime: processStartTime(pid) }));
}

function uniqueAlive(procs: readonly Proc[]): Proc[] {
  const self = new Set([process.pid, process.ppid]);
  const seen = new Map<number, Proc>();
  for (const p of procs) if (!self.has(p.pid) && !seen.has(p.pid) && isAlive(p)) seen.set(p.pid, p);
  return [...seen.values()];
}

/** Mount points in THIS mount namespace below the lab dir (normally none: hosts mount in their own namespace). */
function mountsBelow(dir: string): string[] {
  const points: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded !== dir && isWithin(decoded, dir)) points.push(decoded);
  }
  return points.sort((a, b) => b.length - a.length);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Tear a lab down. Throws SwarmError (environment) listing what could not be removed; the record then keeps the
 * remaining items, so a second run retries exactly those.
 */
export async function teardown(labDir?: string): Promise<TeardownReport> {
  const cfg = labConfig(labDir !== undefined ? { labDir } : {});
  const r = readResources(cfg.labDir);
  const report = { labDir: cfg.labDir, recorded: r !== undefined, stoppedProcesses: 0, deletedNetns: [] as string[], removedCgroupDirs: 0, unmounted: [] as string[], removedDirs: [] as string[], keptMountPoints: [] as string[] };
  if (!r) return report;
  const problems: string[] = [];

  // 1. dockerd first and gracefully: it stops its containers and its containerd; helpers (gateway…) too.
  const graceful = r.processes.filter((p) => p.role === 'dockerd' || p.role === 'helper');
  const firstLeft = await stopProcesses(graceful.filter(isAlive), { graceMs: 20_000 });
  report.stoppedProcesses += graceful.length - firstLeft.length;

  // 2. whatever still lives in the lab's namespaces and cgroups (shims, containers, commands run in hosts), then holders.
  const hostNetns = r.netns.filter((n) => !n.endsWith('-hub'));
  const found: Proc[] = [...processesInCgroups(r.cgroups)];
  for (const ns of r.netns) found.push(...(await processesInNetns(ns)));
  for (const h of r.hosts) {
    if (isAlive({ pid: h.holderPid, startTime: h.holderStartTime })) {
      const mnt = mountNamespaceOf(h.holderPid);
      if (mnt) found.push(...processesInMountNamespace(mnt).filter((p) => p.pid !== h.holderPid));
    }
  }
  const others = uniqueAlive(found.filter((p) => !r.processes.some((q) => q.pid === p.pid && q.role === 'holder')));
  const holders = uniqueAlive(r.processes.filter((p) => p.role === 'holder'));
  const left = [
    ...(await stopProcesses(others, { graceMs: 3_000 })),
    ...(await stopProcesses(holders, { graceMs: 2_000 })),
    ...(await stopProcesses(uniqueAlive(r.processes), { graceMs: 2_000 })),
  ];
  report.stoppedProcesses += others.length + holders.length;
  for (const p of left) problems.push(`process ${p.pid} did not stop`);

  // 3. namespaces: hosts first, the hub (with the bridge and its ports) last.
  const remainingNetns: string[] = [];
  for (const ns of [...hostNetns, ...r.netns.filter((n) => !hostNetns.includes(n))]) {
    if (!netnsExists(ns)) continue;
    const d = await runCommand(tool('ip'), ['netns', 'del', ns], { timeoutMs: 15_000 });
    if (d.exitCode === 0) report.deletedNetns.push(ns);
    else {
      remainingNetns.push(ns);
      problems.push(`network namespace ${ns}: ${d.stderr.trim()}`);
    }
  }

  // 4. cgroup directories (rmdir only: the kernel refuses while a task is inside; it may take a moment after exit).
  const remainingCgroups: string[] = [];
  for (const name of r.cgroups) {
    for (let attempt = 0; ; attempt++) {
      const dirs = cgroupDirs(name).flatMap(subtreeDeepestFirst);
      const failed: string[] = [];
      for (const d of dirs) {
        try {
          rmdirSync(d);
          report.removedCgroupDirs++;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed.push(`${d}: ${(e as Error).message}`);
        }
      }
      if (failed.length === 0) break;
      if (attempt >= 20) {
        remainingCgroups.push(name);
        problems.push(...failed.map((f) => `cgroup ${f}`));
        break;
      }
      await sleep(100);
    }
  }

  // 5. mounts in the machine's namespace below the lab dir (there should be none), then the recorded dirs.
  for (const mp of mountsBelow(cfg.labDir)) {
    const u = await runCommand(tool('umount'), ['-l', mp], { timeoutMs: 15_000 });
    if (u.exitCode === 0) report.unmounted.push(mp);
    else problems.push(`mount ${mp}: ${u.stderr.trim()}`);
  }
  const remainingDirs: string[] = [];
  for (const d of r.dirs) {
    if (d === cfg.labDir || !isWithin(d, cfg.labDir)) continue; // never outside, never the lab dir itself
    try {
      if (existsSync(d)) {
        rmSync(d, { recursive: true, force: true, maxRetries: 3 });
        report.removedDirs.push(d);
      }
    } catch (e) {
      remainingDirs.push(d);
      problems.push(`directory ${d}: ${(e as Error).message}`);
    }
  }
  for (const m of r.createdMountPoints) {
    // Another lab's hosts may have their private mount on it: removing it would detach theirs (see mountedInOtherNamespace).
    if (mountedInOtherNamespace(m)) {
      report.keptMountPoints.push(m); // empty, made by this lab: `rmdir` it once no lab runs
      continue;
    }
    try {
      rmdirSync(m); // only if still empty
    } catch {
      // not empty (someone else uses it now) or already gone: leave it
    }
  }

  if (problems.length > 0) {
    const rest: Resources = { ...r, netns: remainingNetns, cgroups: remainingCgroups, dirs: remainingDirs, processes: r.processes.filter(isAlive) };
    writeResources(rest);
    throw SwarmError.environment('LAB_TEARDOWN_INCOMPLETE', `lab teardown of ${cfg.labDir} left:\n${problems.map((p) => `  ✖ ${p}`).join('\n')}\nrun it again, or remove these by hand`);
  }
  unlinkSync(resourcesPath(cfg.labDir));
  return report;
}
