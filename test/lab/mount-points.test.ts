/**
 * A lab's teardown must not remove a mount point that another lab's hosts still mount on: removing it from the
 * machine's view detaches their private mounts, and those hosts then write into the machine's real directory (seen:
 * /var/lib/cloud/scripts/per-boot written on the machine while two labs ran). Root (unshare, mount).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountedInOtherNamespace } from '../../lib/lab/resources';

const canRun = process.getuid?.() === 0;
(canRun ? describe : describe.skip)('mountedInOtherNamespace', () => {
  test('true while another mount namespace has a bind mount there, false for its source and once that namespace is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec2swarm-mnt-'));
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    mkdirSync(src);
    mkdirSync(dst);
    const holder = spawn('/usr/bin/unshare', ['--mount', '--propagation', 'private', '--', '/bin/bash', '-c', 'mount --bind "$0" "$1" && echo READY && exec sleep 60', src, dst], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((r) => holder.on('exit', () => r()));
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (b: Buffer) => b.toString().includes('READY') && resolve());
        holder.on('exit', (code) => reject(new Error(`unshare exited ${code}`)));
      });
      expect(mountedInOtherNamespace(dst)).toBe(true);
      expect(mountedInOtherNamespace(src)).toBe(false);
    } finally {
      holder.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(mountedInOtherNamespace(dst)).toBe(false);
  });
});
