/**
 * The CLI as a user runs it (`npx tsx bin/ec2-swarm.ts …`): help, exit codes, which modules start-up loads, and a
 * full run through the real SSM client against a loopback SSM endpoint (the `--target lab` path). A process costs
 * ~1.5–2.5 CPU-s: three runs in their own process prove what only a process shows (bin/ec2-swarm.ts's exit code
 * and streams, the modules it loads); the other cases run the same runCli with the real ops modules in-process.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli as runCliInProcess } from '../../lib/cli/program';
import { fakeSsm, labAt, MANAGER, OUTPUTS, REPO, type Run, runCli, tempDir } from './helpers';

/** bin/ec2-swarm.ts's work without its process: the real ops modules, the process's environment plus `env`. */
async function inProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await runCliInProcess(args, { stdout, stderr, env: { ...process.env, AWS_REGION: '', AWS_PROFILE: '', ...env }, cwd: REPO });
  return { code, stdout: out, stderr: err };
}

const TOKEN = 'SWMTKN-\x31-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx';

/** Preload that records which @aws-sdk files the CLI process (not npx, not tsx's launcher) required. */
function sdkLoadProbe(): { env: NodeJS.ProcessEnv; loaded: () => string[] } {
  const dir = tempDir('ec2-swarm-loadprobe-');
  const hook = join(dir, 'hook.js');
  writeFileSync(
    hook,
    `process.on('exit', () => {
  if (!/ec2-swarm\\.ts$/.test(process.argv[1] || '')) return;
  const sdk = Object.keys(require.cache).filter((k) => k.includes('/node_modules/@aws-sdk/'));
  require('fs').writeFileSync(${JSON.stringify(dir)} + '/loaded-' + process.pid + '.json', JSON.stringify(sdk));
});\n`,
  );
  return {
    env: { NODE_OPTIONS: `--require ${hook}` },
    loaded: () => {
      const reports = readdirSync(dir).filter((f) => f.startsWith('loaded-'));
      expect(reports).toHaveLength(1); // the probe saw the CLI process itself
      return JSON.parse(readFileSync(join(dir, reports[0]), 'utf8'));
    },
  };
}

describe('help', () => {
  test('--help (run exactly as documented: npx tsx) lists every command, the global options, exit codes and examples, and loads no AWS SDK', async () => {
    const probe = sdkLoadProbe();
    const r = await runCli(['--help'], probe.env, undefined, 'npx');
    expect(r.code).toBe(0);
    for (const word of ['status', 'deploy', 'verify', 'scale', 'teardown', 'lab', '--json', '--stack', '--outputs', '--target', '--region', 'Exit codes:', 'Examples:']) {
      expect(r.stdout).toContain(word);
    }
    expect(probe.loaded()).toEqual([]);
  });
});

// Every usage error and every command's --help text: cli-inprocess.test.ts (same runCli, no process each; among
// them `status --bogus`, the unknown option this file ran as a process too: the process below proves exit 2, the
// message on stderr and nothing on stdout for a usage error).
describe('usage errors exit 2 and change nothing', () => {
  test('a bad scale argument: exit 2 from the process, the message on stderr, nothing on stdout, before any AWS call (the SDK is never loaded)', async () => {
    const probe = sdkLoadProbe();
    const r = await runCli(['scale', 'web=3', "x'$(id)'=1"], probe.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a Docker service name');
    expect(r.stdout).toBe('');
    expect(probe.loaded()).toEqual([]);
  });

  test('a missing outputs file → exit 2 naming the file, and no stack trace', async () => {
    const r = await inProcess(['status', '--outputs', '/nonexistent/out.json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: outputs file /nonexistent/out.json does not exist');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('--target lab', () => {
  test('lab not running → exit 3 with what to do', async () => {
    const r = await inProcess(['status', '--target', 'lab'], { EC2_SWARM_LAB_DIR: tempDir('ec2-swarm-nolab-') });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('error: lab is not running: run `ec2-swarm lab up`');
  });

  test('a command goes through the real SSM client to the lab endpoint; a token in its output never reaches ours', async () => {
    const ssm = await fakeSsm((target) => {
      switch (target) {
        case 'DescribeInstanceInformation':
          return { body: { InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'Online' }] } };
        case 'SendCommand':
          return { body: { Command: { CommandId: 'cmd-1' } } };
        case 'GetCommandInvocation':
          return {
            body: {
              Status: 'Failed',
              StatusDetails: 'Failed',
              ResponseCode: 1,
              StandardOutputContent: `leaked ${TOKEN}\n`,
              StandardErrorContent: `docker: something broke near ${TOKEN}\n`,
            },
          };
        default:
          return { status: 400, body: { __type: 'InvalidAction', message: target } };
      }
    });
    const probe = sdkLoadProbe();
    try {
      const r = await runCli(['status', '--target', 'lab'], { ...labAt(ssm.endpoint), ...probe.env });
      expect(r.code).toBe(3); // the state query failed on the manager: an environment error
      expect(r.stderr).toMatch(/^error: .*failed on i-0123456789abcdef0/m);
      expect(r.stdout + r.stderr).not.toContain('SWMTKN-\x31-3pu6');
      // The runner waited for the agent, sent one AWS-RunShellScript, and polled it.
      expect(ssm.calls.map((c) => c.target)).toEqual(['DescribeInstanceInformation', 'SendCommand', 'GetCommandInvocation']);
      const send = ssm.calls[1].body as { DocumentName: string; InstanceIds: string[]; Parameters: { commands: string[] } };
      expect(send.DocumentName).toBe('AWS-RunShellScript');
      expect(send.InstanceIds).toEqual([MANAGER]);
      expect(JSON.stringify(send.Parameters)).not.toContain('SWMTKN');
      // Positive control for the load probe used by the --help test.
      expect(probe.loaded().some((f) => f.includes('@aws-sdk/client-ssm'))).toBe(true);
    } finally {
      await ssm.close();
    }
  });

  test('--json on an error: stdout holds exactly one JSON document with the error', async () => {
    const ssm = await fakeSsm((target) =>
      target === 'DescribeInstanceInformation'
        ? { body: { InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'Online' }] } }
        : target === 'SendCommand'
          ? { body: { Command: { CommandId: 'cmd-2' } } }
          : { body: { Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut', ResponseCode: -1, StandardErrorContent: `stuck ${TOKEN}` } },
    );
    try {
      const r = await inProcess(['status', '--target', 'lab', '--json'], labAt(ssm.endpoint));
      expect(r.code).toBe(3);
      const doc = JSON.parse(r.stdout);
      expect(doc.error).toMatchObject({ code: 'SSM_COMMAND_TIMED_OUT', fault: 'environment', exitCode: 3 });
      expect(r.stdout + r.stderr).not.toContain('SWMTKN-\x31-3pu6');
    } finally {
      await ssm.close();
    }
  });
});

test('the outputs fixture matches the contract keys', () => {
  expect(Object.keys(OUTPUTS.LabStack).sort()).toEqual(['SwarmClusterName', 'SwarmManagerInstanceId', 'SwarmParameterPrefix', 'SwarmRegion', 'SwarmWorkerGroupName']);
});
