/**
 * The workers: an Auto Scaling group of `workers` instances (between `minWorkers` and `maxWorkers` for scaling
 * policies), On-Demand of one type or, with `workerInstanceTypes` / `workerSpot`, a mixed instances policy.
 * Launch-template changes reach running workers through a rolling update, one at a time, each new worker joined
 * (signalled) before an old one is drained and goes.
 */
import { Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { autoScalingGroupNames, ClusterConfig } from '../config';
import { SwarmError } from '../errors';
import { nodeLaunchTemplate } from './launch-template';
import { type NodeGroupProps, acknowledgeExplicitAmi, acknowledgeGroupFindings, addTerminationHook, checkUserDataSize, tagRole, TERMINATION_HOOK_NAME } from './node-group';
import { NodeUserData } from './node-user-data';
import { workerCapacity } from './worker-capacity';
import { ecrRegistry } from './roles';

/**
 * How long a worker waits for the managers' token and addresses. Longer than the managers' signal timeout: if they
 * have not published by then, the stack is already rolling back.
 */
export const WORKER_JOIN_TIMEOUT_S = 1200;
/** How long CloudFormation waits for all worker signals: the join wait plus boot, install and join retries. */
export const WORKER_SIGNAL_TIMEOUT = Duration.minutes(30);

export type WorkerGroupProps = NodeGroupProps;

/** Instance types must share the architecture the image is chosen by. */
function checkArchitectures(types: readonly string[]): void {
  const arch = (t: string) => new ec2.InstanceType(t).architecture;
  const first = arch(types[0]);
  const other = types.find((t) => arch(t) !== first);
  if (other) {
    throw SwarmError.user(
      'PROPS_INVALID',
      `✖ ${other} is ${arch(other)} but ${types[0]} is ${first}: every worker instance type must run the same image
  → at workerInstanceTypes`,
    );
  }
}

/** The mixed instances policy for several types or Spot; undefined for one On-Demand type (the plain launch template). */
function mixedInstancesPolicy(config: ClusterConfig, launchTemplate: ec2.ILaunchTemplate): autoscaling.MixedInstancesPolicy | undefined {
  if (!config.workerInstanceTypes && !config.workerSpot) return undefined;
  const types = config.workerInstanceTypes ?? [config.workerInstanceType];
  checkArchitectures(types);
  const spot = config.workerSpot;
  return {
    launchTemplate,
    launchTemplateOverrides: types.map((t) => ({ instanceType: new ec2.InstanceType(t) })),
    instancesDistribution: spot
      ? {
          onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
          onDemandBaseCapacity: spot.onDemandBaseCapacity,
          onDemandPercentageAboveBaseCapacity: spot.onDemandPercentageAboveBaseCapacity,
          spotAllocationStrategy: spot.allocationStrategy as autoscaling.SpotAllocationStrategy,
        }
      : // Several On-Demand types: the list's order is the priority.
        { onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED, onDemandPercentageAboveBaseCapacity: 100 },
  };
}

export class WorkerGroup extends Construct {
  public readonly group: autoscaling.AutoScalingGroup;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly userData: ec2.UserData;
  /** The user-data with the app's commands around the join (`SwarmCluster.addUserDataBeforeJoin`/`AfterJoin`). */
  public readonly nodeUserData: NodeUserData;
  public readonly terminationHook: autoscaling.LifecycleHook;

  constructor(scope: Construct, id: string, props: WorkerGroupProps) {
    super(scope, id);
    const { config } = props;
    const groupNames = autoScalingGroupNames(config.name);
    const capacity = workerCapacity(config);
    this.nodeUserData = new NodeUserData('workers');
    this.userData = this.nodeUserData.userData;
    this.launchTemplate = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType: config.workerInstanceType,
      ami: config.ami,
      machineImage: props.machineImage,
      rootVolumeGiB: config.rootVolumeGiB,
      securityGroup: props.securityGroup,
      role: props.role,
      userData: this.userData,
    });
    const mixed = mixedInstancesPolicy(config, this.launchTemplate);
    const spot = config.workerSpot !== undefined;
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      autoScalingGroupName: groupNames.workers,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      ...(mixed ? { mixedInstancesPolicy: mixed } : { launchTemplate: this.launchTemplate }),
      // An at-risk Spot worker is replaced, and the old one drained through the termination hook, before EC2
      // reclaims it.
      capacityRebalance: spot ? true : undefined,
      minCapacity: capacity.minCapacity,
      desiredCapacity: capacity.desiredCapacity,
      // Room above `workers`: the rolling update's new worker joins before an old one is drained, so capacity
      // never drops (worker-capacity.ts).
      maxCapacity: capacity.maxCapacity,
      // Each worker signals after a successful join; 0 workers expect no signals (CloudFormation rejects Count 0).
      signals: capacity.expectsSignals ? autoscaling.Signals.waitForAll({ timeout: WORKER_SIGNAL_TIMEOUT }) : undefined,
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: capacity.minInstancesInService,
        waitOnResourceSignals: true,
        pauseTime: WORKER_SIGNAL_TIMEOUT,
      }),
    });
    this.terminationHook = addTerminationHook(this.group);
    this.nodeUserData.addSwarmCommands(this.group, {
      role: 'worker',
      clusterName: config.name,
      joinTimeoutSeconds: WORKER_JOIN_TIMEOUT_S,
      kmsKeyId: props.kmsKeyId,
      addressPool: config.overlayAddressPool,
      addressPoolMask: config.overlayAddressPoolMask,
      managerGroup: groupNames.managers,
      workerGroup: groupNames.workers,
      lifecycleHook: TERMINATION_HOOK_NAME,
      ecrRegistry: ecrRegistry(),
      scripts: props.scripts,
    });
    tagRole(this.group, this.launchTemplate, 'worker');
    checkUserDataSize(this, this.nodeUserData);
    acknowledgeGroupFindings(
      this.group,
      'desired = workers on purpose: the group starts at the configured size and CloudFormation waits for that many joins (documented on minWorkers: with scaling policies a deploy may set the size back to workers).',
    );
    if (config.ami || props.machineImage) acknowledgeExplicitAmi(this.launchTemplate);
  }
}
