/**
 * What the CLI's `lab up|down` call (docs/contracts.md, Lab): loaded only for those commands. Progress goes through
 * the reporter; the returned object is what `--json` prints. A failed `up` tears the half-started lab down (the logs
 * stay, and are named), so the machine is left as it was found.
 */
import { isSwarmError, SwarmError } from '../errors';
import type { Reporter } from '../ops/types';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabState, labDown, labUp, logFiles, signals } from './lab';
import { pushLabImage, startLabRegistry } from './registry/registry';
import { labConfig } from './lab-config';

export interface LabUpSummary {
  readonly labDir: string;
  readonly ssmEndpoint: string;
  /** The lab S3 (the staging bucket's stand-in), when the template has a staging bucket. */
  readonly s3Endpoint?: string;
  readonly region: string;
  readonly stackName: string;
  readonly outputsFile: string;
  readonly upSeconds: number;
  readonly hosts: readonly { name: string; role: string; instanceId: string; ip: string; hostname: string; signal?: string }[];
  /** With --with-registry: where it listens, the image in it, and the docker config holding its login. */
  readonly registry?: { readonly address: string; readonly user: string; readonly image: string; readonly dockerConfig: string };
}

function summary(state: LabState): LabUpSummary {
  const sig = new Map(signals(state).map((s) => [s.instanceId, s.status]));
  return {
    labDir: state.labDir,
    ssmEndpoint: state.ssmEndpoint,
    ...(state.s3Endpoint ? { s3Endpoint: state.s3Endpoint } : {}),
    region: state.region,
    stackName: state.stackName,
    outputsFile: state.outputsFile,
    upSeconds: state.upSeconds,
    hosts: state.hosts.map((h) => ({ name: h.name, role: h.role, instanceId: h.instanceId, ip: h.ip, hostname: h.hostname, signal: sig.get(h.instanceId) })),
  };
}

export const LAB_REGISTRY_USER = 'lab';

/** The lab registry with the lab image in it, and a docker config with its login (what `docker login` writes). */
async function withRegistry(state: LabState, password: string, reporter: Reporter): Promise<NonNullable<LabUpSummary['registry']>> {
  reporter.info('starting the lab registry (docker-registry, htpasswd, TLS from the lab CA)');
  const reg = await startLabRegistry(state, { username: LAB_REGISTRY_USER, password });
  const image = await pushLabImage(state, reg, { repository: 'lab/busybox', tag: 'latest', username: LAB_REGISTRY_USER, password });
  const dockerConfig = join(reg.dir, 'docker');
  mkdirSync(dockerConfig, { recursive: true, mode: 0o700 });
  writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.address]: { auth: Buffer.from(`${LAB_REGISTRY_USER}:${password}`).toString('base64') } } }), { mode: 0o600 });
  chmodSync(join(dockerConfig, 'config.json'), 0o600);
  reporter.info(`registry ${reg.address} (user ${LAB_REGISTRY_USER}) holds ${image}; deploy it with DOCKER_CONFIG=${dockerConfig} ec2-swarm deploy --target lab --registry-auth …`);
  return { address: reg.address, user: LAB_REGISTRY_USER, image, dockerConfig };
}

export async function up(opts: { workers?: number; managers?: number; reporter: Reporter; json?: boolean; registryPassword?: string }): Promise<LabUpSummary> {
  const { reporter } = opts;
  try {
    const state = await labUp({ workers: opts.workers, managers: opts.managers, reporter, ...(opts.registryPassword !== undefined ? { pullImages: true } : {}) });
    const registry = opts.registryPassword !== undefined ? await withRegistry(state, opts.registryPassword, reporter) : undefined;
    const s = { ...summary(state), ...(registry ? { registry } : {}) };
    for (const h of s.hosts) reporter.info(`  ${h.name}  ${h.role.padEnd(7)} ${h.instanceId}  ${h.ip.padEnd(15)} ${h.hostname}  signal ${h.signal ?? '-'}`);
    reporter.info(`SSM endpoint ${s.ssmEndpoint}${s.s3Endpoint ? `, S3 (staging bucket) ${s.s3Endpoint}` : ''}, outputs ${s.outputsFile}`);
    return s;
  } catch (e) {
    if (isSwarmError(e) && e.code === 'LAB_ALREADY_UP') throw e; // not ours to tear down
    if (isSwarmError(e) && e.fault === 'user') throw e; // nothing was started
    const dir = safeLabDir();
    const logs = dir ? logFiles({ labDir: dir }) : [];
    reporter.warn(`lab up failed; tearing down what was started. Logs: ${logs.length > 0 ? `\n  ${logs.join('\n  ')}` : '(none)'}`);
    try {
      await labDown({ reporter });
    } catch (downError) {
      reporter.warn(`lab down after the failed up did not finish: ${(downError as Error).message}`);
    }
    throw e;
  }
}

export async function down(opts: { reporter: Reporter; json?: boolean; purge?: boolean }): Promise<{ labDir: string; removed: string[] }> {
  const dir = labConfig().labDir;
  const r = await labDown({ reporter: opts.reporter, purge: opts.purge === true });
  opts.reporter.info(r.removed.length > 0 ? `removed:\n  ${r.removed.join('\n  ')}` : `nothing to remove in ${dir}`);
  return { labDir: dir, removed: r.removed };
}

function safeLabDir(): string | undefined {
  try {
    return labConfig().labDir;
  } catch (e) {
    if (e instanceof SwarmError) return undefined;
    throw e;
  }
}
