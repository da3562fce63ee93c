/** The launch template both node groups share the shape of: image, role, IMDSv2 only, encrypted gp3 root volume. */
import { Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { nodeMachineImage } from './machine-image';

/** Root device of Amazon Linux 2023. */
export const ROOT_DEVICE = '/dev/xvda';

export interface NodeLaunchTemplateProps {
  readonly instanceType: string;
  /** @default - Amazon Linux 2023, resolved at launch */
  readonly ami?: string;
  /** Takes precedence over `ami`. @default - see `ami` */
  readonly machineImage?: ec2.IMachineImage;
  readonly rootVolumeGiB: number;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly role: iam.IRole;
  readonly userData: ec2.UserData;
}

// An explicit launch template: AWS offers launch configurations to no new account, and the template is the same
// for 1 or 1000 nodes.
export function nodeLaunchTemplate(scope: Construct, id: string, props: NodeLaunchTemplateProps): ec2.LaunchTemplate {
  const instanceType = new ec2.InstanceType(props.instanceType);
  const template = new ec2.LaunchTemplate(scope, id, {
    instanceType,
    machineImage: props.machineImage ?? nodeMachineImage(props.ami, instanceType),
    securityGroup: props.securityGroup,
    role: props.role,
    userData: props.userData,
    // IMDSv2 only; hop limit 1 keeps containers (one hop further) away from the node's credentials.
    httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
    httpPutResponseHopLimit: 1,
    blockDevices: [
      {
        deviceName: ROOT_DEVICE,
        volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
      },
    ],
  });
  if (!props.ami && !props.machineImage) {
    // Older aws-cdk-lib releases (2.269 among those our peer range allows) flag the `resolve:ssm:` ImageId as an
    // invalid AMI id; CloudFormation resolves it at launch, which is what keeps an AMI release from replacing nodes.
    Validations.of(template).acknowledge({
      id: 'CloudFormation-Validate::E1152',
      reason: 'ImageId is a resolve:ssm: reference to the public Amazon Linux 2023 parameter, valid in launch templates and resolved at launch.',
    });
  }
  return template;
}
