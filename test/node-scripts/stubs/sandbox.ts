/**
 * A fake EC2 "cloud" on one machine, for running scripts/node/*.sh — or a whole rendered user-data — unchanged.
 *
 *   const cloud = await FakeCloud.create();
 *   const mgr = await cloud.addNode({ name: 'manager', ip: '10.0.0.10' });
 *   const res = await mgr.run(['scripts/node/manager.sh'], swarmEnv('demo'));   // bash + args, hermetic env
 *   cloud.parameters(); cloud.calls(); mgr.dockerState(); ...; await cloud.close();
 *
 * Per cloud: a Parameter Store on 127.0.0.1 speaking SSM's JSON protocol (parameter-store.ts; AWS_ENDPOINT_URL_SSM),
 * which takes only requests signed with a node's instance-role keys. Per node: a real IMDSv2 HTTP server on
 * 127.0.0.1 (AWS_EC2_METADATA_SERVICE_ENDPOINT; instance facts and the role's credentials), a Docker Engine API
 * server on a unix socket (DOCKER_HOST; only POST /swarm/join, which the worker uses with curl), and a bin dir
 * with the tools.js stand-ins (aws for Auto Scaling and EC2, docker, dnf, systemctl, cfn-signal): wrappers answered
 * by the cloud's ToolServer, in this process (so a test must not block its event loop while a script runs), and the
 * real curl behind a wrapper of the same kind that has its argv logged first. PATH is that bin dir plus a dir of
 * symlinks to an allow-list of system tools, so the host's real docker/aws are never reached and a script that
 * starts using a new tool fails visibly (add it with `tools`). Scripts see `/opt/aws/bin/cfn-signal` through
 * SWARM_CFN_SIGNAL (a path in the node dir; `cfnSignal: false` leaves it for `dnf install aws-cfn-bootstrap`).
 * TMPDIR is per node, so tests can check that scripts leave no temp files behind.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { nodeEnvironment } from '../../../lib/cluster/node-environment';
import { FakeParameterStore, SsmRequest, StoredParameter } from './parameter-store';
import * as tools from './tools';

export type { SsmRequest, StoredParameter } from './parameter-store';

/** System tools the node scripts (and user-data) may use; everything else is absent from PATH. */
export const SYSTEM_TOOLS = [
  'bash', 'sh', 'awk', 'base64', 'cat', 'chmod', 'cp', 'curl', 'cut', 'date', 'dirname', 'env', 'false', 'grep',
  'gzip', 'head', 'id', 'ls', 'mkdir', 'mktemp', 'mv', 'python3', 'rm', 'sed', 'sleep', 'sort', 'stat', 'tail', 'tee', 'timeout',
  'touch', 'tr', 'true', 'wc',
];
/** The node scripts, copied into every node at <node>/opt/ec2-swarm (they write node.env next to themselves). */
export const SCRIPTS_DIR = path.resolve(__dirname, '../../../scripts/node');
const FAKE_TOOLS = ['aws', 'dnf', 'systemctl'];
/** What every node's IMDS names as its instance role. */
export const NODE_ROLE = 'ec2-swarm-demo-node';

export interface NodeOptions {
  /** Name in calls.jsonl and the node's directory. */
  readonly name: string;
  /** IMDS local-ipv4; any string (tests serve invalid values on purpose). @default '10.0.0.10' */
  readonly ip?: string;
  /** @default 'i-0123456789abcdef0' */
  readonly instanceId?: string;
  /** @default 'eu-west-1' */
  readonly region?: string;
  /**
   * Docker installed and running, installed but stopped, or not installed (all fake); or `external`: the host's
   * real docker CLI (/usr/bin/docker) talking to a real dockerd at `dockerHost`, no fake engine.
   * @default 'running'
   */
  readonly docker?: 'running' | 'stopped' | 'missing' | 'external';
  /** `unix:///…` socket of the real dockerd, for `docker: 'external'`. */
  readonly dockerHost?: string;
  /** Put `dnf` / `systemctl` stand-ins on PATH (Amazon Linux 2023 has both). @default true */
  readonly dnf?: boolean;
  readonly systemctl?: boolean;
  /** `/opt/aws/bin/cfn-signal` already present (pre-baked image). @default true */
  readonly cfnSignal?: boolean;
  /** More system tools to put on PATH. @default - SYSTEM_TOOLS only */
  readonly tools?: string[];
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface Call {
  readonly node: string;
  readonly tool: string;
  readonly argv: string[];
  /** curl only: the octal modes of the files it read a config (-K) or a body (--data-binary @FILE) from. */
  readonly modes?: string[];
}

/** A node's instance-role credentials, as its IMDS hands them out. */
export interface NodeCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

/** SWARM_* environment for the role scripts: what the construct renders into user-data, plus fast backoff. */
export function swarmEnv(cluster: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...nodeEnvironment(cluster, {
      managerGroup: `ec2-swarm-${cluster}-managers`,
      workerGroup: `ec2-swarm-${cluster}-workers`,
      lifecycleHook: 'ec2-swarm-drain',
    }),
    // Fast backoff for tests; production defaults are 2 s doubling to 30 s.
    SWARM_BACKOFF_BASE_S: '0.05',
    SWARM_BACKOFF_MAX_S: '0.2',
    ...extra,
  };
}

function findTool(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`sandbox: system tool ${name} not found`);
}

export class FakeCloud {
  static async create(): Promise<FakeCloud> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ec2swarm-'));
    let toolServer: tools.ToolServer | undefined;
    try {
      toolServer = await tools.ToolServer.start();
      return new FakeCloud(dir, toolServer, await FakeParameterStore.start());
    } catch (e) {
      await toolServer?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private readonly nodes: FakeNode[] = [];

  private constructor(readonly dir: string, readonly toolServer: tools.ToolServer, readonly ssm: FakeParameterStore) {
    fs.writeFileSync(path.join(dir, 'calls.jsonl'), '');
  }

  async addNode(options: NodeOptions): Promise<FakeNode> {
    const node = new FakeNode(this, options);
    await node.start();
    this.nodes.push(node);
    return node;
  }

  /** The fake Parameter Store, by name (values decrypted). */
  parameters(): Record<string, StoredParameter> {
    return this.ssm.parameters();
  }

  /** Store a parameter directly, as an earlier boot would have. */
  putParameter(name: string, type: 'String' | 'SecureString', value: string): void {
    this.ssm.put(name, type, value);
  }

  /** Every Parameter Store request so far (names, never values), optionally of one node. */
  ssmRequests(node?: string): SsmRequest[] {
    return this.ssm.requests.filter((r) => !node || r.node === node);
  }

  /** Make the next `count` reads (GetParameter and GetParameters) fail with AWS error `code`. */
  failGetParameter(code: string, count: number): void {
    this.ssm.fail(['GetParameter', 'GetParameters'], code, count);
  }

  /** Register an instance with the fake EC2 / Auto Scaling (ec2.json). */
  setInstance(id: string, value: { state: string; group?: string; lifecycle?: string }): void {
    const file = path.join(this.dir, 'ec2.json');
    const store = tools.readJson(file, { instances: {} as Record<string, unknown>, completed: [] as unknown[] });
    store.instances[id] = value;
    tools.writeJson(file, store);
  }

  /** CompleteLifecycleAction calls the fake Auto Scaling accepted. */
  completedLifecycleActions(): Array<{ instanceId: string; group: string; hook: string; result: string }> {
    return tools.readJson(path.join(this.dir, 'ec2.json'), { completed: [] as Array<{ instanceId: string; group: string; hook: string; result: string }> }).completed;
  }

  /** Every stand-in invocation so far (argv only). */
  calls(tool?: string, node?: string): Call[] {
    return fs
      .readFileSync(path.join(this.dir, 'calls.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Call)
      .filter((c) => (!tool || c.tool === tool) && (!node || c.node === node));
  }

  /** Raw text of calls.jsonl: search it for secrets. */
  callLog(): string {
    return fs.readFileSync(path.join(this.dir, 'calls.jsonl'), 'utf8');
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await Promise.all([this.toolServer.close(), this.ssm.close()]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface JoinRecord {
  readonly status: number;
  readonly advertiseAddr: unknown;
  readonly remoteAddrs: unknown;
}

export class FakeNode {
  readonly name: string;
  readonly dir: string;
  readonly bin: string;
  readonly sysbin: string;
  readonly tmp: string;
  readonly socket: string;
  readonly cfnSignalPath: string;
  /** Where unit files go (SWARM_SYSTEMD_DIR); with `systemctl`, <node>/run/systemd/system exists too (systemd is init). */
  readonly systemdDir: string;
  /** IMDS answers by path under /latest/meta-data/; tests may change them before a run. */
  readonly metadata: Record<string, string>;
  /** The instance role's credentials (IMDS `iam/security-credentials/<NODE_ROLE>`). */
  readonly credentials: NodeCredentials;
  /** Where the scripts are installed on this node (as user-data writes /opt/ec2-swarm). */
  readonly home: string;
  /** /etc/docker/daemon.json of this node. */
  readonly daemonJson: string;
  /** /var/lib/cloud/scripts/per-boot of this node (the role scripts install ec2-swarm-boot.sh there). */
  readonly perBootDir: string;
  /** /run of this node (the reconciler's pid file; docker.pid of the fake dockerd without systemd). */
  readonly runDir: string;
  /** Requests the IMDS server saw: method, url and whether a session token was sent. */
  readonly imdsRequests: Array<{ method: string; url: string; token: boolean }> = [];
  readonly joins: JoinRecord[] = [];
  /** The request path of every join (the scripts use the unversioned `/swarm/join`). */
  readonly joinUrls: string[] = [];
  private imdsServer?: http.Server;
  private engineServer?: http.Server;
  private imdsUrl = '';
  private readonly running = new Set<number>();

  constructor(private readonly cloud: FakeCloud, private readonly options: NodeOptions) {
    this.name = options.name;
    this.dir = path.join(cloud.dir, 'nodes', options.name);
    this.bin = path.join(this.dir, 'bin');
    this.sysbin = path.join(this.dir, 'sysbin');
    this.tmp = path.join(this.dir, 'tmp');
    this.socket = path.join(this.dir, 'docker.sock');
    this.cfnSignalPath = path.join(this.dir, 'opt/aws/bin/cfn-signal');
    this.systemdDir = path.join(this.dir, 'etc/systemd/system');
    this.home = path.join(this.dir, 'opt/ec2-swarm');
    this.daemonJson = path.join(this.dir, 'etc/docker/daemon.json');
    this.perBootDir = path.join(this.dir, 'var/lib/cloud/scripts/per-boot');
    this.runDir = path.join(this.dir, 'run');
    // Like AWS's: a secret and a session token in base64 (with + / =), so quoting them in a curl config is exercised.
    this.credentials = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(301).toString('base64'),
    };
    this.metadata = {
      'instance-id': options.instanceId ?? 'i-0123456789abcdef0',
      'local-ipv4': options.ip ?? '10.0.0.10',
      'placement/region': options.region ?? 'eu-west-1',
      'iam/security-credentials/': NODE_ROLE,
      [`iam/security-credentials/${NODE_ROLE}`]: JSON.stringify(
        {
          Code: 'Success',
          LastUpdated: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          Type: 'AWS-HMAC',
          AccessKeyId: this.credentials.accessKeyId,
          SecretAccessKey: this.credentials.secretAccessKey,
          Token: this.credentials.sessionToken,
          Expiration: new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        },
        null,
        2,
      ),
    };
  }

  async start(): Promise<void> {
    for (const d of [this.bin, this.sysbin, this.tmp, path.join(this.dir, 'home'), this.home, this.runDir]) fs.mkdirSync(d, { recursive: true });
    for (const f of fs.readdirSync(SCRIPTS_DIR)) fs.copyFileSync(path.join(SCRIPTS_DIR, f), path.join(this.home, f));
    const external = this.options.docker === 'external';
    if (external && !this.options.dockerHost) throw new Error("sandbox: docker 'external' needs dockerHost");
    const sys = [...new Set([...SYSTEM_TOOLS, ...(this.options.tools ?? []), ...(external ? ['docker'] : [])])];
    for (const t of sys) fs.symlinkSync(findTool(t), path.join(this.sysbin, t));
    tools.writeWrapper(this.bin, 'curl', this.cloud.toolServer.port);
    this.cloud.ssm.register(this.name, { ...this.credentials, region: this.metadata['placement/region'] });
    for (const t of FAKE_TOOLS) {
      if (t === 'dnf' && this.options.dnf === false) continue;
      if (t === 'systemctl' && this.options.systemctl === false) continue;
      if (t === 'systemctl') for (const d of [this.systemdDir, path.join(this.dir, 'run/systemd/system')]) fs.mkdirSync(d, { recursive: true });
      tools.writeWrapper(this.bin, t, this.cloud.toolServer.port);
    }
    const docker = this.options.docker ?? 'running';
    const state = tools.defaultDockerState();
    state.installed = docker !== 'missing';
    state.daemon = docker === 'running';
    tools.saveDocker(this.dir, state);
    if (state.installed && !external) tools.writeWrapper(this.bin, 'docker', this.cloud.toolServer.port);
    if (!external && this.options.systemctl === false && state.daemon) this.startFakeDockerd();
    if (this.options.cfnSignal !== false) {
      fs.mkdirSync(path.dirname(this.cfnSignalPath), { recursive: true });
      fs.renameSync(tools.writeWrapper(this.bin, 'cfn-signal', this.cloud.toolServer.port), this.cfnSignalPath);
    }
    this.imdsServer = http.createServer((req, res) => this.imds(req, res));
    await new Promise<void>((resolve) => this.imdsServer!.listen(0, '127.0.0.1', resolve));
    this.imdsUrl = `http://127.0.0.1:${(this.imdsServer.address() as AddressInfo).port}`;
    if (external) return;
    this.engineServer = http.createServer((req, res) => this.engine(req, res));
    await new Promise<void>((resolve) => this.engineServer!.listen(this.socket, resolve));
  }

  /** The environment a script sees: nothing from the test process leaks in (no real AWS or Docker settings). */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: `${this.bin}:${this.sysbin}`,
      HOME: path.join(this.dir, 'home'),
      TMPDIR: this.tmp,
      LANG: 'C.UTF-8',
      FAKE_CLOUD_DIR: this.cloud.dir,
      FAKE_NODE_DIR: this.dir,
      FAKE_NODE_NAME: this.name,
      AWS_EC2_METADATA_SERVICE_ENDPOINT: this.imdsUrl,
      AWS_ENDPOINT_URL_SSM: this.cloud.ssm.url,
      DOCKER_HOST: this.options.dockerHost ?? `unix://${this.socket}`,
      SWARM_CFN_SIGNAL: this.cfnSignalPath,
      SWARM_SYSTEMD_DIR: this.systemdDir,
      SWARM_SYSTEMD_RUN_DIR: path.join(this.dir, 'run/systemd/system'),
      SWARM_DOCKER_CONFIG: this.daemonJson,
      // The docker CLI's config (the ECR credential helper's entry): never the test machine's /root/.docker.
      SWARM_DOCKER_CLIENT_CONFIG: path.join(this.dir, 'root/.docker/config.json'),
      SWARM_DOCKER_PIDFILE: path.join(this.runDir, 'docker.pid'),
      SWARM_PER_BOOT_DIR: this.perBootDir,
      SWARM_RUN_DIR: this.runDir,
      ...extra,
    };
  }

  /** Run `bash ...args` as this node; the child's whole process group is killed after timeoutMs. */
  run(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 120_000): Promise<RunResult> {
    const started = Date.now();
    const child = spawn('/bin/bash', args, { env: this.env(extraEnv), cwd: this.dir, detached: true });
    const pid = child.pid!;
    this.running.add(pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => this.kill(pid), timeoutMs);
    return new Promise((resolve) => {
      child.on('close', (code) => {
        clearTimeout(timer);
        this.running.delete(pid);
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  /** Path of an installed node script: `node.script('manager.sh')`. */
  script(name: string): string {
    return path.join(this.home, name);
  }

  /**
   * A stop and start (or reboot) of the instance: processes end (the reconciler), /run is emptied, dockerd starts
   * again with its swarm state and reads daemon.json. Then cloud-init would run the per-boot hook: `runBootHook`.
   */
  async reboot(): Promise<void> {
    this.killReconciler();
    this.stopFakeDockerd();
    fs.rmSync(this.runDir, { recursive: true, force: true });
    fs.mkdirSync(this.runDir, { recursive: true });
    if (this.options.systemctl !== false) fs.mkdirSync(path.join(this.dir, 'run/systemd/system'), { recursive: true });
    const s = tools.loadDocker(this.dir);
    if (s.daemon) {
      tools.saveDocker(this.dir, tools.loadDaemonConfig(s, this.daemonJson));
      if (this.options.systemctl === false) this.startFakeDockerd();
    }
  }

  /** Run every per-boot script as cloud-init does at a later boot. */
  async runBootHook(extraEnv: Record<string, string> = {}): Promise<RunResult> {
    return this.run([path.join(this.perBootDir, 'ec2-swarm-boot.sh')], extraEnv);
  }

  /** PID of the background reconciler (no systemd), if its pid file names a live process. */
  reconcilerPid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(path.join(this.runDir, 'ec2-swarm-reconciler.pid'), 'utf8').trim());
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }

  dockerState(): tools.DockerState {
    return tools.loadDocker(this.dir);
  }

  setDockerState(change: (s: tools.DockerState) => void): void {
    const s = tools.loadDocker(this.dir);
    change(s);
    tools.saveDocker(this.dir, s);
  }

  /** Make this node the manager of a new swarm, as if `docker swarm init` had run earlier. */
  initSwarm(): void {
    this.setDockerState((s) => tools.initSwarm(this.cloud.dir, s, this.metadata['local-ipv4']));
  }

  /** Files a script left in its TMPDIR. */
  leftoverTempFiles(): string[] {
    return fs.readdirSync(this.tmp);
  }

  async stop(): Promise<void> {
    for (const pid of this.running) this.kill(pid);
    this.killReconciler();
    this.stopFakeDockerd();
    await Promise.all(
      [this.imdsServer, this.engineServer].map(
        (s) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve())),
      ),
    );
  }

  private fakeDockerd?: ReturnType<typeof spawn>;

  /** Without systemd the scripts reload dockerd by SIGHUP to the pid in docker.pid: a bash that re-reads daemon.json. */
  private startFakeDockerd(): void {
    const dir = path.join(this.dir, 'fake-dockerd'); // off PATH: only the trap runs it
    fs.mkdirSync(dir, { recursive: true });
    const reload = tools.writeWrapper(dir, 'dockerd-reload', this.cloud.toolServer.port);
    const child = spawn('/bin/bash', ['-c', `trap "'${reload}'" HUP; while :; do sleep 1 & wait $!; done`], {
      env: this.env(), stdio: 'ignore', detached: true,
    });
    this.fakeDockerd = child;
    fs.writeFileSync(path.join(this.runDir, 'docker.pid'), `${child.pid}\n`);
  }

  private stopFakeDockerd(): void {
    if (this.fakeDockerd?.pid) this.kill(this.fakeDockerd.pid);
    this.fakeDockerd = undefined;
  }

  /** The background reconciler stays in the process group of the run that started it: end that group. */
  private killReconciler(): void {
    const pid = this.reconcilerPid();
    if (!pid) return;
    try {
      const pgid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[2]);
      this.kill(pgid);
    } catch {
      /* already gone */
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }

  private kill(pid: number): void {
    try {
      process.kill(-pid, 'SIGKILL'); // the group we created with detached: the script and its sleeps
    } catch {
      /* already gone */
    }
  }

  private imds(req: http.IncomingMessage, res: http.ServerResponse): void {
    const token = req.headers['x-aws-ec2-metadata-token'];
    this.imdsRequests.push({ method: req.method ?? '', url: req.url ?? '', token: typeof token === 'string' });
    const send = (status: number, body: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(body);
    };
    if (req.url === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (req.method !== 'PUT') return send(405, 'Method Not Allowed');
      if (!(ttl >= 1 && ttl <= 21600)) return send(400, 'Bad Request');
      return send(200, 'AQAEAFAKE-imds-session-token==');
    }
    if (token !== 'AQAEAFAKE-imds-session-token==') return send(401, 'Unauthorized'); // IMDSv2 only
    const key = (req.url ?? '').replace(/^\/latest\/meta-data\//, '');
    const value = this.metadata[key];
    return value === undefined ? send(404, 'Not Found') : send(200, value);
  }

  private engine(req: http.IncomingMessage, res: http.ServerResponse): void {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const reply = (status: number, value: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(value === null ? '' : JSON.stringify(value));
      };
      if (req.method === 'GET' && /^(\/v1\.\d+)?\/_ping$/.test(req.url ?? '')) return reply(200, 'OK');
      if (req.method !== 'POST' || !/^(\/v1\.\d+)?\/swarm\/join$/.test(req.url ?? '')) {
        return reply(404, { message: `fake engine: unsupported ${req.method} ${req.url}` });
      }
      if (req.headers['content-type'] !== 'application/json') return reply(400, { message: 'Content-Type must be application/json' });
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return reply(400, { message: 'invalid JSON' });
      }
      this.joinUrls.push(req.url ?? '');
      const [status, value] = tools.joinSwarm(this.cloud.dir, this.dir, request);
      this.joins.push({ status, advertiseAddr: request.AdvertiseAddr, remoteAddrs: request.RemoteAddrs });
      return reply(status, value);
    });
  }
}
