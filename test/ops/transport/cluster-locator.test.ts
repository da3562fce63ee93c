import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { SwarmError } from '../../../lib/errors';
import { clusterFromOutputs, clusterFromOutputsFile, clustersInOutputs, locateCluster } from '../../../lib/ops/cluster-locator';

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

  test('two cluster stacks need --stack or --cluster, either of which then picks one', () => {
    const p = file('two.json', { Blue: GOOD, Green: { ...GOOD, SwarmClusterName: 'green', SwarmManagerInstanceId: 'i-0fedcba9876543210' } });
    const err = userError(() => clusterFromOutputsFile(p));
    expect(err.code).toBe('CLUSTER_AMBIGUOUS');
    expect(err.message).toContain('holds 2 clusters: demo (outputs SwarmClusterName, stack Blue), green (outputs SwarmClusterName, stack Green)');
    expect(err.message).toMatch(/--cluster NAME .* or --stack NAME$/);
    expect(clusterFromOutputsFile(p, undefined, undefined, 'green')).toMatchObject({ name: 'green', stackName: 'Green' });
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
    const onlyName = file('only-name.json', { Other: { EcsClusterName: 'prod', Bucket: 'x' } });
    expect(userError(() => clusterFromOutputsFile(onlyName)).message).toContain('no ec2-swarm cluster stack');
  });

  test('malformed values are rejected before anything reaches AWS or a shell', () => {
    const p = file('evil.json', { S: { ...GOOD, SwarmManagerInstanceId: 'i-123; rm -rf /' } });
    expect(userError(() => clusterFromOutputsFile(p)).message).toContain('SwarmManagerInstanceId');
    const q = file('evil2.json', { S: { ...GOOD, SwarmClusterName: "demo'$(id)" } });
    expect(userError(() => clusterFromOutputsFile(q)).message).toContain('SwarmClusterName');
  });
});

/** Outputs of two SwarmCluster constructs in one stack: ids `Blue-Cluster` (prefix BlueCluster) and `Green`. */
const TWO = {
  BlueClusterClusterName: 'blue',
  BlueClusterParameterPrefix: '/ec2-swarm/blue',
  BlueClusterManagerGroupName: 'ec2-swarm-blue-managers',
  BlueClusterWorkerGroupName: 'ec2-swarm-blue-workers',
  BlueClusterRegion: 'eu-west-1',
  BlueClusterStagingBucket: 'platform-blue-staging',
  GreenClusterName: 'green',
  GreenParameterPrefix: '/ec2-swarm/green',
  GreenManagerGroupName: 'ec2-swarm-green-managers',
  GreenWorkerGroupName: 'ec2-swarm-green-workers',
  GreenRegion: 'eu-west-1',
  EcsClusterName: 'not-ours',
};

describe('--cluster NAME: several clusters in one stack', () => {
  test('each <P>ClusterName beside other construct outputs is a cluster; a lone EcsClusterName is not', () => {
    expect(clustersInOutputs(TWO)).toEqual([
      { prefix: 'BlueCluster', name: 'blue' },
      { prefix: 'Green', name: 'green' },
    ]);
  });

  test('picks by cluster name or by construct id, reading that cluster\'s own keys', () => {
    const p = file('platform.json', { Platform: TWO });
    const green = {
      name: 'green',
      stackName: 'Platform',
      region: 'eu-west-1',
      managerInstanceIds: [],
      parameterPrefix: '/ec2-swarm/green',
      managerGroupName: 'ec2-swarm-green-managers',
      workerGroupName: 'ec2-swarm-green-workers',
      otherClustersInStack: ['blue'],
    };
    expect(clusterFromOutputsFile(p, undefined, undefined, 'green')).toEqual(green);
    expect(clusterFromOutputsFile(p, 'Platform', undefined, 'Green')).toEqual(green);
    expect(clusterFromOutputsFile(p, undefined, undefined, 'BlueCluster')).toMatchObject({
      name: 'blue',
      parameterPrefix: '/ec2-swarm/blue',
      stagingBucket: 'platform-blue-staging',
      otherClustersInStack: ['green'],
    });
  });

  test('without --cluster: exit 2 naming the clusters found and the flag', () => {
    const err = userError(() => clusterFromOutputsFile(file('platform2.json', { Platform: TWO })));
    expect(err.code).toBe('CLUSTER_AMBIGUOUS');
    expect(err.message).toContain('holds 2 clusters: blue (outputs BlueClusterClusterName, stack Platform), green (outputs GreenClusterName, stack Platform); choose one with --cluster NAME');
    expect(err.message).not.toContain('--stack NAME');
  });

  test('a --cluster that names none: exit 2 listing the ones there', () => {
    const err = userError(() => clusterFromOutputsFile(file('platform3.json', { Platform: TWO }), undefined, undefined, 'red'));
    expect(err.code).toBe('CLUSTER_NOT_FOUND');
    expect(err.message).toContain('has no cluster "red" (clusters in it: blue (outputs BlueClusterClusterName, stack Platform), green (outputs GreenClusterName, stack Platform))');
  });

  test('one cluster under another construct id needs no --cluster', () => {
    const { GreenClusterName: _, GreenParameterPrefix: _p, GreenManagerGroupName: _m, GreenWorkerGroupName: _w, GreenRegion: _r, ...blueOnly } = TWO;
    expect(clusterFromOutputs(blueOnly, 'o.json', 'Platform')).toMatchObject({ name: 'blue', parameterPrefix: '/ec2-swarm/blue' });
    expect(clusterFromOutputs(blueOnly, 'o.json', 'Platform')).not.toHaveProperty('otherClustersInStack');
  });

  test('a value that is one cluster\'s name and another\'s construct id is ambiguous, not a guess', () => {
    const outputs = { ...TWO, BlueClusterClusterName: 'green-two', bluerClusterName: 'x-y', bluerRegion: 'eu-west-1', bluerParameterPrefix: '/ec2-swarm/x-y' };
    expect(clusterFromOutputs(outputs, 'o.json', 'P', undefined, 'green-two').name).toBe('green-two');
    const clash = { ...TWO, blueClusterName: 'other', blueParameterPrefix: '/ec2-swarm/other', blueRegion: 'eu-west-1' };
    expect(() => clusterFromOutputs(clash, 'o.json', 'P', undefined, 'blue')).toThrow(/--cluster blue matches more than one cluster .*other identifier/);
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

  test('--cluster picks among the stack\'s clusters; one that is not there is exit 2 listing them, after one read-only call', async () => {
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'Platform', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: Object.entries(TWO).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })) }],
    });
    await expect(locateCluster({ stack: 'Platform', cluster: 'blue', region: 'eu-west-1' })).resolves.toMatchObject({ name: 'blue', stackName: 'Platform', otherClustersInStack: ['green'] });
    await expect(locateCluster({ stack: 'Platform', cluster: 'red', region: 'eu-west-1' })).rejects.toMatchObject({
      code: 'CLUSTER_NOT_FOUND',
      exitCode: 2,
      message: expect.stringContaining('CloudFormation outputs (stack Platform) has no cluster "red" (clusters in it: blue'),
    });
    await expect(locateCluster({ stack: 'Platform', region: 'eu-west-1' })).rejects.toMatchObject({ code: 'CLUSTER_AMBIGUOUS', message: expect.stringContaining('--cluster NAME') });
    expect(cfn.commandCalls(DescribeStacksCommand).map((c) => c.args[0].input)).toEqual([{ StackName: 'Platform' }, { StackName: 'Platform' }, { StackName: 'Platform' }]);
  });

  test('a --cluster value that cannot name a cluster is exit 2 before CloudFormation is asked', async () => {
    for (const bad of ['x;y', '', 'Blue_Cluster', '-a', 'a'.repeat(201)]) {
      await expect(locateCluster({ stack: 'Platform', cluster: bad, region: 'eu-west-1' })).rejects.toMatchObject({ code: 'CLUSTER_SELECTOR_INVALID', exitCode: 2 });
    }
    expect(cfn).not.toHaveReceivedCommand(DescribeStacksCommand);
  });

  test('neither --outputs nor --stack, a bad stack name, or no region: user errors, no AWS call', async () => {
    await expect(locateCluster({})).rejects.toMatchObject({ fault: 'user', message: expect.stringContaining('--outputs FILE') });
    await expect(locateCluster({ stack: 'x;y', region: 'eu-west-1' })).rejects.toMatchObject({ fault: 'user', code: 'STACK_NAME_INVALID' });
    await expect(locateCluster({ stack: 'Demo' })).rejects.toMatchObject({ fault: 'user', code: 'REGION_UNKNOWN' });
    expect(cfn).not.toHaveReceivedCommand(DescribeStacksCommand);
  });
});
