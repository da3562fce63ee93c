import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const REPO = resolve(__dirname, '../..');
export const MANAGER = 'i-0123456789abcdef0';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** tsx's loader, for `node --import`. */
const TSX = pathToFileURL(require.resolve('tsx')).href;

/**
 * Runs the CLI from a checkout in its own process (async: a test server may answer it): `node --import tsx
 * bin/ec2-swarm.ts …`, the process `npx tsx` starts (npx itself costs ~1.5 CPU-s a run); `npx` runs exactly the
 * documented `npx tsx bin/ec2-swarm.ts …`.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO, launcher: 'node' | 'npx' = 'node'): Promise<Run> {
  const bin = join(REPO, 'bin/ec2-swarm.ts');
  const [command, argv] = launcher === 'npx' ? ['npx', ['--no-install', 'tsx', bin, ...args]] : [process.execPath, ['--import', TSX, bin, ...args]];
  return new Promise((done, fail) => {
    const child = spawn(command, argv, {
      cwd,
      env: { ...process.env, AWS_REGION: '', AWS_PROFILE: '', NODE_OPTIONS: '', ...env, npm_config_loglevel: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

/** Temporary directories made by the test file that imports these helpers, removed after its tests. */
const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export const OUTPUTS = {
  LabStack: {
    SwarmClusterName: 'lab',
    SwarmManagerInstanceId: MANAGER,
    SwarmParameterPrefix: '/ec2-swarm/lab',
    SwarmWorkerGroupName: 'LabWorkers',
    SwarmRegion: 'us-east-1',
  },
};

export interface FakeSsm {
  server: Server;
  endpoint: string;
  /** Every request: x-amz-target without the service prefix, and the JSON body. */
  calls: { target: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

/** A loopback server speaking SSM's JSON protocol; `answer` decides each reply. */
export async function fakeSsm(answer: (target: string, body: Record<string, unknown>) => { status?: number; body: unknown }): Promise<FakeSsm> {
  const calls: FakeSsm['calls'] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
      const body = raw ? JSON.parse(raw) : {};
      calls.push({ target, body });
      const a = answer(target, body);
      res.writeHead(a.status ?? 200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A lab directory whose state.json points at `endpoint`; returns the env that selects it. */
export function labAt(endpoint: string): NodeJS.ProcessEnv {
  const dir = tempDir('ec2-swarm-cli-lab-');
  writeFileSync(join(dir, 'outputs.json'), JSON.stringify(OUTPUTS));
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ ssmEndpoint: endpoint, region: 'us-east-1', outputsFile: 'outputs.json' }));
  return { EC2_SWARM_LAB_DIR: dir };
}
