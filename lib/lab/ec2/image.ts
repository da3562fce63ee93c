/**
 * The lab's only image, local/busybox:latest (no registry is reachable): a rootfs of the machine's static
 * /bin/busybox and its applet links, `docker import`ed once on the first host, then `docker save`d to
 * `<labDir>/image/` and `docker load`ed on the others in parallel (separate daemons). The saved tar is reused by
 * later labs while /bin/busybox is unchanged, so every lab gets the same image id.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmError } from '../../errors';
import { ExecResult, LabHost, execInHost } from './host-exec';
import { tool } from '../lab-config';
import { runChecked } from '../run-process';

export const LAB_IMAGE = 'local/busybox:latest';

export interface ImagePaths {
  readonly dir: string;
  readonly rootfsTar: string;
  readonly imageTar: string;
  readonly stamp: string;
}

export function imagePaths(labDir: string): ImagePaths {
  const dir = join(labDir, 'image');
  return { dir, rootfsTar: join(dir, 'busybox-rootfs.tar'), imageTar: join(dir, 'local-busybox.tar'), stamp: join(dir, 'busybox.sha256') };
}

function busyboxDigest(): string {
  return createHash('sha256').update(readFileSync(tool('busybox'))).digest('hex');
}

/** Build the rootfs tar (cached; rebuilt when /bin/busybox changes, which also drops the saved image). */
export async function buildRootfsTar(labDir: string): Promise<ImagePaths> {
  const p = imagePaths(labDir);
  const digest = busyboxDigest();
  const fresh = existsSync(p.stamp) && readFileSync(p.stamp, 'utf8').trim() === digest;
  if (fresh && existsSync(p.rootfsTar)) return p;
  mkdirSync(p.dir, { recursive: true });
  rmSync(p.imageTar, { force: true });
  const root = join(p.dir, `rootfs.${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  try {
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(tool('busybox'), join(root, 'bin', 'busybox'));
    const applets = (await runChecked(tool('busybox'), ['--list'], { timeoutMs: 10_000 })).stdout.split('\n');
    for (const a of applets) {
      if (/^[a-z0-9_.[-]+$/i.test(a) && a !== 'busybox') symlinkSync('busybox', join(root, 'bin', a));
    }
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n');
    const tmpTar = `${p.rootfsTar}.${process.pid}.tmp`;
    await runChecked(tool('tar'), ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tmpTar, '.'], { timeoutMs: 60_000 });
    renameSync(tmpTar, p.rootfsTar);
    writeFileSync(p.stamp, digest + '\n');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return p;
}

async function docker(host: LabHost, args: string[], timeoutMs: number): Promise<ExecResult> {
  const r = await execInHost(host, [tool('docker'), ...args], { cleanEnv: true, timeoutMs });
  if (r.exitCode !== 0) {
    throw SwarmError.environment('LAB_IMAGE', `docker ${args[0]} on host ${host.ns} failed (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`);
  }
  return r;
}

/**
 * Make local/busybox:latest available on every host: from the cached saved image if there is one, else import on
 * the first host and save. Loads on the other hosts run in parallel.
 */
export async function loadImage(hosts: readonly LabHost[], opts: { timeoutMs?: number } = {}): Promise<void> {
  if (hosts.length === 0) return;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const p = await buildRootfsTar(hosts[0].labDir);
  let rest = hosts;
  if (!existsSync(p.imageTar)) {
    const first = hosts[0];
    await docker(first, ['import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin', p.rootfsTar, LAB_IMAGE], timeoutMs);
    const tmp = `${p.imageTar}.${process.pid}.tmp`;
    await docker(first, ['save', '-o', tmp, LAB_IMAGE], timeoutMs);
    renameSync(tmp, p.imageTar);
    rest = hosts.slice(1);
  }
  await Promise.all(rest.map((h) => docker(h, ['load', '-q', '-i', p.imageTar], timeoutMs)));
}
