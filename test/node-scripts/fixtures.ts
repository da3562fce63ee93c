/**
 * What the manager and worker tests share: instance ids, the fake swarm as the tests read it, running manager.sh, a
 * swarm already published (set directly, as a manager leaves it: manager.test.ts checks that state on real runs),
 * and a cloud with one fresh manager for a describe block.
 */
import * as path from 'node:path';
import { params } from './helpers';
import { FakeCloud, FakeNode, RunResult, swarmEnv } from './stubs/sandbox';
import { readJson } from './stubs/tools';

export const P = params('demo');
export const M1 = 'i-0000000000000000a';
export const M2 = 'i-0000000000000000b';

/** One swarm of swarms.json (tools.js). */
export interface FakeSwarm {
  managers: string[];
  workerToken: string;
  managerToken: string;
  pool?: string;
  noLeader?: boolean;
  workers: string[];
  nodes: Array<{ id: string; role: string; addr: string; labels: string[] }>;
}

export const swarms = (cloud: FakeCloud): Record<string, FakeSwarm> => readJson<Record<string, FakeSwarm>>(path.join(cloud.dir, 'swarms.json'), {});
export const swarmOf = (cloud: FakeCloud, node: FakeNode): FakeSwarm => swarms(cloud)[node.dockerState().swarm.clusterId!];
/** Every `docker swarm init` any node ran. */
export const inits = (cloud: FakeCloud) => cloud.calls('docker').filter((c) => c.argv[0] === 'swarm' && c.argv[1] === 'init');
export const runManager = (node: FakeNode, extra: Record<string, string> = {}): Promise<RunResult> => node.run([node.script('manager.sh')], swarmEnv('demo', extra));

/**
 * A manager node whose swarm is published, as manager.sh leaves it: it inits the swarm and holds the lock;
 * cluster-id, both tokens and manager-addresses are in Parameter Store.
 */
export async function publishedManager(cloud: FakeCloud, node: { name?: string; ip?: string; instanceId?: string } = {}): Promise<FakeNode> {
  const { name = 'manager', ip = '10.0.1.20', instanceId = 'i-00000000000000001' } = node;
  const mgr = await cloud.addNode({ name, ip, instanceId });
  mgr.initSwarm();
  const swarm = swarmOf(cloud, mgr);
  cloud.putParameter(P.lock, 'String', instanceId);
  cloud.putParameter(P.clusterId, 'String', mgr.dockerState().swarm.clusterId!);
  cloud.putParameter(P.workerToken, 'SecureString', swarm.workerToken);
  cloud.putParameter(P.managerToken, 'SecureString', swarm.managerToken);
  cloud.putParameter(P.addresses, 'String', `${ip}:2377`);
  return mgr;
}

/** A cloud with one fresh manager m1 (10.0.1.20, M1), made before and closed after the calling describe block. */
export function freshManagerCloud(): { readonly cloud: FakeCloud; readonly m1: FakeNode } {
  const s = {} as { cloud: FakeCloud; m1: FakeNode };
  beforeAll(async () => {
    s.cloud = await FakeCloud.create();
    s.m1 = await s.cloud.addNode({ name: 'm1', ip: '10.0.1.20', instanceId: M1 });
  });
  afterAll(async () => {
    await s.cloud?.close();
  });
  return s;
}
