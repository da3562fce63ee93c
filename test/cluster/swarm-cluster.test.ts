import { App, CfnParameter, Stack, Token } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { parameterNames, parseClusterConfig, SWARM_PORTS } from '../../lib/config';
import { SwarmStack } from '../../lib/cluster/swarm-stack';
import { SwarmError } from '../../lib/errors';
import { ENV, ingressRules, logicalIdOf, resourcesOfType, synth, text } from './helpers';

const SWARM = SWARM_PORTS.map((p) => `${p.port}/${p.protocol}`);
const covers = (r: { protocol: string; fromPort?: number; toPort?: number }, port: number, protocol: string) =>
  r.protocol === '-1' || (r.protocol === protocol && (r.fromPort ?? 0) <= port && port <= (r.toPort ?? 65535));

describe('worker group', () => {
  test('is an Auto Scaling Group with a launch template, never a launch configuration', () => {
    const { template } = synth({ workers: 3 });
    template.resourceCountIs('AWS::EC2::LaunchTemplate', 1);
    template.resourceCountIs('AWS::AutoScaling::LaunchConfiguration', 0);
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: '3',
      MaxSize: '3',
      DesiredCapacity: '3',
      LaunchTemplate: { LaunchTemplateId: { Ref: Match.anyValue() }, Version: Match.anyValue() },
    });
  });

  test('CloudFormation waits for one signal per worker', () => {
    const { template } = synth({ workers: 7 });
    template.hasResource('AWS::AutoScaling::AutoScalingGroup', {
      CreationPolicy: { ResourceSignal: { Count: 7, Timeout: 'PT30M' } },
    });
  });

  test('1 and 1000 workers give the same resources and the same template size (but for the digits)', () => {
    const one = synth({ workers: 1 }).json;
    const many = synth({ workers: 1000 }).json;
    expect(Object.keys(many.Resources)).toEqual(Object.keys(one.Resources));
    const size = (j: unknown) => JSON.stringify(j).length;
    expect(Math.abs(size(many) - size(one))).toBeLessThan(20);
    expect(many.Resources[resourcesOfType(many, 'AWS::AutoScaling::AutoScalingGroup')[0][0]].CreationPolicy.ResourceSignal.Count).toBe(1000);
  });

  test('0 workers: an empty group that expects no signals, outputs unchanged', () => {
    const { template, json } = synth({ workers: 0 });
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0', MaxSize: '0', DesiredCapacity: '0' });
    const [, asg] = resourcesOfType(json, 'AWS::AutoScaling::AutoScalingGroup')[0];
    expect(asg.CreationPolicy).toBeUndefined();
    expect(Object.keys(json.Outputs)).toEqual(Object.keys(synth({ workers: 3 }).json.Outputs));
    // The manager still waits for its own signal.
    template.hasResource('AWS::EC2::Instance', { CreationPolicy: { ResourceSignal: { Count: 1 } } });
  });
});

describe('nodes', () => {
  test('one manager instance that signals once', () => {
    const { template } = synth();
    template.resourceCountIs('AWS::EC2::Instance', 1);
    template.hasResource('AWS::EC2::Instance', { CreationPolicy: { ResourceSignal: { Count: 1, Timeout: 'PT15M' } } });
  });

  test('changed node scripts do not replace the manager (a new manager would start a new swarm)', () => {
    const managerId = (extra: string) => {
      const app = new App({ context: packageCdkContext() });
      const scripts = { 'common.sh': `#!/bin/bash\n${extra}\n`, 'manager.sh': '#!/bin/bash\n', 'worker.sh': '#!/bin/bash\n', 'leave-on-shutdown.sh': '#!/bin/bash\n' };
      const stack = new SwarmStack(app, undefined, { cluster: parseClusterConfig({}), env: ENV, internals: { nodeScripts: scripts } });
      const json = Template.fromStack(stack).toJSON();
      const [[id, r]] = resourcesOfType(json, 'AWS::EC2::Instance');
      return { id, userData: text(r.Properties.UserData) };
    };
    const a = managerId('echo one');
    const b = managerId('echo two');
    expect(a.userData).not.toBe(b.userData);
    expect(b.id).toBe(a.id);
  });

  test('IMDSv2 is required on the manager and in the worker launch template', () => {
    const { template } = synth();
    template.hasResourceProperties('AWS::EC2::Instance', { MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 } });
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 } }),
    });
  });

  test('root volumes are encrypted gp3 of rootVolumeGiB', () => {
    const { json } = synth({ rootVolumeGiB: 42 });
    const mappings = [
      ...resourcesOfType(json, 'AWS::EC2::Instance').map(([, r]) => r.Properties.BlockDeviceMappings),
      ...resourcesOfType(json, 'AWS::EC2::LaunchTemplate').map(([, r]) => r.Properties.LaunchTemplateData.BlockDeviceMappings),
    ];
    expect(mappings).toHaveLength(2);
    for (const m of mappings) {
      expect(m).toEqual([{ DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 42, VolumeType: 'gp3' } }]);
    }
  });

  test('no key pair anywhere', () => {
    const { json } = synth();
    expect(JSON.stringify(json)).not.toMatch(/KeyName|KeyPair/);
  });

  test('latest Amazon Linux 2023 for the instance type architecture, or the given AMI', () => {
    const { json } = synth({ managerInstanceType: 't3.small', workerInstanceType: 'm7g.large' });
    const defaults = Object.values<any>(json.Parameters).map((p) => p.Default);
    expect(defaults).toEqual(
      expect.arrayContaining([
        '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64',
        '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64',
      ]),
    );
    const custom = synth({ ami: 'ami-0123456789abcdef0' });
    custom.template.hasResourceProperties('AWS::EC2::Instance', { ImageId: 'ami-0123456789abcdef0' });
    custom.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ ImageId: 'ami-0123456789abcdef0' }),
    });
  });
});

describe('network', () => {
  test('default VPC: public subnets only, no NAT gateway', () => {
    const { template } = synth({ maxAzs: 3 });
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 3);
    template.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true });
  });

  test('swarm ports are open only from the cluster group itself; nothing else, no SSH', () => {
    const { stack, json } = synth();
    const sg = logicalIdOf(stack, stack.cluster.securityGroup);
    const rules = ingressRules(json);
    expect(rules.map((r) => `${r.fromPort}/${r.protocol}`).sort()).toEqual([...SWARM].sort());
    for (const r of rules) {
      expect(r.groupId).toBe(sg);
      expect(r.sourceGroup).toBe(sg);
      expect(r.cidr).toBeUndefined();
    }
    expect(rules.some((r) => covers(r, 22, 'tcp'))).toBe(false);
  });

  test('ESP only between nodes, only when encryptedOverlay is set', () => {
    const esp = (j: Record<string, any>) => ingressRules(j).filter((r) => r.protocol === '50');
    expect(esp(synth().json)).toEqual([]);
    const { stack, json } = synth({ encryptedOverlay: true });
    const sg = logicalIdOf(stack, stack.cluster.securityGroup);
    expect(esp(json)).toEqual([{ groupId: sg, protocol: '50', fromPort: undefined, toPort: undefined, cidr: undefined, sourceGroup: sg }]);
  });

  test('published ports are open from exactly their CIDRs', () => {
    const { stack, json } = synth({
      publishedPorts: [
        { port: 443, cidrs: ['203.0.113.0/24', '2001:db8::/32'] },
        { port: 5000, protocol: 'udp', cidrs: ['198.51.100.7/32'] },
      ],
    });
    const sg = logicalIdOf(stack, stack.cluster.securityGroup);
    const published = ingressRules(json).filter((r) => r.cidr !== undefined);
    expect(published.map((r) => `${r.groupId} ${r.fromPort}-${r.toPort}/${r.protocol} ${r.cidr}`).sort()).toEqual(
      [`${sg} 443-443/tcp 203.0.113.0/24`, `${sg} 443-443/tcp 2001:db8::/32`, `${sg} 5000-5000/udp 198.51.100.7/32`].sort(),
    );
  });

  test('no 0.0.0.0/0 or ::/0 on a swarm port, even with a world-open published port and a load balancer', () => {
    const { json } = synth({ publishedPorts: [{ port: 80, cidrs: ['0.0.0.0/0', '::/0'] }], loadBalancer: true, encryptedOverlay: true });
    const world = ingressRules(json).filter((r) => r.cidr === '0.0.0.0/0' || r.cidr === '::/0');
    expect(world.length).toBeGreaterThan(0); // the published port: the check below is not vacuous
    for (const r of world) {
      for (const p of SWARM_PORTS) expect(covers(r, p.port, p.protocol)).toBe(false);
      expect(r.protocol).not.toBe('50');
    }
  });

  test('load balancer: one listener per published port, targets the workers, reachable only from the CIDRs', () => {
    const { stack, json, template } = synth({
      publishedPorts: [
        { port: 80, cidrs: ['203.0.113.0/24'] },
        { port: 53, protocol: 'udp', cidrs: ['198.51.100.0/24'] },
      ],
      loadBalancer: true,
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internet-facing' });
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 2);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 53, Protocol: 'UDP' });
    const [, asg] = resourcesOfType(json, 'AWS::AutoScaling::AutoScalingGroup')[0];
    expect(asg.Properties.TargetGroupARNs).toHaveLength(2);

    const nodes = logicalIdOf(stack, stack.cluster.securityGroup);
    const lb = logicalIdOf(stack, stack.cluster.loadBalancer!.connections.securityGroups[0]);
    const rules = ingressRules(json);
    const describe = (r: (typeof rules)[number]) => `${r.fromPort}/${r.protocol} ${r.cidr ?? r.sourceGroup}`;
    expect(rules.filter((r) => r.groupId === lb).map(describe).sort()).toEqual(['53/udp 198.51.100.0/24', '80/tcp 203.0.113.0/24']);
    expect(rules.filter((r) => r.groupId === nodes && r.sourceGroup === lb).map(describe).sort()).toEqual([`53/udp ${lb}`, `80/tcp ${lb}`]);
  });

  test('no load balancer unless asked', () => {
    synth({ publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }] }).template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
  });
});

describe('IAM', () => {
  const policyOf = (json: Record<string, any>, roleId: string) =>
    resourcesOfType(json, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[]);
  const arn = (name: string) => `arn:aws:ssm:${ENV.region}:${ENV.account}:parameter${name}`;

  test('both roles get AmazonSSMManagedInstanceCore and nothing else managed', () => {
    const { stack, json } = synth();
    for (const role of [stack.cluster.managerRole, stack.cluster.workerRole]) {
      const r = json.Resources[logicalIdOf(stack, role)];
      expect(r.Properties.ManagedPolicyArns.map(text)).toEqual(['arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore']);
    }
  });

  test('the manager may put/get/delete parameters under its cluster prefix only, and signal its stack', () => {
    const { stack, json } = synth({ name: 'blue' });
    const st = policyOf(json, logicalIdOf(stack, stack.cluster.managerRole));
    const ssm = st.filter((s) => [].concat(s.Action).some((a: string) => a.startsWith('ssm:')));
    expect(ssm).toHaveLength(1);
    expect(ssm[0].Action).toEqual(expect.arrayContaining(['ssm:PutParameter', 'ssm:GetParameter', 'ssm:DeleteParameter']));
    expect(text(ssm[0].Resource)).toBe('arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/ec2-swarm/blue/*');
    const signal = st.find((s) => s.Action === 'cloudformation:SignalResource');
    expect(signal?.Resource).toEqual({ Ref: 'AWS::StackId' });
    expect(JSON.stringify(st)).not.toMatch(/"\*"|kms:/);
  });

  test('workers may read only the worker token and the manager address', () => {
    const { stack, json } = synth({ name: 'blue' });
    const names = parameterNames('blue');
    const st = policyOf(json, logicalIdOf(stack, stack.cluster.workerRole));
    const ssm = st.filter((s) => s.Effect === 'Allow' && [].concat(s.Action).some((a: string) => a.startsWith('ssm:')));
    const actions = ssm.flatMap((s) => [].concat(s.Action));
    expect(actions).toContain('ssm:GetParameter');
    for (const a of actions) expect(a).toMatch(/^ssm:(Get|Describe)/);
    const resources = ssm.flatMap((s) => [].concat(s.Resource)).map(text).sort();
    expect(resources).toEqual([arn(names.managerAddress), arn(names.workerToken)].sort());
    expect(JSON.stringify(st)).not.toContain('manager-token');
    expect(JSON.stringify(st)).not.toMatch(/kms:|ssm:Put|ssm:Delete/);
  });

  test('an explicit Deny overrides the SSM managed policy: workers can read no other parameter (manager token included)', () => {
    const { stack, json } = synth({ name: 'blue' });
    const names = parameterNames('blue');
    const st = policyOf(json, logicalIdOf(stack, stack.cluster.workerRole));
    const deny = st.filter((s) => s.Effect === 'Deny');
    expect(deny).toHaveLength(1);
    expect([].concat(deny[0].Action).sort()).toEqual(['ssm:GetParameter', 'ssm:GetParameterHistory', 'ssm:GetParameters', 'ssm:GetParametersByPath']);
    expect(deny[0].Resource).toBeUndefined();
    expect([].concat(deny[0].NotResource).map(text).sort()).toEqual([arn(names.managerAddress), arn(names.workerToken)].sort());
    // The manager keeps its reads: the Deny is on the worker role only.
    const managerSt = policyOf(json, logicalIdOf(stack, stack.cluster.managerRole));
    expect(managerSt.filter((s) => s.Effect === 'Deny')).toHaveLength(0);
  });

  test('stack deletion removes the three runtime parameters, after the nodes are gone', () => {
    const { stack, json } = synth({ name: 'blue' });
    const names = parameterNames('blue');
    const [[crId, cr]] = resourcesOfType(json, 'Custom::SwarmRuntimeParameterCleanup');
    const call = JSON.parse(cr.Properties.Delete);
    expect(call).toMatchObject({ service: 'SSM', action: 'deleteParameters' });
    expect(call.parameters.Names.sort()).toEqual([names.workerToken, names.managerToken, names.managerAddress].sort());
    expect(cr.Properties.Create).toBeUndefined(); // nothing happens at create/update
    expect(cr.Properties.Update).toBeUndefined();
    // Its handler may delete exactly those three.
    const handlerRole = logicalIdOf(stack, stack.cluster.parameterCleanup.grantPrincipal as any);
    const st = policyOf(json, handlerRole);
    expect(st.flatMap((s) => [].concat(s.Action))).toEqual(['ssm:DeleteParameters']);
    expect(st.flatMap((s) => [].concat(s.Resource)).map(text).sort()).toEqual(
      [arn(names.managerAddress), arn(names.managerToken), arn(names.workerToken)].sort(),
    );
    // Nodes depend on it: created before them, deleted after them.
    for (const type of ['AWS::EC2::Instance', 'AWS::AutoScaling::AutoScalingGroup']) {
      expect(resourcesOfType(json, type)[0][1].DependsOn).toContain(crId);
    }
  });
});

describe('secrets', () => {
  test('no join token anywhere in the template (user-data included)', () => {
    const { json } = synth({ workers: 2, publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }], loadBalancer: true });
    // Not even the prefix: the node scripts spell their patterns as S[W]MTKN so a plain grep of cdk.out stays empty.
    expect(JSON.stringify(json)).not.toMatch(/SWMTKN/);
  });
});

describe('outputs and tags', () => {
  test('outputs have the fixed logical ids of the contract', () => {
    const { stack, json } = synth({ name: 'blue' });
    expect(Object.keys(json.Outputs).sort()).toEqual(
      ['SwarmClusterName', 'SwarmManagerInstanceId', 'SwarmParameterPrefix', 'SwarmRegion', 'SwarmSessionCommand', 'SwarmWorkerGroupName'].sort(),
    );
    const manager = logicalIdOf(stack, stack.cluster.manager);
    expect(json.Outputs.SwarmClusterName.Value).toBe('blue');
    expect(json.Outputs.SwarmParameterPrefix.Value).toBe('/ec2-swarm/blue');
    expect(json.Outputs.SwarmManagerInstanceId.Value).toEqual({ Ref: manager });
    expect(json.Outputs.SwarmWorkerGroupName.Value).toEqual({ Ref: logicalIdOf(stack, stack.cluster.workers) });
    expect(text(json.Outputs.SwarmSessionCommand.Value)).toBe(`aws ssm start-session --target \${${manager}} --region \${AWS::Region}`);
    expect(stack.stackName).toBe('ec2-swarm-blue');
  });

  test('every node carries its cluster and role tags; shared resources say shared', () => {
    const { template } = synth({ name: 'blue' });
    const tag = (k: string, v: string) => Match.arrayWith([{ Key: k, Value: v }]);
    template.hasResourceProperties('AWS::EC2::Instance', { Tags: Match.arrayWith([{ Key: 'ec2-swarm:cluster', Value: 'blue' }, { Key: 'ec2-swarm:role', Value: 'manager' }]) });
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      Tags: Match.arrayWith([
        { Key: 'ec2-swarm:cluster', PropagateAtLaunch: true, Value: 'blue' },
        { Key: 'ec2-swarm:role', PropagateAtLaunch: true, Value: 'worker' },
      ]),
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { Tags: tag('ec2-swarm:role', 'shared') });
    template.hasResourceProperties('AWS::EC2::VPC', { Tags: tag('ec2-swarm:cluster', 'blue') });
    for (const type of ['AWS::IAM::Role', 'AWS::Lambda::Function', 'AWS::EC2::Subnet', 'AWS::EC2::InternetGateway']) {
      template.allResourcesProperties(type, { Tags: tag('ec2-swarm:cluster', 'blue') });
    }
    // Instances the group launches get the worker tags from the launch template too.
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        TagSpecifications: Match.arrayWith([{ ResourceType: 'instance', Tags: Match.arrayWith([{ Key: 'ec2-swarm:role', Value: 'worker' }]) }]),
      }),
    });
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
    t.hasResource('AWS::AutoScaling::AutoScalingGroup', {
      Properties: Match.objectLike({ MinSize: { Ref: 'Workers' }, MaxSize: { Ref: 'Workers' } }),
      CreationPolicy: { ResourceSignal: { Count: { Ref: 'Workers' }, Timeout: 'PT30M' } },
    });
    t.hasResourceProperties('AWS::EC2::Instance', { BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ VolumeSize: { Ref: 'Size' } }) })] });
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
