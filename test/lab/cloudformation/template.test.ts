import { CfnTemplate, extractUserData, resolveIntrinsics, resolveOutputs } from '../../../lib/lab/cloudformation/template';
import { SwarmError } from '../../../lib/errors';

const values = {
  stackName: 'ec2-swarm-demo',
  region: 'us-east-1',
  accountId: '123456789012',
  refs: { Manager: 'i-0123456789abcdef0', Workers: 'demo-workers', WorkerLt: 'lt-0abc' },
  attributes: { 'Manager.PrivateIp': '192.168.240.10' },
};

const b64 = (s: unknown) => ({ 'Fn::Base64': s });

const template: CfnTemplate = {
  Resources: {
    Manager: {
      Type: 'AWS::EC2::Instance',
      Properties: {
        Tags: [{ Key: 'ec2-swarm:role', Value: 'manager' }],
        UserData: b64({ 'Fn::Join': ['', ['#!/bin/bash\n/opt/aws/bin/cfn-signal --stack ', { Ref: 'AWS::StackName' }, ' --resource Manager --region ', { Ref: 'AWS::Region' }, "\necho 'it''s'\n"]] }),
      },
    },
    WorkerLt: {
      Type: 'AWS::EC2::LaunchTemplate',
      Properties: { LaunchTemplateData: { UserData: b64({ 'Fn::Sub': '#!/bin/bash\necho ${AWS::StackName}\n' }) } },
    },
    Workers: {
      Type: 'AWS::AutoScaling::AutoScalingGroup',
      Properties: {
        LaunchTemplate: { LaunchTemplateId: { Ref: 'WorkerLt' }, Version: { 'Fn::GetAtt': ['WorkerLt', 'LatestVersionNumber'] } },
        Tags: [{ Key: 'ec2-swarm:role', Value: 'worker', PropagateAtLaunch: true }],
      },
    },
  },
  Outputs: {
    SwarmManagerInstanceId: { Value: { Ref: 'Manager' } },
    SwarmRegion: { Value: { Ref: 'AWS::Region' } },
  },
};

describe('resolving intrinsic functions against lab values', () => {
  test('manager user-data: Fn::Base64 of Fn::Join with pseudo parameters, decoded byte for byte', () => {
    const ud = extractUserData(template, values);
    expect(ud.manager.logicalId).toBe('Manager');
    expect(ud.manager.script).toBe("#!/bin/bash\n/opt/aws/bin/cfn-signal --stack ec2-swarm-demo --resource Manager --region us-east-1\necho 'it''s'\n");
  });

  test('worker user-data comes from the group\'s launch template; Fn::Sub handles GetAtt and ${!Literal}', () => {
    const t = JSON.parse(JSON.stringify(template));
    t.Resources.WorkerLt.Properties.LaunchTemplateData.UserData = b64({ 'Fn::Sub': ['#!/bin/bash\necho ${AWS::StackName} ${Manager.PrivateIp} ${!Literal} ${X}\n', { X: { Ref: 'Workers' } }] });
    const ud = extractUserData(t, values);
    expect(ud.worker?.logicalId).toBe('Workers');
    expect(ud.worker?.script).toBe('#!/bin/bash\necho ec2-swarm-demo 192.168.240.10 ${Literal} demo-workers\n');
  });

  test('a Ref the lab cannot answer is an error naming it, not a silent empty string', () => {
    expect(() => resolveIntrinsics({ Ref: 'Nope' }, values)).toThrow(/Ref Nope/);
  });

  test('an unsupported intrinsic is an error naming it', () => {
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'x' }, values)).toThrow(SwarmError);
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'x' }, values)).toThrow(/Fn::ImportValue/);
  });

  test('Fn::Select and Fn::Split', () => {
    expect(resolveIntrinsics({ 'Fn::Select': [1, { 'Fn::Split': [',', 'a,b,c'] }] }, values)).toBe('b');
  });

  test('a template without a worker group yields only the manager', () => {
    const t = JSON.parse(JSON.stringify(template));
    delete t.Resources.Workers;
    expect(extractUserData(t, values).worker).toBeUndefined();
  });

  test('a worker group with a launch configuration is refused', () => {
    const t = JSON.parse(JSON.stringify(template));
    t.Resources.Workers.Properties.LaunchTemplate = undefined;
    t.Resources.Workers.Properties.LaunchConfigurationName = { Ref: 'Lc' };
    expect(() => extractUserData(t, values)).toThrow(/launch configurations are not supported/);
  });

  describe('a worker group with a mixed instances policy (several types, Spot)', () => {
    const mixed = (policy: Record<string, unknown>) => {
      const t = JSON.parse(JSON.stringify(template));
      const lt = t.Resources.Workers.Properties.LaunchTemplate;
      delete t.Resources.Workers.Properties.LaunchTemplate;
      t.Resources.WorkerLt.Properties.LaunchTemplateData.InstanceType = 't3.small';
      t.Resources.Workers.Properties.MixedInstancesPolicy = { LaunchTemplate: { LaunchTemplateSpecification: lt, ...policy } };
      return t;
    };

    test("starts from the policy's launch template: its user-data, the overrides' types in order, the distribution", () => {
      const t = mixed({ Overrides: [{ InstanceType: 't3.large' }, { InstanceType: 't3a.large' }] });
      t.Resources.Workers.Properties.MixedInstancesPolicy.InstancesDistribution = { OnDemandBaseCapacity: 1, OnDemandPercentageAboveBaseCapacity: 25, SpotAllocationStrategy: 'price-capacity-optimized' };
      const ud = extractUserData(t, values);
      expect(ud.worker?.script).toBe('#!/bin/bash\necho ec2-swarm-demo\n');
      expect(ud.worker?.group?.launchTemplate).toEqual({ logicalId: 'WorkerLt', id: 'lt-0abc' });
      expect(ud.worker?.group?.mixedInstancesPolicy).toEqual({ instanceTypes: ['t3.large', 't3a.large'], onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 25 });
    });

    test("without overrides or a distribution: the launch template's type, all On-Demand (AWS's defaults)", () => {
      expect(extractUserData(mixed({}), values).worker?.group?.mixedInstancesPolicy).toEqual({ instanceTypes: ['t3.small'], onDemandBaseCapacity: 0, onDemandPercentageAboveBaseCapacity: 100 });
    });

    test('an override with a launch template of its own, or LaunchTemplate beside the policy, is refused by name', () => {
      const own = mixed({ Overrides: [{ InstanceType: 't3.large' }, { InstanceType: 'c7g.large', LaunchTemplateSpecification: { LaunchTemplateId: { Ref: 'ArmLt' } } }] });
      expect(() => extractUserData(own, values)).toThrow(/group Workers: MixedInstancesPolicy override 1 has its own launch template/);
      const both = mixed({});
      both.Resources.Workers.Properties.LaunchTemplate = template.Resources.Workers.Properties!.LaunchTemplate;
      expect(() => extractUserData(both, values)).toThrow(/group Workers has both LaunchTemplate and MixedInstancesPolicy/);
    });
  });

  test('outputs resolve into the cdk deploy --outputs-file shape', () => {
    expect(resolveOutputs(template, values)).toEqual({
      'ec2-swarm-demo': { SwarmManagerInstanceId: 'i-0123456789abcdef0', SwarmRegion: 'us-east-1' },
    });
  });
});
