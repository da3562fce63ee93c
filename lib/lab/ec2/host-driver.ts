/**
 * What EC2 state changes do to lab hosts (the `HostDriver` of ec2/instances.ts), used by the controller:
 * - launch: a namespace wired into the hub, the holder and dockerd ("AMI with Docker"), the image, then the
 *   launch template's user-data in the background, as cloud-init runs it;
 * - stop: dockerd stopped cleanly, then every other process of the host (reconciler, shims, containers, commands),
 *   and /run and /tmp emptied (tmpfs on a real instance); the disk (data root, /etc, /var/lib/cloud, /opt) is kept;
 * - start: dockerd again, then the per-boot scripts (never the user-data);
 * - terminate: everything stopped, the holder too, and the namespace deleted (the host is gone).
 */
import { cloudInitLogFile, runPerBootScripts, runUserData } from './cloud-init';
import { execInHost, LabHost } from './host-exec';
import { addHostNetwork } from './netns';
import { loadImage } from './image';
import { OptFile, HostsEntry, recordedHosts, startDocker, startHost, stopDocker } from './hosts';
import { Ec2Instance, HostDriver } from './instances';
import { labConfig, tool } from '../lab-config';
import { isAlive, mountNamespaceOf, processesInMountNamespace, record, stopProcesses, unrecordNetns } from '../resources';
import { runCommand } from '../run-process';
import { processesInCgroups, processesInNetns } from '../teardown';

export interface LabHostDriverOptions {
  readonly labDir: string;
  readonly prefix: string;
  readonly net: number;
  readonly extraHosts: readonly HostsEntry[];
  readonly optFiles: readonly OptFile[];
  /** The environment cloud-init gives scripts (PATH, the lab CA…). */
  readonly env: Record<string, string>;
  /** Upper bound of one user-data or per-boot run. */
  readonly scriptTimeoutMs: number;
  readonly log?: (line: string) => void;
}

/** Host name used for logs and the operator (`h<index>`). */
export const hostNameOf = (inst: Pick<Ec2Instance, 'index'>): string => `h${inst.index}`;

export function labHostDriver(o: LabHostDriverOptions): HostDriver {
  const cfg = labConfig({ labDir: o.labDir, prefix: o.prefix, net: o.net });
  const log = o.log ?? (() => undefined);
  const hostOf = (inst: Ec2Instance): LabHost => {
    const h = recordedHosts(o.labDir).find((x) => x.ns === inst.ns);
    if (!h) throw new Error(`instance ${inst.instanceId}: no host ${inst.ns} is recorded in ${o.labDir}`);
    return h;
  };
  const background = (inst: Ec2Instance, what: string, p: Promise<{ exitCode: number; timedOut: boolean }>): void => {
    void p.then(
      (r) => log(`${inst.instanceId} (${hostNameOf(inst)}): ${what} ended with exit code ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}; see ${cloudInitLogFile(o.labDir, hostNameOf(inst))}`),
      (e: unknown) => log(`${inst.instanceId} (${hostNameOf(inst)}): ${what} failed: ${(e as Error).message}`),
    );
  };

  /** Every process of the host but its holder: dockerd first and cleanly, then the rest. */
  const stopAll = async (host: LabHost): Promise<void> => {
    await stopDocker(host, { signal: 'SIGTERM', timeoutMs: 20_000 });
    const found = [...processesInCgroups([host.ns]), ...(await processesInNetns(host.ns))];
    const mnt = mountNamespaceOf(host.holderPid);
    if (mnt) found.push(...processesInMountNamespace(mnt));
    const others = found.filter((p, i) => p.pid !== host.holderPid && p.pid !== process.pid && found.findIndex((q) => q.pid === p.pid) === i && isAlive(p));
    const left = await stopProcesses(others, { graceMs: 3_000 });
    if (left.length > 0) throw new Error(`host ${host.ns}: processes ${left.map((p) => p.pid).join(', ')} did not stop`);
  };

  return {
    async launch(inst, userData) {
      await addHostNetwork(cfg, inst.index);
      const host = await startHost({ labDir: o.labDir, prefix: o.prefix, net: o.net, index: inst.index, hostname: inst.hostname, extraHosts: o.extraHosts, optFiles: o.optFiles });
      await loadImage([host]);
      log(`${inst.instanceId} (${hostNameOf(inst)}, ${inst.privateIp}) launched`);
      if (userData !== undefined) background(inst, 'user-data', runUserData({ host, hostName: hostNameOf(inst), script: userData, env: o.env, timeoutMs: o.scriptTimeoutMs }));
    },
    async stop(inst) {
      const host = hostOf(inst);
      await stopAll(host);
      // A reboot empties the tmpfs mounts; the disk stays.
      await execInHost(host, ['sh', '-c', 'rm -rf /run/* /run/.[!.]* /tmp/* /tmp/.[!.]* 2>/dev/null; true'], { cleanEnv: true, timeoutMs: 30_000 });
      log(`${inst.instanceId} (${hostNameOf(inst)}) stopped`);
    },
    async start(inst) {
      const host = await startDocker(hostOf(inst));
      log(`${inst.instanceId} (${hostNameOf(inst)}) started; running its per-boot scripts`);
      background(inst, 'per-boot scripts', runPerBootScripts({ host, hostName: hostNameOf(inst), env: o.env, timeoutMs: o.scriptTimeoutMs }));
    },
    async terminate(inst) {
      const host = hostOf(inst);
      await stopAll(host);
      await stopProcesses([{ pid: host.holderPid, startTime: host.holderStartTime }], { graceMs: 2_000 });
      const d = await runCommand(tool('ip'), ['netns', 'del', host.ns], { timeoutMs: 15_000 });
      if (d.exitCode !== 0) throw new Error(`host ${host.ns}: ip netns del failed: ${d.stderr.trim()}`);
      unrecordNetns(o.labDir, host.ns);
      record(o.labDir, (r) => {
        r.hosts = r.hosts.filter((h) => h.ns !== host.ns);
      });
      log(`${inst.instanceId} (${hostNameOf(inst)}) terminated`);
    },
  };
}
