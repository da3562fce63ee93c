/** What the manager and the worker groups share: the termination hook, tags, and the acknowledgements both need. */
import { Duration, Tags, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { ClusterConfig } from '../config';
import type { Construct } from 'constructs';
import type { NodeUserData } from './node-user-data';
import type { NodeScripts } from './user-data';

/** What a node group (managers or workers) is built from. */
export interface NodeGroupProps {
  readonly config: ClusterConfig;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly role: iam.IRole;
  /** The join tokens' key (SWARM_KMS_KEY_ID). */
  readonly kmsKeyId: string;
  /** @default - `config.ami`, else Amazon Linux 2023 resolved at launch */
  readonly machineImage?: ec2.IMachineImage;
  /** @default - read from `<package root>/scripts/node` at synth time */
  readonly scripts?: NodeScripts;
}

export const TAG_CLUSTER = 'ec2-swarm:cluster';
export const TAG_ROLE = 'ec2-swarm:role';
/** The termination hook's name on both groups: the reconciler completes it (docs/round2-contracts.md). */
export const TERMINATION_HOOK_NAME = 'ec2-swarm-drain';
/** How long a terminating node may take to drain before Auto Scaling continues anyway. */
export const TERMINATION_HEARTBEAT = Duration.minutes(10);

/**
 * A terminating instance waits in `Terminating:Wait` until the managers' reconciler has drained it (and demoted
 * a manager while quorum holds) and completes the action, or the heartbeat runs out (CONTINUE either way: a node
 * is never kept alive by a failed drain).
 */
export function addTerminationHook(group: autoscaling.AutoScalingGroup): autoscaling.LifecycleHook {
  return group.addLifecycleHook('Terminating', {
    lifecycleHookName: TERMINATION_HOOK_NAME,
    lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
    defaultResult: autoscaling.DefaultResult.CONTINUE,
    heartbeatTimeout: TERMINATION_HEARTBEAT,
  });
}

/** Role tags on the group (propagated at launch) and on the launch template's instances and volumes. */
export function tagRole(group: autoscaling.AutoScalingGroup, launchTemplate: ec2.LaunchTemplate, role: 'manager' | 'worker'): void {
  Tags.of(group).add(TAG_ROLE, role, { priority: 200, applyToLaunchedInstances: true });
  Tags.of(launchTemplate).add(TAG_ROLE, role, { priority: 200 });
}

export function acknowledgeGroupFindings(group: autoscaling.AutoScalingGroup, sizeReason: string): void {
  Validations.of(group).acknowledge(
    {
      id: 'AwsSolutions-AS3',
      reason: 'Scaling events are visible in the Auto Scaling activity history; no notification topic is needed for a fixed-size group.',
    },
    { id: 'Annotation::@aws-cdk/aws-autoscaling:desiredCapacitySet', reason: sizeReason },
  );
}

export function acknowledgeExplicitAmi(launchTemplate: ec2.LaunchTemplate): void {
  Validations.of(launchTemplate).acknowledge({
    id: 'CloudFormation-Validate::W9010',
    reason: 'The AMI id is the explicit `ami` or `machineImage` setting: the user chose this image for this region.',
  });
}

/** Fails synthesis when the group's user-data has grown over EC2's limit, naming the call that did it. */
export function checkUserDataSize(group: Construct, userData: NodeUserData): void {
  group.node.addValidation({ validate: () => userData.validate(group) });
}
