import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmStack } from '../../lib/cluster/swarm-stack';
import { parseClusterConfig } from '../../lib/config';
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
