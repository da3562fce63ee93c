/**
 * SwarmCluster: an Auto Scaling group of 1, 3, 5 or 7 managers and one of N workers that form one Docker Swarm
 * through their user-data (design.md, decisions 1-3; docs/round2-contracts.md). Join tokens exist only at run
 * time, in SSM SecureString parameters under the cluster's KMS key. This file only wires the parts together.
 */
import { Aws, CfnOutput, Tags } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { ClusterConfig, parameterPrefix } from '../config';
import { ManagerGroup } from './manager-group';
import { SwarmNetwork } from './network';
import { TAG_CLUSTER, TAG_ROLE } from './node-group';
import { RuntimeParameterCleanup } from './parameter-cleanup';
import { StagingBucket } from './staging-bucket';
import { resolveClusterProps, SwarmClusterProps } from './props';
import { PublishedPorts } from './published-ports';
import { SwarmRoles } from './roles';
import { NodeScripts } from './user-data';
import { WorkerGroup } from './worker-group';

export { TAG_CLUSTER, TAG_ROLE, TERMINATION_HOOK_NAME } from './node-group';
export { MANAGER_SIGNAL_TIMEOUT, MANAGER_JOIN_TIMEOUT_S } from './manager-group';
export { WORKER_JOIN_TIMEOUT_S, WORKER_SIGNAL_TIMEOUT } from './worker-group';

/** Output keys without their prefix (docs/round2-contracts.md, "Ops"): the key is `<P><suffix>`. */
export const OUTPUT_SUFFIXES = {
  clusterName: 'ClusterName',
  parameterPrefix: 'ParameterPrefix',
  managerGroupName: 'ManagerGroupName',
  workerGroupName: 'WorkerGroupName',
  region: 'Region',
  sessionCommand: 'SessionCommand',
  stagingBucket: 'StagingBucket',
} as const;

/** The outputs' prefix P: the construct id with every non-alphanumeric removed (`Swarm` → `SwarmClusterName`). */
export function outputPrefix(constructId: string): string {
  return constructId.replace(/[^A-Za-z0-9]/g, '');
}

/** Internal options, for tests and the lab. */
export interface SwarmClusterInternals {
  /** @default - read from `<package root>/scripts/node` at synth time */
  readonly nodeScripts?: NodeScripts;
}

export class SwarmCluster extends Construct {
  /** The validated configuration, defaults filled in. */
  public readonly config: ClusterConfig;
  public readonly vpc: ec2.IVpc;
  /** The one security group of every node. */
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly managers: autoscaling.AutoScalingGroup;
  public readonly managerLaunchTemplate: ec2.LaunchTemplate;
  public readonly managerRole: iam.Role;
  public readonly managerUserData: ec2.UserData;
  public readonly workers: autoscaling.AutoScalingGroup;
  public readonly workerLaunchTemplate: ec2.LaunchTemplate;
  public readonly workerRole: iam.Role;
  public readonly workerUserData: ec2.UserData;
  /** Encrypts the join tokens. */
  public readonly tokenKey: kms.Key;
  /** The internet-facing load balancer, when `loadBalancer` is set. */
  public readonly loadBalancer?: elbv2.NetworkLoadBalancer;
  /** Deletes the runtime SSM parameters when the stack is deleted. */
  public readonly parameterCleanup: cr.AwsCustomResource;
  /** Output keys by meaning, e.g. `outputKeys.clusterName === 'SwarmClusterName'` for the id `Swarm`. */
  public readonly outputKeys: { readonly [K in keyof typeof OUTPUT_SUFFIXES]: string };
  /** Deploy bundles for the managers (staging-bucket.ts); `stagingBucket.grantStage(role)` for the deployer. */
  public readonly stagingBucket: StagingBucket;

  constructor(scope: Construct, id: string, props: SwarmClusterProps = {}, internals: SwarmClusterInternals = {}) {
    super(scope, id);
    const config = resolveClusterProps(props);
    this.config = config;

    Tags.of(this).add(TAG_CLUSTER, config.name);
    Tags.of(this).add(TAG_ROLE, 'shared');

    const network = new SwarmNetwork(this, 'Network', { config, vpc: props.vpc, vpcSubnets: props.vpcSubnets });
    this.vpc = network.vpc;
    this.securityGroup = network.securityGroup;

    const roles = new SwarmRoles(this, 'Roles', { config });
    this.managerRole = roles.managerRole;
    this.workerRole = roles.workerRole;
    this.tokenKey = roles.key;

    const nodes = {
      config,
      vpc: network.vpc,
      vpcSubnets: network.vpcSubnets,
      securityGroup: network.securityGroup,
      kmsKeyId: roles.key.keyArn,
      scripts: internals.nodeScripts,
    };
    const managers = new ManagerGroup(this, 'Managers', { ...nodes, role: roles.managerRole });
    this.managers = managers.group;
    this.managerLaunchTemplate = managers.launchTemplate;
    this.managerUserData = managers.userData;
    const workers = new WorkerGroup(this, 'Workers', { ...nodes, role: roles.workerRole });
    this.workers = workers.group;
    this.workerLaunchTemplate = workers.launchTemplate;
    this.workerUserData = workers.userData;

    this.loadBalancer = new PublishedPorts(this, 'PublishedPorts', {
      config,
      vpc: network.vpc,
      nodeSecurityGroup: network.securityGroup,
      workers: workers.group,
    }).loadBalancer;

    this.parameterCleanup = new RuntimeParameterCleanup(this, 'RuntimeParameterCleanup', { clusterName: config.name }).resource;
    // Created before and deleted after the nodes, so no node can write a parameter after the cleanup ran.
    this.managers.node.addDependency(this.parameterCleanup);
    this.workers.node.addDependency(this.parameterCleanup);
    // A node reads and writes parameters at its first boot: its role's policy must exist before it launches.
    this.managers.node.addDependency(roles.managerRole);
    this.workers.node.addDependency(roles.workerRole);

    this.stagingBucket = new StagingBucket(this, 'Staging', { readers: [this.managerRole] });

    // ── Outputs (ops read them; docs/round2-contracts.md) ─────────────────────────────────────────────────────────
    const p = outputPrefix(id);
    this.outputKeys = Object.fromEntries(Object.entries(OUTPUT_SUFFIXES).map(([k, suffix]) => [k, `${p}${suffix}`])) as SwarmCluster['outputKeys'];
    const output = (key: keyof typeof OUTPUT_SUFFIXES, value: string, description: string) =>
      new CfnOutput(this, OUTPUT_SUFFIXES[key], { value, description }).overrideLogicalId(this.outputKeys[key]);
    output('clusterName', config.name, 'Swarm cluster name');
    output('parameterPrefix', parameterPrefix(config.name), 'SSM parameter prefix of the runtime parameters (join tokens, manager addresses)');
    output('managerGroupName', this.managers.autoScalingGroupName, 'Manager Auto Scaling group name');
    output('workerGroupName', this.workers.autoScalingGroupName, 'Worker Auto Scaling group name');
    output('region', Aws.REGION, 'Region of the cluster');
    output(
      'sessionCommand',
      `aws ssm start-session --region ${Aws.REGION} --target "$(aws ec2 describe-instances --region ${Aws.REGION} --filters Name=tag:${TAG_CLUSTER},Values=${config.name} Name=tag:${TAG_ROLE},Values=manager Name=instance-state-name,Values=running --query 'Reservations[0].Instances[0].InstanceId' --output text)"`,
      'Open a shell on a running manager through SSM Session Manager',
    );
    output('stagingBucket', this.stagingBucket.bucket.bucketName, 'S3 bucket through which deploy bundles reach the managers');
  }
}
