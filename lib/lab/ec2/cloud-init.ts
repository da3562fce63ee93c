/**
 * What cloud-init does on a lab host: the user-data once, at the first boot (as root, by its own `#!` line, stdin
 * /dev/null, output appended to `<labDir>/logs/<host>-cloud-init-output.log`), and at every later boot the
 * executable files of `/var/lib/cloud/scripts/per-boot/` in name order (never the user-data again).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExecResult, LabHost, execInHost } from './host-exec';

export function cloudInitLogFile(labDir: string, hostName: string): string {
  return join(labDir, 'logs', `${hostName}-cloud-init-output.log`);
}

/** Runs the user-data in the host; resolves when it ends (or at the timeout, the process group killed). */
export function runUserData(o: { host: LabHost; hostName: string; script: string; env: Record<string, string>; timeoutMs: number }): Promise<ExecResult> {
  const dir = join(o.host.labDir, 'hosts', o.hostName);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'user-data');
  writeFileSync(file, o.script, { mode: 0o700 });
  chmodSync(file, 0o700);
  const log = cloudInitLogFile(o.host.labDir, o.hostName);
  mkdirSync(join(o.host.labDir, 'logs'), { recursive: true });
  writeFileSync(log, '');
  return execInHost(o.host, ['bash', '-c', 'exec >>"$1" 2>&1 </dev/null; exec "$2"', 'cloud-init', log, file], { cleanEnv: true, env: o.env, timeoutMs: o.timeoutMs });
}

/** Runs the host's per-boot scripts, as cloud-init's scripts_per_boot module does at every boot after the first. */
export function runPerBootScripts(o: { host: LabHost; hostName: string; env: Record<string, string>; timeoutMs: number }): Promise<ExecResult> {
  const log = cloudInitLogFile(o.host.labDir, o.hostName);
  const script = [
    'exec >>"$1" 2>&1 </dev/null',
    'echo "lab cloud-init: boot at $(date -u +%Y-%m-%dT%H:%M:%SZ): running /var/lib/cloud/scripts/per-boot"',
    'rc=0',
    'for f in /var/lib/cloud/scripts/per-boot/*; do',
    '  [ -f "$f" ] && [ -x "$f" ] || continue',
    '  "$f" || { echo "lab cloud-init: $f failed ($?)"; rc=1; }',
    'done',
    'exit "$rc"',
  ].join('\n');
  return execInHost(o.host, ['bash', '-c', script, 'cloud-init', log], { cleanEnv: true, env: o.env, timeoutMs: o.timeoutMs });
}
