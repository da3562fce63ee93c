/** `status`: nodes and services with exact replica counts, from one state query on the manager. */
import type { OpsContext, StatusReport } from './types';
import { requireSwarm } from './swarm/query';
import { toStatusReport } from './swarm/snapshot';

export async function status(ctx: OpsContext): Promise<StatusReport> {
  return toStatusReport(await requireSwarm(ctx));
}
