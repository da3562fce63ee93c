/**
 * The CLI's mapping from ops results to output and exit codes, with the ops API replaced by fakes (fast, no SDK).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { SwarmError } from '../../lib/errors';
import { type CliDeps, type LabApi, type OpsApi, runCli } from '../../lib/cli/program';
import type { Connection } from '../../lib/ops/connect';
import type { ServiceReplicaStatus, VerifyResult } from '../../lib/ops/types';

const COMPOSE = join(__dirname, '../fixtures/compose/minimal/docker-compose.yml');
const COMPOSE_TAG = join(__dirname, '../fixtures/compose/minimal/docker-compose.tag.yml');

const QUORUM_OF_ONE = { managers: 1, reachable: 1, quorum: 1, tolerates: 0, hasQuorum: true, leader: 'ip-10-0-0-1' };
const web: ServiceReplicaStatus = { name: 'demo_web', mode: 'replicated', desired: 6, running: 6 };
const shortWorker: ServiceReplicaStatus = { name: 'demo_worker', mode: 'replicated', desired: 3, running: 1, lastError: 'No such image: busybox:nope' };

function io(env: NodeJS.ProcessEnv = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  return { io: { stdout, stderr, env, cwd: process.cwd() }, out: () => out, err: () => err };
}

function fakeOps(overrides: Partial<OpsApi> = {}): OpsApi & { closed: jest.Mock; connectOpts: unknown[] } {
  const closed = jest.fn();
  const connectOpts: unknown[] = [];
  const conn = {
    target: 'aws',
    cluster: { name: 'demo', stackName: 'DemoStack', region: 'eu-west-1', managerInstanceIds: ['i-0123456789abcdef0'], parameterPrefix: '/ec2-swarm/demo' },
    close: closed,
  } as unknown as Connection;
  const converged: VerifyResult = { converged: true, elapsedSeconds: 3, services: [web] };
  return {
    closed,
    connectOpts,
    connect: async (o) => {
      connectOpts.push(o);
      return conn;
    },
    deploy: async () => ({ kind: 'stack', name: 'demo', services: ['demo_web'] }),
    verify: async () => converged,
    status: async () => ({
      nodes: [{ id: 'n1', hostname: 'ip-10-0-0-1', role: 'manager', status: 'Ready', availability: 'Active', leader: true, reachability: 'Reachable' }],
      managers: QUORUM_OF_ONE,
      services: [web],
    }),
    scale: async () => converged,
    teardown: async () => ({ complete: true, done: ['removed stack demo'], skipped: ['worker i-0abc: not in a swarm'], left: [] }),
    ...overrides,
  };
}

async function cli(args: string[], deps: CliDeps, env: NodeJS.ProcessEnv = {}) {
  const t = io(env);
  const code = await runCli(args, t.io, deps);
  return { code, stdout: t.out(), stderr: t.err() };
}

describe('exit codes and output', () => {
  test('verify converged → 0 and a table; the global options reach connect()', async () => {
    const ops = fakeOps();
    const r = await cli(['verify', '--outputs', 'out.json', '--stack', 'DemoStack', '--region', 'eu-west-1'], { loadOps: () => ops });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/demo_web.*replicated.*6.*6/);
    expect(r.stdout).toContain('converged');
    expect(ops.connectOpts[0]).toMatchObject({ target: 'aws', outputsFile: 'out.json', stack: 'DemoStack', region: 'eu-west-1' });
    expect(ops.closed).toHaveBeenCalled();
  });

  test('verify short → 1, naming the short service and its task error', async () => {
    const verify = jest.fn(async () => ({ converged: false, elapsedSeconds: 60, services: [web, shortWorker] }));
    const r = await cli(['verify', '--outputs', 'o.json', '--timeout', '60'], { loadOps: () => fakeOps({ verify }) });
    expect(r.code).toBe(1);
    expect(verify).toHaveBeenCalledWith(expect.anything(), { timeoutSeconds: 60 });
    expect(r.stdout).toContain('demo_worker: 1/3 running; last task error: No such image: busybox:nope');
  });

  test('--json: stdout is exactly one JSON document (also when the global flag comes after the command)', async () => {
    const r = await cli(['status', '--outputs', 'o.json', '--json'], { loadOps: () => fakeOps() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ nodes: [expect.objectContaining({ hostname: 'ip-10-0-0-1', leader: true, reachability: 'Reachable' })], managers: QUORUM_OF_ONE, services: [web] });
  });

  test('deploy --wait not converged → 1; options are passed through', async () => {
    const deploy = jest.fn(async () => ({ kind: 'stack' as const, name: 'demo', services: ['demo_web'], verify: { converged: false, elapsedSeconds: 5, services: [shortWorker] } }));
    const r = await cli(['deploy', '-f', COMPOSE, '--name', 'demo', '--wait', '--timeout', '5', '--resolve-image', 'never', '--outputs', 'o.json'], {
      loadOps: () => fakeOps({ deploy }),
    });
    expect(r.code).toBe(1);
    expect(deploy).toHaveBeenCalledWith(expect.anything(), { file: COMPOSE, name: 'demo', wait: true, timeoutSeconds: 5, resolveImage: 'never', env: {} });
  });

  test('deploy: -f repeats (merged in order) and --env-file is passed through', async () => {
    const deploy = jest.fn(async () => ({ kind: 'stack' as const, name: 'demo', services: ['demo_web'] }));
    const envFile = join(__dirname, '../fixtures/compose/minimal/tag.env');
    const r = await cli(['deploy', '-f', COMPOSE, '-f', COMPOSE_TAG, '--env-file', envFile, '--outputs', 'o.json'], { loadOps: () => fakeOps({ deploy }) });
    expect(r.code).toBe(0);
    expect(deploy).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ file: COMPOSE, files: [COMPOSE, COMPOSE_TAG], envFile }));
  });

  test.each([
    ['a schema error', [join(__dirname, '../fixtures/compose/broken/docker-compose.yml')], /services\.web\.deploy\.replicas: must be an integer/],
    ['a missing required variable', [COMPOSE, COMPOSE_TAG], /services\.web\.image: required variable TAG is missing or empty: set TAG/],
  ])('deploy with %s in the compose project → 2 before connecting', async (_what, files, message) => {
    const connect = jest.fn();
    const r = await cli(['deploy', ...files.flatMap((f) => ['-f', f]), '--outputs', 'o.json'], { loadOps: () => fakeOps({ connect }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(connect).not.toHaveBeenCalled();
  });

  test('deploy of a file that does not exist → 2 before connecting', async () => {
    const connect = jest.fn();
    const r = await cli(['deploy', '-f', '/nope/compose.yml', '--outputs', 'o.json'], { loadOps: () => fakeOps({ connect }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: -f /nope/compose.yml: no such file\n');
    expect(connect).not.toHaveBeenCalled();
  });

  test('scale passes exact targets and maps not converged → 1', async () => {
    const scale = jest.fn(async () => ({ converged: false, elapsedSeconds: 9, services: [shortWorker] }));
    const r = await cli(['scale', 'demo_web=0', 'demo_worker=3', '--outputs', 'o.json'], { loadOps: () => fakeOps({ scale }) });
    expect(r.code).toBe(1);
    expect(scale).toHaveBeenCalledWith(expect.anything(), { targets: { demo_web: 0, demo_worker: 3 }, timeoutSeconds: 300 });
  });

  test.each([
    ['user', 2, SwarmError.user('X', 'bad input')],
    ['cluster', 1, SwarmError.cluster('X', 'not as asked')],
    ['environment', 3, SwarmError.environment('X', 'no network')],
    ['unexpected', 3, new TypeError('something unexpected')],
  ])('%s error → exit %i, "error: <message>", no stack trace', async (_fault, code, thrown) => {
    const r = await cli(['status', '--outputs', 'o.json'], { loadOps: () => fakeOps({ status: async () => Promise.reject(thrown) }) });
    expect(r.code).toBe(code);
    expect(r.stderr).toBe(`error: ${(thrown as Error).message}\n`);
    expect(r.stdout).toBe('');
  });

  test('a join token inside an error message (e.g. a failed command\'s output) is redacted', async () => {
    const token = 'SWMTKN-\x31-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx';
    const r = await cli(['teardown', '--outputs', 'o.json', '--json'], {
      loadOps: () => fakeOps({ teardown: async () => Promise.reject(SwarmError.cluster('COMMAND_FAILED', `leave failed:\n${token}`)) }),
    });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).not.toContain('3pu6hszjas19');
    expect(r.stderr).toContain('SWMTKN-<redacted>');
  });
});

describe('teardown exit codes: 0 only when done', () => {
  const incomplete = (outcome: 'unreachable' | 'incomplete') => async () => ({ complete: false, outcome, done: [], skipped: [], left: ['manager i-0123456789abcdef0: unreachable (no route)'] });

  test('a manager that could not be reached → 3, and --destroy does not run', async () => {
    const runProcess = jest.fn(async () => 0);
    const r = await cli(['teardown', '--destroy', '--outputs', 'o.json'], { loadOps: () => fakeOps({ teardown: incomplete('unreachable') }), runProcess });
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('left: manager i-0123456789abcdef0: unreachable (no route)');
    expect(r.stdout).toContain('teardown NOT complete');
    expect(runProcess).not.toHaveBeenCalled();
  });

  test('something answered but is not gone → 1; --force reaches the ops call', async () => {
    const teardown = jest.fn(incomplete('incomplete'));
    const r = await cli(['teardown', '--force', '--outputs', 'o.json', '--json'], { loadOps: () => fakeOps({ teardown }) });
    expect(r.code).toBe(1);
    expect(teardown).toHaveBeenCalledWith(expect.anything(), expect.objectContaining({ force: true }));
    expect(JSON.parse(r.stdout)).toMatchObject({ complete: false, outcome: 'incomplete' });
  });

  test('each line printed once: nothing of the result on stderr', async () => {
    const r = await cli(['teardown', '--outputs', 'o.json'], { loadOps: () => fakeOps() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('done: removed stack demo\nskipped: worker i-0abc: not in a swarm\n');
    expect(r.stderr).not.toContain('removed stack demo');
  });
});

describe('teardown --destroy', () => {
  test('runs `npx cdk destroy --force <stack>` after the teardown, says so on stderr, keeps stdout for the result', async () => {
    const runProcess = jest.fn(async () => 0);
    const r = await cli(['teardown', '--destroy', '--outputs', 'o.json', '--json'], { loadOps: () => fakeOps(), runProcess });
    expect(r.code).toBe(0);
    expect(runProcess).toHaveBeenCalledWith('npx', ['cdk', 'destroy', '--force', 'DemoStack'], 3600, expect.anything());
    expect(r.stderr).toContain('running: npx cdk destroy --force DemoStack');
    expect(JSON.parse(r.stdout)).toEqual({ complete: true, done: ['removed stack demo'], skipped: ['worker i-0abc: not in a swarm'], left: [], destroyedStack: 'DemoStack' });
  });

  test('cdk destroy failing → 3', async () => {
    const r = await cli(['teardown', '--destroy', '--outputs', 'o.json'], { loadOps: () => fakeOps(), runProcess: async () => 1 });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: npx cdk destroy --force DemoStack exited with 1');
  });

  test('--destroy on the lab is a usage error, and nothing is torn down', async () => {
    const teardown = jest.fn();
    const r = await cli(['teardown', '--destroy', '--target', 'lab'], { loadOps: () => fakeOps({ teardown }) });
    expect(r.code).toBe(2);
    expect(teardown).not.toHaveBeenCalled();
  });

  test('without --destroy, no process is run', async () => {
    const runProcess = jest.fn(async () => 0);
    const r = await cli(['teardown', '--outputs', 'o.json'], { loadOps: () => fakeOps(), runProcess });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('done: removed stack demo\nskipped: worker i-0abc: not in a swarm');
    expect(runProcess).not.toHaveBeenCalled();
  });
});

describe('--cluster NAME: which cluster of a stack', () => {
  const withOthers = (others: string[]) => {
    const connectOpts: unknown[] = [];
    const ops = fakeOps();
    return Object.assign(ops, {
      connectOpts,
      connect: async (o: unknown) => {
        connectOpts.push(o);
        const conn = await fakeOps().connect(o as never);
        return { ...conn, cluster: { ...conn.cluster, name: 'blue', stackName: 'Platform', otherClustersInStack: others }, close: ops.closed } as unknown as Connection;
      },
    });
  };

  test.each([
    [['status']],
    [['verify']],
    [['scale', 'demo_web=2']],
    [['deploy', '-f', COMPOSE]],
    [['teardown']],
    [['rotate-tokens']],
    [['logs', 'demo_web']],
  ])('%j --cluster blue reaches connect()', async (args) => {
    const ops = withOthers(['green']);
    ops.rotateTokens = async () => ({ rotated: true, instanceId: 'i-0123456789abcdef0', leader: true, parameters: [], managers: QUORUM_OF_ONE }) as never;
    ops.logs = async () => ({ text: '', truncated: false, totalBytes: 0 }) as never;
    const r = await cli([...args, '--stack', 'Platform', '--cluster', 'blue', '--region', 'eu-west-1'], { loadOps: () => ops });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(ops.connectOpts[0]).toMatchObject({ stack: 'Platform', cluster: 'blue', region: 'eu-west-1' });
  });

  test('a --cluster value that cannot name a cluster → 2 before anything is contacted', async () => {
    const connect = jest.fn();
    const r = await cli(['status', '--stack', 'Platform', '--cluster', 'blue;reboot'], { loadOps: () => fakeOps({ connect }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--cluster "blue;reboot" is neither a cluster name');
    expect(connect).not.toHaveBeenCalled();
  });

  test('teardown --destroy of a cluster whose stack holds others → 2, nothing torn down or destroyed', async () => {
    const ops = withOthers(['green']);
    const teardown = jest.fn(ops.teardown);
    ops.teardown = teardown;
    const runProcess = jest.fn(async () => 0);
    const r = await cli(['teardown', '--destroy', '--stack', 'Platform', '--cluster', 'blue', '--region', 'eu-west-1'], { loadOps: () => ops, runProcess });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--destroy would delete stack Platform, which also holds cluster green');
    expect(teardown).not.toHaveBeenCalled();
    expect(runProcess).not.toHaveBeenCalled();
    // Without --destroy the cluster's own teardown runs.
    expect((await cli(['teardown', '--stack', 'Platform', '--cluster', 'blue', '--region', 'eu-west-1'], { loadOps: () => ops, runProcess })).code).toBe(0);
    expect(teardown).toHaveBeenCalledTimes(1);
  });

  describe('with the real ops module and an outputs file of two clusters (no AWS: the errors come first)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-cli-cluster-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const outputs = join(dir, 'out.json');
    const cluster = (p: string, name: string) => ({ [`${p}ClusterName`]: name, [`${p}ParameterPrefix`]: `/ec2-swarm/${name}`, [`${p}Region`]: 'eu-west-1', [`${p}ManagerGroupName`]: `ec2-swarm-${name}-managers` });
    writeFileSync(outputs, JSON.stringify({ Platform: { ...cluster('Blue', 'blue'), ...cluster('Green', 'green') } }));

    test('no --cluster → 2 naming the clusters and the flag', async () => {
      const r = await cli(['status', '--outputs', outputs, '--json'], {});
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error: outputs file ${outputs} holds 2 clusters: blue (outputs BlueClusterName, stack Platform), green (outputs GreenClusterName, stack Platform); choose one with --cluster NAME`);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'CLUSTER_AMBIGUOUS', exitCode: 2 } });
    });

    test('--cluster naming none → 2 listing the ones there', async () => {
      const r = await cli(['verify', '--outputs', outputs, '--cluster', 'red'], {});
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('has no cluster "red" (clusters in it: blue (outputs BlueClusterName, stack Platform), green (outputs GreenClusterName, stack Platform))');
    });
  });
});

describe('lab', () => {
  test('lab up passes validated counts to lib/lab/cli', async () => {
    const up = jest.fn(async () => ({ hosts: 3 }));
    const r = await cli(['lab', 'up', '--workers', '2'], { loadLab: () => ({ up }) as LabApi });
    expect(r.code).toBe(0);
    expect(up).toHaveBeenCalledWith(expect.objectContaining({ workers: 2, managers: 1, json: false }));
  });

  test('bad counts → 2 before the lab is touched', async () => {
    const loadLab = jest.fn();
    expect((await cli(['lab', 'up', '--workers', 'many'], { loadLab })).code).toBe(2);
    expect((await cli(['lab', 'up', '--managers', '2'], { loadLab })).code).toBe(2);
    expect((await cli(['lab', 'up', '--managers', '9'], { loadLab })).code).toBe(2);
    expect(loadLab).not.toHaveBeenCalled();
  });

  test('lab up --managers 3 is passed on (1, 3, 5 or 7)', async () => {
    const up = jest.fn(async () => ({ hosts: 5 }));
    expect((await cli(['lab', 'up', '--managers', '3', '--workers', '2'], { loadLab: () => ({ up }) as LabApi })).code).toBe(0);
    expect(up).toHaveBeenCalledWith(expect.objectContaining({ workers: 2, managers: 3 }));
  });

  test('lab up --with-registry takes the registry password from the environment only, and never prints it', async () => {
    const loadLab = jest.fn();
    const missing = await cli(['lab', 'up', '--with-registry'], { loadLab });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--with-registry needs EC2_SWARM_LAB_REGISTRY_PASSWORD');
    expect((await cli(['lab', 'up', '--with-registry'], { loadLab }, { EC2_SWARM_LAB_REGISTRY_PASSWORD: 'short' })).code).toBe(2);
    expect(loadLab).not.toHaveBeenCalled();
    const up = jest.fn(async () => ({ registry: { address: '192.168.240.1:5000', user: 'lab' } }));
    const password = 'a-long-lab-registry-password';
    const r = await cli(['lab', 'up', '--with-registry', '--workers', '1'], { loadLab: () => ({ up }) as LabApi }, { EC2_SWARM_LAB_REGISTRY_PASSWORD: password });
    expect(r.code).toBe(0);
    expect(up).toHaveBeenCalledWith(expect.objectContaining({ workers: 1, registryPassword: password }));
    expect(r.stdout + r.stderr).not.toContain(password);
    // Without the option nothing about a registry is passed.
    const plain = jest.fn(async () => ({}));
    await cli(['lab', 'up'], { loadLab: () => ({ up: plain }) as LabApi }, { EC2_SWARM_LAB_REGISTRY_PASSWORD: password });
    expect(plain).toHaveBeenCalledWith(expect.not.objectContaining({ registryPassword: expect.anything() }));
  });

  test('lab missing from the installation → 3 "lab not available"', async () => {
    const r = await cli(['lab', 'down'], {
      loadLab: () => {
        throw SwarmError.environment('LAB_UNAVAILABLE', 'lab not available: this installation has no lib/lab/cli');
      },
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: lab not available');
  });
});

describe('help texts', () => {
  test.each(['status', 'deploy', 'verify', 'scale', 'teardown', 'lab', 'lab up', 'lab down'])('%s --help is complete, with examples', async (cmd) => {
    const r = await cli([...cmd.split(' '), '--help'], { loadOps: () => fakeOps() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: ec2-swarm ${cmd}`);
    expect(r.stdout).toContain('Examples:');
  });

  test('deploy --help documents every option', async () => {
    const r = await cli(['deploy', '--help'], { loadOps: () => fakeOps() });
    for (const o of ['-f, --file', '--name', '--wait', '--timeout', '--resolve-image', 'always', 'changed', 'never']) expect(r.stdout).toContain(o);
  });
});

describe('usage errors exit 2 and change nothing', () => {
  test.each([
    [['status', '--bogus'], "unknown option '--bogus'"],
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['status', '--target', 'gcp'], 'Allowed choices are aws, lab'],
    [['scale', 'web;reboot=3'], '"web;reboot" is not a Docker service name'],
    [['scale', 'web=10001'], 'replicas must be from 0 to 10000'],
    [['scale', 'web=-1'], '"web=-1" is not SERVICE=N'],
    [['scale', 'web=three'], 'is not SERVICE=N'],
    [['verify', '--timeout', '0'], '--timeout must be a whole number of seconds'],
    [['deploy'], "required option '-f, --file <file>' not specified"],
    [['status', '--cluster'], "option '--cluster <name>' argument missing"],
  ])('%j → exit 2: %s', async (args, message) => {
    const connect = jest.fn();
    const r = await cli(args, { loadOps: () => fakeOps({ connect }) });
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(connect).not.toHaveBeenCalled();
  });
});

describe('--help states the guarantees scripts rely on', () => {
  test.each([
    [[], /Every command ends within its --timeout plus a 10 s margin;\s+the wait for the SSM agent is part of it/],
    [[], /2  usage or configuration error, or input Docker rejects; nothing was changed, nothing contacted/],
    [['verify'], /tasks of the current spec on Ready nodes[\s\S]*update monitor[\s\S]*crash loop/],
    [['deploy'], /Input is checked before anything is contacted[\s\S]*begun and\s+finished/],
    [['teardown'], /Done means observed[\s\S]*3 a manager, worker or AWS could not be reached/],
  ])('%j --help', async (cmd, text) => {
    const r = await cli([...(cmd as string[]), '--help'], { loadOps: () => fakeOps() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(text as RegExp);
  });
});
