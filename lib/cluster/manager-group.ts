/**
 * The managers: an Auto Scaling group of 1, 3, 5 or 7 instances across the AZs of the subnets (docs/round2-contracts.md,
 * "Cluster shape"). Their identity survives deploys: the image resolves at launch, a launch-template change rolls
 * one manager at a time, and the new one has joined (signalled) before the old one is terminated.
 */
import { Annotations, Duration, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { autoScalingGroupNames } from '../config';
import { nodeLaunchTemplate } from './launch-template';
import { type NodeGroupProps, acknowledgeExplicitAmi, acknowledgeGroupFindings, addTerminationHook, checkUserDataSize, tagRole, TERMINATION_HOOK_NAME } from './node-group';
import { NodeUserData } from './node-user-data';
import { ecrRegistry } from './roles';

/** How long CloudFormation waits for each manager's signal (boot, Docker install, init or join, publication). */
export const MANAGER_SIGNAL_TIMEOUT = Duration.minutes(15);
/** How long a manager waits for the initialising manager's tokens: well inside its own signal timeout. */
export const MANAGER_JOIN_TIMEOUT_S = 600;

export type ManagerGroupProps = NodeGroupProps;

export class ManagerGroup extends Construct {
  public readonly group: autoscaling.AutoScalingGroup;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly userData: ec2.UserData;
  /** The user-data with the app's commands around the join (`SwarmCluster.addUserDataBeforeJoin`/`AfterJoin`). */
  public readonly nodeUserData: NodeUserData;
  public readonly terminationHook: autoscaling.LifecycleHook;

  constructor(scope: Construct, id: string, props: ManagerGroupProps) {
    super(scope, id);
    const { config } = props;
    const groupNames = autoScalingGroupNames(config.name);
    this.nodeUserData = new NodeUserData('managers');
    this.userData = this.nodeUserData.userData;
    this.launchTemplate = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType: config.managerInstanceType,
      ami: config.ami,
      machineImage: props.machineImage,
      rootVolumeGiB: config.rootVolumeGiB,
      securityGroup: props.securityGroup,
      role: props.role,
      userData: this.userData,
    });
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      autoScalingGroupName: groupNames.managers,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      launchTemplate: this.launchTemplate,
      minCapacity: config.managers,
      desiredCapacity: config.managers,
      // One above: room for the rolling update's new manager, which joins before the old one goes (CloudFormation
      // requires MinInstancesInService < MaxSize).
      maxCapacity: config.managers + 1,
      signals: autoscaling.Signals.waitForAll({ timeout: MANAGER_SIGNAL_TIMEOUT }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: config.managers,
        waitOnResourceSignals: true,
        pauseTime: MANAGER_SIGNAL_TIMEOUT,
      }),
    });
    this.terminationHook = addTerminationHook(this.group);
    this.nodeUserData.addSwarmCommands(this.group, {
      role: 'manager',
      clusterName: config.name,
      joinTimeoutSeconds: MANAGER_JOIN_TIMEOUT_S,
      kmsKeyId: props.kmsKeyId,
      addressPool: config.overlayAddressPool,
      addressPoolMask: config.overlayAddressPoolMask,
      managerGroup: groupNames.managers,
      workerGroup: groupNames.workers,
      lifecycleHook: TERMINATION_HOOK_NAME,
      ecrRegistry: ecrRegistry(),
      scripts: props.scripts,
    });
    this.warnOnTooFewZones(props);
    tagRole(this.group, this.launchTemplate, 'manager');
    acknowledgeGroupFindings(this.group, 'min = desired = managers on purpose: every deploy sets the quorum to the configured size.');
    checkUserDataSize(this, this.nodeUserData);
    if (config.ami || props.machineImage) acknowledgeExplicitAmi(this.launchTemplate);
  }

  /** With fewer AZs than needed, one AZ holds a majority of the managers and its loss takes the quorum with it. */
  private warnOnTooFewZones(props: ManagerGroupProps): void {
    const managers = props.config.managers;
    if (managers === 1) return;
    const zones = props.vpc.selectSubnets(props.vpcSubnets).availabilityZones;
    if (zones.some((z) => Token.isUnresolved(z))) return; // an environment-agnostic stack: the AZs are not known here
    const distinct = new Set(zones).size;
    // Each AZ must hold fewer than a majority: ceil(managers / AZs) < majority, i.e. at least 3 AZs for 3 to 7 managers.
    if (Math.ceil(managers / distinct) >= Math.floor(managers / 2) + 1) {
      Annotations.of(this).addWarningV2(
        'ec2-swarm:managerZones',
        `${managers} managers in ${distinct} availability zone${distinct === 1 ? '' : 's'}: losing the AZ that holds ${Math.ceil(managers / distinct)} of them loses the quorum; use maxAzs 3 (or subnets in 3 AZs)`,
      );
    }
  }
}
