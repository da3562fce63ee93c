/**
 * The node groups: managers and workers as Auto Scaling groups, their capacity, rolling updates, Spot, launch
 * templates and image. One test file for them (aws-cdk-lib loads once per file, ~1 CPU-s), one synth per
 * configuration (test/cluster/helpers.ts synth).
 */
import { App, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { SwarmStack } from '../../lib/cluster/swarm-stack';
import { workerCapacity } from '../../lib/cluster/worker-capacity';
import { parseClusterConfig } from '../../lib/config';
import { extractUserData, type CfnTemplate } from '../../lib/lab/cloudformation/template';
import { ENV, groupOf, resourcesOfType, synth, text } from './helpers';

describe('manager group', () => {
  test.each([1, 3, 5, 7])('%i managers: an Auto Scaling group of that size, one spare for the rolling update', (managers) => {
    const { json, template } = synth({ managers });
    template.resourceCountIs('AWS::EC2::Instance', 0);
    const { group } = groupOf(json, 'manager');
    expect(group.Properties).toMatchObject({
      AutoScalingGroupName: 'ec2-swarm-swarm-managers',
      MinSize: String(managers),
      DesiredCapacity: String(managers),
      MaxSize: String(managers + 1),
    });
    expect(group.CreationPolicy).toEqual({ ResourceSignal: { Count: managers, Timeout: 'PT15M' } });
    // One manager at a time; every manager stays in service until its replacement has signalled (joined).
    expect(group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({
      MaxBatchSize: 1,
      MinInstancesInService: managers,
      WaitOnResourceSignals: true,
      PauseTime: 'PT15M',
    });
    // CloudFormation requires MinInstancesInService < MaxSize.
    expect(group.UpdatePolicy.AutoScalingRollingUpdate.MinInstancesInService).toBeLessThan(Number(group.Properties.MaxSize));
  });

  test.each([3, 5])('%i managers are spread over the subnets of every AZ', (managers) => {
    const { json } = synth({ managers, maxAzs: 3 });
    const subnets: string[] = groupOf(json, 'manager').group.Properties.VPCZoneIdentifier.map((s: any) => s.Ref);
    expect(subnets).toHaveLength(3);
    const azs = subnets.map((id) => JSON.stringify(json.Resources[id].Properties.AvailabilityZone));
    expect(new Set(azs).size).toBe(3);
  });

  test('a changed node script or a new image release changes the launch template, never the group or its id', () => {
    const managerGroup = (extra: string) => {
      const app = new App({ context: packageCdkContext() });
      const scripts = { 'common.sh': `#!/bin/bash\n${extra}\n`, 'manager.sh': '#!/bin/bash\n', 'worker.sh': '#!/bin/bash\n' };
      const stack = new SwarmStack(app, undefined, { cluster: parseClusterConfig({ managers: 3 }), env: ENV, internals: { nodeScripts: scripts } });
      const json = Template.fromStack(stack).toJSON();
      const m = groupOf(json, 'manager');
      return { id: m.id, lt: m.launchTemplateId, props: m.group.Properties, userData: text(m.launchTemplate.Properties.LaunchTemplateData.UserData) };
    };
    const a = managerGroup('echo one');
    const b = managerGroup('echo two');
    expect(a.userData).not.toBe(b.userData);
    expect(b.id).toBe(a.id);
    expect(b.lt).toBe(a.lt);
    // Same group properties: the update is a new launch template version, rolled out by the update policy.
    expect(b.props).toEqual(a.props);
  });

  test('a terminating manager waits for the reconciler (demote while quorum holds): termination hook on the group', () => {
    const { template, json } = synth({ managers: 3 });
    template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
      AutoScalingGroupName: { Ref: groupOf(json, 'manager').id },
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      LifecycleHookName: 'ec2-swarm-drain',
      DefaultResult: 'CONTINUE',
      HeartbeatTimeout: 600,
    });
    expect(resourcesOfType(json, 'AWS::AutoScaling::LifecycleHook')).toHaveLength(2);
  });

  test('its instances carry the manager tags, from the group (propagated) and the launch template', () => {
    const { json } = synth({ name: 'blue', managers: 3 });
    const { group, launchTemplate } = groupOf(json, 'manager');
    expect(group.Properties.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'ec2-swarm:cluster', PropagateAtLaunch: true, Value: 'blue' },
        { Key: 'ec2-swarm:role', PropagateAtLaunch: true, Value: 'manager' },
      ]),
    );
    const instanceTags = launchTemplate.Properties.LaunchTemplateData.TagSpecifications.find((t: any) => t.ResourceType === 'instance').Tags;
    expect(instanceTags).toEqual(expect.arrayContaining([{ Key: 'ec2-swarm:role', Value: 'manager' }, { Key: 'ec2-swarm:cluster', Value: 'blue' }]));
  });

  test("the group is created after its role's policy (a manager uses it at first boot)", () => {
    const { stack, json } = synth();
    const { group } = groupOf(json, 'manager');
    const policy = stack.resolve((stack.cluster.managerRole.node.tryFindChild('DefaultPolicy')!.node.defaultChild as any).logicalId);
    expect(group.DependsOn).toContain(policy);
  });

  test('too few AZs for the managers is a synth warning naming the fix; enough AZs, or one manager, none', () => {
    const warnings = (input: Parameters<typeof synth>[0]) =>
      Annotations.fromStack(synth(input).stack).findWarning('*', Match.stringLikeRegexp('availability zone'));
    const few = warnings({ managers: 3, maxAzs: 2 });
    expect(few).toHaveLength(1);
    expect(JSON.stringify(few[0].entry.data)).toContain('3 managers in 2 availability zones: losing the AZ that holds 2 of them loses the quorum; use maxAzs 3');
    expect(warnings({ managers: 5, maxAzs: 2 })).toHaveLength(1);
    expect(warnings({ managers: 3, maxAzs: 3 })).toEqual([]);
    expect(warnings({ managers: 7, maxAzs: 3 })).toEqual([]);
    expect(warnings({ managers: 1, maxAzs: 1 })).toEqual([]);
  });
});

describe('worker group', () => {
  test('is an Auto Scaling group with a launch template, never a launch configuration; one spare for rolling updates', () => {
    const { template, json } = synth({ workers: 3 });
    template.resourceCountIs('AWS::EC2::LaunchTemplate', 2); // managers and workers
    template.resourceCountIs('AWS::AutoScaling::LaunchConfiguration', 0);
    const { group } = groupOf(json, 'worker');
    expect(group.Properties).toMatchObject({
      AutoScalingGroupName: 'ec2-swarm-swarm-workers',
      MinSize: '3',
      MaxSize: '4',
      DesiredCapacity: '3',
      LaunchTemplate: { LaunchTemplateId: { Ref: expect.any(String) }, Version: expect.anything() },
    });
  });

  test('CloudFormation waits for one signal per worker', () => {
    const { json } = synth({ workers: 7 });
    expect(groupOf(json, 'worker').group.CreationPolicy).toEqual({ ResourceSignal: { Count: 7, Timeout: 'PT30M' } });
  });

  test('launch-template changes roll one worker at a time, the new one signalled before an old one goes', () => {
    const { json } = synth({ workers: 4 });
    expect(groupOf(json, 'worker').group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({
      MaxBatchSize: 1,
      MinInstancesInService: 4,
      WaitOnResourceSignals: true,
      PauseTime: 'PT30M',
    });
  });

  test('1 and 1000 workers give the same resources and the same template size (but for the digits)', () => {
    const one = synth({ workers: 1 }).json;
    const many = synth({ workers: 1000 }).json;
    expect(Object.keys(many.Resources)).toEqual(Object.keys(one.Resources));
    const size = (j: unknown) => JSON.stringify(j).length;
    expect(Math.abs(size(many) - size(one))).toBeLessThan(20);
    expect(groupOf(many, 'worker').group.CreationPolicy.ResourceSignal.Count).toBe(1000);
  });

  test('0 workers: an empty group that expects no signals, outputs unchanged', () => {
    const { json } = synth({ workers: 0 });
    const { group } = groupOf(json, 'worker');
    expect(group.Properties).toMatchObject({ MinSize: '0', DesiredCapacity: '0' });
    expect(group.CreationPolicy).toBeUndefined();
    expect(Object.keys(json.Outputs)).toEqual(Object.keys(synth({ workers: 3 }).json.Outputs));
    // The managers still wait for their own signals.
    expect(groupOf(json, 'manager').group.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT15M' } });
  });

  test('a terminating worker waits for its drain: termination hook, CONTINUE by default, 10-minute heartbeat', () => {
    const { template, json } = synth();
    template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
      AutoScalingGroupName: { Ref: groupOf(json, 'worker').id },
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      LifecycleHookName: 'ec2-swarm-drain',
      DefaultResult: 'CONTINUE',
      HeartbeatTimeout: 600,
    });
    // Nothing receives the notices (the managers' reconciler polls): no topic, no queue, no role for the hook.
    for (const [, hook] of resourcesOfType(json, 'AWS::AutoScaling::LifecycleHook')) {
      expect(hook.Properties.NotificationTargetARN).toBeUndefined();
      expect(hook.Properties.RoleARN).toBeUndefined();
    }
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('AWS::SQS::Queue', 0);
  });

  test('the instances it launches carry the worker tags (group tags propagated, launch template tags)', () => {
    const { json } = synth({ name: 'blue' });
    const { group, launchTemplate } = groupOf(json, 'worker');
    expect(group.Properties.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'ec2-swarm:cluster', PropagateAtLaunch: true, Value: 'blue' },
        { Key: 'ec2-swarm:role', PropagateAtLaunch: true, Value: 'worker' },
      ]),
    );
    const instanceTags = launchTemplate.Properties.LaunchTemplateData.TagSpecifications.find((t: any) => t.ResourceType === 'instance').Tags;
    expect(instanceTags).toEqual(expect.arrayContaining([{ Key: 'ec2-swarm:role', Value: 'worker' }, { Key: 'ec2-swarm:cluster', Value: 'blue' }]));
  });
});

describe('worker capacity: min, desired, max', () => {
  test('a range: min and max as given, desired = workers, the rolling update keeps workers in service', () => {
    const { json } = synth({ workers: 3, minWorkers: 2, maxWorkers: 10 });
    const { group } = groupOf(json, 'worker');
    expect(group.Properties).toMatchObject({ MinSize: '2', DesiredCapacity: '3', MaxSize: '10' });
    expect(group.CreationPolicy).toEqual({ ResourceSignal: { Count: 3, Timeout: 'PT30M' } });
    expect(group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({ MaxBatchSize: 1, MinInstancesInService: 3, WaitOnResourceSignals: true });
  });

  test('max = workers still gets its spare slot for rolling updates; min alone lowers only the minimum', () => {
    const { json } = synth({ workers: 4, minWorkers: 1 });
    expect(groupOf(json, 'worker').group.Properties).toMatchObject({ MinSize: '1', DesiredCapacity: '4', MaxSize: '5' });
  });

  test('scaling policies attach to the group and keep the termination hook and the rolling update', () => {
    const stack = new Stack(new App({ context: packageCdkContext() }), 'S', { env: ENV });
    const cluster = new SwarmCluster(stack, 'Swarm', { workers: 2, minWorkers: 1, maxWorkers: 6 });
    cluster.workers.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
    const json = Template.fromStack(stack).toJSON();
    const { id, group } = groupOf(json, 'worker');
    const policies = resourcesOfType(json, 'AWS::AutoScaling::ScalingPolicy');
    expect(policies).toHaveLength(1);
    expect(policies[0][1].Properties).toMatchObject({ AutoScalingGroupName: { Ref: id }, PolicyType: 'TargetTrackingScaling' });
    expect(resourcesOfType(json, 'AWS::AutoScaling::LifecycleHook').some(([, h]) => h.Properties.AutoScalingGroupName.Ref === id)).toBe(true);
    expect(group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({ MaxBatchSize: 1, MinInstancesInService: 2, WaitOnResourceSignals: true, PauseTime: 'PT30M' });
    expect(group.Properties).toMatchObject({ MinSize: '1', DesiredCapacity: '2', MaxSize: '6' });
  });

  test.each([
    [{ workers: 3, minWorkers: 4 }, 'minWorkers', /at most workers \(3\)/],
    [{ workers: 3, maxWorkers: 2 }, 'maxWorkers', /at least workers \(3\)/],
    [{ workers: 3, maxWorkers: 1001 }, 'maxWorkers', /0 to 1000/],
  ])('%j is refused, naming %s', (input, field, message) => {
    expect(() => synth(input)).toThrow(new RegExp(`${message.source}[\\s\\S]*→ at ${field}`));
  });

  test('pure sizing: spare slot, range, zero, tokens', () => {
    expect(workerCapacity({ workers: 3 })).toEqual({ minCapacity: 3, desiredCapacity: 3, maxCapacity: 4, minInstancesInService: 3, expectsSignals: true });
    expect(workerCapacity({ workers: 3, minWorkers: 0, maxWorkers: 9 })).toEqual({ minCapacity: 0, desiredCapacity: 3, maxCapacity: 9, minInstancesInService: 3, expectsSignals: true });
    expect(workerCapacity({ workers: 0 })).toMatchObject({ maxCapacity: 1, expectsSignals: false });
    const t = Token.asNumber({ Ref: 'W' });
    expect(workerCapacity({ workers: t })).toEqual({ minCapacity: t, desiredCapacity: t, maxCapacity: t, expectsSignals: true });
    expect(workerCapacity({ workers: 2, maxWorkers: t }).minInstancesInService).toBeUndefined();
  });
});

describe('several instance types and Spot', () => {
  test('workerInstanceTypes: a mixed instances policy, On-Demand in the listed priority, launch template of the first', () => {
    const { json } = synth({ workerInstanceTypes: ['m7i.large', 'm6i.large', 'm5.large'] });
    const { group, launchTemplateId, launchTemplate } = groupOf(json, 'worker');
    expect(group.Properties.LaunchTemplate).toBeUndefined();
    expect(group.Properties.MixedInstancesPolicy).toEqual({
      LaunchTemplate: {
        LaunchTemplateSpecification: { LaunchTemplateId: { Ref: launchTemplateId }, Version: expect.anything() },
        Overrides: [{ InstanceType: 'm7i.large' }, { InstanceType: 'm6i.large' }, { InstanceType: 'm5.large' }],
      },
      InstancesDistribution: { OnDemandAllocationStrategy: 'prioritized', OnDemandPercentageAboveBaseCapacity: 100 },
    });
    expect(launchTemplate.Properties.LaunchTemplateData.InstanceType).toBe('m7i.large');
    expect(group.Properties.CapacityRebalance).toBeUndefined();
    // Managers keep their plain launch template.
    expect(groupOf(json, 'manager').group.Properties.MixedInstancesPolicy).toBeUndefined();
  });

  test('workerSpot: the distribution as given, capacity rebalancing on, signals, hook and rolling update unchanged', () => {
    const { json } = synth({ workers: 4, workerInstanceTypes: ['t3.large', 't3a.large'], workerSpot: { onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 25 } });
    const { id, group } = groupOf(json, 'worker');
    expect(group.Properties.MixedInstancesPolicy.InstancesDistribution).toEqual({
      OnDemandAllocationStrategy: 'prioritized',
      OnDemandBaseCapacity: 1,
      OnDemandPercentageAboveBaseCapacity: 25,
      SpotAllocationStrategy: 'price-capacity-optimized',
    });
    expect(group.Properties.CapacityRebalance).toBe(true);
    expect(group.CreationPolicy).toEqual({ ResourceSignal: { Count: 4, Timeout: 'PT30M' } });
    expect(group.UpdatePolicy.AutoScalingRollingUpdate).toMatchObject({ MaxBatchSize: 1, MinInstancesInService: 4, WaitOnResourceSignals: true });
    expect(resourcesOfType(json, 'AWS::AutoScaling::LifecycleHook').filter(([, h]) => h.Properties.AutoScalingGroupName.Ref === id)).toHaveLength(1);

    // The lab runs this group as AWS would: instances from the policy's launch template, with its user-data.
    const refs: Record<string, string> = {};
    for (const [rid, r] of Object.entries(json.Resources as Record<string, { Type: string; Properties?: { AutoScalingGroupName?: string } }>)) {
      refs[rid] = r.Properties?.AutoScalingGroupName ?? `lab-${rid.toLowerCase()}`;
    }
    for (const pid of Object.keys(json.Parameters ?? {})) refs[pid] = `lab-parameter-${pid}`;
    const lab = extractUserData(json as CfnTemplate, { stackName: 'ec2-swarm-swarm', region: 'eu-west-1', accountId: ENV.account, refs, attributeFallback: (r, a) => `lab-${r}-${a}` });
    const ltId = group.Properties.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId.Ref;
    expect(lab.worker?.group?.launchTemplate.logicalId).toBe(ltId);
    expect(lab.worker?.script).toContain('bash /opt/ec2-swarm/worker.sh');
    expect(lab.worker?.script).toContain(`--resource ${id} `);
    expect(lab.worker?.group?.mixedInstancesPolicy).toEqual({ instanceTypes: ['t3.large', 't3a.large'], onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 25 });
  });

  test('workerSpot alone: Spot of the one worker type', () => {
    const { json } = synth({ workerInstanceType: 'c7g.large', workerSpot: {} });
    const mixed = groupOf(json, 'worker').group.Properties.MixedInstancesPolicy;
    expect(mixed.LaunchTemplate.Overrides).toEqual([{ InstanceType: 'c7g.large' }]);
    expect(mixed.InstancesDistribution).toMatchObject({ OnDemandBaseCapacity: 0, OnDemandPercentageAboveBaseCapacity: 0 });
  });

  test.each([
    [{ workerInstanceTypes: ['t3.large', 't4g.large'] }, 'workerInstanceTypes', /t4g\.large is arm64 but t3\.large is x86_64/],
    [{ workerInstanceTypes: ['t3.large', 't3.large'] }, 'workerInstanceTypes[1]', /listed twice/],
    [{ workerInstanceTypes: [] }, 'workerInstanceTypes', /at least one/],
    [{ workerInstanceType: 't3.small', workerInstanceTypes: ['m5.large'] }, 'workerInstanceTypes', /either workerInstanceType or workerInstanceTypes/],
    [{ workerSpot: { onDemandPercentageAboveBaseCapacity: 101 } }, 'workerSpot.onDemandPercentageAboveBaseCapacity', /100/],
    [{ workerSpot: { allocationStrategy: 'cheapest' } }, 'workerSpot.allocationStrategy', /price-capacity-optimized/],
  ])('%j is refused, naming %s', (input, field, message) => {
    expect(() => synth(input as never)).toThrow(new RegExp(`${message.source}[\\s\\S]*→ at ${field.replace(/[[\].]/g, '\\$&')}`));
  });
});

describe('both launch templates', () => {
  test('IMDSv2 only, hop limit 1', () => {
    const { json } = synth({ managers: 3 });
    const lts = resourcesOfType(json, 'AWS::EC2::LaunchTemplate');
    expect(lts).toHaveLength(2);
    for (const [, lt] of lts) expect(lt.Properties.LaunchTemplateData.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  test('root volumes are encrypted gp3 of rootVolumeGiB', () => {
    const { json } = synth({ rootVolumeGiB: 42 });
    const mappings = resourcesOfType(json, 'AWS::EC2::LaunchTemplate').map(([, r]) => r.Properties.LaunchTemplateData.BlockDeviceMappings);
    expect(mappings).toHaveLength(2);
    for (const m of mappings) {
      expect(m).toEqual([{ DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 42, VolumeType: 'gp3' } }]);
    }
  });

  test('no key pair anywhere', () => {
    const { json } = synth();
    expect(JSON.stringify(json)).not.toMatch(/KeyName|KeyPair/);
  });

  test('each uses its own role through an instance profile', () => {
    const { stack, json } = synth();
    const profiles = resourcesOfType(json, 'AWS::IAM::InstanceProfile').map(([, p]) => p.Properties.Roles[0].Ref).sort();
    const roles = [stack.cluster.managerRole, stack.cluster.workerRole].map((r) => stack.resolve((r.node.defaultChild as any).logicalId)).sort();
    expect(profiles).toEqual(roles);
  });
});

const AL2023_X86 = 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64';
const AL2023_ARM = 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64';
const imageOf = (json: Record<string, any>, role: 'manager' | 'worker') => groupOf(json, role).launchTemplate.Properties.LaunchTemplateData.ImageId;

describe('node image', () => {
  test('Amazon Linux 2023 for the instance type architecture, resolved by EC2 at launch: a constant string', () => {
    const { json } = synth({ managerInstanceType: 't3.small', workerInstanceType: 'm7g.large' });
    expect(imageOf(json, 'manager')).toBe(AL2023_X86);
    expect(imageOf(json, 'worker')).toBe(AL2023_ARM);
    // No deploy-time lookup: no SSM-typed template parameter CloudFormation would resolve at every deploy.
    const ssmParameters = Object.entries<any>(json.Parameters ?? {}).filter(([, p]) => String(p.Default).includes('ami-amazon-linux'));
    expect(ssmParameters).toEqual([]);
  });

  test('a newer AL2023 release (other lookup values in context) changes neither the template nor any ImageId', () => {
    // What a CDK app would see after a release: cached AMI lookups and SSM context values pointing at a new image.
    const newer = {
      'ssm:account=123456789012:parameterName=/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64:region=eu-west-1': 'ami-0fffffffffffffff0',
      'ami:account=123456789012:filters.image-type.0=machine:region=eu-west-1': 'ami-0fffffffffffffff1',
    };
    const before = synth({ managers: 3 }).json;
    const after = synth({ managers: 3 }, newer).json;
    expect(imageOf(after, 'manager')).toBe(AL2023_X86);
    expect(after).toEqual(before);
  });

  test('an explicit ami stays a literal id in both launch templates', () => {
    const { json } = synth({ ami: 'ami-0123456789abcdef0', managers: 3 });
    expect(imageOf(json, 'manager')).toBe('ami-0123456789abcdef0');
    expect(imageOf(json, 'worker')).toBe('ami-0123456789abcdef0');
  });
});
