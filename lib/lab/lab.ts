/**
 * The lab as one API: `labUp` synthesizes the default cluster in-process, starts the hosts (netns + dockerd, an
 * "AMI with Docker baked in"), the lab cloud (controller: SSM endpoint + signals; gateway: IMDS + HTTPS front in the
 * hub namespace), then runs the manager's and the workers' user-data from the template — unchanged, as cloud-init
 * would — and waits for every CloudFormation signal, like `cdk deploy` does. `labDown` undoes everything recorded.
 *
 * Used by the CLI (`lab up|down`, through cli.ts), `npm start` and the end-to-end tests.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { SwarmError } from '../errors';
import type { Reporter } from '../ops/types';
import { LAB_ACCOUNT_ID, hostScriptEnv, instanceIdFor, startControllerProcess, startGatewayProcess, type ControllerInstance } from './cloud/controller';
import {
  createNetwork,
  cutLink as cutHostLink,
  execInHost,
  loadImage,
  pullImagesMarker,
  recordedHosts,
  restoreLink as restoreHostLink,
  startDocker as startHostDocker,
  startHost as startLabHost,
  stopDocker as stopHostDocker,
  teardown,
  type LabHost,
} from './ec2/hosts';
import { HOST_PATH, checkEnvironment, findExecutable, labConfig, parseOptions } from './lab-config';
import { readResources } from './resources';
import { SignalRecord, latestByInstance, readSignals, signalsFile } from './cloudformation/signals';
import { extractUserData, resolveOutputs, type CfnTemplate, type LabStackValues } from './cloudformation/template';
import { awsHostnames, ensureLabTls } from './cloud/tls';
import { s3Hostnames } from './s3/endpoint';
import { LabHostInfo, LabState, readLabStateFile, removeLabStateFile, writeLabStateFile } from './state';
import { defaultHostname } from './imds/imds';
import { readInstanceRows } from './cloud/controller';
import { queryLab } from './cloud/query-client';
import { EC2_VERSION } from './ec2/query-api';
import type { InstanceStateName } from './ec2/instances';
import { ASG_VERSION } from './autoscaling/query-api';

export type { LabHostInfo, LabState } from './state';
export { hostScriptEnv } from './cloud/controller';

export const LAB_CLUSTER_NAME = 'lab';
export const LAB_REGION = 'us-east-1';
export const MAX_LAB_WORKERS = 20;
export const LAB_AVAILABILITY_ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
/** Hosts alive at once (the machine's memory: ~130 MB each): every manager and worker, plus replacements in flight. */
export const MAX_LAB_LIVE_HOSTS = 7 + MAX_LAB_WORKERS + 4;

export interface LabUpOptions {
  /** Worker hosts. @default 3 (0 … 20 in the lab) */
  readonly workers?: number;
  /** Manager hosts: 1, 3, 5 or 7 (an odd count: a majority survives). @default 1 */
  readonly managers?: number;
  readonly labDir?: string;
  readonly prefix?: string;
  readonly net?: number;
  readonly reporter?: Reporter;
  /**
   * Run the workers' user-data this many seconds BEFORE the manager's (ordering test: decision 4).
   *
   * @default 0 - all at once, like CloudFormation
   */
  readonly workerHeadStartSeconds?: number;
  /** Upper bound for all signals (CloudFormation's CreationPolicy timeout). @default 300 */
  readonly timeoutSeconds?: number;
  /**
   * Swarm tasks pull their images (from the lab registry, lib/lab/registry/); a pull elsewhere fails fast (no
   * route out) and the local image is used.
   *
   * @default false - tasks use local images only (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1)
   */
  readonly pullImages?: boolean;
}

export interface LabSignal {
  /** Host name (`h0` …), when the signal came from a lab host. */
  readonly host?: string;
  readonly instanceId?: string;
  readonly resource: string;
  readonly status: 'SUCCESS' | 'FAILURE';
  readonly exitCode: number | null;
  readonly time: string;
}

const quiet: Reporter = { info: () => undefined, warn: () => undefined, progress: () => undefined, done: () => undefined };

const WHOLE_0_20 = `must be a whole number from 0 to ${MAX_LAB_WORKERS} in the lab`;
const upSchema = z.strictObject({
  workers: z.number({ message: WHOLE_0_20 }).int({ message: WHOLE_0_20 }).min(0, { message: WHOLE_0_20 }).max(MAX_LAB_WORKERS, { message: WHOLE_0_20 }).optional(),
  managers: z.union([z.literal(1), z.literal(3), z.literal(5), z.literal(7)], { message: 'must be 1, 3, 5 or 7: an odd count, so a majority of managers survives a failure' }).optional(),
  workerHeadStartSeconds: z.number({ message: 'must be a number of seconds from 0 to 600' }).min(0, { message: 'must be a number of seconds from 0 to 600' }).max(600, { message: 'must be a number of seconds from 0 to 600' }).optional(),
  pullImages: z.boolean({ message: 'must be true or false' }).optional(),
  timeoutSeconds: z.number({ message: 'must be a whole number of seconds from 10 to 3600' }).int({ message: 'must be a whole number of seconds from 10 to 3600' }).min(10, { message: 'must be a whole number of seconds from 10 to 3600' }).max(3600, { message: 'must be a whole number of seconds from 10 to 3600' }).optional(),
});

/** Debian packages the node scripts and the lab cloud need on top of what the hosts need (lab-config). */
const NODE_TOOLS: Record<string, string> = { curl: 'curl', aws: 'awscli', openssl: 'openssl', timeout: 'coreutils', awk: 'mawk', sed: 'sed' };

/** Root, the host tools (lab-config), and what the user-data runs: the AWS CLI must be found on the hosts' PATH. */
export function checkLabEnvironment(): void {
  const problems: string[] = [];
  try {
    checkEnvironment();
  } catch (e) {
    problems.push(String((e as Error).message).replace(/^This machine cannot run the lab:\n/, ''));
  }
  const missing = Object.entries(NODE_TOOLS).filter(([t]) => !findExecutable(t, HOST_PATH));
  if (missing.length > 0) {
    problems.push(
      `  ✖ missing on ${HOST_PATH}: ${missing.map(([t, p]) => `${t} (Debian package ${p})`).join(', ')}; install with: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(' ')}`,
    );
  }
  if (problems.length > 0) throw SwarmError.environment('LAB_ENVIRONMENT', `This machine cannot run the lab:\n${problems.join('\n')}`);
}

function findUp(rel: string): string {
  for (const up of ['../..', '../../..']) {
    const f = join(__dirname, up, rel);
    if (existsSync(f)) return f;
  }
  throw SwarmError.environment('LAB_SCRIPT_MISSING', `${rel} not found near ${__dirname}`);
}

/** Synthesizes the default cluster `lab` with N workers in-process, exactly as `cdk synth` would (cdk-nag enforced). */
export function synthesizeLabCluster(workers: number, outdir: string, managers = 1): { template: CfnTemplate; stackName: string } {
  // Loaded here: the CDK is heavy and `lab down` / readLabState must not pay for it.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { App } = require('aws-cdk-lib') as typeof import('aws-cdk-lib');
  const { addSwarmStack, packageCdkContext } = require('../cluster/swarm-app') as typeof import('../cluster/swarm-app');
  const { parseClusterConfig } = require('../config') as typeof import('../config');
  /* eslint-enable @typescript-eslint/no-require-imports */
  rmSync(outdir, { recursive: true, force: true });
  const app = new App({ context: packageCdkContext(), outdir });
  const { stack } = addSwarmStack(app, parseClusterConfig({ name: LAB_CLUSTER_NAME, workers, ...(managers !== 1 ? { managers } : {}) }));
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as CfnTemplate;
  return { template, stackName: stack.stackName };
}

function tagValue(r: { Properties?: Record<string, unknown> }, key: string): string | undefined {
  const tags = r.Properties?.Tags;
  if (!Array.isArray(tags)) return undefined;
  const t = tags.find((x) => (x as { Key?: string }).Key === key) as { Value?: unknown } | undefined;
  return typeof t?.Value === 'string' ? t.Value : undefined;
}

/** The values CloudFormation would supply for this lab: the manager's Ref is its instance id, the rest stable fakes. */
export function labStackValues(template: CfnTemplate, stackName: string, managerInstanceId: string): LabStackValues {
  const refs: Record<string, string> = {};
  for (const [id, r] of Object.entries(template.Resources)) {
    const hash = createHash('sha256').update(`${stackName}/${id}`).digest('hex');
    const fixedName = r.Properties?.AutoScalingGroupName;
    if (r.Type === 'AWS::EC2::Instance' && tagValue(r, 'ec2-swarm:role') === 'manager') refs[id] = managerInstanceId;
    else if (r.Type === 'AWS::AutoScaling::AutoScalingGroup') refs[id] = typeof fixedName === 'string' ? fixedName : `${stackName}-${id}-${hash.slice(0, 12).toUpperCase()}`;
    else if (r.Type === 'AWS::EC2::LaunchTemplate') refs[id] = `lt-0${hash.slice(0, 16)}`;
    else refs[id] = `lab-${id.toLowerCase().slice(0, 40)}-${hash.slice(0, 8)}`;
  }
  for (const id of Object.keys(template.Parameters ?? {})) refs[id] = `lab-parameter-${id.slice(0, 40)}`;
  // Attributes the lab has no real value for get stable fakes (a launch template's version is 1: nothing updates it).
  const attributeFallback = (id: string, attr: string): string | undefined => {
    if (!(id in template.Resources)) return undefined;
    if (attr === 'LatestVersionNumber' || attr === 'DefaultVersionNumber') return '1';
    if (attr === 'Arn') return `arn:aws:lab:${LAB_REGION}:${LAB_ACCOUNT_ID}:${id.toLowerCase()}/${refs[id]}`;
    return `lab-${id.toLowerCase().slice(0, 40)}-${attr.toLowerCase()}`;
  };
  return { stackName, region: LAB_REGION, accountId: LAB_ACCOUNT_ID, refs, attributeFallback };
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function logsDir(labDir: string): string {
  return join(labDir, 'logs');
}

function cloudInitLog(labDir: string, name: string): string {
  return join(logsDir(labDir), `${name}-cloud-init-output.log`);
}

/** Files of an earlier lab in this dir that a new one must not read (signals, state, host user-data, logs). */
function clearRunFiles(labDir: string): void {
  for (const f of ['signals.json', 'state.json', 'outputs.json', 'controller.json', 'controller.ready.json', 'gateway.json', 's3.sock', 'pull-images']) rmSync(join(labDir, f), { force: true });
  rmSync(join(labDir, 's3'), { recursive: true, force: true });
  rmSync(join(labDir, 'hosts'), { recursive: true, force: true });
  rmSync(logsDir(labDir), { recursive: true, force: true });
}

/**
 * Start a lab: hosts, lab cloud, the synthesized user-data on every host, and every signal. Throws SwarmError
 * (user: bad options; environment: machine or lab failure; cluster: a host signalled FAILURE). On failure the logs
 * stay in `<labDir>/logs` and the caller runs `labDown`.
 */
export async function labUp(opts: LabUpOptions = {}): Promise<LabState> {
  const started = Date.now();
  const { labDir: _d, prefix: _p, net: _n, reporter: rep = quiet, ...rest } = opts;
  const o = parseOptions(upSchema, rest, 'lab options');
  const cfg = labConfig(opts);
  const workers = o.workers ?? 3;
  const managers = o.managers ?? 1;
  const timeoutSeconds = o.timeoutSeconds ?? 300;
  const headStart = o.workerHeadStartSeconds ?? 0;
  // Like a CreationPolicy's timeout, the bound counts from the instances' launch (step 4), not from synthesis:
  // a slow machine must not eat the user-data's time.
  let deadline = started + timeoutSeconds * 1000;

  checkLabEnvironment();
  if (readResources(cfg.labDir)) {
    throw SwarmError.environment(
      'LAB_ALREADY_UP',
      `a lab is already up (or left over) in ${cfg.labDir}: run \`ec2-swarm lab down\` first${cfg.labDir !== labConfig().labDir ? ` (EC2_SWARM_LAB_DIR=${cfg.labDir})` : ''}`,
    );
  }
  mkdirSync(cfg.labDir, { recursive: true });
  clearRunFiles(cfg.labDir);
  mkdirSync(logsDir(cfg.labDir), { recursive: true });
  if (o.pullImages) writeFileSync(pullImagesMarker(cfg.labDir), 'swarm tasks pull their images (labUp pullImages)\n');

  // 1. The template, as `cdk synth` makes it.
  rep.info(`synthesizing cluster '${LAB_CLUSTER_NAME}' (${managers} manager${managers === 1 ? '' : 's'} + ${workers} worker${workers === 1 ? '' : 's'})`);
  const { template, stackName } = synthesizeLabCluster(workers, join(cfg.labDir, 'cdk.out'), managers);

  // 2. The "instances": managers h0 … h<managers-1>, then the workers.
  const total = managers + workers;
  const hosts: LabHostInfo[] = Array.from({ length: total }, (_, i) => {
    const ip = `192.168.${cfg.net}.${10 + i}`;
    return {
      name: `h${i}`,
      role: i < managers ? 'manager' : 'worker',
      instanceId: instanceIdFor(cfg, i),
      ip,
      hostname: defaultHostname(ip, LAB_REGION),
      ns: `${cfg.prefix}-h${i}`,
      index: i,
    };
  });
  const values = labStackValues(template, stackName, hosts[0].instanceId);
  const userData = extractUserData(template, values);
  if (workers > 0 && !userData.worker) throw SwarmError.environment('LAB_TEMPLATE_SHAPE', 'the template has workers but no worker launch template');

  if (userData.manager.group && userData.manager.group.desiredCapacity !== managers) {
    throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `the template's manager group wants ${userData.manager.group.desiredCapacity} managers, the lab was asked for ${managers}`);
  }
  if (!userData.manager.group && managers !== 1) throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `the template has one manager instance and no manager group: it cannot have ${managers} managers`);
  // The staging bucket exists in the lab as its S3 stand-in (lib/lab/s3/): hosts reach it under S3's own names.
  const outputs = resolveOutputs(template, values);
  const stagingBuckets = Object.entries(outputs[stackName] ?? {}).filter(([k]) => k.endsWith('StagingBucket')).map(([, v]) => v);
  const serviceNames = [...awsHostnames(LAB_REGION), ...(stagingBuckets.length > 0 ? s3Hostnames(LAB_REGION, stagingBuckets) : [])];
  const tls = ensureLabTls({ dir: join(cfg.labDir, 'tls'), region: LAB_REGION, ipAddresses: [cfg.hubAddress], dnsNames: serviceNames });

  rep.info(`starting ${total} hosts in network namespaces ${cfg.prefix}-h0…${cfg.prefix}-h${total - 1} (192.168.${cfg.net}.0/24)`);
  await createNetwork({ labDir: cfg.labDir, prefix: cfg.prefix, net: cfg.net, hosts: total });
  const cfnSignal = readFileSync(findUp('scripts/lab/cfn-signal.sh'));
  const labHosts: LabHost[] = await Promise.all(
    hosts.map((h) =>
      startLabHost({
        labDir: cfg.labDir,
        prefix: cfg.prefix,
        net: cfg.net,
        index: h.index,
        hostname: h.hostname,
        extraHosts: [{ ip: cfg.hubAddress, names: serviceNames }],
        optFiles: [{ path: '/opt/aws/bin/cfn-signal', content: cfnSignal, mode: 0o755 }],
      }),
    ),
  );

  // 3. The lab cloud: controller (SSM + signals) on this machine, gateway (IMDS + HTTPS) in the hub.
  rep.info('starting the lab cloud (SSM endpoint, instance metadata, signal recorder)');
  const groupOf = (role: 'manager' | 'worker') => (role === 'manager' ? userData.manager.group : userData.worker?.group);
  const tagsOf = (h: LabHostInfo): Record<string, string> => {
    const g = groupOf(h.role);
    const tags: Record<string, string> = { 'ec2-swarm:cluster': LAB_CLUSTER_NAME, 'ec2-swarm:role': h.role };
    if (g) {
      tags['aws:autoscaling:groupName'] = g.name;
      for (const t of g.tags) if (t.propagateAtLaunch) tags[t.key] = t.value;
    }
    return tags;
  };
  const instances: ControllerInstance[] = hosts.map((h) => ({
    instanceId: h.instanceId,
    privateIp: h.ip,
    hostname: h.hostname,
    role: h.role,
    ns: h.ns,
    index: h.index,
    availabilityZone: LAB_AVAILABILITY_ZONES[h.index % LAB_AVAILABILITY_ZONES.length],
    tags: tagsOf(h),
  }));
  const groups = (['manager', 'worker'] as const).flatMap((role) => {
    const ud = role === 'manager' ? userData.manager : userData.worker;
    const g = ud?.group;
    if (!ud || !g) return [];
    const file = join(cfg.labDir, 'hosts', `${role}-launch-template.user-data`);
    mkdirSync(join(cfg.labDir, 'hosts'), { recursive: true });
    writeFileSync(file, ud.script, { mode: 0o600 });
    return [
      {
        name: g.name,
        role,
        minSize: g.minSize,
        maxSize: g.maxSize,
        desiredCapacity: g.desiredCapacity,
        userDataFile: file,
        launchTemplate: { id: g.launchTemplate.id, name: g.launchTemplate.logicalId, version: '1' },
        ...(g.mixedInstancesPolicy ? { mixedInstancesPolicy: { ...g.mixedInstancesPolicy, instanceTypes: [...g.mixedInstancesPolicy.instanceTypes] } } : {}),
        tags: [...g.tags],
        ...(g.terminationHook ? { terminationHook: g.terminationHook } : {}),
        members: hosts.filter((h) => h.role === role).map((h) => h.instanceId),
      },
    ];
  });
  const controller = await startControllerProcess({
    cfg,
    config: {
      region: LAB_REGION,
      clusterName: LAB_CLUSTER_NAME,
      caBundle: tls.caCert,
      availabilityZones: LAB_AVAILABILITY_ZONES,
      instances,
      groups,
      launch: { extraHosts: [{ ip: cfg.hubAddress, names: serviceNames }], cfnSignalFile: findUp('scripts/lab/cfn-signal.sh'), maxLive: MAX_LAB_LIVE_HOSTS },
      ...(stagingBuckets.length > 0 ? { s3: { buckets: stagingBuckets } } : {}),
    },
  });
  const gateway = await startGatewayProcess({
    cfg,
    region: LAB_REGION,
    instances,
    controllerSocket: controller.socketPath,
    ...(controller.s3Socket ? { s3Socket: controller.s3Socket } : {}),
    tls,
  });

  // 4. The user-data, as cloud-init runs it: once, as root, output to the cloud-init log; the image loads meanwhile.
  deadline = Date.now() + timeoutSeconds * 1000;
  const image = loadImage(labHosts).then(
    () => undefined,
    (e: unknown) => e,
  );
  const env = hostScriptEnv(tls.caCert);
  const runs = new Map<string, Promise<{ exitCode: number; timedOut: boolean }>>();
  const run = (h: LabHostInfo): void => {
    const script = h.role === 'manager' ? userData.manager.script : userData.worker!.script;
    const dir = join(cfg.labDir, 'hosts', h.name);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'user-data');
    writeFileSync(file, script, { mode: 0o700 });
    chmodSync(file, 0o700);
    const log = cloudInitLog(cfg.labDir, h.name);
    writeFileSync(log, '');
    const host = labHosts[h.index];
    // Like cloud-init: the script runs by its own #! line, output appended to the log, stdin /dev/null.
    runs.set(
      h.name,
      execInHost(host, ['bash', '-c', 'exec >>"$1" 2>&1 </dev/null; exec "$2"', 'cloud-init', log, file], {
        cleanEnv: true,
        env,
        timeoutMs: Math.max(1000, deadline - Date.now()),
      }),
    );
  };
  const workerHosts = hosts.filter((h) => h.role === 'worker');
  if (headStart > 0 && workerHosts.length > 0) {
    workerHosts.forEach(run);
    rep.info(`workers' user-data started; the manager's starts in ${headStart}s`);
    await sleep(headStart * 1000);
    run(hosts[0]);
  } else {
    rep.info('running the user-data on every host');
    hosts.forEach(run);
  }

  // 5. Wait for every signal, like CloudFormation's CreationPolicy.
  await waitForSignals({
    labDir: cfg.labDir,
    hosts,
    managerResource: userData.manager.logicalId,
    workerResource: userData.worker?.logicalId,
    runs,
    deadline,
    timeoutSeconds,
    reporter: rep,
  });
  await Promise.all(runs.values());
  const imageError = await image;
  if (imageError) throw imageError;

  const outputsFile = join(cfg.labDir, 'outputs.json');
  writeFileSync(outputsFile, JSON.stringify(outputs, null, 2) + '\n');
  const state: LabState = {
    version: 1,
    labDir: cfg.labDir,
    prefix: cfg.prefix,
    net: cfg.net,
    ssmEndpoint: controller.endpoint,
    ...(controller.s3Endpoint ? { s3Endpoint: controller.s3Endpoint } : {}),
    region: LAB_REGION,
    stackName,
    clusterName: LAB_CLUSTER_NAME,
    outputsFile,
    caBundle: tls.caCert,
    hubAddress: cfg.hubAddress,
    controllerPid: controller.pid,
    gatewayPid: gateway.pid,
    hosts,
    startedAt: new Date(started).toISOString(),
    upSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
  writeLabStateFile(state);
  rep.info(`lab is up in ${state.upSeconds}s: ${total} hosts, swarm formed, every signal SUCCESS`);
  return state;
}

export interface WaitForSignalsOptions {
  readonly labDir: string;
  readonly hosts: readonly LabHostInfo[];
  /** Logical ids the signals must name: the manager instance, the worker group. */
  readonly managerResource: string;
  readonly workerResource?: string;
  /** Each host's running user-data (by host name): one that ended without a signal will never send one. */
  readonly runs?: ReadonlyMap<string, Promise<unknown>>;
  /** Epoch ms. */
  readonly deadline: number;
  readonly timeoutSeconds: number;
  readonly reporter?: Reporter;
  /** @default 15000 */
  readonly silentGraceMs?: number;
}

/**
 * Wait, like CloudFormation's CreationPolicy, until every host signalled SUCCESS for its resource. A FAILURE → cluster
 * error; no signal by the deadline, or a user-data that ended without one → environment error. Each error quotes the
 * end of that host's cloud-init output log.
 */
export async function waitForSignals(o: WaitForSignalsOptions): Promise<void> {
  const { hosts, managerResource, workerResource, deadline, timeoutSeconds } = o;
  const rep = o.reporter ?? quiet;
  const cfg = { labDir: o.labDir };
  const runs = o.runs ?? new Map<string, Promise<unknown>>();
  const graceMs = o.silentGraceMs ?? 15_000;
  const started = Date.now();
  const exited = new Map<string, number>(); // host name → time its user-data ended
  for (const [name, p] of runs) void p.then(() => exited.set(name, Date.now()), () => exited.set(name, Date.now()));
  const file = signalsFile(cfg.labDir);
  try {
    for (;;) {
      const latest = latestByInstance(readSignals(file));
      const got = hosts.filter((h) => latest.has(h.instanceId));
      rep.progress(`signals ${got.length}/${hosts.length} (${Math.round((Date.now() - started) / 1000)}s)`);
      for (const h of got) {
        const s = latest.get(h.instanceId)!;
        const expected = h.role === 'manager' ? managerResource : workerResource;
        if (s.status === 'FAILURE' || s.resource !== expected) {
          rep.done();
          throw SwarmError.cluster(
            'LAB_SIGNAL_FAILURE',
            `${h.name} (${h.role}, ${h.instanceId}) signalled ${s.status}${s.exitCode !== null ? ` (exit code ${s.exitCode})` : ''} for ${s.resource}` +
              `${s.resource !== expected ? ` instead of ${expected}` : ''}; last lines of ${cloudInitLog(cfg.labDir, h.name)}:\n${tail(cloudInitLog(cfg.labDir, h.name))}`,
          );
        }
      }
      if (got.length === hosts.length) break;
      // A user-data that ended without a signal (cfn-signal missing or undeliverable) will never send one.
      const silent = hosts.find((h) => !latest.has(h.instanceId) && (exited.get(h.name) ?? Infinity) < Date.now() - graceMs);
      if (silent) {
        rep.done();
        throw SwarmError.environment(
          'LAB_SIGNAL_MISSING',
          `${silent.name} (${silent.role}) finished its user-data without a signal; last lines of ${cloudInitLog(cfg.labDir, silent.name)}:\n${tail(cloudInitLog(cfg.labDir, silent.name))}`,
        );
      }
      if (Date.now() > deadline) {
        rep.done();
        const waiting = hosts.filter((h) => !latest.has(h.instanceId));
        throw SwarmError.environment(
          'LAB_SIGNAL_TIMEOUT',
          `no signal within ${timeoutSeconds}s from ${waiting.map((h) => `${h.name} (${h.role})`).join(', ')}; last lines of ${cloudInitLog(cfg.labDir, waiting[0].name)}:\n${tail(cloudInitLog(cfg.labDir, waiting[0].name))}`,
        );
      }
      await sleep(250);
    }
  } finally {
    rep.done();
  }
}

/** Stop the lab and remove everything it created; safe to run twice and after a failed `labUp`. Logs stay. */
/**
 * Stops everything the lab started and removes its namespaces, mounts and cgroups. Keeps the logs, the cached
 * image and the lab CA for the next run, unless `purge`: then the whole lab directory goes too (only once nothing
 * recorded is left), and the machine is exactly as it was before `lab up`.
 */
export async function labDown(opts: { labDir?: string; reporter?: Reporter; purge?: boolean } = {}): Promise<{ removed: string[] }> {
  const rep = opts.reporter ?? quiet;
  const cfg = labConfig(opts.labDir !== undefined ? { labDir: opts.labDir } : {});
  const removed: string[] = [];
  if (readResources(cfg.labDir)) rep.info(`stopping the lab in ${cfg.labDir}`);
  const report = await teardown(cfg.labDir);
  if (report.stoppedProcesses > 0) removed.push(`${report.stoppedProcesses} processes (dockerd, containerd, controller, gateway, namespace holders…)`);
  for (const ns of report.deletedNetns) removed.push(`network namespace ${ns}`);
  if (report.removedCgroupDirs > 0) removed.push(`${report.removedCgroupDirs} cgroup directories`);
  for (const m of report.unmounted) removed.push(`mount ${m}`);
  for (const d of report.removedDirs) removed.push(`directory ${d}`);
  if (removeLabStateFile(cfg.labDir)) removed.push(`state ${join(cfg.labDir, 'state.json')}`);
  // `s3`: the lab S3's objects (deploy bundles) never outlive the lab.
  for (const f of ['signals.json', 'outputs.json', 'controller.json', 'controller.ready.json', 'gateway.json', 'cloud.sock', 's3.sock', 's3', 'cdk.out', 'hosts', 'pull-images']) {
    const p = join(cfg.labDir, f);
    if (existsSync(p)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
  }
  if (opts.purge && existsSync(cfg.labDir) && !readResources(cfg.labDir)) {
    rmSync(cfg.labDir, { recursive: true, force: true });
    removed.push(`directory ${cfg.labDir} (logs, image cache, lab CA)`);
  }
  return { removed };
}

/** The state of the lab that is up in `labDir` (default: $EC2_SWARM_LAB_DIR or /var/lib/ec2-swarm-lab), if any. */
export function readLabState(labDir?: string): LabState | undefined {
  return readLabStateFile(labConfig(labDir !== undefined ? { labDir } : {}).labDir);
}

function hostRecord(state: LabState, hostName: string): LabHost {
  const live = labInstances(state).filter((i) => i.state !== 'terminated');
  const info = [...live, ...state.hosts].find((h) => h.name === hostName || h.instanceId === hostName || h.hostname === hostName);
  if (!info) {
    throw SwarmError.user('LAB_HOST_UNKNOWN', `no lab host ${JSON.stringify(hostName)}: the lab has ${(live.length > 0 ? live : state.hosts).map((h) => h.name).join(', ')}`);
  }
  const rec = recordedHosts(state.labDir).find((h) => h.ns === info.ns);
  if (!rec) throw SwarmError.environment('LAB_HOST_DOWN', `host ${hostName} (${info.ns}) is not recorded in ${state.labDir}: is the lab up?`);
  return rec;
}

/** Run argv in a host as root, with the environment an instance's scripts get (no shell: values as arguments). */
export async function runInHost(
  state: LabState,
  hostName: string,
  argv: string[],
  opts: { timeoutMs?: number; stdin?: string } = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execInHost(hostRecord(state, hostName), argv, {
    cleanEnv: true,
    env: hostScriptEnv(state.caBundle),
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
  });
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** Unplug a host's network (its bridge port goes down): the swarm loses the node, SSM sees it ConnectionLost. */
export async function cutLink(state: LabState, hostName: string): Promise<void> {
  await cutHostLink(hostRecord(state, hostName));
}

export async function restoreLink(state: LabState, hostName: string): Promise<void> {
  await restoreHostLink(hostRecord(state, hostName));
}

/** Stop a host's dockerd (SIGTERM: a clean stop; SIGKILL: a crash). The host itself stays up. */
export async function stopDocker(state: LabState, hostName: string, opts: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
  await stopHostDocker(hostRecord(state, hostName), opts);
}

/** Start a host's dockerd again after stopDocker (its swarm state is kept, so the node rejoins by itself). */
export async function startDocker(state: LabState, hostName: string): Promise<void> {
  await startHostDocker(hostRecord(state, hostName));
}

/** The latest CloudFormation signal of each host (what `cdk deploy` would have waited for). */
export function signals(state: LabState): LabSignal[] {
  const latest = latestByInstance(readSignals(signalsFile(state.labDir)));
  const out: LabSignal[] = [];
  // The first hosts, then every instance the groups launched since.
  const known = new Set(state.hosts.map((h) => h.instanceId));
  for (const h of [...state.hosts, ...labInstances(state).filter((i) => !known.has(i.instanceId))]) {
    const s: SignalRecord | undefined = latest.get(h.instanceId);
    if (s) out.push({ host: h.name, instanceId: h.instanceId, resource: s.resource, status: s.status, exitCode: s.exitCode, time: s.time });
  }
  return out;
}

/** Every log the lab wrote: cloud-init output per host, dockerd per host, controller, gateway, SSM request and SendCommand logs. */
export function logFiles(state: Pick<LabState, 'labDir'>): string[] {
  const dir = logsDir(state.labDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f));
}

// ---------------------------------------------------------------------------------------------------------------
// The lab's EC2 and Auto Scaling, as the operator (and the e2e tests) drive them: through the lab cloud's Query APIs.

export interface LabInstanceInfo extends LabHostInfo {
  readonly state: InstanceStateName;
  readonly availabilityZone?: string;
  /** The Auto Scaling group and the instance's lifecycle state in it. */
  readonly group?: string;
  readonly lifecycleState?: string;
  readonly launchTime: string;
}

/** Every instance the lab's EC2 knows (terminated ones too), as the controller last wrote its table. */
export function labInstances(state: Pick<LabState, 'labDir'>): LabInstanceInfo[] {
  return readInstanceRows(state.labDir).map((r) => ({
    name: `h${r.index}`,
    role: r.role ?? (r.tags?.['ec2-swarm:role'] === 'manager' ? 'manager' : 'worker'),
    instanceId: r.instanceId,
    ip: r.privateIp,
    hostname: r.hostname ?? defaultHostname(r.privateIp, LAB_REGION),
    ns: r.ns,
    index: r.index,
    state: r.state,
    launchTime: r.launchTime,
    ...(r.availabilityZone ? { availabilityZone: r.availabilityZone } : {}),
    ...(r.group ? { group: r.group } : {}),
    ...(r.lifecycleState ? { lifecycleState: r.lifecycleState } : {}),
  }));
}

function instanceOf(state: LabState, nameOrId: string): LabInstanceInfo {
  const all = labInstances(state);
  const found = all.filter((i) => i.name === nameOrId || i.instanceId === nameOrId || i.hostname === nameOrId || i.ip === nameOrId);
  const inst = found.find((i) => i.state !== 'terminated') ?? found[0];
  if (!inst) throw SwarmError.user('LAB_HOST_UNKNOWN', `no lab instance ${JSON.stringify(nameOrId)}: the lab has ${all.map((i) => `${i.name} (${i.state})`).join(', ')}`);
  return inst;
}

/** Waits (bounded) until `check` finds what it wants in the instance table. */
export async function waitForInstances<T>(state: LabState, what: string, check: (all: LabInstanceInfo[]) => T | undefined, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check(labInstances(state));
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw SwarmError.cluster('LAB_WAIT_TIMEOUT', `${what}: not within ${timeoutMs / 1000}s; instances: ${labInstances(state).map((i) => `${i.name}=${i.state}${i.lifecycleState ? `/${i.lifecycleState}` : ''}`).join(', ')}`);
    }
    await sleep(250);
  }
}

const ec2Call = (state: LabState, action: string, params: Record<string, string | number | boolean>) => queryLab(state.ssmEndpoint, state.region, EC2_VERSION, action, params);
const asgCall = (state: LabState, action: string, params: Record<string, string | number | boolean>) => queryLab(state.ssmEndpoint, state.region, ASG_VERSION, action, params);

/** EC2 StopInstances: dockerd and every process of the host stop, its disk stays. Resolves once it is `stopped`. */
export async function stopHost(state: LabState, nameOrId: string, opts: { timeoutMs?: number } = {}): Promise<LabInstanceInfo> {
  const inst = instanceOf(state, nameOrId);
  await ec2Call(state, 'StopInstances', { 'InstanceId.1': inst.instanceId });
  return waitForInstances(state, `${inst.name} (${inst.instanceId}) stopped`, (all) => all.find((i) => i.instanceId === inst.instanceId && i.state === 'stopped'), opts.timeoutMs ?? 60_000);
}

/** EC2 StartInstances: dockerd again, then the host's per-boot scripts. Resolves once it is `running`. */
export async function startHost(state: LabState, nameOrId: string, opts: { timeoutMs?: number } = {}): Promise<LabInstanceInfo> {
  const inst = instanceOf(state, nameOrId);
  await ec2Call(state, 'StartInstances', { 'InstanceId.1': inst.instanceId });
  return waitForInstances(state, `${inst.name} (${inst.instanceId}) running`, (all) => all.find((i) => i.instanceId === inst.instanceId && i.state === 'running'), opts.timeoutMs ?? 90_000);
}

/**
 * Auto Scaling TerminateInstanceInAutoScalingGroup: the instance waits in Terminating:Wait for the termination
 * hook (the managers' reconciler completes it), then is terminated; without `decrement` the group launches a
 * replacement (new id, new address, the launch template's user-data). Resolves when the call is accepted.
 */
export async function terminateInstance(state: LabState, nameOrId: string, opts: { decrement?: boolean } = {}): Promise<LabInstanceInfo> {
  const inst = instanceOf(state, nameOrId);
  await asgCall(state, 'TerminateInstanceInAutoScalingGroup', { InstanceId: inst.instanceId, ShouldDecrementDesiredCapacity: opts.decrement === true });
  return inst;
}

/** EC2 TerminateInstances (outside the group: its group replaces the instance as unhealthy, without the hook). */
export async function terminateInstanceNow(state: LabState, nameOrId: string): Promise<LabInstanceInfo> {
  const inst = instanceOf(state, nameOrId);
  await ec2Call(state, 'TerminateInstances', { 'InstanceId.1': inst.instanceId });
  return inst;
}

/** The group of a role, by its name in the instance table. */
function groupName(state: LabState, role: 'manager' | 'worker'): string {
  const g = labInstances(state).find((i) => i.role === role && i.group)?.group;
  if (!g) throw SwarmError.user('LAB_GROUP_UNKNOWN', `the lab has no ${role} Auto Scaling group`);
  return g;
}

/** What `cdk deploy -c workers=N` does to the worker group: min = desired = N (scale-in goes through the hook). */
export async function scaleWorkers(state: LabState, workers: number): Promise<void> {
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_LAB_WORKERS) throw SwarmError.user('LAB_OPTIONS_INVALID', `workers must be a whole number from 0 to ${MAX_LAB_WORKERS} (got ${workers})`);
  await asgCall(state, 'UpdateAutoScalingGroup', { AutoScalingGroupName: groupName(state, 'worker'), MinSize: workers, MaxSize: Math.max(workers, 1), DesiredCapacity: workers });
}

/** Auto Scaling SetDesiredCapacity on a role's group (within its min and max). */
export async function setDesiredCapacity(state: LabState, role: 'manager' | 'worker', desired: number): Promise<void> {
  await asgCall(state, 'SetDesiredCapacity', { AutoScalingGroupName: groupName(state, role), DesiredCapacity: desired });
}
