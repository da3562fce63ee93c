/**
 * The controller's unix socket (what the gateway talks to) and the gateway as the process the lab spawns.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Caller } from '../../../lib/lab/ssm/run-command';
import { SsmServiceError } from '../../../lib/lab/ssm/errors';
import { LabCloud, startLabCloud } from '../../../lib/lab/ssm/endpoint';
import { ensureLabTls } from '../../../lib/lab/cloud/tls';
import { instanceRoleCredentials } from '../../../lib/lab/credentials';
import { signHeaders } from '../../support/sigv4-sign';

const WORKER = { instanceId: 'i-0bbbbbbbbbbbbbbb1', privateIp: '192.168.240.11', role: 'worker' };
/** Signed as the caller would: a host with its role credentials from IMDS, the operator with the lab key. */
async function signed(target: string, body: string, host: string, asWorker: boolean): Promise<Record<string, string>> {
  return signHeaders({ host, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target }, body, region: 'us-east-1', service: 'ssm', ...(asWorker ? { creds: instanceRoleCredentials(WORKER.instanceId) } : {}) });
}

let dir: string;
let cloud: LabCloud;
const seen: { caller: Caller; action: string }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lab-cloud-sock-'));
  cloud = await startLabCloud({
    region: 'us-east-1',
    instances: [WORKER],
    executor: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
    socketPath: join(dir, 'cloud.sock'),
    // Like the worker role's IAM policy: a worker host may not read the manager token.
    authorize: (caller, action, input) => {
      seen.push({ caller, action });
      if (caller.instanceId === WORKER.instanceId && input.Name === '/ec2-swarm/s/manager-token') {
        throw new SsmServiceError('AccessDeniedException', `User: ${caller.instanceId} is not authorized to perform: ssm:${action}`);
      }
    },
  });
});

afterAll(async () => {
  await cloud.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(target: string, body: unknown, opts: { socket?: boolean; sourceIp?: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = JSON.stringify(body);
  const headers = await signed(target, text, opts.socket ? 'ssm.us-east-1.amazonaws.com' : `127.0.0.1:${cloud.port}`, !!opts.socket && opts.sourceIp === WORKER.privateIp);
  return new Promise((res, rej) => {
    if (opts.sourceIp) headers['x-lab-source-ip'] = opts.sourceIp;
    const where = opts.socket ? { socketPath: cloud.socketPath } : { host: '127.0.0.1', port: cloud.port };
    const q = request({ ...where, method: 'POST', path: '/', headers, timeout: 5000 }, (r) => {
      let text = '';
      r.setEncoding('utf8').on('data', (d) => (text += d));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: JSON.parse(text) }));
    });
    q.on('error', rej);
    q.end(text);
  });
}

test('the socket is 0600; on it x-lab-source-ip names the host, on TCP the header is ignored', async () => {
  expect(statSync(cloud.socketPath!).mode & 0o777).toBe(0o600);
  await call('AmazonSSM.GetParameters', { Names: ['/x'] }, { socket: true, sourceIp: WORKER.privateIp });
  expect(seen.at(-1)?.caller).toEqual({ via: 'unix', sourceIp: WORKER.privateIp, instanceId: WORKER.instanceId });
  await call('AmazonSSM.GetParameters', { Names: ['/x'] }, { sourceIp: WORKER.privateIp });
  expect(seen.at(-1)?.caller).toEqual({ via: 'tcp', sourceIp: '127.0.0.1' });
});

test('the authorize hook refuses with AccessDeniedException for that host only', async () => {
  const put = await call('AmazonSSM.PutParameter', { Name: '/ec2-swarm/s/manager-token', Type: 'SecureString', Value: 'v' }, {});
  expect(put.status).toBe(200);
  const denied = await call('AmazonSSM.GetParameter', { Name: '/ec2-swarm/s/manager-token' }, { socket: true, sourceIp: WORKER.privateIp });
  expect(denied).toMatchObject({ status: 400, body: { __type: 'AccessDeniedException' } });
  const operator = await call('AmazonSSM.GetParameter', { Name: '/ec2-swarm/s/manager-token', WithDecryption: true }, {});
  expect(operator.body).toMatchObject({ Parameter: { Value: 'v' } });
});

test('a malformed body is a SerializationException, not a crash', async () => {
  const headers = await signed('AmazonSSM.GetParameter', '{not json', `127.0.0.1:${cloud.port}`, false);
  const r = await new Promise<{ status: number; body: string }>((res, rej) => {
    const q = request(
      { host: '127.0.0.1', port: cloud.port, method: 'POST', path: '/', headers },
      (resp) => {
        let text = '';
        resp.setEncoding('utf8').on('data', (d) => (text += d));
        resp.on('end', () => res({ status: resp.statusCode ?? 0, body: text }));
      },
    );
    q.on('error', rej);
    q.end('{not json');
  });
  expect(r.status).toBe(400);
  expect(JSON.parse(r.body).__type).toBe('SerializationException');
});

describe('gateway-main, the process the lab spawns in the hub namespace', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child?.pid && child.exitCode === null) child.kill('SIGKILL');
  });

  function startMain(config: unknown): { child: ChildProcess; line: Promise<string>; exit: Promise<number | null> } {
    const file = join(dir, `gw-${Math.random().toString(16).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(config));
    // As the lab starts it (controller.ts nodeEntry): one node process, no tsx CLI wrapper (a node start-up fewer).
    const c = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), resolve(__dirname, '../../../lib/lab/cloud/gateway-main.ts'), file], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let out = '';
    let err = '';
    c.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
    const line = new Promise<string>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`gateway-main printed nothing in 20 s; stderr: ${err}`)), 20_000);
      c.stdout!.setEncoding('utf8').on('data', (d) => {
        out += d;
        if (out.includes('\n')) {
          clearTimeout(t);
          res(out.split('\n')[0]);
        }
      });
      c.on('exit', () => {
        clearTimeout(t);
        res(err.trim());
      });
    });
    const exit = new Promise<number | null>((res) => c.on('exit', (code) => res(code)));
    return { child: c, line, exit };
  }

  test('prints a ready line with its ports, serves IMDS, exits 0 on SIGTERM', async () => {
    const tls = ensureLabTls({ dir: join(dir, 'tls'), region: 'us-east-1' });
    const main = startMain({
      region: 'us-east-1',
      instances: [{ instanceId: 'i-0ccccccccccccccc2', privateIp: '127.0.0.1' }],
      controllerSocket: cloud.socketPath,
      imds: { host: '127.0.0.1', port: 0 },
      https: { host: '127.0.0.1', port: 0, certFile: tls.cert, keyFile: tls.key },
    });
    const ready = JSON.parse(await main.line);
    expect(ready).toMatchObject({ ready: true, imdsPort: expect.any(Number), httpsPort: expect.any(Number) });
    const tok = await fetch(`http://127.0.0.1:${ready.imdsPort}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
    const id = await fetch(`http://127.0.0.1:${ready.imdsPort}/latest/meta-data/instance-id`, { headers: { 'x-aws-ec2-metadata-token': await tok.text() } });
    expect(await id.text()).toBe('i-0ccccccccccccccc2');
    main.child.kill('SIGTERM');
    expect(await main.exit).toBe(0);
  });

  test('a bad config: one line naming the field, exit 1', async () => {
    const main = startMain({ region: 'us-east-1', instances: [{ instanceId: 'i-123', privateIp: '127.0.0.1' }], controllerSocket: 'x', imds: { host: '127.0.0.1', port: 0 } });
    const line = await main.line;
    expect(line).toContain('instances');
    expect(line).toContain('https');
    expect(await main.exit).toBe(1);
  });
});
