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
import { SwarmError } from '../errors';
import { ManagerGroup } from './manager-group';
import { SwarmNetwork } from './network';
import type { JoinPhase } from './node-user-data';
import { grantOperate } from './operator-access';
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

/** Which nodes user-data commands are added to. */
export type SwarmNodes = 'managers' | 'workers' | 'all';

export class SwarmCluster extends Construct implements ec2.IConnectable {
  /** The validated configuration, defaults filled in (CDK objects from the props are not in it). */
  public readonly config: ClusterConfig;
  public readonly vpc: ec2.IVpc;
  /** The one security group of every node (the `securityGroup` prop, or the one created). */
  public readonly securityGroup: ec2.ISecurityGroup;
  /**
   * The nodes' network connections: `cluster.connections.allowFrom(other, ec2.Port.tcp(8080))` opens a port of
   * every node to `other`; `database.connections.allowDefaultPortFrom(cluster)` lets the nodes in.
   */
  public readonly connections: ec2.Connections;
  /** The `machineImage` prop, when one was given. */
  public readonly machineImage?: ec2.IMachineImage;
  public readonly managers: autoscaling.AutoScalingGroup;
  public readonly managerLaunchTemplate: ec2.LaunchTemplate;
  /** The managers' instance role (the `managerRole` prop, or the one created). */
  public readonly managerRole: iam.IRole;
  /** The managers' user-data. Commands added here run after the join; prefer `addUserDataAfterJoin`. */
  public readonly managerUserData: ec2.UserData;
  /** The worker Auto Scaling group: add scaling policies here (`workers.scaleOnCpuUtilization(…)`). */
  public readonly workers: autoscaling.AutoScalingGroup;
  public readonly workerLaunchTemplate: ec2.LaunchTemplate;
  /** The workers' instance role (the `workerRole` prop, or the one created). */
  public readonly workerRole: iam.IRole;
  /** The workers' user-data. Commands added here run after the join; prefer `addUserDataAfterJoin`. */
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
  private readonly managerGroup: ManagerGroup;
  private readonly workerGroup: WorkerGroup;

  constructor(scope: Construct, id: string, props: SwarmClusterProps = {}, internals: SwarmClusterInternals = {}) {
    super(scope, id);
    const config = resolveClusterProps(props);
    this.config = config;

    Tags.of(this).add(TAG_CLUSTER, config.name);
    Tags.of(this).add(TAG_ROLE, 'shared');

    if (props.machineImage && props.machineImage.getImage(this).osType !== ec2.OperatingSystemType.LINUX) {
      throw SwarmError.user('PROPS_INVALID', 'Invalid SwarmCluster props:\n✖ must be a Linux image: the nodes run bash scripts\n  → at machineImage');
    }
    if (props.managerRole && props.managerRole === props.workerRole) {
      throw SwarmError.user('PROPS_INVALID', 'Invalid SwarmCluster props:\n✖ must not be the managerRole: workers would be able to read the manager token\n  → at workerRole');
    }
    const network = new SwarmNetwork(this, 'Network', { config, vpc: props.vpc, vpcSubnets: props.vpcSubnets, securityGroup: props.securityGroup });
    this.vpc = network.vpc;
    this.securityGroup = network.securityGroup;
    this.connections = new ec2.Connections({ securityGroups: [network.securityGroup] });
    this.machineImage = props.machineImage;

    const roles = new SwarmRoles(this, 'Roles', { config, managerRole: props.managerRole, workerRole: props.workerRole });
    this.managerRole = roles.managerRole;
    this.workerRole = roles.workerRole;
    this.tokenKey = roles.key;

    const nodes = {
      config,
      vpc: network.vpc,
      vpcSubnets: network.vpcSubnets,
      securityGroup: network.securityGroup,
      kmsKeyId: roles.key.keyArn,
      machineImage: props.machineImage,
      scripts: internals.nodeScripts,
    };
    const managers = new ManagerGroup(this, 'Managers', { ...nodes, role: roles.managerRole });
    this.managerGroup = managers;
    this.managers = managers.group;
    this.managerLaunchTemplate = managers.launchTemplate;
    this.managerUserData = managers.userData;
    const workers = new WorkerGroup(this, 'Workers', { ...nodes, role: roles.workerRole });
    this.workerGroup = workers;
    this.workers = workers.group;
    this.workerLaunchTemplate = workers.launchTemplate;
    this.workerUserData = workers.userData;

    this.loadBalancer = new PublishedPorts(this, 'PublishedPorts', {
      config,
      peers: (props.publishedPorts ?? []).map((p) => p.peers),
      vpc: network.vpc,
      loadBalancerSubnets: props.loadBalancerSubnets,
      nodeSecurityGroup: network.securityGroup,
      workers: workers.group,
    }).loadBalancer;

    this.parameterCleanup = new RuntimeParameterCleanup(this, 'RuntimeParameterCleanup', { clusterName: config.name }).resource;
    // Created before and deleted after the nodes, so no node can write a parameter after the cleanup ran.
    this.managers.node.addDependency(this.parameterCleanup);
    this.workers.node.addDependency(this.parameterCleanup);
    // A node reads and writes parameters at its first boot: its role's policy must exist before it launches (a
    // dependency on a role covers the policies created inside it, an imported role's included).
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

  /**
   * Lets `grantee` (e.g. the role a CI pipeline runs `ec2-swarm` with) operate this cluster through ops, and
   * nothing more: run scripts with SSM Run Command (`AWS-RunShellScript`) on instances tagged with this cluster,
   * follow and cancel those commands, list the nodes' SSM agents, delete the runtime parameters (teardown), read
   * this stack's outputs, and stage deploy bundles in the staging bucket.
   *
   * Not included: `teardown --destroy`, which runs `cdk destroy` with the deployment's own rights. SSM's
   * DescribeInstanceInformation, GetCommandInvocation and CancelCommand have no resource-level permissions, so
   * they are granted on `*`.
   */
  public grantOperate(grantee: iam.IGrantable): iam.Grant {
    return grantOperate(this, grantee, { clusterName: this.config.name, stagingBucket: this.stagingBucket });
  }

  /**
   * Adds shell commands to the user-data of `nodes`, run as root before the node initialises or joins the swarm
   * (after Docker's install script is unpacked, with the `SWARM_*` variables exported), e.g. to mount a volume or
   * configure a registry mirror.
   *
   * They run under `set -euo pipefail`: a failing command fails the node's signal, so the deployment rolls back.
   * Changing them changes the launch template, which rolls the nodes one at a time. Synthesis fails, naming this
   * call, when the user-data would exceed EC2's 16 KB.
   */
  public addUserDataBeforeJoin(nodes: SwarmNodes, ...commands: string[]): void {
    this.addUserData('beforeJoin', 'addUserDataBeforeJoin', nodes, commands);
  }

  /**
   * Adds shell commands to the user-data of `nodes`, run as root after the node has initialised or joined the
   * swarm and before it signals CloudFormation, e.g. to label the node or start an agent.
   *
   * As with `addUserDataBeforeJoin`, a failing command fails the node's signal, and synthesis fails, naming this
   * call, when the user-data would exceed EC2's 16 KB.
   */
  public addUserDataAfterJoin(nodes: SwarmNodes, ...commands: string[]): void {
    this.addUserData('afterJoin', 'addUserDataAfterJoin', nodes, commands);
  }

  private addUserData(phase: JoinPhase, method: string, nodes: SwarmNodes, commands: string[]): void {
    if (!['managers', 'workers', 'all'].includes(nodes)) {
      throw SwarmError.user('PROPS_INVALID', `✖ ${method}: nodes must be 'managers', 'workers' or 'all' (got ${JSON.stringify(nodes)})\n  → at ${method}`);
    }
    if (nodes !== 'workers') this.managerGroup.nodeUserData.add(phase, method, nodes, commands);
    if (nodes !== 'managers') this.workerGroup.nodeUserData.add(phase, method, nodes, commands);
  }
}
