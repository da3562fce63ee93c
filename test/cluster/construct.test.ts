/**
 * The construct as an app uses it: outputs and tags, props (plain and CDK objects), cdk-nag, the app and the plan.
 * One test file for them (aws-cdk-lib loads once per file, ~1 CPU-s), one synth per configuration
 * (test/cluster/helpers.ts synth).
 */
import { App, CfnParameter, Stack, Token } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import { AwsSolutionsChecks } from 'cdk-nag';
import { formatPlan } from '../../lib/cluster/plan';
import { SwarmClusterProps } from '../../lib/cluster/props';
import { addSwarmStack, packageCdkContext, planCluster } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { configFromContext, parseClusterConfig } from '../../lib/config';
import { isSwarmError, SwarmError } from '../../lib/errors';
import { resolveOutputs, type CfnTemplate } from '../../lib/lab/cloudformation/template';
import { clusterFromOutputsDocument, outputKeysOf } from '../../lib/ops/cluster-locator';
import { ENV, freshSynth, groupOf, ingressRules, logicalIdOf, resourcesOfType, synth, text } from './helpers';

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
    const { app, stack, checks } = freshSynth();
    const sg = new ec2.SecurityGroup(stack, 'Extra', { vpc: stack.cluster.vpc, description: 'extra' });
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    const rules = checks.validateScope(app).violations.map((v) => v.ruleName);
    expect(rules).toEqual(expect.arrayContaining([expect.stringMatching(/AwsSolutions-EC23/)]));
  });
});

// The props that take the CDK objects an app already has, and the checks that name them.

const newStack = () => new Stack(new App({ context: packageCdkContext() }), 'Platform', { env: ENV });

function withVpc() {
  const stack = newStack();
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
      { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    ],
  });
  return { stack, vpc };
}

function userError(fn: () => unknown): SwarmError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    expect((e as SwarmError).fault).toBe('user');
    return e as SwarmError;
  }
  throw new Error('expected a user error');
}

describe('instance types and image as objects', () => {
  test('ec2.InstanceType objects and names both reach the launch templates', () => {
    const stack = newStack();
    new SwarmCluster(stack, 'Swarm', {
      managerInstanceType: ec2.InstanceType.of(ec2.InstanceClass.M7G, ec2.InstanceSize.LARGE),
      workerInstanceType: 'c7g.xlarge',
    });
    const json = Template.fromStack(stack).toJSON();
    const data = (role: 'manager' | 'worker') => groupOf(json, role).launchTemplate.Properties.LaunchTemplateData;
    expect(data('manager').InstanceType).toBe('m7g.large');
    expect(data('worker').InstanceType).toBe('c7g.xlarge');
    // Graviton: the arm64 Amazon Linux 2023 image, still resolved at launch.
    expect(data('manager').ImageId).toBe('resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64');
  });

  test('workerInstanceTypes takes InstanceType objects too', () => {
    const stack = newStack();
    new SwarmCluster(stack, 'Swarm', { workerInstanceTypes: [new ec2.InstanceType('m6i.large'), 'm5.large'] });
    const mixed = groupOf(Template.fromStack(stack).toJSON(), 'worker').group.Properties.MixedInstancesPolicy;
    expect(mixed.LaunchTemplate.Overrides).toEqual([{ InstanceType: 'm6i.large' }, { InstanceType: 'm5.large' }]);
  });

  test('machineImage: both launch templates use it; the default stays resolve:ssm', () => {
    const stack = newStack();
    const c = new SwarmCluster(stack, 'Swarm', { machineImage: ec2.MachineImage.genericLinux({ 'eu-west-1': 'ami-0123456789abcdef0' }) });
    const json = Template.fromStack(stack).toJSON();
    for (const role of ['manager', 'worker'] as const) {
      expect(groupOf(json, role).launchTemplate.Properties.LaunchTemplateData.ImageId).toBe('ami-0123456789abcdef0');
    }
    expect(c.machineImage).toBeDefined();
  });

  test('a Windows machineImage is refused by name; machineImage with ami is refused', () => {
    expect(userError(() => new SwarmCluster(newStack(), 'S', { machineImage: ec2.MachineImage.genericWindows({ 'eu-west-1': 'ami-0123456789abcdef0' }) })).message).toMatch(
      /Linux image[\s\S]*→ at machineImage/,
    );
    expect(
      userError(() => new SwarmCluster(newStack(), 'S', { ami: 'ami-0123456789abcdef0', machineImage: ec2.MachineImage.latestAmazonLinux2023() })).message,
    ).toMatch(/either machineImage or ami[\s\S]*→ at ami/);
  });
});

describe('network objects', () => {
  test('vpcSubnets places the nodes; loadBalancerSubnets places the load balancer (public by default)', () => {
    const { stack, vpc } = withVpc();
    new SwarmCluster(stack, 'Swarm', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      publishedPorts: [{ port: 443, cidrs: ['0.0.0.0/0'] }],
      loadBalancer: true,
    });
    const json = Template.fromStack(stack).toJSON();
    const ids = (subnets: ec2.ISubnet[]) => subnets.map((s) => ({ Ref: logicalIdOf(stack, s as unknown as { node: { defaultChild?: unknown } }) }));
    for (const role of ['manager', 'worker'] as const) {
      expect(groupOf(json, role).group.Properties.VPCZoneIdentifier).toEqual(ids(vpc.privateSubnets));
    }
    const [, lb] = resourcesOfType(json, 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0];
    expect(lb.Properties.Subnets).toEqual(ids(vpc.publicSubnets));
  });

  test('loadBalancerSubnets as given', () => {
    const { stack, vpc } = withVpc();
    new SwarmCluster(stack, 'Swarm', {
      vpc,
      publishedPorts: [{ port: 443, cidrs: ['203.0.113.0/24'] }],
      loadBalancer: true,
      loadBalancerSubnets: { subnets: [vpc.publicSubnets[0]] },
    });
    const [, lb] = resourcesOfType(Template.fromStack(stack).toJSON(), 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0];
    expect(lb.Properties.Subnets).toHaveLength(1);
  });

  test('securityGroup: the nodes use the given group, which gets the swarm rules; no node group is created', () => {
    const { stack, vpc } = withVpc();
    const sg = new ec2.SecurityGroup(stack, 'Mine', { vpc, description: 'mine' });
    const c = new SwarmCluster(stack, 'Swarm', { vpc, securityGroup: sg, encryptedOverlay: true });
    const json = Template.fromStack(stack).toJSON();
    expect(resourcesOfType(json, 'AWS::EC2::SecurityGroup')).toHaveLength(1);
    const mine = logicalIdOf(stack, sg);
    expect(c.securityGroup).toBe(sg);
    for (const role of ['manager', 'worker'] as const) {
      expect(groupOf(json, role).launchTemplate.Properties.LaunchTemplateData.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [mine, 'GroupId'] }]);
    }
    const rules = ingressRules(json).filter((r) => r.groupId === mine);
    expect(rules.map((r) => `${r.fromPort ?? ''}/${r.protocol}`).sort()).toEqual(['/50', '2377/tcp', '4789/udp', '7946/tcp', '7946/udp']);
  });

  test('connections: IConnectable, so other constructs open ports to and from the nodes', () => {
    const { stack, vpc } = withVpc();
    const c = new SwarmCluster(stack, 'Swarm', { vpc });
    const db = new rds.DatabaseInstance(stack, 'Db', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 }),
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    });
    db.connections.allowDefaultPortFrom(c);
    const bastion = new ec2.SecurityGroup(stack, 'Monitoring', { vpc, description: 'monitoring' });
    c.connections.allowFrom(bastion, ec2.Port.tcp(9100), 'node exporter');
    const json = Template.fromStack(stack).toJSON();
    const nodes = logicalIdOf(stack, c.securityGroup);
    const dbGroup = logicalIdOf(stack, db.connections.securityGroups[0]);
    const rules = ingressRules(json);
    expect(rules).toEqual(expect.arrayContaining([expect.objectContaining({ groupId: dbGroup, sourceGroup: nodes, fromPort: expect.anything() })]));
    expect(rules).toEqual(expect.arrayContaining([expect.objectContaining({ groupId: nodes, sourceGroup: logicalIdOf(stack, bastion), fromPort: 9100 })]));
    expect(c.connections.securityGroups).toEqual([c.securityGroup]);
  });
});

describe('published ports from peers and prefix lists', () => {
  test('a prefix list and a security group as sources, beside CIDRs, on the nodes and on the load balancer', () => {
    const { stack, vpc } = withVpc();
    const clients = new ec2.SecurityGroup(stack, 'Clients', { vpc, description: 'clients' });
    const c = new SwarmCluster(stack, 'Swarm', {
      vpc,
      publishedPorts: [
        { port: 443, peers: [ec2.Peer.prefixList('pl-0123456789abcdef0')] },
        { port: 8080, cidrs: ['203.0.113.0/24'], peers: [clients] },
      ],
      loadBalancer: true,
    });
    const json = Template.fromStack(stack).toJSON();
    const nodes = logicalIdOf(stack, c.securityGroup);
    const lb = logicalIdOf(stack, c.loadBalancer!.connections.securityGroups[0]);
    const all = [
      ...resourcesOfType(json, 'AWS::EC2::SecurityGroup').flatMap(([id, g]) => (g.Properties.SecurityGroupIngress ?? []).map((r: any) => ({ id, r }))),
      ...resourcesOfType(json, 'AWS::EC2::SecurityGroupIngress').map(([, x]) => ({ id: x.Properties.GroupId['Fn::GetAtt'][0], r: x.Properties })),
    ];
    const from = (group: string, port: number) =>
      all
        .filter((x) => x.id === group && x.r.FromPort === port)
        .map((x) => x.r.SourcePrefixListId ?? x.r.CidrIp ?? x.r.SourceSecurityGroupId?.['Fn::GetAtt']?.[0])
        .sort();
    const clientsId = logicalIdOf(stack, clients);
    expect(from(nodes, 443)).toEqual([lb, 'pl-0123456789abcdef0'].sort());
    expect(from(lb, 443)).toEqual(['pl-0123456789abcdef0']);
    expect(from(nodes, 8080)).toEqual(['203.0.113.0/24', clientsId, lb].sort());
    expect(from(lb, 8080)).toEqual(['203.0.113.0/24', clientsId].sort());
  });

  test('a port with neither cidrs nor peers is refused, naming the port', () => {
    expect(userError(() => new SwarmCluster(newStack(), 'S', { publishedPorts: [{ port: 80 }] })).message).toMatch(
      /at least one CIDR[\s\S]*→ at publishedPorts\[0\]\.cidrs/,
    );
    expect(userError(() => new SwarmCluster(newStack(), 'S', { publishedPorts: [{ port: 80, peers: ['10.0.0.0/8' as never] }] })).message).toMatch(
      /must be an ec2.IPeer[\s\S]*→ at publishedPorts\[0\]\.peers\[0\]/,
    );
  });

  test('Peer.anyIpv4() on a published port is acknowledged like a 0.0.0.0/0 CIDR: cdk-nag clean', () => {
    const { stack, vpc } = withVpc();
    new SwarmCluster(stack, 'Swarm', { vpc, publishedPorts: [{ port: 443, peers: [ec2.Peer.anyIpv4()] }], loadBalancer: true });
    const app = stack.node.root as App;
    const checks = new AwsSolutionsChecks(app);
    const found = checks.validateScope(app).violations.filter((v) => v.violatingResources.some((r) => (r.locations?.[0] ?? r.resourceLogicalId ?? '').includes('Swarm')));
    expect(found.map((v) => v.ruleName)).not.toEqual(expect.arrayContaining([expect.stringMatching(/EC23/)]));
  });
});

describe('roles', () => {
  test('given roles get the SSM managed policy and the swarm statements; no roles are created', () => {
    const stack = newStack();
    const managerRole = new iam.Role(stack, 'ManagersOwn', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const workerRole = new iam.Role(stack, 'WorkersOwn', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const c = new SwarmCluster(stack, 'Swarm', { name: 'blue', managerRole, workerRole });
    expect(c.managerRole).toBe(managerRole);
    const template = Template.fromStack(stack);
    const json = template.toJSON();
    const roles = resourcesOfType(json, 'AWS::IAM::Role').map(([id]) => id);
    expect(roles.filter((id) => id.startsWith('SwarmRoles'))).toEqual([]);
    const ssmCore = Match.arrayWith([{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore']] }]);
    template.hasResourceProperties('AWS::IAM::Role', { ManagedPolicyArns: ssmCore });
    const statementsOf = (role: iam.Role) =>
      resourcesOfType(json, 'AWS::IAM::Policy')
        .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === logicalIdOf(stack, role)))
        .flatMap(([, p]) => p.Properties.PolicyDocument.Statement.map((s: any) => s.Sid));
    expect(statementsOf(managerRole)).toEqual(expect.arrayContaining(['SwarmRuntimeParameters', 'NoOtherParameters']));
    expect(statementsOf(workerRole)).toEqual(expect.arrayContaining(['WorkerTokenAndManagerAddresses', 'NoOtherParameters']));
    // The instance profiles carry the given roles; the token key names them.
    const key = resourcesOfType(json, 'AWS::KMS::Key')[0][1];
    expect(JSON.stringify(key.Properties.KeyPolicy)).toContain(logicalIdOf(stack, workerRole));
  });

  test('an imported role works too (its statements in a Policy the construct creates)', () => {
    const stack = newStack();
    const workerRole = iam.Role.fromRoleArn(stack, 'Imported', 'arn:aws:iam::123456789012:role/platform-workers');
    new SwarmCluster(stack, 'Swarm', { workerRole });
    const json = Template.fromStack(stack).toJSON();
    const policy = resourcesOfType(json, 'AWS::IAM::Policy').find(([, p]) => p.Properties.Roles.includes('platform-workers'));
    expect(policy).toBeDefined();
    expect(policy![1].Properties.PolicyDocument.Statement.map((s: any) => s.Sid)).toEqual(expect.arrayContaining(['WorkerTokenAndManagerAddresses', 'NoOtherParameters']));
    // The workers wait for that policy before they launch.
    expect(groupOf(json, 'worker').group.DependsOn).toEqual(expect.arrayContaining([policy![0]]));
  });

  test('one role for managers and workers is refused: workers would read the manager token', () => {
    const stack = newStack();
    const role = new iam.Role(stack, 'Both', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    expect(userError(() => new SwarmCluster(stack, 'S', { managerRole: role, workerRole: role })).message).toMatch(/manager token[\s\S]*→ at workerRole/);
  });
});

describe('worker sizes as tokens', () => {
  test('minWorkers and maxWorkers may be tokens: the numeric checks are skipped and the values reach the group', () => {
    const stack = newStack();
    const min = new CfnParameter(stack, 'MinWorkers', { type: 'Number' }).valueAsNumber;
    const max = new CfnParameter(stack, 'MaxWorkers', { type: 'Number' }).valueAsNumber;
    // 5 concrete workers with a token minimum: no "minWorkers must be at most workers" from a stand-in value.
    new SwarmCluster(stack, 'Swarm', { workers: 5, minWorkers: min, maxWorkers: max });
    const { group } = groupOf(Template.fromStack(stack).toJSON(), 'worker');
    expect(group.Properties).toMatchObject({ MinSize: { Ref: 'MinWorkers' }, DesiredCapacity: '5', MaxSize: { Ref: 'MaxWorkers' } });
    // A token maximum cannot be compared with: no MinInstancesInService.
    expect(group.UpdatePolicy.AutoScalingRollingUpdate.MinInstancesInService).toBeUndefined();
  });

  test('concrete bounds are still checked against each other around a token', () => {
    const stack = newStack();
    const workers = new CfnParameter(stack, 'Workers', { type: 'Number' }).valueAsNumber;
    const message = userError(() => new SwarmCluster(stack, 'Swarm', { workers, minWorkers: 6, maxWorkers: 4 })).message;
    expect(message).toMatch(/must be at least minWorkers \(6\)\n\s*→ at maxWorkers/);
    // Nothing about the token's stand-in value.
    expect(message).not.toMatch(/workers \(\d+\)/);
  });
});

describe('every object prop keeps cdk-nag clean', () => {
  test('a cluster given VPC, subnets, group, roles, image, peers and Spot workers: no unacknowledged finding', () => {
    const { stack, vpc } = withVpc();
    const props: SwarmClusterProps = {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: new ec2.SecurityGroup(stack, 'Nodes', { vpc, description: 'nodes' }),
      managerRole: new iam.Role(stack, 'M', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }),
      workerRole: new iam.Role(stack, 'W', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') }),
      machineImage: ec2.MachineImage.genericLinux({ 'eu-west-1': 'ami-0123456789abcdef0' }),
      workerInstanceTypes: ['m6i.large', 'm5.large'],
      workerSpot: { onDemandBaseCapacity: 1 },
      minWorkers: 1,
      maxWorkers: 8,
      publishedPorts: [{ port: 443, peers: [ec2.Peer.prefixList('pl-0123456789abcdef0')] }],
      loadBalancer: true,
    };
    new SwarmCluster(stack, 'Swarm', props);
    const app = stack.node.root as App;
    const checks = new AwsSolutionsChecks(app);
    const ours = checks
      .validateScope(app)
      .violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.locations?.[0] ?? r.resourceLogicalId}`))
      .filter((f) => f.includes('/Swarm/') || f.includes('Swarm'));
    expect(ours).toEqual([]);
  });
});

describe('the app', () => {
  test('synth fails on a finding nobody acknowledged (cdk-nag is enforced, not just reported)', () => {
    const app = new App({ context: packageCdkContext() });
    const { stack } = addSwarmStack(app, parseClusterConfig({}));
    const sg = new ec2.SecurityGroup(stack, 'Extra', { vpc: stack.cluster.vpc, description: 'extra' });
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    expect(() => app.synth()).toThrow(/AwsSolutions-EC23/);
  });

  test('synth succeeds for the default cluster', () => {
    const app = new App({ context: packageCdkContext() });
    addSwarmStack(app, parseClusterConfig({}));
    expect(() => app.synth()).not.toThrow();
  });

  // bin/app.ts's steps in-process for the bad configs test/app/app.test.ts does not run as a process (a process
  // each costs ~2.5 CPU-s): what it does with the context, up to the SwarmError it prints before exiting with its
  // exit code. The context is cdk.json's plus the -c values (strings), as the CDK CLI passes it.
  test.each([
    [{ workers: '-1' }, 'workers'],
    [{ wrokers: '3' }, 'wrokers'],
    [{ workers: 'many' }, 'workers'],
    [{ name: 'Bad_Name' }, 'name'],
    [{ publishedPorts: '[{"port":80,"cidrs":["10.0.0.0/33"]}]' }, 'publishedPorts[0].cidrs[0]'],
    [{ managers: '2' }, 'managers'],
    [{ workers: '3', minWorkers: '5' }, 'minWorkers'],
    [{ workerInstanceTypes: '["m6i.large","t4g.large"]' }, 'workerInstanceTypes'],
  ])('bad config %j: a SwarmError for exit 2 naming %s', (context, field) => {
    const app = new App({ context: { ...packageCdkContext(), ...context } });
    let thrown: unknown;
    try {
      addSwarmStack(app, configFromContext(app.node.getAllContext() as Record<string, unknown>));
    } catch (e) {
      thrown = e;
    }
    expect(isSwarmError(thrown) && thrown.exitCode).toBe(2);
    expect((thrown as Error).message).toContain(`→ at ${field}`);
  });
});

describe('the plan (npm run plan)', () => {
  const { plan, findings } = planCluster(parseClusterConfig({ workers: 3 }));
  const text = formatPlan(plan);

  test('no unacknowledged findings', () => {
    expect(findings).toEqual([]);
  });

  test('says what will be created', () => {
    expect(plan.stackName).toBe('ec2-swarm-swarm');
    expect(text).toContain('1 manager + 3 workers (4 EC2 instances); the managers survive 0 failures');
    expect(plan.resources['AWS::EC2::Instance']).toBeUndefined();
    expect(plan.resources['AWS::AutoScaling::AutoScalingGroup']).toBe(2);
    expect(plan.resources['AWS::EC2::LaunchTemplate']).toBe(2);
    expect(plan.resources['AWS::AutoScaling::LifecycleHook']).toBe(2);
    expect(plan.resources['AWS::KMS::Key']).toBe(1);
    expect(text).toContain('resolved by EC2 at each launch');
  });

  test('3 managers: the plan says how many failures they survive', () => {
    const p = planCluster(parseClusterConfig({ managers: 3, workers: 2 }));
    expect(p.findings).toEqual([]);
    expect(formatPlan(p.plan)).toContain('3 managers + 2 workers (5 EC2 instances); the managers survive 1 failure\n');
  });

  test('lists every inbound rule with its source, read from the template', () => {
    expect(plan.ingress.map((r) => `${r.traffic} ${r.from}`).sort()).toEqual(
      ['2377/tcp cluster nodes', '4789/udp cluster nodes', '7946/tcp cluster nodes', '7946/udp cluster nodes'].sort(),
    );
    expect(text).toMatch(/2377\/tcp\s+from cluster nodes\s+swarm cluster management/);
  });

  test('published ports and the load balancer show up with their CIDRs', () => {
    const p = planCluster(
      parseClusterConfig({ publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }], loadBalancer: true, encryptedOverlay: true }),
    ).plan;
    const rules = p.ingress.map((r) => `${r.group}: ${r.traffic} ${r.from}`);
    expect(rules).toEqual(
      expect.arrayContaining([
        'nodes: 80/tcp 203.0.113.0/24',
        'nodes: 80/tcp load balancer',
        'load balancer: 80/tcp 203.0.113.0/24',
        'nodes: ESP (IP protocol 50) cluster nodes',
      ]),
    );
  });

  test('who may read and write which parameter, from the IAM policies', () => {
    const access = Object.fromEntries(plan.parameters.map((p) => [p.name, p.access]));
    const owner = { managers: ['read', 'write', 'delete'], 'stack deletion (cleanup)': ['delete'] };
    expect(access['/ec2-swarm/swarm/worker-token']).toEqual({ ...owner, workers: ['read'] });
    expect(access['/ec2-swarm/swarm/manager-addresses']).toEqual({ ...owner, workers: ['read'] });
    expect(access['/ec2-swarm/swarm/manager-token']).toEqual(owner);
    expect(access['/ec2-swarm/swarm/init-lock']).toEqual(owner);
    expect(access['/ec2-swarm/swarm/cluster-id']).toEqual(owner);
    expect(text).toMatch(/\/ec2-swarm\/swarm\/manager-token\s+SecureString\s+managers: read\/write\/delete; stack deletion \(cleanup\): delete/);
  });
});
