/**
 * Formation, end to end: the synthesized user-data runs unchanged on real dockerd hosts and forms the swarm; every
 * host signals SUCCESS; the join tokens are SecureStrings that no log shows; the ops CLI sees the swarm through
 * the SSM path (`--target lab`); a worker that boots before the manager still joins; `lab down` leaves nothing.
 * Root only (namespaces, mounts): `npx jest -c jest.e2e.config.js test/e2e/formation`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { e2eLabIdentity, keepLabLogs } from './ops-cli-support';
import { LabState, labDown, labUp, logFiles, readLabState, runInHost, signals } from '../../lib/lab/lab';
import { isAlive, readResources, RecordedProcess } from '../../lib/lab/resources';
import { LAB_CREDENTIALS } from '../../lib/ops/target';

const { labDir: LAB_DIR, prefix: PREFIX, net: NET } = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2e-formation', prefix: 'e2f', net: 236 });
const REPO = resolve(__dirname, '../..');
const TOKEN = /SWMTKN/;

const timings: string[] = [];
const log = { info: () => undefined, warn: (m: string) => process.stderr.write(`${m}\n`), progress: () => undefined, done: () => undefined };

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, [require.resolve('tsx/cli'), resolve(REPO, 'bin/ec2-swarm.ts'), ...args], {
      cwd: REPO,
      env: { ...process.env, EC2_SWARM_LAB_DIR: LAB_DIR },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    c.on('error', rej);
    c.on('close', (code) => res({ code, stdout, stderr }));
  });
}

async function nodeLs(state: LabState): Promise<{ hostname: string; status: string; availability: string; manager: string }[]> {
  const r = await runInHost(state, 'h0', ['docker', 'node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}']);
  expect(r).toMatchObject({ exitCode: 0 });
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [hostname, status, availability, manager = ''] = l.split(' ');
      return { hostname, status, availability, manager };
    });
}

/** Every process whose command line mentions the lab dir (dockerd, containerd, shims, controller, gateway…). */
function processesMentioning(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(dir) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function netnsWithPrefix(): Promise<string[]> {
  const r = await new Promise<string>((res) => {
    const c = spawn('ip', ['netns', 'list'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (s += d));
    c.on('close', () => res(s));
  });
  return r.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`${PREFIX}-`));
}

beforeAll(async () => {
  await labDown({ labDir: LAB_DIR }); // leftovers of an interrupted run
});

afterAll(async () => {
  await labDown({ labDir: LAB_DIR, purge: !keepLabLogs() });
  process.stdout.write(`formation e2e timings:\n  ${timings.join('\n  ')}\n`);
});

describe('lab up: 1 manager + 2 workers, user-data all at once (as CloudFormation starts them)', () => {
  let state: LabState;

  beforeAll(async () => {
    const t = Date.now();
    state = await labUp({ workers: 2, labDir: LAB_DIR, prefix: PREFIX, net: NET, reporter: log });
    timings.push(`lab up 1+2: ${(Date.now() - t) / 1000}s`);
  });

  test('every host signalled SUCCESS for its own resource, exit code 0', () => {
    const s = signals(state);
    expect(s).toHaveLength(3);
    expect(s.map((x) => [x.host, x.status, x.exitCode])).toEqual([
      ['h0', 'SUCCESS', 0],
      ['h1', 'SUCCESS', 0],
      ['h2', 'SUCCESS', 0],
    ]);
    expect(new Set(s.filter((x) => x.host !== 'h0').map((x) => x.resource)).size).toBe(1);
    expect(s[0].resource).not.toBe(s[1].resource);
  });

  test('the manager sees 3 Ready, Active nodes, itself the Leader', async () => {
    const nodes = await nodeLs(state);
    expect(nodes).toHaveLength(3);
    expect(nodes.every((n) => n.status === 'Ready' && n.availability === 'Active')).toBe(true);
    expect(nodes.map((n) => n.hostname).sort()).toEqual(state.hosts.map((h) => h.hostname).sort());
    expect(nodes.find((n) => n.manager === 'Leader')?.hostname).toBe(state.hosts[0].hostname);
  });

  test('state.json is what ops --target lab reads; the outputs file names the groups', () => {
    expect(readLabState(LAB_DIR)).toEqual(state);
    expect(state.ssmEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const outputs = JSON.parse(readFileSync(state.outputsFile, 'utf8'));
    expect(outputs[state.stackName]).toMatchObject({
      SwarmClusterName: 'lab',
      SwarmManagerGroupName: 'ec2-swarm-lab-managers',
      SwarmWorkerGroupName: 'ec2-swarm-lab-workers',
      SwarmParameterPrefix: '/ec2-swarm/lab',
      SwarmRegion: 'us-east-1',
    });
  });

  test('the manager published both tokens as SecureString and the manager addresses as String', async () => {
    const ssm = new SSMClient({ region: state.region, endpoint: state.ssmEndpoint, credentials: LAB_CREDENTIALS });
    try {
      const r = await ssm.send(new GetParametersByPathCommand({ Path: '/ec2-swarm/lab', Recursive: true, WithDecryption: true }));
      const byName = Object.fromEntries((r.Parameters ?? []).map((p) => [p.Name, p]));
      expect(Object.keys(byName)).toEqual(expect.arrayContaining(['/ec2-swarm/lab/manager-addresses', '/ec2-swarm/lab/manager-token', '/ec2-swarm/lab/worker-token']));
      expect(Object.keys(byName)).not.toContain('/ec2-swarm/lab/manager-address');
      expect(byName['/ec2-swarm/lab/worker-token'].Type).toBe('SecureString');
      expect(byName['/ec2-swarm/lab/manager-token'].Type).toBe('SecureString');
      expect(byName['/ec2-swarm/lab/worker-token'].Value).toMatch(/^SWMTKN-\x31-/);
      expect(byName['/ec2-swarm/lab/manager-addresses']).toMatchObject({ Type: 'String', Value: `192.168.${NET}.10:2377` });
    } finally {
      ssm.destroy();
    }
  });

  test('IAM intent: a worker may read the worker token and the manager addresses but not the manager token, nor write', async () => {
    const aws = (args: string[]) => runInHost(state, 'h1', ['aws', 'ssm', ...args, '--region', 'us-east-1', '--output', 'text']);
    const address = await aws(['get-parameter', '--name', '/ec2-swarm/lab/manager-addresses', '--query', 'Parameter.Value']);
    expect(address).toMatchObject({ exitCode: 0, stdout: `192.168.${NET}.10:2377\n` });
    const managerToken = await aws(['get-parameter', '--name', '/ec2-swarm/lab/manager-token', '--with-decryption']);
    expect(managerToken.exitCode).not.toBe(0);
    expect(managerToken.stderr).toMatch(/AccessDeniedException/);
    expect(managerToken.stdout + managerToken.stderr).not.toMatch(TOKEN);
    // The Debian AWS CLI v2 on the hosts' PATH (not a CLI from the machine's own environment).
    expect((await runInHost(state, 'h1', ['aws', '--version'])).stdout).toMatch(/^aws-cli\/2\./);
    const put = await aws(['put-parameter', '--name', '/ec2-swarm/lab/manager-addresses', '--type', 'String', '--value', '10.0.0.1:2377', '--overwrite']);
    expect(put.stderr).toMatch(/AccessDeniedException/);
  });

  test('ops over SSM: `ec2-swarm status --target lab --json` shows the 3 Ready nodes; no token in any log or output', async () => {
    const r = await cli(['status', '--target', 'lab', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { nodes: { hostname: string; status: string; role: string }[] };
    expect(report.nodes).toHaveLength(3);
    expect(report.nodes.every((n) => n.status === 'Ready')).toBe(true);
    expect(report.nodes.filter((n) => n.role === 'manager')).toHaveLength(1);
    expect(r.stdout + r.stderr).not.toMatch(TOKEN);

    const files = logFiles(state);
    const names = files.map((f) => f.slice(LAB_DIR.length + 1));
    expect(names).toEqual(
      expect.arrayContaining(['logs/h0-cloud-init-output.log', 'logs/h2-cloud-init-output.log', 'logs/controller.log', 'logs/gateway.log', 'logs/ssm-send-command.jsonl', `logs/${PREFIX}-h1-dockerd.log`]),
    );
    // The SendCommand log holds every command's parameters: the status script ran, and carried no token.
    expect(readFileSync(`${LAB_DIR}/logs/ssm-send-command.jsonl`, 'utf8')).toMatch(/"commands"/);
    for (const f of files) expect({ file: f, hasToken: TOKEN.test(readFileSync(f, 'utf8')) }).toEqual({ file: f, hasToken: false });
    expect(readFileSync(`${LAB_DIR}/logs/h0-cloud-init-output.log`, 'utf8')).toMatch(/published \/ec2-swarm\/lab\/worker-token \(SecureString\)/);
  });
});

describe('a worker whose user-data starts 8 s before the manager\'s still joins (decision 4)', () => {
  let state: LabState;

  beforeAll(async () => {
    await labDown({ labDir: LAB_DIR });
    const t = Date.now();
    state = await labUp({ workers: 1, labDir: LAB_DIR, prefix: PREFIX, net: NET, reporter: log, workerHeadStartSeconds: 8 });
    timings.push(`lab up 1+1 with an 8 s worker head start: ${(Date.now() - t) / 1000}s`);
  });

  test('the worker waited for the token, then joined; both signalled SUCCESS', async () => {
    const workerLog = readFileSync(`${LAB_DIR}/logs/h1-cloud-init-output.log`, 'utf8');
    expect(workerLog).toMatch(/waiting: no manager has published the worker token and manager-addresses yet/);
    expect(workerLog).toMatch(/joined the swarm/);
    const s = signals(state);
    expect(s.map((x) => [x.host, x.status])).toEqual([
      ['h0', 'SUCCESS'],
      ['h1', 'SUCCESS'],
    ]);
    const nodes = await nodeLs(state);
    expect(nodes.map((n) => n.status)).toEqual(['Ready', 'Ready']);
  });
});

async function expectNothingLeft(recorded: readonly RecordedProcess[]): Promise<void> {
  expect(await netnsWithPrefix()).toEqual([]);
  expect(recorded.filter((p) => isAlive(p))).toEqual([]);
  expect(processesMentioning(LAB_DIR)).toEqual([]);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(LAB_DIR);
  expect(existsSync(`${LAB_DIR}/state.json`)).toBe(false);
  expect(readLabState(LAB_DIR)).toBeUndefined();
}

describe('lab down', () => {
  test('leaves no namespace, process or mount of the lab; a second run is a no-op', async () => {
    const rec = readResources(LAB_DIR);
    expect(rec).toBeDefined();
    const recorded: RecordedProcess[] = rec!.processes;
    expect(recorded.map((p) => p.label)).toEqual(expect.arrayContaining(['controller', 'gateway']));
    expect(processesMentioning(LAB_DIR).length).toBeGreaterThan(0); // the check below can fail

    const t = Date.now();
    const first = await labDown({ labDir: LAB_DIR });
    timings.push(`lab down: ${(Date.now() - t) / 1000}s`);
    expect(first.removed).toEqual(expect.arrayContaining([`network namespace ${PREFIX}-hub`, `network namespace ${PREFIX}-h0`]));
    await expectNothingLeft(recorded);
    expect(await labDown({ labDir: LAB_DIR })).toEqual({ removed: [] });
  });
});

describe('a lab whose swarm does not form in time', () => {
  test('lab up fails with the bound and the hosts still silent; its logs stay; lab down then cleans up', async () => {
    const t = Date.now();
    // The manager's user-data would start only after the 20 s bound: no manager, no token, no signal. (20 s, not
    // less: the bound includes synthesis and start-up, and the worker must have time to say that it waits.)
    const e = await labUp({ workers: 1, labDir: LAB_DIR, prefix: PREFIX, net: NET, reporter: log, timeoutSeconds: 20, workerHeadStartSeconds: 20 }).catch((x: unknown) => x);
    timings.push(`failed lab up (20 s bound): ${(Date.now() - t) / 1000}s`);
    expect(e).toMatchObject({ name: 'SwarmError', code: 'LAB_SIGNAL_TIMEOUT', fault: 'environment' });
    expect((e as Error).message).toMatch(/no signal within 20s from h0 \(manager\), h1 \(worker\)/);
    expect(readFileSync(`${LAB_DIR}/logs/h1-cloud-init-output.log`, 'utf8')).toMatch(/waiting: no manager has published/);
    expect(readLabState(LAB_DIR)).toBeUndefined();

    const recorded = readResources(LAB_DIR)!.processes;
    await labDown({ labDir: LAB_DIR });
    await expectNothingLeft(recorded);
    expect(existsSync(`${LAB_DIR}/logs/h1-cloud-init-output.log`)).toBe(true);
  });
});
