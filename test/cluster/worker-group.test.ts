import { groupOf, resourcesOfType, synth } from './helpers';

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
