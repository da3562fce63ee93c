import { App, CfnParameter, Stack, Token } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmError } from '../../lib/errors';
import { resolveOutputs, type CfnTemplate } from '../../lib/lab/cloudformation/template';
import { clusterFromOutputsDocument, outputKeysOf } from '../../lib/ops/cluster-locator';
import { ENV, groupOf, resourcesOfType, synth, text } from './helpers';

describe('secrets', () => {
  test('no join token anywhere in the template (user-data included)', () => {
    const { json } = synth({ workers: 2, publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }], loadBalancer: true });
    // Not even the prefix: the node scripts spell their patterns as S[W]MTKN so a plain grep of cdk.out stays empty.
    expect(JSON.stringify(json)).not.toMatch(/SWMTKN/);
  });
});

describe('outputs and tags', () => {
  test('outputs have the keys of the contract: <P><suffix>, P = the construct id (Swarm in SwarmStack)', () => {
    const { stack, json } = synth({ name: 'blue' });
    expect(Object.keys(json.Outputs).sort()).toEqual(
      ['SwarmClusterName', 'SwarmManagerGroupName', 'SwarmParameterPrefix', 'SwarmRegion', 'SwarmSessionCommand', 'SwarmStagingBucket', 'SwarmWorkerGroupName'].sort(),
    );
    expect(json.Outputs.SwarmClusterName.Value).toBe('blue');
    expect(json.Outputs.SwarmParameterPrefix.Value).toBe('/ec2-swarm/blue');
    expect(json.Outputs.SwarmManagerGroupName.Value).toEqual({ Ref: groupOf(json, 'manager').id });
    expect(json.Outputs.SwarmWorkerGroupName.Value).toEqual({ Ref: groupOf(json, 'worker').id });
    expect(json.Outputs.SwarmRegion.Value).toEqual({ Ref: 'AWS::Region' });
    // A session on a running manager of this cluster, found by its tags.
    const session = text(json.Outputs.SwarmSessionCommand.Value);
    expect(session).toMatch(/^aws ssm start-session --region \$\{AWS::Region\} --target "\$\(aws ec2 describe-instances /);
    expect(session).toContain('Name=tag:ec2-swarm:cluster,Values=blue Name=tag:ec2-swarm:role,Values=manager Name=instance-state-name,Values=running');
    expect(stack.stackName).toBe('ec2-swarm-blue');
    expect(stack.cluster.outputKeys.managerGroupName).toBe('SwarmManagerGroupName');
  });

  test('two clusters in one stack synthesize side by side, each with its own outputs, groups, roles and key', () => {
    const stack = new Stack(new App({ context: packageCdkContext() }), 'Two', { env: ENV });
    const blue = new SwarmCluster(stack, 'Blue-Cluster', { name: 'blue', managers: 3, workers: 2 });
    const green = new SwarmCluster(stack, 'Green', { name: 'green', workers: 1 });
    const json = Template.fromStack(stack).toJSON();
    const keys = Object.keys(json.Outputs);
    for (const suffix of ['ClusterName', 'ParameterPrefix', 'ManagerGroupName', 'WorkerGroupName', 'Region', 'SessionCommand']) {
      expect(keys).toContain(`BlueCluster${suffix}`);
      expect(keys).toContain(`Green${suffix}`);
    }
    expect(blue.outputKeys.clusterName).toBe('BlueCluster' + 'ClusterName');
    expect(json.Outputs.BlueClusterClusterName.Value).toBe('blue');
    expect(json.Outputs.GreenClusterName.Value).toBe('green');
    const groupNames = resourcesOfType(json, 'AWS::AutoScaling::AutoScalingGroup').map(([, g]) => g.Properties.AutoScalingGroupName).sort();
    expect(groupNames).toEqual(['ec2-swarm-blue-managers', 'ec2-swarm-blue-workers', 'ec2-swarm-green-managers', 'ec2-swarm-green-workers']);
    expect(resourcesOfType(json, 'AWS::KMS::Key')).toHaveLength(2);
    expect(resourcesOfType(json, 'AWS::IAM::Role').filter(([id]) => id.includes('ManagerRole'))).toHaveLength(2);
    expect(green.managerRole).not.toBe(blue.managerRole);

    // Ops (no CDK) repeat the construct's key suffixes: they must agree.
    for (const [meaning, key] of Object.entries(green.outputKeys)) expect(outputKeysOf('Green')[meaning as keyof typeof green.outputKeys]).toBe(key);
    // The outputs as CloudFormation (here: the lab's resolver) gives them are what the CLI's locator reads, by
    // cluster name or construct id; without --cluster it names both.
    const refs: Record<string, string> = {};
    for (const [id, r] of Object.entries(json.Resources as Record<string, { Type: string; Properties?: { AutoScalingGroupName?: string } }>)) {
      refs[id] = r.Type === 'AWS::AutoScaling::AutoScalingGroup' && r.Properties?.AutoScalingGroupName ? r.Properties.AutoScalingGroupName : `lab-${id.toLowerCase()}`;
    }
    const doc = resolveOutputs(json as CfnTemplate, { stackName: 'Two', region: 'eu-west-1', accountId: ENV.account, refs, attributeFallback: (id, attr) => `lab-${id}-${attr}` });
    expect(clusterFromOutputsDocument(doc, 'out.json', { cluster: 'green' })).toEqual({
      name: 'green',
      stackName: 'Two',
      region: 'eu-west-1',
      managerInstanceIds: [],
      parameterPrefix: '/ec2-swarm/green',
      managerGroupName: 'ec2-swarm-green-managers',
      workerGroupName: 'ec2-swarm-green-workers',
      stagingBucket: refs[Object.keys(refs).find((id) => id.startsWith('GreenStaging') && json.Resources[id].Type === 'AWS::S3::Bucket')!],
      otherClustersInStack: ['blue'],
    });
    expect(clusterFromOutputsDocument(doc, 'out.json', { cluster: 'BlueCluster' })).toMatchObject({ name: 'blue', managerGroupName: 'ec2-swarm-blue-managers', otherClustersInStack: ['green'] });
    expect(() => clusterFromOutputsDocument(doc, 'out.json')).toThrow(/holds 2 clusters: blue \(outputs BlueClusterClusterName, stack Two\), green \(outputs GreenClusterName, stack Two\); choose one with --cluster NAME/);
  });

  test('every node carries its cluster and role tags; shared resources say shared', () => {
    const { template, json } = synth({ name: 'blue' });
    const tag = (k: string, v: string) => Match.arrayWith([{ Key: k, Value: v }]);
    for (const role of ['manager', 'worker'] as const) {
      expect(groupOf(json, role).group.Properties.Tags).toEqual(
        expect.arrayContaining([
          { Key: 'ec2-swarm:cluster', PropagateAtLaunch: true, Value: 'blue' },
          { Key: 'ec2-swarm:role', PropagateAtLaunch: true, Value: role },
        ]),
      );
    }
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { Tags: tag('ec2-swarm:role', 'shared') });
    template.hasResourceProperties('AWS::EC2::VPC', { Tags: tag('ec2-swarm:cluster', 'blue') });
    for (const type of ['AWS::IAM::Role', 'AWS::Lambda::Function', 'AWS::EC2::Subnet', 'AWS::EC2::InternetGateway', 'AWS::KMS::Key']) {
      template.allResourcesProperties(type, { Tags: tag('ec2-swarm:cluster', 'blue') });
    }
  });
});

describe('props', () => {
  const newStack = () => new Stack(new App({ context: packageCdkContext() }), 'S', { env: ENV });

  test('validation errors name the prop', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ workers: -1 }, 'workers'],
      [{ workers: 1001 }, 'workers'],
      [{ name: 'Bad_Name' }, 'name'],
      [{ rootVolumeGiB: 4 }, 'rootVolumeGiB'],
      [{ publishedPorts: [{ port: 2377, cidrs: ['10.0.0.0/8'] }] }, 'publishedPorts[0].port'],
      [{ loadBalancer: true }, 'loadBalancer'],
      [{ vpc: {} as ec2.IVpc, vpcId: 'vpc-0123456789abcdef0' }, 'vpcId'],
      [{ managers: 2 }, 'managers'],
      [{ managers: 9 }, 'managers'],
    ];
    for (const [props, field] of cases) {
      let err: unknown;
      try {
        new SwarmCluster(newStack(), 'C', props);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SwarmError);
      expect((err as SwarmError).fault).toBe('user');
      expect((err as SwarmError).message).toContain(`→ at ${field}`);
    }
  });

  test('numeric tokens skip the numeric checks and reach the template', () => {
    const stack = newStack();
    const workers = new CfnParameter(stack, 'Workers', { type: 'Number' }).valueAsNumber;
    const size = new CfnParameter(stack, 'Size', { type: 'Number' }).valueAsNumber;
    expect(Token.isUnresolved(workers)).toBe(true);
    new SwarmCluster(stack, 'C', { workers, rootVolumeGiB: size });
    const t = Template.fromStack(stack);
    const workerGroup = groupOf(t.toJSON(), 'worker').group;
    expect(workerGroup.Properties).toMatchObject({ MinSize: { Ref: 'Workers' }, MaxSize: { Ref: 'Workers' }, DesiredCapacity: { Ref: 'Workers' } });
    expect(workerGroup.CreationPolicy).toEqual({ ResourceSignal: { Count: { Ref: 'Workers' }, Timeout: 'PT30M' } });
    // A token size cannot be added to: no spare, the rolling update replaces one worker at a time in place.
    expect(workerGroup.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({ MaxBatchSize: 1, WaitOnResourceSignals: true });
    expect(workerGroup.UpdatePolicy.AutoScalingRollingUpdate.MinInstancesInService).toBeUndefined();
    t.allResourcesProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ VolumeSize: { Ref: 'Size' } }) })] }),
    });
  });

  test('a token where a concrete value is needed is refused by name', () => {
    const stack = newStack();
    const name = new CfnParameter(stack, 'Name').valueAsString;
    expect(() => new SwarmCluster(stack, 'C', { name })).toThrow(/→ at name/);
  });

  test('an existing VPC is used as given: no VPC is created', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'Mine', { natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PUBLIC }] });
    new SwarmCluster(stack, 'C', { vpc });
    Template.fromStack(stack).resourceCountIs('AWS::EC2::VPC', 1);
  });
});

describe('cdk-nag AwsSolutions', () => {
  test.each([
    ['default', {}],
    ['no workers', { workers: 0 }],
    ['everything on', { workers: 5, encryptedOverlay: true, loadBalancer: true, publishedPorts: [{ port: 80, cidrs: ['0.0.0.0/0', '::/0'] }, { port: 53, protocol: 'udp' as const, cidrs: ['10.0.0.0/8'] }] }],
    ['arm and a custom AMI', { workerInstanceType: 't4g.small', ami: 'ami-0123456789abcdef0' }],
    ['5 managers in 3 AZs', { managers: 5, maxAzs: 3 }],
  ])('%s: no finding that is not acknowledged', (_, input) => {
    const { app, checks } = synth(input);
    expect(checks.validateScope(app).violations).toEqual([]);
  });

  test('the checks do run: an unacknowledged SSH rule in the same app is reported', () => {
    const { app, stack, checks } = synth();
    const sg = new ec2.SecurityGroup(stack, 'Extra', { vpc: stack.cluster.vpc, description: 'extra' });
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    const rules = checks.validateScope(app).violations.map((v) => v.ruleName);
    expect(rules).toEqual(expect.arrayContaining([expect.stringMatching(/AwsSolutions-EC23/)]));
  });
});
