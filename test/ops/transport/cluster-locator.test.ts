import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { SwarmError } from '../../../lib/errors';
import { clusterFromOutputsFile, locateCluster } from '../../../lib/ops/cluster-locator';

const cfn = mockClient(CloudFormationClient);
const dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-outputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = {
  SwarmClusterName: 'demo',
  SwarmManagerInstanceId: 'i-0123456789abcdef0',
  SwarmParameterPrefix: '/ec2-swarm/demo',
  SwarmWorkerGroupName: 'Demo-Workers-ABC',
  SwarmRegion: 'eu-west-1',
  SwarmSessionCommand: 'aws ssm start-session --target i-0123456789abcdef0',
};

function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

function userError(fn: () => unknown): SwarmError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    expect((e as SwarmError).exitCode).toBe(2);
    return e as SwarmError;
  }
  throw new Error('expected a user error');
}

beforeEach(() => cfn.reset());

describe('outputs file (cdk deploy --outputs-file)', () => {
  test('one cluster stack, among other stacks, gives the cluster', () => {
    const p = file('good.json', { DemoStack: GOOD, SomethingElse: { BucketName: 'b' } });
    expect(clusterFromOutputsFile(p)).toEqual({
      name: 'demo',
      stackName: 'DemoStack',
      region: 'eu-west-1',
      managerInstanceIds: ['i-0123456789abcdef0'],
      parameterPrefix: '/ec2-swarm/demo',
      workerGroupName: 'Demo-Workers-ABC',
    });
  });

  test('--region wins over the stack output', () => {
    const p = file('good2.json', { DemoStack: GOOD });
    expect(clusterFromOutputsFile(p, undefined, 'us-east-2').region).toBe('us-east-2');
  });

  test('a missing key is a user error naming the file, the stack and the key', () => {
    const { SwarmParameterPrefix: _, ...rest } = GOOD;
    const p = file('missing.json', { DemoStack: rest });
    const err = userError(() => clusterFromOutputsFile(p));
    expect(err.message).toContain(p);
    expect(err.message).toContain('DemoStack');
    expect(err.message).toContain('SwarmParameterPrefix');
  });

  test("the construct's outputs (manager Auto Scaling group, no instance id) give the group and no instance ids", () => {
    const { SwarmManagerInstanceId: _, ...rest } = GOOD;
    const p = file('asg.json', { DemoStack: { ...rest, SwarmManagerGroupName: 'ec2-swarm-demo-managers' } });
    expect(clusterFromOutputsFile(p)).toMatchObject({ name: 'demo', managerInstanceIds: [], managerGroupName: 'ec2-swarm-demo-managers' });
  });

  test('two cluster stacks need --stack, which then picks one', () => {
    const p = file('two.json', { Blue: GOOD, Green: { ...GOOD, SwarmClusterName: 'green', SwarmManagerInstanceId: 'i-0fedcba9876543210' } });
    const err = userError(() => clusterFromOutputsFile(p));
    expect(err.message).toMatch(/2 cluster stacks \(Blue, Green\).*--stack/);
    expect(clusterFromOutputsFile(p, 'Green')).toMatchObject({ name: 'green', stackName: 'Green', managerInstanceIds: ['i-0fedcba9876543210'] });
    expect(userError(() => clusterFromOutputsFile(p, 'Red')).message).toContain('has no stack "Red"');
  });

  test('missing file, bad JSON and no cluster stack are user errors naming the file', () => {
    const missing = join(dir, 'nope.json');
    expect(userError(() => clusterFromOutputsFile(missing)).message).toBe(
      `outputs file ${missing} does not exist (write it with: cdk deploy --outputs-file ${missing})`,
    );
    const bad = file('bad.json', '{ "DemoStack": ');
    expect(userError(() => clusterFromOutputsFile(bad)).message).toContain(`outputs file ${bad} is not valid JSON`);
    const none = file('none.json', { Other: { Bucket: 'x' } });
    expect(userError(() => clusterFromOutputsFile(none)).message).toContain('no stack has the output SwarmClusterName');
  });

  test('malformed values are rejected before anything reaches AWS or a shell', () => {
    const p = file('evil.json', { S: { ...GOOD, SwarmManagerInstanceId: 'i-123; rm -rf /' } });
    expect(userError(() => clusterFromOutputsFile(p)).message).toContain('SwarmManagerInstanceId');
    const q = file('evil2.json', { S: { ...GOOD, SwarmClusterName: "demo'$(id)" } });
    expect(userError(() => clusterFromOutputsFile(q)).message).toContain('SwarmClusterName');
  });
});

describe('--stack NAME (CloudFormation outputs)', () => {
  test('reads the outputs of the stack in the given region', async () => {
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'DemoStack', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: Object.entries(GOOD).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })) }],
    });
    const c = await locateCluster({ stack: 'DemoStack', region: 'eu-west-1' });
    expect(c).toMatchObject({ name: 'demo', stackName: 'DemoStack', managerInstanceIds: ['i-0123456789abcdef0'] });
    expect(cfn).toHaveReceivedCommandWith(DescribeStacksCommand, { StackName: 'DemoStack' });
  });

  test('a stack that does not exist is a user error', async () => {
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));
    await expect(locateCluster({ stack: 'Nope', region: 'eu-west-1' })).rejects.toMatchObject({ code: 'STACK_NOT_FOUND', fault: 'user' });
  });

  test('neither --outputs nor --stack, a bad stack name, or no region: user errors, no AWS call', async () => {
    await expect(locateCluster({})).rejects.toMatchObject({ fault: 'user', message: expect.stringContaining('--outputs FILE') });
    await expect(locateCluster({ stack: 'x;y', region: 'eu-west-1' })).rejects.toMatchObject({ fault: 'user', code: 'STACK_NAME_INVALID' });
    await expect(locateCluster({ stack: 'Demo' })).rejects.toMatchObject({ fault: 'user', code: 'REGION_UNKNOWN' });
    expect(cfn).not.toHaveReceivedCommand(DescribeStacksCommand);
  });
});
