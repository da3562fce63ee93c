import { groupOf, synth } from './helpers';

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
