import { resourcesOfType, synth } from './helpers';

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
