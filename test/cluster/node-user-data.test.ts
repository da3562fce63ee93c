import { App, Aws, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { estimatedBytes } from '../../lib/cluster/node-user-data';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { USER_DATA_LIMIT_BYTES } from '../../lib/cluster/user-data';
import { ENV, groupOf, text } from './helpers';

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
