import { App, Stack, Token } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { workerCapacity } from '../../lib/cluster/worker-capacity';
import { extractUserData, type CfnTemplate } from '../../lib/lab/cloudformation/template';
import { ENV, groupOf, resourcesOfType, synth } from './helpers';

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
