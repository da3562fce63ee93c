/**
 * The nodes' image. Amazon Linux 2023 is resolved by EC2 at each instance launch (`resolve:ssm:` in the launch
 * template), never by CloudFormation at deploy time: an AMI release then changes no template and replaces no
 * manager (docs/round2-contracts.md). New instances (replacements, scale-out) start from the newest image.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';

/** Public SSM parameters of the latest Amazon Linux 2023 images, per CPU architecture. */
export const AL2023_IMAGE_PARAMETERS = {
  x86_64: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64',
  arm64: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64',
} as const;

/** An AMI given by id: the same image in the stack's region, whatever that is. */
class FixedLinuxImage implements ec2.IMachineImage {
  constructor(private readonly imageId: string) {}
  getImage(): ec2.MachineImageConfig {
    return { imageId: this.imageId, osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() };
  }
}

/** The explicit `ami` as a literal id, else AL2023 for the instance type's architecture, resolved at launch. */
export function nodeMachineImage(ami: string | undefined, instanceType: ec2.InstanceType): ec2.IMachineImage {
  if (ami) return new FixedLinuxImage(ami);
  const arch = instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? 'arm64' : 'x86_64';
  return ec2.MachineImage.resolveSsmParameterAtLaunch(AL2023_IMAGE_PARAMETERS[arch], { os: ec2.OperatingSystemType.LINUX });
}
