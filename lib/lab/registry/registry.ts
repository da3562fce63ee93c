/**
 * A login-protected registry in the lab network (docs/design.md decision 15): Debian's `docker-registry`
 * (distribution 2.8) with htpasswd authentication and TLS from the lab CA, listening on the hub's address
 * (`192.168.<net>.1:5000`), so the hosts' dockerd pull from it like from any private registry. Started only when
 * asked (`startLabRegistry`, `lab up --with-registry`), recorded for the lab's teardown, stopped by PID with its
 * files removed (`stopLabRegistry`). The password reaches only `htpasswd -i` (stdin) and the pusher (stdin).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { SwarmError } from '../../errors';
import { HOST_PATH, findExecutable, labConfig } from '../lab-config';
import { isAlive, readResources, recordDir, stopProcesses, type RecordedProcess } from '../resources';
import { runCommand } from '../run-process';
import { spawnInNetns } from '../ec2/netns';
import { imagePaths } from '../ec2/image';
import { labInstances, runInHost } from '../lab';
import type { LabState } from '../state';

export const REGISTRY_PORT = 5000;
const USER = /^[a-z][a-z0-9_.-]{0,31}$/;

export interface RegistryFiles {
  readonly dir: string;
  readonly config: string;
  readonly htpasswd: string;
  readonly cert: string;
  readonly key: string;
  readonly data: string;
}

export interface RegistryFilesOptions {
  readonly dir: string;
  /** `ip:port` to listen on. */
  readonly listen: string;
  readonly caCert: string;
  readonly caKey: string;
  /** IP addresses the certificate names. */
  readonly ipAddresses: readonly string[];
  readonly username: string;
  readonly password: string;
}

function need(name: string, pkg: string): string {
  const f = findExecutable(name, HOST_PATH);
  if (!f) throw SwarmError.environment('LAB_REGISTRY_TOOL', `the lab registry needs ${name} (Debian package ${pkg}): apt-get install -y ${pkg}`);
  return f;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Writes the registry's config, htpasswd (bcrypt), and a server certificate signed by the lab CA; all 0600 in a 0700 dir. */
export function writeRegistryFiles(o: RegistryFilesOptions): RegistryFiles {
  if (!USER.test(o.username)) throw SwarmError.user('LAB_REGISTRY_OPTIONS', `registry user name must match ${USER} (got ${JSON.stringify(o.username)})`);
  if (o.password.length < 8 || /[\0\n\r]/.test(o.password)) throw SwarmError.user('LAB_REGISTRY_OPTIONS', 'registry password must be at least 8 characters on one line');
  const f: RegistryFiles = {
    dir: o.dir,
    config: join(o.dir, 'config.yml'),
    htpasswd: join(o.dir, 'htpasswd'),
    cert: join(o.dir, 'registry.pem'),
    key: join(o.dir, 'registry.key'),
    data: join(o.dir, 'data'),
  };
  mkdirSync(f.data, { recursive: true, mode: 0o700 });
  chmodSync(o.dir, 0o700);
  // -i: the password from stdin (never in argv); -B: bcrypt, the only hash distribution accepts.
  execFileSync(need('htpasswd', 'apache2-utils'), ['-B', '-i', '-c', f.htpasswd, o.username], { input: `${o.password}\n`, timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
  chmodSync(f.htpasswd, 0o600);
  const pem = execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(f.key, pem, { mode: 0o600 });
  const ext = join(o.dir, 'cert.ext');
  writeFileSync(
    ext,
    ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth', `subjectAltName = ${o.ipAddresses.map((a) => `IP:${a}`).join(',')}`, ''].join('\n'),
  );
  const csr = join(o.dir, 'registry.csr');
  openssl(['req', '-new', '-key', f.key, '-subj', '/CN=ec2-swarm lab registry', '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', o.caCert, '-CAkey', o.caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-sha256', '-days', '30', '-extfile', ext, '-out', f.cert]);
  rmSync(csr, { force: true });
  rmSync(ext, { force: true });
  writeFileSync(
    f.config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: text',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(f.data)}`,
      'http:',
      `  addr: ${JSON.stringify(o.listen)}`,
      `  secret: ${JSON.stringify(randomBytes(24).toString('hex'))}`,
      '  tls:',
      `    certificate: ${JSON.stringify(f.cert)}`,
      `    key: ${JSON.stringify(f.key)}`,
      'auth:',
      '  htpasswd:',
      '    realm: ec2-swarm-lab',
      `    path: ${JSON.stringify(f.htpasswd)}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return f;
}

/** The registry binary's argv for a config (tests run it on loopback; the lab in the hub namespace). */
export function registryArgv(config: string): string[] {
  return [need('docker-registry', 'docker-registry'), 'serve', config];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) for distribution's "listening on" line, or fails with the log's end when the process ended. */
export async function waitForRegistry(log: string, proc: { pid: number; startTime?: string }, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const text = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  for (;;) {
    if (/listening on .*, tls/.test(text())) return;
    if (!isAlive(proc)) throw SwarmError.environment('LAB_REGISTRY_START', `the lab registry exited during start-up; its log ${log} ends:\n${text().trimEnd().split('\n').slice(-10).join('\n')}`);
    if (Date.now() > deadline) throw SwarmError.environment('LAB_REGISTRY_START', `the lab registry did not listen within ${timeoutMs / 1000}s; see ${log}`);
    await sleep(100);
  }
}

export interface LabRegistry {
  /** `192.168.<net>.1:5000`: the registry part of image names. */
  readonly address: string;
  readonly pid: number;
  readonly dir: string;
  readonly log: string;
}

function registryDir(labDir: string): string {
  return join(labDir, 'registry');
}
/** Inside the registry's directory, so the lab's teardown (which removes that directory) takes the record too. */
function recordFile(labDir: string): string {
  return join(registryDir(labDir), 'registry.json');
}

/** The hosts' dockerd trust the lab CA for this registry (certs.d is read at every pull: no restart). */
async function trustOnHosts(state: LabState, address: string, ca: string | undefined): Promise<void> {
  const live = labInstances(state).filter((i) => i.state === 'running');
  const names = live.length > 0 ? live.map((i) => i.name) : state.hosts.map((h) => h.name);
  await Promise.all(
    names.map(async (h) => {
      const argv = ca === undefined
        ? ['sh', '-c', 'rm -rf "/etc/docker/certs.d/$1"', 'sh', address]
        : ['sh', '-c', 'mkdir -p "/etc/docker/certs.d/$1" && cat > "/etc/docker/certs.d/$1/ca.crt"', 'sh', address];
      const r = await runInHost(state, h, argv, { timeoutMs: 30_000, ...(ca !== undefined ? { stdin: ca } : {}) });
      if (r.exitCode !== 0 && ca !== undefined) throw SwarmError.environment('LAB_REGISTRY_TRUST', `host ${h}: could not install the lab CA for ${address}: ${r.stderr.trim()}`);
    }),
  );
}

/**
 * Starts the lab registry in the hub namespace for a lab that is up, with one user; the hosts trust it.
 * Throws SwarmError (environment) when the packages are missing or it does not start.
 */
export async function startLabRegistry(state: LabState, o: { username: string; password: string }): Promise<LabRegistry> {
  const cfg = labConfig({ labDir: state.labDir, prefix: state.prefix, net: state.net });
  if (existsSync(recordFile(state.labDir))) throw SwarmError.environment('LAB_REGISTRY_RUNNING', `a lab registry is already recorded in ${recordFile(state.labDir)}: stop it first`);
  const dir = registryDir(state.labDir);
  rmSync(dir, { recursive: true, force: true }); // an earlier registry's files (its process was stopped by the lab's teardown)
  recordDir(state.labDir, dir); // the lab's teardown removes it too
  const address = `${cfg.hubAddress}:${REGISTRY_PORT}`;
  const files = writeRegistryFiles({
    dir,
    listen: address,
    caCert: state.caBundle,
    caKey: join(state.labDir, 'tls', 'lab-ca.key'),
    ipAddresses: [cfg.hubAddress],
    username: o.username,
    password: o.password,
  });
  const log = join(state.labDir, 'logs', 'registry.log');
  const spawned = spawnInNetns(cfg.hubNs, registryArgv(files.config), { labDir: state.labDir, prefix: state.prefix, net: state.net, logFile: log, label: 'registry', cwd: '/', env: { PATH: HOST_PATH, LANG: 'C.UTF-8' } });
  const rec = readResources(state.labDir)!.processes.find((p) => p.pid === spawned.pid)!;
  const reg: LabRegistry = { address, pid: spawned.pid, dir, log };
  writeFileSync(recordFile(state.labDir), JSON.stringify({ ...reg, startTime: rec.startTime }, null, 2) + '\n');
  try {
    await waitForRegistry(log, rec);
    await trustOnHosts(state, address, readFileSync(state.caBundle, 'utf8'));
  } catch (e) {
    await stopLabRegistry(state);
    throw e;
  }
  return reg;
}

/** Stops the lab registry by its recorded PID and removes its files and the hosts' trust; safe to run twice. */
export async function stopLabRegistry(state: LabState): Promise<boolean> {
  const file = recordFile(state.labDir);
  if (!existsSync(file)) return false;
  const reg = JSON.parse(readFileSync(file, 'utf8')) as LabRegistry & { startTime: string };
  const proc: RecordedProcess = { pid: reg.pid, startTime: reg.startTime, role: 'helper', label: 'registry' };
  const left = await stopProcesses([proc], { graceMs: 10_000 });
  if (left.length > 0) throw SwarmError.environment('LAB_REGISTRY_STOP', `the lab registry (PID ${reg.pid}) did not stop`);
  await trustOnHosts(state, reg.address, undefined).catch(() => undefined); // hosts may already be gone
  rmSync(reg.dir, { recursive: true, force: true });
  rmSync(file, { force: true });
  return true;
}

/** This module's entry for a child process (tsx under ts-jest/tsx, plain node when compiled). */
function pushEntry(): string[] {
  const ext = extname(__filename);
  const file = join(__dirname, `push-main${ext}`);
  return ext === '.ts' ? [process.execPath, '--require', require.resolve('tsx/cjs'), file] : [process.execPath, file];
}

/**
 * Pushes the lab's busybox image (its cached `docker save` archive: no network pull) to the lab registry as
 * `<address>/<repository>:<tag>`, from the operator's side: a pusher in the hub namespace, credentials on stdin.
 * Resolves the full image name.
 */
export async function pushLabImage(state: LabState, reg: LabRegistry, o: { repository: string; tag: string; username: string; password: string }): Promise<string> {
  const cfg = labConfig({ labDir: state.labDir, prefix: state.prefix, net: state.net });
  const imageTar = imagePaths(state.labDir).imageTar;
  if (!existsSync(imageTar)) throw SwarmError.environment('LAB_IMAGE_MISSING', `${imageTar} is missing: is the lab up?`);
  const input = JSON.stringify({ registry: reg.address, repository: o.repository, tag: o.tag, imageTar, caFile: state.caBundle, username: o.username, password: o.password });
  const r = await runCommand('nsenter', [`--net=/run/netns/${cfg.hubNs}`, '--', ...pushEntry()], { stdin: input, timeoutMs: 180_000, env: { PATH: HOST_PATH, LANG: 'C.UTF-8' } });
  if (r.exitCode !== 0) throw SwarmError.environment('LAB_REGISTRY_PUSH', `pushing ${o.repository}:${o.tag} to the lab registry failed: ${(r.stderr || r.stdout).trim().slice(-1000)}`);
  return `${reg.address}/${o.repository}:${o.tag}`;
}
