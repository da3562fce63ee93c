import * as path from 'node:path';

export const MANAGER_SH = path.resolve(__dirname, '../../scripts/node/manager.sh');
export const WORKER_SH = path.resolve(__dirname, '../../scripts/node/worker.sh');
export const LEAVE_SH = path.resolve(__dirname, '../../scripts/node/leave-on-shutdown.sh');

/** Poll `check` every 50 ms until it is true; fails the test after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
