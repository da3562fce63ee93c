/**
 * Deletes the runtime SSM parameters when the stack is deleted: the nodes write them at run time, so
 * CloudFormation does not own them. Created before and deleted after the nodes (they depend on it).
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { parameterNames } from '../config';

/** aws-cdk-lib's fixed id of the AwsCustomResource handler (one per stack). */
const CUSTOM_RESOURCE_SINGLETON_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

export class RuntimeParameterCleanup extends Construct {
  public readonly resource: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: { readonly clusterName: string }) {
    super(scope, id);
    const stack = Stack.of(this);
    const names = Object.values(parameterNames(props.clusterName));
    this.resource = new cr.AwsCustomResource(this, 'Resource', {
      resourceType: 'Custom::SwarmRuntimeParameterCleanup',
      installLatestAwsSdk: false,
      // DeleteParameters reports missing names in InvalidParameters instead of failing, so deleting a stack whose
      // managers never published anything succeeds.
      onDelete: {
        service: 'SSM',
        action: 'deleteParameters',
        parameters: { Names: names },
        ignoreErrorCodesMatching: 'ParameterNotFound',
      },
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({
        resources: names.map((n) => stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: n.slice(1) })),
      }),
    });
    // The custom resources' singleton Lambda lives at stack level.
    const handler = stack.node.tryFindChild(CUSTOM_RESOURCE_SINGLETON_ID);
    if (handler) {
      Validations.of(handler).acknowledge(
        {
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          reason: 'The AWS-maintained minimum for a Lambda function to write its own logs (CDK AwsCustomResource handler).',
        },
        {
          id: 'AwsSolutions-L1',
          reason: 'The runtime of the AwsCustomResource handler is chosen by aws-cdk-lib and moves with its upgrades.',
        },
      );
    }
  }
}
