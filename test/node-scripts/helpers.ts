import * as path from 'node:path';
import { parameterPrefix } from '../../lib/parameter-names';

/** The scripts as they sit in the repository (tests run the copies each sandbox node installs: node.script()). */
export const RECONCILE_SH = path.resolve(__dirname, '../../scripts/node/reconcile.sh');

/** Runtime parameter names (docs/round2-contracts.md, "Runtime parameters"). */
export function params(cluster: string) {
  const p = parameterPrefix(cluster);
  return {
    lock: `${p}/init-lock`,
    clusterId: `${p}/cluster-id`,
    workerToken: `${p}/worker-token`,
    managerToken: `${p}/manager-token`,
    addresses: `${p}/manager-addresses`,
  };
}

/** Poll `check` every 50 ms until it is true; fails the test after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
