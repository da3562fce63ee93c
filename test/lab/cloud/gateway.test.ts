/**
 * The gateway on loopback (no namespaces): IMDSv2 by source IP, the HTTPS front with the lab CA, the REAL AWS CLI
 * (/usr/bin/aws) through it, credentials from the lab IMDS, and the cfn-signal stand-in.
 * Every CLI call gets an explicit https://127.0.0.1 endpoint and a loopback IMDS (or none): nothing reaches AWS.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { Gateway, parseGatewayConfig, startGateway } from '../../../lib/lab/cloud/gateway';
import { readSignals, summarizeSignals } from '../../../lib/lab/cloudformation/signals';
import { LabCloud, startLabCloud } from '../../../lib/lab/ssm/endpoint';
import { ensureLabTls, LabTls } from '../../../lib/lab/cloud/tls';
import { AWS_CLI as AWS, type AwsCliSession, startAwsCliSession } from '../../support/aws-cli-session';
import { LAB_OPERATOR_CREDENTIALS } from '../../../lib/lab/credentials';

const CFN_SIGNAL = resolve(__dirname, '../../../scripts/lab/cfn-signal.sh');
const REGION = 'us-east-1';
const MANAGER = { instanceId: 'i-0aaaaaaaaaaaaaaa0', privateIp: '127.0.0.1', role: 'manager' };
const WORKER = { instanceId: 'i-0bbbbbbbbbbbbbbb1', privateIp: '127.0.0.2', role: 'worker' };

let dir: string;
let tls: LabTls;
let cloud: LabCloud;
let gw: Gateway;
let https: string;
let imdsUrl: string;
let cli: AwsCliSession;

beforeAll(async () => {
  cli = startAwsCliSession();
  dir = mkdtempSync(join(tmpdir(), 'lab-cloud-gw-'));
  tls = ensureLabTls({ dir: join(dir, 'tls'), region: REGION, ipAddresses: ['192.168.240.1'] });
  cloud = await startLabCloud({
    region: REGION,
    instances: [MANAGER, WORKER],
    executor: async (id) => ({ exitCode: 0, stdout: `ran on ${id}\n`, stderr: '' }),
    socketPath: join(dir, 'cloud.sock'),
    signalsFile: join(dir, 'signals.json'),
    commandLog: join(dir, 'commands.log'),
  });
  const cfg = parseGatewayConfig({
    region: REGION,
    instances: [MANAGER, WORKER],
    controllerSocket: join(dir, 'cloud.sock'),
    imds: { host: '127.0.0.1', port: 0 },
    https: { host: '127.0.0.1', port: 0, certFile: tls.cert, keyFile: tls.key },
  });
  gw = await startGateway(cfg);
  https = `https://127.0.0.1:${gw.httpsPort}`;
  imdsUrl = `http://127.0.0.1:${gw.imdsPort}`;
});

afterAll(async () => {
  await cli?.close();
  await gw?.close();
  await cloud?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with exactly this environment (nothing inherited: no stray AWS_* or proxy settings). */
function run(file: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((res) => {
    execFile(file, args, { env: { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

/**
 * The CLI with static keys from the environment and IMDS switched off, in one Python process for the file
 * (test/support/aws-cli-session.ts); the instance-profile test runs /usr/bin/aws itself.
 */
function aws(args: string[]): Promise<Run> {
  return cli.run([...args, '--endpoint-url', https, '--region', REGION], {
    PATH: '/usr/bin:/bin',
    HOME: dir,
    LANG: 'C.UTF-8',
    AWS_ACCESS_KEY_ID: LAB_OPERATOR_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LAB_OPERATOR_CREDENTIALS.secretAccessKey,
    AWS_CA_BUNDLE: tls.caCert,
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  });
}

/** An HTTP request from a chosen loopback source address (the gateway tells hosts apart by source IP). */
function http(opts: { method: string; path: string; from?: string; headers?: Record<string, string>; port?: number }): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const r = request(
      { host: '127.0.0.1', port: opts.port ?? gw.imdsPort, method: opts.method, path: opts.path, headers: opts.headers, localAddress: opts.from, timeout: 5000 },
      (resp) => {
        let body = '';
        resp.setEncoding('utf8').on('data', (d) => (body += d));
        resp.on('end', () => res({ status: resp.statusCode ?? 0, body }));
      },
    );
    r.on('error', rej);
    r.end();
  });
}

test('lab TLS: CA and server certificate for ssm.<region>.amazonaws.com, keys 0600', () => {
  expect(statSync(tls.key).mode & 0o777).toBe(0o600);
  expect(statSync(tls.caKey).mode & 0o777).toBe(0o600);
  expect(existsSync(tls.caCert)).toBe(true);
});

test('the HTTPS front verifies as ssm.<region>.amazonaws.com against the lab CA (what the CLI in a host checks)', async () => {
  const check = (servername: string): Promise<string | undefined> =>
    new Promise((res, rej) => {
      // Connects to 127.0.0.1 only; the name is just SNI + the identity check, never resolved.
      const s = connect({ host: '127.0.0.1', port: gw.httpsPort, servername, ca: readFileSync(tls.caCert), timeout: 5000 }, () => {
        s.end();
        res(undefined);
      });
      s.on('error', (e) => (e.message.includes('altnames') || e.message.includes('certificate') ? res(e.message) : rej(e)));
    });
  expect(await check('ssm.us-east-1.amazonaws.com')).toBeUndefined();
  expect(await check('ssm.eu-west-1.amazonaws.com')).toMatch(/altnames|certificate/);
});

test('IMDSv2: 401 without a token; with one, each caller gets its own instance by source IP', async () => {
  expect((await http({ method: 'GET', path: '/latest/meta-data/instance-id' })).status).toBe(401);
  expect((await http({ method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '0' } })).status).toBe(400);

  for (const inst of [MANAGER, WORKER]) {
    const tok = await http({ method: 'PUT', path: '/latest/api/token', from: inst.privateIp, headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '300' } });
    expect(tok.status).toBe(200);
    const get = (p: string): Promise<{ status: number; body: string }> =>
      http({ method: 'GET', path: `/latest/meta-data/${p}`, from: inst.privateIp, headers: { 'x-aws-ec2-metadata-token': tok.body } });
    expect(await get('instance-id')).toEqual({ status: 200, body: inst.instanceId });
    expect((await get('local-ipv4')).body).toBe(inst.privateIp);
    expect((await get('placement/region')).body).toBe(REGION);
    expect((await get('placement/availability-zone')).body).toBe('us-east-1a');
    expect((await get('no/such/path')).status).toBe(404);
  }
  // A token is only good on the instance that asked for it.
  const tok = await http({ method: 'PUT', path: '/latest/api/token', from: '127.0.0.1', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '300' } });
  const stolen = await http({ method: 'GET', path: '/latest/meta-data/instance-id', from: '127.0.0.2', headers: { 'x-aws-ec2-metadata-token': tok.body } });
  expect(stolen.status).toBe(401);
});

// get-parameter --with-decryption is the instance-profile test below.
test('the real AWS CLI through the TLS gateway: put-parameter --cli-input-json with static keys', async () => {
  const input = join(dir, 'put.json');
  writeFileSync(input, JSON.stringify({ Name: '/ec2-swarm/gw/worker-token', Type: 'SecureString', Value: 'SWMTKN-\x31-abc-def', Overwrite: true }), { mode: 0o600 });
  const put = await aws(['ssm', 'put-parameter', '--cli-input-json', `file://${input}`]);
  expect(put).toMatchObject({ code: 0, stderr: '' });
  expect(JSON.parse(put.stdout)).toEqual({ Version: 1, Tier: 'Standard' });

  // Written through the gateway, visible to the operator's SDK on the TCP endpoint: one store.
  const sdk = new SSMClient({ region: REGION, endpoint: cloud.endpoint, credentials: LAB_OPERATOR_CREDENTIALS, maxAttempts: 1 });
  const viaSdk = await sdk.send(new GetParameterCommand({ Name: '/ec2-swarm/gw/worker-token', WithDecryption: true }));
  sdk.destroy();
  expect(viaSdk.Parameter?.Value).toBe('SWMTKN-\x31-abc-def');
});

test('the real AWS CLI prints the real ParameterNotFound error and exits 254', async () => {
  const r = await aws(['ssm', 'get-parameter', '--name', '/ec2-swarm/gw/absent']);
  expect(r.code).toBe(254);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim()).toBe('An error occurred (ParameterNotFound) when calling the GetParameter operation:');

  const again = await aws(['ssm', 'put-parameter', '--name', '/ec2-swarm/gw/worker-token', '--type', 'SecureString', '--value', 'x']);
  expect(again.code).toBe(254);
  expect(again.stderr).toContain('An error occurred (ParameterAlreadyExists) when calling the PutParameter operation: The parameter already exists.');
});

test('the real AWS CLI gets instance-profile credentials from the lab IMDS and signs with them', async () => {
  const r = await run(AWS, ['ssm', 'get-parameter', '--name', '/ec2-swarm/gw/worker-token', '--with-decryption', '--query', 'Parameter.Value', '--output', 'text', '--endpoint-url', https, '--region', REGION, '--debug'], {
    AWS_EC2_METADATA_SERVICE_ENDPOINT: `${imdsUrl}/`,
    AWS_CA_BUNDLE: tls.caCert,
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_PAGER: '',
  });
  expect(r.code).toBe(0);
  expect(r.stdout).toBe('SWMTKN-\x31-abc-def\n');
  expect(r.stderr).toContain('Found credentials from IAM Role: ec2-swarm-lab-node');
  // The access key IMDS handed to the manager (source 127.0.0.1) is the one in the SigV4 header.
  expect(r.stderr).toMatch(/Credential=ASIA[0-9A-F]{16}\//);
});

test('requests through the gateway carry the caller identity by source IP, not by what the caller claims', async () => {
  const r = await aws(['ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--instance-ids', WORKER.instanceId, '--parameters', 'commands=["true"]']);
  expect(r.code).toBe(0);
  const id = JSON.parse(r.stdout).Command.CommandId;
  const logged = readFileSync(join(dir, 'commands.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.commandId === id);
  expect(logged.caller).toEqual({ via: 'unix', sourceIp: '127.0.0.1', instanceId: MANAGER.instanceId });

  // A spoofed header is replaced by the gateway.
  const spoof = await new Promise<number>((res, rej) => {
    const q = request({ host: '127.0.0.1', port: gw.imdsPort, method: 'POST', path: '/lab/signal', localAddress: '127.0.0.2', headers: { 'x-lab-source-ip': '127.0.0.1', 'content-type': 'application/x-www-form-urlencoded' } }, (resp) => {
      resp.resume();
      resp.on('end', () => res(resp.statusCode ?? 0));
    });
    q.on('error', rej);
    q.end('stack=Spoof&resource=SpoofRes&exitCode=0');
  });
  expect(spoof).toBe(200);
  const rec = readSignals(join(dir, 'signals.json')).find((s) => s.stack === 'Spoof');
  expect(rec).toMatchObject({ instanceId: WORKER.instanceId, sourceIp: '127.0.0.2' });
});

describe('the cfn-signal stand-in', () => {
  const signal = (args: string[], url = `${imdsUrl}/lab/signal`): Promise<Run> => run('/bin/bash', [CFN_SIGNAL, ...args], { EC2_SWARM_LAB_SIGNAL_URL: url });

  test('reports success and failure as the user-data trap calls it; the lab records them per host', async () => {
    const ok = await signal(['--stack', 'SwarmStack', '--resource', 'ManagerInstance1A2B3C', '--region', REGION, '-e', '0']);
    expect(ok).toEqual({ code: 0, stdout: '', stderr: '' });
    const bad = await signal(['--stack=SwarmStack', '--resource', 'ManagerInstance1A2B3C', '--region', REGION, '-e', '3', '--role', 'ignored', '-r', 'join failed: "quotes" & $dollars']);
    expect(bad.code).toBe(0);

    const all = readSignals(join(dir, 'signals.json')).filter((s) => s.stack === 'SwarmStack');
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ instanceId: MANAGER.instanceId, resource: 'ManagerInstance1A2B3C', region: REGION, status: 'SUCCESS', exitCode: 0 });
    expect(all[1]).toMatchObject({ status: 'FAILURE', exitCode: 3, reason: 'join failed: "quotes" & $dollars' });

    const summary = summarizeSignals(all, [MANAGER.instanceId, WORKER.instanceId]);
    expect(summary).toMatchObject({ allSucceeded: false, succeeded: [], missing: [WORKER.instanceId] });
    expect(summary.failed.map((s) => s.exitCode)).toEqual([3]);
  });

  test('usage errors exit 2 naming the option; an unreachable recorder exits 1, bounded', async () => {
    const noStack = await signal(['--resource', 'R', '-e', '0']);
    expect(noStack.code).toBe(2);
    expect(noStack.stderr).toContain('--stack is required');
    expect((await signal(['--stack', 'S', '--resource', 'R', '-e', 'x'])).stderr).toContain('-e must be an integer');
    expect((await signal(['--stack', 'S', '--resource', 'R', '--bogus'])).code).toBe(2);

    const started = Date.now();
    // Port 9 on loopback: nothing listens, the connection is refused at once; retries are bounded.
    const down = await signal(['--stack', 'S', '--resource', 'R', '-e', '0'], 'http://127.0.0.1:9/lab/signal');
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('could not deliver the signal');
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
