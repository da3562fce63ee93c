import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import {
  addSwarmNodeCommands,
  HEREDOC_DELIMITER,
  NODE_SCRIPT_FILES,
  nodeEnvironment,
  packageRoot,
  readNodeScripts,
  shellQuote,
  USER_DATA_LIMIT_BYTES,
} from '../../lib/cluster/user-data';
import { SwarmError } from '../../lib/errors';
import { renderedUserData } from './helpers';

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
    const firstHeredoc = idx(/<<'EC2SWARM_EOF'$/);
    expect(signal).toBeGreaterThan(0);
    expect(signal).toBeLessThan(trap);
    expect(trap).toBeLessThan(firstExport);
    expect(firstExport).toBeLessThan(firstHeredoc);
    expect(lines[lines.length - 1]).toBe(`bash /opt/ec2-swarm/${role}.sh`);
  });

  test('each signal names its own resource: the manager instance, the worker group', () => {
    expect(ud.manager).toContain(`--resource ${ud.managerId} `);
    expect(ud.worker).toContain(`--resource ${ud.workerId} `);
  });

  test('exports the contract variables, single-quoted', () => {
    expect(ud.worker).toContain("export SWARM_CLUSTER='blue'\n");
    expect(ud.worker).toContain("export SWARM_PARAM_WORKER_TOKEN='/ec2-swarm/blue/worker-token'\n");
    expect(ud.worker).toContain("export SWARM_PARAM_MANAGER_TOKEN='/ec2-swarm/blue/manager-token'\n");
    expect(ud.worker).toContain("export SWARM_PARAM_MANAGER_ADDRESS='/ec2-swarm/blue/manager-address'\n");
    expect(ud.worker).toMatch(/\nexport SWARM_JOIN_TIMEOUT_S='\d+'\n/);
  });

  test.each(['manager', 'worker'] as const)('%s: the scripts are embedded byte-for-byte', (role) => {
    const files = role === 'worker' ? ['common.sh', 'worker.sh', 'leave-on-shutdown.sh'] : ['common.sh', 'manager.sh'];
    for (const file of files) {
      const m = new RegExp(`cat > /opt/ec2-swarm/${file.replace('.', '\\.')} <<'EC2SWARM_EOF'\\n([\\s\\S]*?)\\nEC2SWARM_EOF\\n`).exec(ud[role]);
      expect(m).not.toBeNull();
      expect(`${m![1]}\n`).toBe(readFileSync(path.join(ROOT, 'scripts/node', file), 'utf8'));
    }
    const others = role === 'manager' ? ['worker.sh', 'leave-on-shutdown.sh'] : ['manager.sh'];
    for (const other of others) expect(ud[role]).not.toContain(`/opt/ec2-swarm/${other}`);
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
    expect(u.render()).toContain("echo no-newline\nEC2SWARM_EOF\n");
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
    expect(() => nodeEnvironment('c', 0)).toThrow(/joinTimeoutSeconds/);
    expect(() => nodeEnvironment('c', 1.5)).toThrow(/joinTimeoutSeconds/);
    expect(nodeEnvironment('c', 60).SWARM_JOIN_TIMEOUT_S).toBe('60');
  });
});
