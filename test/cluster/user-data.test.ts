/**
 * The nodes' user-data: rendered as EC2 receives it, the scripts it embeds, the values that reach the shell, the
 * commands an app adds before and after the join, and the 16 KB limit. One test file (aws-cdk-lib loads once per
 * file, ~1 CPU-s).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Aws, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { estimatedBytes } from '../../lib/cluster/node-user-data';
import { stripComments } from '../../lib/cluster/script-archive';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import {
  addSwarmNodeCommands,
  HEREDOC_DELIMITER,
  NODE_SCRIPT_FILES,
  nodeEnvironment,
  packageRoot,
  PER_BOOT_SCRIPT,
  readNodeScripts,
  ROLE_SCRIPT_FILES,
  shellQuote,
  USER_DATA_LIMIT_BYTES,
} from '../../lib/cluster/user-data';
import { SwarmError } from '../../lib/errors';
import { ENV, groupOf, renderedUserData, text, unpackedScripts } from './helpers';

const ROOT = path.resolve(__dirname, '../..');

describe('rendered user-data', () => {
  const ud = renderedUserData({ name: 'blue' });

  test.each(['manager', 'worker'] as const)('%s: under the 16 KB EC2 limit, with room to spare', (role) => {
    const bytes = Buffer.byteLength(ud[role], 'utf8');
    expect(bytes).toBeLessThan(USER_DATA_LIMIT_BYTES);
    // eslint-disable-next-line no-console
    if (bytes > USER_DATA_LIMIT_BYTES * 0.8) console.warn(`${role} user-data is ${bytes} bytes: close to the limit`);
  });

  test.each(['manager', 'worker'] as const)('%s: signal trap, exports, scripts, then the role script (contract order)', (role) => {
    const lines = ud[role].split('\n');
    expect(lines[0]).toBe('#!/bin/bash');
    const idx = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const trap = idx(/^trap exitTrap EXIT$/);
    const signal = idx(/^\/opt\/aws\/bin\/cfn-signal --stack ec2-swarm-blue --resource \S+ --region eu-west-1 -e \$exitCode/);
    const firstExport = idx(/^export SWARM_/);
    const unpack = idx(/^base64 -d <<'EC2SWARM_EOF' \| gzip -dc \| bash$/);
    expect(signal).toBeGreaterThan(0);
    expect(signal).toBeLessThan(trap);
    expect(trap).toBeLessThan(firstExport);
    expect(firstExport).toBeLessThan(unpack);
    expect(lines[lines.length - 1]).toBe(`bash /opt/ec2-swarm/${role}.sh`);
  });

  test('each signal names its own resource: the manager group, the worker group', () => {
    expect(ud.manager).toContain(`--resource ${ud.managerId} `);
    expect(ud.worker).toContain(`--resource ${ud.workerId} `);
  });

  test.each(['manager', 'worker'] as const)('%s: exports the node environment of the contract, single-quoted', (role) => {
    const env = Object.fromEntries([...ud[role].matchAll(/^export (SWARM_[A-Z_]+)='(.*)'$/gm)].map((m) => [m[1], m[2]]));
    expect(env).toMatchObject({
      SWARM_CLUSTER: 'blue',
      SWARM_PARAM_PREFIX: '/ec2-swarm/blue',
      SWARM_ROLE: role,
      SWARM_ADDR_POOL: '172.20.0.0/16',
      SWARM_ADDR_POOL_MASK: '24',
      SWARM_JOIN_TIMEOUT_S: role === 'manager' ? '600' : '1200',
      SWARM_MANAGER_GROUP: 'ec2-swarm-blue-managers',
      SWARM_WORKER_GROUP: 'ec2-swarm-blue-workers',
      SWARM_LIFECYCLE_HOOK: 'ec2-swarm-drain',
    });
    expect(env.SWARM_KMS_KEY_ID).toMatch(/^\$\{\w+\.Arn\}$/);
    // The credential helper's registry: the stack's own account and region (resolved by CloudFormation).
    expect(env.SWARM_ECR_REGISTRY).toBe('${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}');
  });

  test.each(['manager', 'worker'] as const)('%s: the scripts in scripts/node are embedded, comments dropped, nothing else changed', (role) => {
    const files = [...ROLE_SCRIPT_FILES[role]].filter((f) => existsSync(path.join(ROOT, 'scripts/node', f)));
    expect(files).toEqual(expect.arrayContaining(['common.sh', `${role}.sh`]));
    const embedded = unpackedScripts(ud[role]);
    expect(Object.keys(embedded).sort()).toEqual(files.map((f) => `/opt/ec2-swarm/${f}`).sort());
    for (const file of files) {
      const original = readFileSync(path.join(ROOT, 'scripts/node', file), 'utf8');
      expect(embedded[`/opt/ec2-swarm/${file}`]).toBe(stripComments(original).replace(/\n?$/, '\n'));
      // Every non-comment line survives, in order.
      const code = original.split('\n').filter((l) => !/^\s*#/.test(l));
      expect(embedded[`/opt/ec2-swarm/${file}`].split('\n').filter((l) => !/^\s*#/.test(l)).slice(0, code.length)).toEqual(code);
      execFileSync('bash', ['-n'], { input: embedded[`/opt/ec2-swarm/${file}`] });
    }
    expect(ud[role]).toContain(`chmod 0700 ${files.map((f) => `/opt/ec2-swarm/${f}`).join(' ')}\n`);
  });

  test.each(['manager', 'worker'] as const)('%s: bash parses it', (role) => {
    execFileSync('bash', ['-n'], { input: ud[role] });
  });
});

describe('script loading', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ud-'));
    for (const f of NODE_SCRIPT_FILES) writeFileSync(path.join(dir, f), `#!/bin/bash\necho ${f}\n`);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a script holding the heredoc delimiter line is refused (it would end the heredoc early)', () => {
    writeFileSync(path.join(dir, 'worker.sh'), `#!/bin/bash\ncat <<'X'\n${HEREDOC_DELIMITER}\nX\n`);
    expect(() => readNodeScripts(dir)).toThrow(/worker\.sh contains the heredoc delimiter/);
  });

  test('optional scripts (per-boot step, reconciler) are embedded when present and skipped when absent', () => {
    const render = () => {
      const u = ec2.UserData.forLinux();
      addSwarmNodeCommands(u, { role: 'manager', clusterName: 'c', scripts: readNodeScripts(dir) });
      return u.render();
    };
    expect(Object.keys(unpackedScripts(render())).sort()).toEqual(['/opt/ec2-swarm/boot.sh', '/opt/ec2-swarm/common.sh', '/opt/ec2-swarm/manager.sh', '/opt/ec2-swarm/reconcile.sh']);
    rmSync(path.join(dir, 'reconcile.sh'));
    rmSync(path.join(dir, PER_BOOT_SCRIPT));
    expect(Object.keys(unpackedScripts(render())).sort()).toEqual(['/opt/ec2-swarm/common.sh', '/opt/ec2-swarm/manager.sh']);
    expect(render()).toMatch(/bash \/opt\/ec2-swarm\/manager\.sh$/);
  });

  test('the same scripts give the same user-data (gzip carries no timestamp)', () => {
    const render = () => {
      const u = ec2.UserData.forLinux();
      addSwarmNodeCommands(u, { role: 'worker', clusterName: 'c', scripts: readNodeScripts(dir) });
      return u.render();
    };
    const first = render();
    expect(render()).toBe(first);
  });

  test('a missing script is an environment error naming the file', () => {
    rmSync(path.join(dir, 'common.sh'));
    let err: unknown;
    try {
      readNodeScripts(dir);
    } catch (e) {
      err = e;
    }
    expect((err as SwarmError).fault).toBe('environment');
    expect((err as SwarmError).message).toContain('common.sh');
  });

  test('a script without a final newline still closes its heredoc', () => {
    writeFileSync(path.join(dir, 'manager.sh'), '#!/bin/bash\necho no-newline');
    const u = ec2.UserData.forLinux();
    addSwarmNodeCommands(u, { role: 'manager', clusterName: 'c', scripts: readNodeScripts(dir) });
    expect(unpackedScripts(u.render())['/opt/ec2-swarm/manager.sh']).toBe('#!/bin/bash\necho no-newline\n');
  });

  test('the package root is found from lib/ and from dist/', () => {
    expect(packageRoot(path.join(ROOT, 'lib/cluster'))).toBe(ROOT);
    expect(packageRoot(path.join(ROOT, 'dist/lib/cluster'))).toBe(ROOT);
  });
});

describe('values reaching the shell', () => {
  test.each([["x'; rm -rf / #"], ['$(id)'], ['a b'], ['`id`'], ['']])('refuses %j', (bad) => {
    expect(() => shellQuote('SWARM_CLUSTER', bad)).toThrow(/SWARM_CLUSTER may hold only/);
  });

  test('quotes a valid value', () => {
    expect(shellQuote('X', '/ec2-swarm/a-b/worker-token')).toBe("'/ec2-swarm/a-b/worker-token'");
  });

  test('a bad cluster name never reaches user-data', () => {
    const u = ec2.UserData.forLinux();
    expect(() => addSwarmNodeCommands(u, { role: 'worker', clusterName: "a'b", scripts: readNodeScripts() })).toThrow(SwarmError);
  });

  test('join timeout must be a positive whole number', () => {
    expect(() => nodeEnvironment('c', { joinTimeoutSeconds: 0 })).toThrow(/joinTimeoutSeconds/);
    expect(() => nodeEnvironment('c', { joinTimeoutSeconds: 1.5 })).toThrow(/joinTimeoutSeconds/);
    expect(nodeEnvironment('c', { joinTimeoutSeconds: 60 }).SWARM_JOIN_TIMEOUT_S).toBe('60');
  });

  test('defaults without a construct (the node-script sandbox): empty key id means aws/ssm, the default pool', () => {
    const env = nodeEnvironment('c');
    expect(env).toMatchObject({ SWARM_CLUSTER: 'c', SWARM_PARAM_PREFIX: '/ec2-swarm/c', SWARM_KMS_KEY_ID: '', SWARM_ADDR_POOL: '172.20.0.0/16', SWARM_ADDR_POOL_MASK: '24' });
    expect(env.SWARM_ROLE).toBeUndefined();
  });

  test('a bad pool value never reaches user-data', () => {
    const u = ec2.UserData.forLinux();
    expect(() => addSwarmNodeCommands(u, { role: 'worker', clusterName: 'c', addressPool: '10.0.0.0/8; id', scripts: readNodeScripts() })).toThrow(/SWARM_ADDR_POOL may hold only/);
  });
});

function cluster(id = 'Swarm') {
  const stack = new Stack(new App({ context: packageCdkContext() }), 'Platform', { env: ENV });
  return { stack, cluster: new SwarmCluster(stack, id, { name: 'blue', workers: 1 }) };
}

function userDataOf(stack: Stack, role: 'manager' | 'worker'): string[] {
  const json = Template.fromStack(stack).toJSON();
  return text(groupOf(json, role).launchTemplate.Properties.LaunchTemplateData.UserData).split('\n');
}

describe('user-data before and after the join', () => {
  test('commands land around the role script, in the order added, on the nodes asked for', () => {
    const { stack, cluster: c } = cluster();
    c.addUserDataBeforeJoin('all', 'echo before-1', 'echo before-2');
    c.addUserDataAfterJoin('workers', 'echo after-workers');
    c.addUserDataBeforeJoin('managers', 'echo before-managers');
    const worker = userDataOf(stack, 'worker');
    const manager = userDataOf(stack, 'manager');
    const at = (lines: string[], line: string) => lines.indexOf(line);

    // Workers: unpacked scripts, then the "before" commands, the join, the "after" commands, nothing more.
    const join = at(worker, 'bash /opt/ec2-swarm/worker.sh');
    expect(join).toBeGreaterThan(0);
    expect(worker.slice(join - 2, join + 2)).toEqual(['echo before-1', 'echo before-2', 'bash /opt/ec2-swarm/worker.sh', 'echo after-workers']);
    expect(at(worker, 'echo before-managers')).toBe(-1);
    expect(worker[worker.length - 1]).toBe('echo after-workers');
    // After the exports and the unpacked scripts: the commands can use SWARM_* and the files in /opt/ec2-swarm.
    expect(at(worker, 'echo before-1')).toBeGreaterThan(worker.findIndex((l) => l.startsWith('chmod 0700 /opt/ec2-swarm/common.sh')));

    const mjoin = at(manager, 'bash /opt/ec2-swarm/manager.sh');
    expect(manager.slice(mjoin - 3, mjoin + 1)).toEqual(['echo before-1', 'echo before-2', 'echo before-managers', 'bash /opt/ec2-swarm/manager.sh']);
    expect(at(manager, 'echo after-workers')).toBe(-1);
    // Still inside the signal trap: a failing command is the node's failure.
    expect(at(manager, 'trap exitTrap EXIT')).toBeLessThan(at(manager, 'echo before-1'));
  });

  test('without additions the user-data is unchanged (no empty lines, the role script last)', () => {
    const { stack } = cluster();
    const worker = userDataOf(stack, 'worker');
    expect(worker[worker.length - 1]).toBe('bash /opt/ec2-swarm/worker.sh');
    expect(worker.filter((l) => l === '')).toEqual([]);
  });

  test('a bad target is refused by name', () => {
    const { cluster: c } = cluster();
    expect(() => c.addUserDataAfterJoin('nodes' as never, 'true')).toThrow(/nodes must be 'managers', 'workers' or 'all'[\s\S]*→ at addUserDataAfterJoin/);
  });
});

describe('the 16 KB EC2 user-data limit, checked at synth', () => {
  test('an addition that would pass the limit fails synthesis, naming the call that pushed it over', () => {
    const { stack, cluster: c } = cluster();
    c.addUserDataBeforeJoin('workers', 'echo small');
    c.addUserDataAfterJoin('workers', `cat > /etc/motd <<'EOF'\n${'x'.repeat(USER_DATA_LIMIT_BYTES)}\nEOF`);
    c.addUserDataAfterJoin('workers', 'echo after the big one');
    expect(() => Template.fromStack(stack)).toThrow(
      /Swarm\/Workers[\s\S]*the workers' user-data would be about \d+ bytes, over EC2's limit of 16384 \(before base64\): addUserDataAfterJoin\('workers', …\) \(call 2 on the workers\), \d+ bytes, pushed it over/,
    );
  });

  test('the managers are checked on their own: an addition for all names itself on each group it overflows', () => {
    const { stack, cluster: c } = cluster();
    c.addUserDataBeforeJoin('all', 'x'.repeat(USER_DATA_LIMIT_BYTES));
    let message = '';
    try {
      Template.fromStack(stack);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/the managers' user-data .*addUserDataBeforeJoin\('all', …\) \(call 1 on the managers\)/);
    expect(message).toMatch(/the workers' user-data .*addUserDataBeforeJoin\('all', …\) \(call 1 on the workers\)/);
  });

  test('additions that fit synthesize; commands added to the user-data directly count too', () => {
    const { stack, cluster: c } = cluster();
    const used = Buffer.byteLength(userDataOf(stack, 'worker').join('\n'), 'utf8');
    const room = USER_DATA_LIMIT_BYTES - used;
    expect(room).toBeGreaterThan(2000); // the scripts leave room for the app's commands
    c.addUserDataAfterJoin('workers', `: ${'x'.repeat(room - 1500)}`);
    expect(() => Template.fromStack(stack)).not.toThrow();

    const other = cluster();
    other.cluster.workerUserData.addCommands(`: ${'y'.repeat(USER_DATA_LIMIT_BYTES)}`);
    other.cluster.addUserDataAfterJoin('workers', 'echo fine');
    expect(() => Template.fromStack(other.stack)).toThrow(/the node scripts and commands added to the user-data directly already take \d+ bytes/);
  });

  test('tokens count at their longest plausible size, never less', () => {
    const stack = new Stack();
    expect(estimatedBytes(stack.resolve(`a${Aws.REGION}b`))).toBe(2 + 20);
    expect(estimatedBytes(stack.resolve(`${Aws.ACCOUNT_ID}`))).toBe(12);
    expect(estimatedBytes({ 'Fn::GetAtt': ['Key', 'Arn'] })).toBe(256);
    expect(estimatedBytes({ 'Fn::Join': ['--', ['ab', { Ref: 'AWS::Partition' }, 'c']] })).toBe(2 + 16 + 1 + 4);
    expect(estimatedBytes('€')).toBe(3); // bytes, not characters
  });
});
