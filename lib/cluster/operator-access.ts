/**
 * What `ec2-swarm` ops need from AWS to operate one cluster, and nothing more (`SwarmCluster.grantOperate`).
 * The list follows the calls in lib/ops:
 * - ssm-runner.ts: SendCommand (document AWS-RunShellScript, on the cluster's instances), GetCommandInvocation,
 *   CancelCommand (after a timeout), DescribeInstanceInformation (agent ping status);
 * - cloud-api.ts: DescribeInstanceInformation (nodes by tag), DeleteParameters (teardown, the runtime parameters);
 * - cluster-locator.ts: CloudFormation DescribeStacks (outputs, with `--stack`);
 * - compose/staging.ts: PutObject and DeleteObject in the staging bucket (StagingBucket.grantStage).
 * `teardown --destroy` also runs `cdk destroy`, which needs the deployment's own rights: not granted here.
 */
import { Aws, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { parameterNames } from '../config';
import { TAG_CLUSTER } from './node-group';
import { parameterArn } from './roles';
import type { StagingBucket } from './staging-bucket';

/** The one SSM document ops run. */
export const RUN_COMMAND_DOCUMENT = 'AWS-RunShellScript';

/** SSM actions without resource-level permissions (IAM service authorization reference): `*` only. */
export const OPERATE_UNSCOPED_ACTIONS = ['ssm:DescribeInstanceInformation', 'ssm:GetCommandInvocation', 'ssm:CancelCommand'];

export interface OperatorAccessProps {
  readonly clusterName: string;
  readonly stagingBucket: StagingBucket;
}

/** Grants a principal what ops need on one cluster. */
export function grantOperate(scope: Construct, grantee: iam.IGrantable, props: OperatorAccessProps): iam.Grant {
  const stack = Stack.of(scope);
  const instances = `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:instance/*`;
  const document = `arn:${Aws.PARTITION}:ssm:${Aws.REGION}::document/${RUN_COMMAND_DOCUMENT}`;
  // Scripts run only on instances tagged with this cluster (every node carries the tag from its group).
  const run = iam.Grant.addToPrincipal({
    grantee,
    actions: ['ssm:SendCommand'],
    resourceArns: [instances],
    conditions: { StringEquals: { [`ssm:resourceTag/${TAG_CLUSTER}`]: props.clusterName } },
  });
  const doc = iam.Grant.addToPrincipal({ grantee, actions: ['ssm:SendCommand'], resourceArns: [document] });
  const follow = iam.Grant.addToPrincipal({ grantee, actions: OPERATE_UNSCOPED_ACTIONS, resourceArns: ['*'] });
  const teardown = iam.Grant.addToPrincipal({
    grantee,
    actions: ['ssm:DeleteParameters'],
    resourceArns: Object.values(parameterNames(props.clusterName)).map(parameterArn),
  });
  const stackArn = `arn:${Aws.PARTITION}:cloudformation:${Aws.REGION}:${Aws.ACCOUNT_ID}:stack/${stack.stackName}/*`;
  const outputs = iam.Grant.addToPrincipal({ grantee, actions: ['cloudformation:DescribeStacks'], resourceArns: [stackArn] });
  const stage = props.stagingBucket.grantStage(grantee);

  const principal = grantee.grantPrincipal;
  if (principal instanceof Construct) {
    Validations.of(principal).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: `${OPERATE_UNSCOPED_ACTIONS.join(', ')} support no resource-level permissions; the commands they follow can only target the cluster's instances.`,
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason: `ssm:SendCommand only on instances tagged ${TAG_CLUSTER}=${props.clusterName} (condition ssm:resourceTag), with the ${RUN_COMMAND_DOCUMENT} document only.`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/${stack.stackName}/*]`,
        reason: "The stack's id suffix is assigned at creation; the name pins it to the cluster's stack.",
      },
    );
  }
  return run.combine(doc).combine(follow).combine(teardown).combine(outputs).combine(stage);
}
