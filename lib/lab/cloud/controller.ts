/**
 * The lab controller: the long-lived process that is the lab's "AWS" for SSM. It serves the SSM JSON endpoint
 * (ssm/endpoint.ts) on 127.0.0.1:<port> for the operator and on `<labDir>/cloud.sock` for the hosts (through the
 * gateway), runs Run Command scripts inside the target host as the SSM agent would, records CloudFormation
 * signals, and enforces what the construct's IAM policies intend (decision 2): a worker reads only the worker token
 * and the manager address; only the manager writes under `/ec2-swarm/<cluster>/`.
 *
 * Also the spawning side: `startControllerProcess` / `startGatewayProcess` start controller-main.ts and
 * gateway-main.ts detached, recorded for teardown, and wait (bounded) until they serve.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { z } from 'zod';
import { parameterPrefix } from '../../config';
import { SwarmError } from '../../errors';
import { AutoScalingService, type LifecycleState } from '../autoscaling/groups';
import { isHostRunning } from '../ec2/host-exec';
import { labHostDriver } from '../ec2/host-driver';
import { Ec2Service, type InstanceStateName } from '../ec2/instances';
import { defaultHostname, LabInstance } from '../imds/imds';
import { HOST_PATH, LabConfig, MAX_HOSTS, tool } from '../lab-config';
import { createQueryApi } from './aws-query';
import { startProcessInHub } from '../ec2/netns';
import { isAlive, readResources, recordProcess } from '../resources';
import { runCommand } from '../run-process';
import { signalsFile } from '../cloudformation/signals';
import { LabCloud, startLabCloud } from '../ssm/endpoint';
import { SsmServiceError } from '../ssm/errors';
import { Caller, spawnExecutor } from '../ssm/run-command';
import type { LabTls } from './tls';
import { labS3Authorizer, startLabS3, type LabS3 } from '../s3/endpoint';
import { labKeys } from '../credentials';

export const LAB_ACCOUNT_ID = '123456789012';

/** A lab instance as the controller knows it: the cloud's view plus the host's namespace. */
export interface ControllerInstance extends LabInstance {
  readonly role: 'manager' | 'worker';
  readonly ns: string;
  /** Host index (namespace `<prefix>-h<index>`). */
  readonly index: number;
}

/** Instance ids look real (`i-0` + 16 hex), stable for a lab dir + prefix + host index. */
export function instanceIdFor(cfg: Pick<LabConfig, 'labDir' | 'prefix'>, index: number): string {
  return `i-0${createHash('sha256').update(`${cfg.labDir}\0${cfg.prefix}\0${index}`).digest('hex').slice(0, 16)}`;
}

/** The environment cloud-init gives user-data, and the SSM agent gives Run Command scripts, on a lab host. */
export function hostScriptEnv(caBundle: string): Record<string, string> {
  return {
    PATH: HOST_PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    USER: 'root',
    // The lab CA signs the gateway's certificate for ssm.<region>.amazonaws.com. The machine's own AWS
    // configuration (profiles, keys) must not leak into an "instance": its credentials come from IMDS.
    AWS_CA_BUNDLE: caBundle,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// IAM intent

const PARAMETER_ACTIONS = new Set(['PutParameter', 'GetParameter', 'GetParameters', 'GetParametersByPath', 'DeleteParameter', 'DeleteParameters']);

function namesOf(action: string, input: Record<string, unknown>): string[] {
  if (action === 'GetParameters' || action === 'DeleteParameters') return Array.isArray(input.Names) ? input.Names.map(String) : [];
  if (action === 'GetParametersByPath') return [String(input.Path ?? '')];
  return [String(input.Name ?? '')];
}

/**
 * The `authorize` hook: the operator on 127.0.0.1 is the account's administrator; a host (via the gateway, known by
 * its source IP) gets what its role's policy intends. Refusals read like IAM's.
 */
export function labAuthorizer(
  clusterName: string,
  instances: readonly ControllerInstance[] | ((instanceId: string) => 'manager' | 'worker' | undefined),
  region: string,
): (caller: Caller, action: string, input: Record<string, unknown>) => void {
  const prefix = `${parameterPrefix(clusterName)}/`;
  // docs/round2-contracts.md: workers read the worker token and the manager addresses, nothing else.
  const workerReadable = new Set([`${prefix}worker-token`, `${prefix}manager-addresses`]);
  const table = typeof instances === 'function' ? undefined : new Map(instances.map((i) => [i.instanceId, i.role]));
  const roleOf = { get: (id: string) => (table ? table.get(id) : (instances as (id: string) => 'manager' | 'worker' | undefined)(id)) };
  const managerActions = new Set(['PutParameter', 'GetParameter', 'GetParameters', 'DeleteParameter']);
  const workerActions = new Set(['GetParameter', 'GetParameters']);
  return (caller, action, input) => {
    if (caller.via === 'tcp') return;
    const role = caller.instanceId ? roleOf.get(caller.instanceId) : undefined;
    const who = role ? `arn:aws:sts::${LAB_ACCOUNT_ID}:assumed-role/ec2-swarm-${clusterName}-${role}/${caller.instanceId}` : `unknown caller ${caller.sourceIp ?? '?'}`;
    const deny = (resource: string): never => {
      throw new SsmServiceError(
        'AccessDeniedException',
        `User: ${who} is not authorized to perform: ssm:${action} on resource: ${resource} because no identity-based policy allows the ssm:${action} action`,
      );
    };
    const arn = (name: string): string => `arn:aws:ssm:${region}:${LAB_ACCOUNT_ID}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
    if (!role) return deny('*');
    const allowed = role === 'manager' ? managerActions : workerActions;
    if (!PARAMETER_ACTIONS.has(action) || !allowed.has(action)) return deny(PARAMETER_ACTIONS.has(action) ? arn(namesOf(action, input)[0] ?? '') : '*');
    for (const name of namesOf(action, input)) {
      const ok = role === 'manager' ? name.startsWith(prefix) : workerReadable.has(name);
      if (!ok) deny(arn(name));
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The controller itself (in-process; controller-main.ts runs it as the lab's process)

const groupSchema = z.strictObject({
  name: z.string().min(1),
  role: z.enum(['manager', 'worker']),
  minSize: z.number().int().min(0),
  maxSize: z.number().int().min(0),
  desiredCapacity: z.number().int().min(0),
  userDataFile: z.string().min(1),
  launchTemplate: z.strictObject({ id: z.string(), name: z.string(), version: z.string() }),
  mixedInstancesPolicy: z
    .strictObject({
      instanceTypes: z.array(z.string().min(1)).min(1),
      onDemandBaseCapacity: z.number().int().min(0),
      onDemandPercentageAboveBaseCapacity: z.number().int().min(0).max(100),
    })
    .optional(),
  tags: z.array(z.strictObject({ key: z.string(), value: z.string(), propagateAtLaunch: z.boolean() })),
  terminationHook: z.strictObject({ name: z.string(), heartbeatTimeout: z.number().int().min(1), defaultResult: z.enum(['CONTINUE', 'ABANDON']) }).optional(),
  /** Instances `lab up` launched for this group. */
  members: z.array(z.string()),
});

export const controllerConfigSchema = z.strictObject({
  labDir: z.string().min(1),
  hubNs: z.string().min(1),
  prefix: z.string().min(1),
  net: z.number().int(),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
  clusterName: z.string().min(1),
  caBundle: z.string().min(1),
  availabilityZones: z.array(z.string().min(1)).min(1),
  instances: z.array(
    z.strictObject({
      instanceId: z.string().regex(/^i-[0-9a-f]{17}$/),
      privateIp: z.string().min(1),
      hostname: z.string().optional(),
      role: z.enum(['manager', 'worker']),
      ns: z.string().min(1),
      index: z.number().int().min(0),
      availabilityZone: z.string().optional(),
      tags: z.record(z.string(), z.string()).optional(),
    }),
  ),
  groups: z.array(groupSchema),
  /** What a new host gets (as `lab up` gives its first hosts): /etc/hosts lines, the cfn-signal stand-in. */
  launch: z.strictObject({
    extraHosts: z.array(z.strictObject({ ip: z.string(), names: z.array(z.string()).min(1) })),
    cfnSignalFile: z.string().min(1),
    maxLive: z.number().int().min(1),
  }),
  /** TCP port for the operator; 0 = any free port. */
  port: z.number().int().min(0).max(65535),
  /** The lab S3 (lib/lab/s3/): the staging bucket(s) it holds. @default - no S3 */
  s3: z.strictObject({ buckets: z.array(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)).min(1) }).optional(),
});

export type ControllerConfig = z.infer<typeof controllerConfigSchema>;

export function controllerPaths(labDir: string): {
  config: string;
  ready: string;
  socket: string;
  log: string;
  commandLog: string;
  requestLog: string;
  instances: string;
  s3Dir: string;
  s3Socket: string;
  s3RequestLog: string;
} {
  const logs = join(labDir, 'logs');
  return {
    // Objects are private (0700 dir, 0600 files) and go with `lab down`.
    s3Dir: join(labDir, 's3'),
    s3Socket: join(labDir, 's3.sock'),
    s3RequestLog: join(logs, 's3-requests.jsonl'),
    config: join(labDir, 'controller.json'),
    ready: join(labDir, 'controller.ready.json'),
    socket: join(labDir, 'cloud.sock'),
    log: join(logs, 'controller.log'),
    commandLog: join(logs, 'ssm-send-command.jsonl'),
    requestLog: join(logs, 'ssm-requests.jsonl'),
    instances: join(labDir, INSTANCES_FILE),
  };
}

/** One row of `<labDir>/instances.json`: the lab EC2's table, for the gateway's IMDS and the operator's helpers. */
export interface InstanceRow extends LabInstance {
  readonly index: number;
  readonly ns: string;
  readonly state: InstanceStateName;
  readonly role?: 'manager' | 'worker';
  readonly group?: string;
  readonly lifecycleState?: LifecycleState;
  readonly launchTime: string;
}

export const INSTANCES_FILE = 'instances.json';

export function readInstanceRows(labDir: string): InstanceRow[] {
  try {
    return (JSON.parse(readFileSync(join(labDir, INSTANCES_FILE), 'utf8')) as { instances: InstanceRow[] }).instances;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

export interface RunningController {
  readonly cloud: LabCloud;
  readonly s3?: LabS3;
  readonly ec2: Ec2Service;
  readonly autoscaling: AutoScalingService;
  close(): Promise<void>;
}

/**
 * Serve the lab's AWS: SSM (JSON) plus EC2 and Auto Scaling (Query) on the same listeners. Scripts run in the
 * hosts' namespaces; a stopped, terminated or unplugged instance is not Online. The groups keep their capacity
 * (a tick every second); the instance table is written to `<labDir>/instances.json` at every change.
 */
export async function startController(cfg: ControllerConfig): Promise<RunningController> {
  const paths = controllerPaths(cfg.labDir);
  const nsenter = tool('nsenter');
  const ip = tool('ip');
  const log = (line: string): void => void process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const roleOfTags = (tags: Readonly<Record<string, string>>): 'manager' | 'worker' | undefined =>
    tags['ec2-swarm:role'] === 'manager' || tags['ec2-swarm:role'] === 'worker' ? (tags['ec2-swarm:role'] as 'manager' | 'worker') : undefined;

  const driver = labHostDriver({
    labDir: cfg.labDir,
    prefix: cfg.prefix,
    net: cfg.net,
    extraHosts: cfg.launch.extraHosts,
    optFiles: [{ path: '/opt/aws/bin/cfn-signal', content: readFileSync(cfg.launch.cfnSignalFile), mode: 0o755 }],
    env: hostScriptEnv(cfg.caBundle),
    scriptTimeoutMs: 30 * 60_000,
    log,
  });
  let asg: AutoScalingService | undefined;
  let lastTable = '';
  const ec2 = new Ec2Service({
    driver,
    allocate: (index) => {
      const address = `192.168.${cfg.net}.${10 + index}`;
      return { index, instanceId: instanceIdFor(cfg, index), privateIp: address, hostname: defaultHostname(address, cfg.region), ns: `${cfg.prefix}-h${index}` };
    },
    availabilityZones: cfg.availabilityZones,
    maxLive: cfg.launch.maxLive,
    maxIndex: MAX_HOSTS,
    onChange: () => writeTable(),
    onError: (inst, what, e) => log(`${inst.instanceId}: ${what} failed: ${(e as Error).stack ?? String(e)}`),
  });
  const writeTable = (): void => {
    const rows: InstanceRow[] = ec2.list().map((i) => {
      const m = asg?.membership(i.instanceId);
      return {
        instanceId: i.instanceId,
        privateIp: i.privateIp,
        hostname: i.hostname,
        availabilityZone: i.availabilityZone,
        tags: i.tags,
        ...(i.instanceType ? { instanceType: i.instanceType } : {}),
        ...(i.instanceLifecycle ? { instanceLifecycle: i.instanceLifecycle } : {}),
        index: i.index,
        ns: i.ns,
        state: i.state,
        launchTime: new Date(i.launchTime).toISOString(),
        ...(roleOfTags(i.tags) ? { role: roleOfTags(i.tags) } : {}),
        ...(m ? { group: m.group, lifecycleState: m.state, targetLifecycleState: m.state.startsWith('Terminating') ? 'Terminated' : 'InService' } : {}),
      };
    });
    const text = JSON.stringify({ instances: rows }, null, 2) + '\n';
    if (text === lastTable) return; // the groups tick every second: write only what changed
    lastTable = text;
    const tmp = `${paths.instances}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, paths.instances);
  };
  for (const i of cfg.instances) {
    ec2.adopt({
      index: i.index,
      instanceId: i.instanceId,
      privateIp: i.privateIp,
      hostname: i.hostname ?? defaultHostname(i.privateIp, cfg.region),
      ns: i.ns,
      tags: i.tags ?? { 'ec2-swarm:cluster': cfg.clusterName, 'ec2-swarm:role': i.role },
      ...(i.availabilityZone ? { availabilityZone: i.availabilityZone } : {}),
    });
  }
  asg = new AutoScalingService({
    ec2,
    groups: cfg.groups.map((g) => ({
      name: g.name,
      minSize: g.minSize,
      maxSize: g.maxSize,
      desiredCapacity: g.desiredCapacity,
      userData: readFileSync(g.userDataFile, 'utf8'),
      launchTemplate: g.launchTemplate,
      ...(g.mixedInstancesPolicy ? { mixedInstancesPolicy: g.mixedInstancesPolicy } : {}),
      tags: g.tags,
      ...(g.terminationHook ? { terminationHook: g.terminationHook } : {}),
      availabilityZones: cfg.availabilityZones,
    })),
    onActivity: (group, d) => log(`autoscaling ${group}: ${d}`),
    // Lifecycle states change without an EC2 change (Terminating:Wait): IMDS and the operator must see them.
    onChange: () => writeTable(),
  });
  for (const g of cfg.groups) for (const id of g.members) asg.adopt(g.name, id);
  writeTable();

  const hostOf = (instanceId: string) => {
    const inst = ec2.get(instanceId);
    return inst ? readResources(cfg.labDir)?.hosts.find((h) => h.ns === inst.ns) : undefined;
  };
  // The SSM agent reports ConnectionLost when the instance's network is gone: the host's bridge port is down.
  const linkCache = new Map<string, { at: number; up: boolean }>();
  const linkUp = async (iface: string): Promise<boolean> => {
    const c = linkCache.get(iface);
    if (c && Date.now() - c.at < 1000) return c.up;
    const r = await runCommand(ip, ['-n', cfg.hubNs, '-j', 'link', 'show', 'dev', iface], { timeoutMs: 5000 });
    let up = false;
    try {
      up = r.exitCode === 0 && ((JSON.parse(r.stdout) as { flags?: string[] }[])[0]?.flags ?? []).includes('UP');
    } catch {
      up = false;
    }
    linkCache.set(iface, { at: Date.now(), up });
    return up;
  };
  // Signatures are verified with the keys the lab issued: the operator's, and the role keys of running instances.
  const keys = labKeys(() => ec2.list().filter((i) => i.state !== 'terminated').map((i) => i.instanceId));
  const cloud = await startLabCloud({
    region: cfg.region,
    keys,
    // SSM forgets terminated instances; stopped ones stay, ConnectionLost.
    instances: () => ec2.list().filter((i) => i.state !== 'terminated').map(({ instanceId, privateIp, hostname, tags }) => ({ instanceId, privateIp, hostname, tags })),
    executor: spawnExecutor(
      (instanceId) => {
        const host = hostOf(instanceId);
        if (!host || !isHostRunning(host) || ec2.get(instanceId)?.state !== 'running') throw new Error(`instance ${instanceId} is not running`);
        return [nsenter, '--target', String(host.holderPid), '--net', '--mount', '--uts', '--'];
      },
      { env: hostScriptEnv(cfg.caBundle) },
    ),
    isOnline: async (instanceId) => {
      const host = hostOf(instanceId);
      return ec2.get(instanceId)?.state === 'running' && !!host && isHostRunning(host) && (await linkUp(host.hubInterface));
    },
    tcp: { host: '127.0.0.1', port: cfg.port },
    socketPath: paths.socket,
    commandLog: paths.commandLog,
    requestLog: paths.requestLog,
    signalsFile: signalsFile(cfg.labDir),
    authorize: labAuthorizer(cfg.clusterName, (id) => { const t = ec2.get(id)?.tags; return t ? roleOfTags(t) : undefined; }, cfg.region),
    queryApi: createQueryApi({
      ec2,
      autoscaling: asg,
      region: cfg.region,
      accountId: LAB_ACCOUNT_ID,
      clusterName: cfg.clusterName,
      roleOf: (id) => { const t = ec2.get(id)?.tags; return t ? roleOfTags(t) : undefined; },
    }),
  });
  const s3 = cfg.s3
    ? await startLabS3({
        region: cfg.region,
        dir: paths.s3Dir,
        buckets: cfg.s3.buckets,
        socketPath: paths.s3Socket,
        requestLog: paths.s3RequestLog,
        keys,
        instanceByIp: (ip) => ec2.list().find((i) => i.privateIp === ip && i.state !== 'terminated')?.instanceId,
        authorize: labS3Authorizer(LAB_ACCOUNT_ID, cfg.clusterName, (id) => { const t = ec2.get(id)?.tags; return t ? roleOfTags(t) : undefined; }),
      }).catch(async (e: unknown) => {
        await cloud.close();
        throw e;
      })
    : undefined;
  const group = asg;
  const timer = setInterval(() => group.tick(), 1000);
  return {
    cloud,
    ...(s3 ? { s3 } : {}),
    ec2,
    autoscaling: asg,
    close: async () => {
      clearInterval(timer);
      await Promise.all([cloud.close(), s3?.close()]);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Spawning the controller and the gateway

/** argv that runs one of this folder's entry points: through tsx's require hook from a checkout, plain node from dist. */
function nodeEntry(name: string): string[] {
  const ext = extname(__filename);
  const file = join(__dirname, `${name}${ext}`);
  if (!existsSync(file)) throw SwarmError.environment('LAB_SCRIPT_MISSING', `${file} not found`);
  // One process (no tsx CLI wrapper): the PID recorded for teardown is the server itself.
  return ext === '.ts' ? [process.execPath, '--require', require.resolve('tsx/cjs'), file] : [process.execPath, file];
}

function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, pid: { pid: number; startTime: string }, log: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (!isAlive(pid)) throw SwarmError.environment('LAB_CLOUD_START', `the lab ${what} exited during start-up; last lines of ${log}:\n${logTail(log)}`);
    if (Date.now() > deadline) throw SwarmError.environment('LAB_CLOUD_START', `the lab ${what} did not start within ${timeoutMs / 1000}s; last lines of ${log}:\n${logTail(log)}`);
    await sleep(50);
  }
}

export interface StartedController {
  readonly pid: number;
  readonly endpoint: string;
  readonly socketPath: string;
  /** The lab S3 for the operator (`http://127.0.0.1:<port>`) and its socket for the gateway, when it runs. */
  readonly s3Endpoint?: string;
  readonly s3Socket?: string;
}

export async function startControllerProcess(o: {
  cfg: LabConfig;
  /** Everything but what the lab config already says (dir, hub, prefix, net) and the port. */
  config: Omit<ControllerConfig, 'labDir' | 'hubNs' | 'prefix' | 'net' | 'port'>;
  port?: number;
  timeoutMs?: number;
}): Promise<StartedController> {
  const paths = controllerPaths(o.cfg.labDir);
  const config: ControllerConfig = controllerConfigSchema.parse({
    ...o.config,
    labDir: o.cfg.labDir,
    hubNs: o.cfg.hubNs,
    prefix: o.cfg.prefix,
    net: o.cfg.net,
    port: o.port ?? 0,
  });
  writeFileSync(paths.config, JSON.stringify(config, null, 2) + '\n');
  rmSync(paths.ready, { force: true });
  mkdirSync(join(o.cfg.labDir, 'logs'), { recursive: true });
  const argv = nodeEntry('controller-main');
  const fd = openSync(paths.log, 'a');
  let pid: number | undefined;
  try {
    const child = spawn(argv[0], [...argv.slice(1), paths.config], { cwd: '/', detached: true, stdio: ['ignore', fd, fd], env: process.env });
    pid = child.pid;
    if (pid === undefined) throw SwarmError.environment('LAB_CLOUD_START', 'cannot start the lab controller');
    child.unref();
  } finally {
    closeSync(fd);
  }
  const rec = recordProcess(o.cfg.labDir, pid, 'helper', 'controller');
  const ready = await waitFor('controller', rec, paths.log, o.timeoutMs ?? 30_000, () => {
    if (!existsSync(paths.ready)) return undefined;
    const r = JSON.parse(readFileSync(paths.ready, 'utf8')) as StartedController;
    return r.pid === pid ? r : undefined;
  });
  return { pid, endpoint: ready.endpoint, socketPath: ready.socketPath, ...(ready.s3Endpoint && ready.s3Socket ? { s3Endpoint: ready.s3Endpoint, s3Socket: ready.s3Socket } : {}) };
}

/** Written by controller-main once it serves (atomically: the lab polls for it). */
export function writeControllerReady(labDir: string, ready: StartedController): void {
  const file = controllerPaths(labDir).ready;
  writeFileSync(`${file}.tmp`, JSON.stringify(ready) + '\n');
  renameSync(`${file}.tmp`, file);
}

export async function startGatewayProcess(o: {
  cfg: LabConfig;
  region: string;
  instances: readonly ControllerInstance[];
  controllerSocket: string;
  /** The lab S3's socket: the gateway sends S3's host names there. */
  s3Socket?: string;
  tls: LabTls;
  timeoutMs?: number;
}): Promise<{ pid: number }> {
  const file = join(o.cfg.labDir, 'gateway.json');
  const log = join(o.cfg.labDir, 'logs', 'gateway.log');
  writeFileSync(
    file,
    JSON.stringify(
      {
        region: o.region,
        instances: o.instances.map((i) => ({ instanceId: i.instanceId, privateIp: i.privateIp, hostname: i.hostname, role: i.role })),
        instancesFile: controllerPaths(o.cfg.labDir).instances,
        controllerSocket: o.controllerSocket,
        ...(o.s3Socket ? { s3Socket: o.s3Socket } : {}),
        imds: { host: '169.254.169.254', port: 80 },
        https: { host: o.cfg.hubAddress, port: 443, certFile: o.tls.cert, keyFile: o.tls.key },
      },
      null,
      2,
    ) + '\n',
  );
  writeFileSync(log, '');
  const argv = nodeEntry('gateway-main');
  const spawned = startProcessInHub([...argv, file], { labDir: o.cfg.labDir, prefix: o.cfg.prefix, net: o.cfg.net, logFile: log, label: 'gateway', cwd: '/' });
  const rec = readResources(o.cfg.labDir)!.processes.find((p) => p.pid === spawned.pid)!;
  await waitFor('gateway', rec, log, o.timeoutMs ?? 30_000, () => (/"ready":true/.test(readFileSync(log, 'utf8')) ? true : undefined));
  return { pid: spawned.pid };
}
