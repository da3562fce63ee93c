/**
 * SwarmStack: one SwarmCluster per stack (the outputs' logical ids are fixed), named `ec2-swarm-<name>`, in the
 * account and region the CDK CLI resolved (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION).
 */
import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ClusterConfig } from '../config';
import { SwarmCluster, SwarmClusterInternals } from './swarm-cluster';

/** The stack name for a cluster: ops find the stack by it. */
export function swarmStackName(clusterName: string): string {
  return `ec2-swarm-${clusterName}`;
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
      description: `ec2-swarm: Docker Swarm "${cluster.name}" on EC2 (manager instance, worker Auto Scaling Group)`,
      ...stackProps,
      // Vpc.fromLookup (vpcId) needs a concrete environment; without CDK_DEFAULT_* the stack is environment-agnostic.
      env: stackProps.env ?? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    });
    this.cluster = new SwarmCluster(this, 'Cluster', cluster, internals);
  }
}
