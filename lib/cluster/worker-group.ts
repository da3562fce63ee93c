/**
 * The workers: an Auto Scaling group of `workers` instances. Launch-template changes reach running workers through
 * a rolling update, one at a time, each new worker joined (signalled) before an old one is drained and goes.
 */
import { Duration, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { autoScalingGroupNames } from '../config';
import { nodeLaunchTemplate } from './launch-template';
import { type NodeGroupProps, acknowledgeExplicitAmi, acknowledgeGroupFindings, addTerminationHook, tagRole, TERMINATION_HOOK_NAME } from './node-group';
import { addSwarmNodeCommands } from './user-data';
import { ecrRegistry } from './roles';

/**
 * How long a worker waits for the managers' token and addresses. Longer than the managers' signal timeout: if they
 * have not published by then, the stack is already rolling back.
 */
export const WORKER_JOIN_TIMEOUT_S = 1200;
/** How long CloudFormation waits for all worker signals: the join wait plus boot, install and join retries. */
export const WORKER_SIGNAL_TIMEOUT = Duration.minutes(30);

export type WorkerGroupProps = NodeGroupProps;

export class WorkerGroup extends Construct {
  public readonly group: autoscaling.AutoScalingGroup;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly userData: ec2.UserData;
  public readonly terminationHook: autoscaling.LifecycleHook;

  constructor(scope: Construct, id: string, props: WorkerGroupProps) {
    super(scope, id);
    const { config } = props;
    const groupNames = autoScalingGroupNames(config.name);
    const workers = config.workers;
    const known = !Token.isUnresolved(workers);
    this.userData = ec2.UserData.forLinux();
    this.launchTemplate = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType: config.workerInstanceType,
      ami: config.ami,
      rootVolumeGiB: config.rootVolumeGiB,
      securityGroup: props.securityGroup,
      role: props.role,
      userData: this.userData,
    });
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      autoScalingGroupName: groupNames.workers,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      launchTemplate: this.launchTemplate,
      minCapacity: workers,
      desiredCapacity: workers,
      // One above a known size: the rolling update's new worker joins before an old one is drained, so capacity
      // never drops. A token size cannot be added to: the update then replaces in place, one worker at a time.
      maxCapacity: known ? workers + 1 : workers,
      // Each worker signals after a successful join; 0 workers expect no signals (CloudFormation rejects Count 0).
      signals: known && workers === 0 ? undefined : autoscaling.Signals.waitForAll({ timeout: WORKER_SIGNAL_TIMEOUT }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: known ? workers : undefined,
        waitOnResourceSignals: true,
        pauseTime: WORKER_SIGNAL_TIMEOUT,
      }),
    });
    this.terminationHook = addTerminationHook(this.group);
    addSwarmNodeCommands(this.userData, {
      role: 'worker',
      clusterName: config.name,
      signalResource: this.group,
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
    acknowledgeGroupFindings(this.group, 'min = desired = workers on purpose: every deploy sets the group to the configured size.');
    if (config.ami) acknowledgeExplicitAmi(this.launchTemplate);
  }
}
