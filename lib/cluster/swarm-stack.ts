/**
 * SwarmStack: one SwarmCluster (construct id `Swarm`, so its outputs are `SwarmClusterName`, …), named `ec2-swarm-<name>`, in the
 * account and region the CDK CLI resolved (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION).
 */
import { Aspects, CfnResource, IAspect, Stack, StackProps, TagManager, Tags } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { Construct } from 'constructs';
import { ClusterConfig } from '../config';
import { SwarmCluster, SwarmClusterInternals, TAG_CLUSTER, TAG_ROLE } from './swarm-cluster';

/** The stack name for a cluster: ops find the stack by it. */
export function swarmStackName(clusterName: string): string {
  return `ec2-swarm-${clusterName}`;
}

/** Types whose CloudFormation schema takes `Tags` as a list, created by aws-cdk-lib as raw CfnResources. */
const RAW_TAGGABLE_TYPES = new Set(['AWS::IAM::Role', 'AWS::Lambda::Function']);

/**
 * Tags.of() skips raw CfnResources (e.g. the handler of the VPC's restrict-default-security-group custom
 * resource); this writes the same tags onto them, so every resource names its cluster.
 */
class TagRawResources implements IAspect {
  constructor(private readonly tags: Record<string, string>) {}
  visit(node: IConstruct): void {
    if (node instanceof CfnResource && RAW_TAGGABLE_TYPES.has(node.cfnResourceType) && !TagManager.isTaggable(node)) {
      node.addPropertyOverride(
        'Tags',
        Object.entries(this.tags).map(([Key, Value]) => ({ Key, Value })),
      );
    }
  }
}

export interface SwarmStackProps extends StackProps {
  /** The validated cluster configuration (`configFromContext` / `parseClusterConfig`). */
  readonly cluster: ClusterConfig;
  /** @default - none */
  readonly internals?: SwarmClusterInternals;
}

export class SwarmStack extends Stack {
  public readonly cluster: SwarmCluster;

  /** `id` defaults to the stack name `ec2-swarm-<name>`. */
  constructor(scope: Construct, id: string | undefined, props: SwarmStackProps) {
    const { cluster, internals, ...stackProps } = props;
    const name = swarmStackName(cluster.name);
    super(scope, id ?? name, {
      stackName: name,
      description: `ec2-swarm: Docker Swarm "${cluster.name}" on EC2 (manager and worker Auto Scaling groups)`,
      ...stackProps,
      // Vpc.fromLookup (vpcId) needs a concrete environment; without CDK_DEFAULT_* the stack is environment-agnostic.
      env: stackProps.env ?? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    });
    this.cluster = new SwarmCluster(this, 'Swarm', cluster, internals);
    // Stack-level resources too (the custom resources' handlers): every resource names its cluster.
    Tags.of(this).add(TAG_CLUSTER, cluster.name);
    Tags.of(this).add(TAG_ROLE, 'shared');
    Aspects.of(this).add(new TagRawResources({ [TAG_CLUSTER]: cluster.name, [TAG_ROLE]: 'shared' }));
  }
}
