/**
 * SwarmCluster: one manager instance and an Auto Scaling Group of N workers that form a Docker Swarm through
 * their user-data (design.md, decisions 1-3). Join tokens exist only at run time, in SSM SecureString parameters.
 */
import { ArnFormat, Aws, CfnOutput, Duration, Stack, Tags, Token, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { ClusterConfig, parameterNames, parameterPrefix, SWARM_PORTS } from '../config';
import { resolveClusterProps, SwarmClusterProps } from './props';
import { addSwarmNodeCommands, NodeScripts } from './user-data';

/** How long CloudFormation waits for the manager's signal (boot, Docker install, `swarm init`, token publication). */
export const MANAGER_SIGNAL_TIMEOUT = Duration.minutes(15);
/**
 * How long a worker waits for the manager's token and address. Longer than the manager's signal timeout: if the
 * manager has not published by then, the stack is already rolling back.
 */
export const WORKER_JOIN_TIMEOUT_S = 1200;
/** How long CloudFormation waits for all N worker signals: the join wait plus boot, install and join retries. */
export const WORKER_SIGNAL_TIMEOUT = Duration.minutes(30);
/** ESP (IP protocol 50) has no ports; Port.esp() renders FromPort/ToPort 50, which CloudFormation ignores. */
const ESP = new ec2.Port({ protocol: ec2.Protocol.ESP, stringRepresentation: 'ESP' });
/** Root device of Amazon Linux 2023. */
const ROOT_DEVICE = '/dev/xvda';

/** Fixed output logical ids (docs/contracts.md): ops read them from an outputs file. */
export const OUTPUT_IDS = {
  clusterName: 'SwarmClusterName',
  managerInstanceId: 'SwarmManagerInstanceId',
  parameterPrefix: 'SwarmParameterPrefix',
  workerGroupName: 'SwarmWorkerGroupName',
  region: 'SwarmRegion',
  sessionCommand: 'SwarmSessionCommand',
} as const;

/** aws-cdk-lib's fixed id of the AwsCustomResource handler (one per stack). */
const CUSTOM_RESOURCE_SINGLETON_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

export const TAG_CLUSTER = 'ec2-swarm:cluster';
export const TAG_ROLE = 'ec2-swarm:role';

/** Internal options, for tests and the lab. */
export interface SwarmClusterInternals {
  /** @default - read from `<package root>/scripts/node` at synth time */
  readonly nodeScripts?: NodeScripts;
}

/** An AMI given by id: the same image in the stack's region, whatever that is. */
class FixedLinuxImage implements ec2.IMachineImage {
  constructor(private readonly imageId: string) {}
  getImage(): ec2.MachineImageConfig {
    return { imageId: this.imageId, osType: ec2.OperatingSystemType.LINUX, userData: ec2.UserData.forLinux() };
  }
}

function machineImageFor(config: ClusterConfig, instanceType: ec2.InstanceType): ec2.IMachineImage {
  if (config.ami) return new FixedLinuxImage(config.ami);
  const cpuType =
    instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64;
  return ec2.MachineImage.latestAmazonLinux2023({ cpuType });
}

function peerFor(cidr: string): ec2.IPeer {
  return cidr.includes(':') ? ec2.Peer.ipv6(cidr) : ec2.Peer.ipv4(cidr);
}

function portFor(port: number, protocol: 'tcp' | 'udp'): ec2.Port {
  return protocol === 'udp' ? ec2.Port.udp(port) : ec2.Port.tcp(port);
}

export class SwarmCluster extends Construct {
  /** The validated configuration, defaults filled in. */
  public readonly config: ClusterConfig;
  public readonly vpc: ec2.IVpc;
  /** The one security group of every node. */
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly manager: ec2.Instance;
  public readonly managerRole: iam.Role;
  public readonly workers: autoscaling.AutoScalingGroup;
  public readonly workerRole: iam.Role;
  public readonly workerLaunchTemplate: ec2.LaunchTemplate;
  public readonly managerUserData: ec2.UserData;
  public readonly workerUserData: ec2.UserData;
  /** The internet-facing load balancer, when `loadBalancer` is set. */
  public readonly loadBalancer?: elbv2.NetworkLoadBalancer;
  /** Deletes the runtime SSM parameters when the stack is deleted. */
  public readonly parameterCleanup: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: SwarmClusterProps = {}, internals: SwarmClusterInternals = {}) {
    super(scope, id);
    const config = resolveClusterProps(props);
    this.config = config;
    const stack = Stack.of(this);
    const names = parameterNames(config.name);
    const workersKnownZero = !Token.isUnresolved(config.workers) && config.workers === 0;

    Tags.of(this).add(TAG_CLUSTER, config.name);
    Tags.of(this).add(TAG_ROLE, 'shared');

    // ── Network ────────────────────────────────────────────────────────────────────────────────────────────────
    if (props.vpc) this.vpc = props.vpc;
    else if (config.vpcId) this.vpc = ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: config.vpcId });
    else {
      const vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: config.maxAzs,
        natGateways: 0,
        subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      });
      Validations.of(vpc).acknowledge({
        id: 'AwsSolutions-VPC7',
        reason:
          'Flow logs cost money on every packet and the default VPC holds only this cluster, with no inbound access but the published ports. Pass your own vpc/vpcId to use one with flow logs.',
      });
      this.vpc = vpc;
    }
    const vpcSubnets =
      props.vpcSubnets ??
      (this.vpc.privateSubnets.length > 0 ? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } : { subnetType: ec2.SubnetType.PUBLIC });

    this.securityGroup = new ec2.SecurityGroup(this, 'ClusterSecurityGroup', {
      vpc: this.vpc,
      description: `ec2-swarm ${config.name}: swarm ports only between nodes; published ports only from their CIDRs`,
      // Nodes need outbound HTTPS for SSM, the package repositories and image registries.
      allowAllOutbound: true,
    });
    for (const p of SWARM_PORTS) {
      this.securityGroup.addIngressRule(this.securityGroup, portFor(p.port, p.protocol), `swarm ${p.what} (${p.port}/${p.protocol}) between nodes`);
    }
    if (config.encryptedOverlay) {
      this.securityGroup.addIngressRule(this.securityGroup, ESP, 'ESP between nodes: encrypted overlay networks');
    }
    for (const p of config.publishedPorts) {
      for (const cidr of p.cidrs) {
        this.securityGroup.addIngressRule(peerFor(cidr), portFor(p.port, p.protocol), `published ${p.port}/${p.protocol} from ${cidr}`);
      }
    }
    this.acknowledgeWorldOpenPorts(this.securityGroup, config);

    // ── IAM ────────────────────────────────────────────────────────────────────────────────────────────────────
    const ssmCore = iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore');
    this.managerRole = new iam.Role(this, 'ManagerRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `ec2-swarm ${config.name} manager: SSM access, writes ${parameterPrefix(config.name)}/*`,
      managedPolicies: [ssmCore],
    });
    this.workerRole = new iam.Role(this, 'WorkerRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `ec2-swarm ${config.name} worker: SSM access, reads the worker token and manager address`,
      managedPolicies: [ssmCore],
    });
    for (const role of [this.managerRole, this.workerRole]) {
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
        reason: 'The AWS-maintained minimum for SSM Session Manager and Run Command, the only way in (no SSH).',
      });
    }
    // The manager owns the cluster's prefix: it publishes the tokens and address now and rotates them later.
    // SecureStrings use the AWS-managed key aws/ssm, whose key policy already lets account principals use it
    // through SSM, so no KMS statement is needed.
    // Pseudo parameters, not the stack's env: the cdk-nag finding id below must not depend on the region.
    const prefixArn = `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${parameterPrefix(config.name)}/*`;
    this.managerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SwarmRuntimeParameters',
        actions: ['ssm:PutParameter', 'ssm:GetParameter', 'ssm:DeleteParameter', 'ssm:AddTagsToResource'],
        resources: [prefixArn],
      }),
    );
    Validations.of(this.managerRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${parameterPrefix(config.name)}/*]`,
      reason: "The manager owns only this cluster's parameter prefix; the wildcard is the cluster's own namespace.",
    });
    // Workers read exactly two parameters and never the manager token.
    ssm.StringParameter.fromSecureStringParameterAttributes(this, 'WorkerTokenParameter', { parameterName: names.workerToken }).grantRead(
      this.workerRole,
    );
    ssm.StringParameter.fromStringParameterAttributes(this, 'ManagerAddressParameter', {
      parameterName: names.managerAddress,
      forceDynamicReference: true, // never read the value at deploy time: it does not exist yet
    }).grantRead(this.workerRole);
    // AmazonSSMManagedInstanceCore allows ssm:GetParameter(s) on every parameter, and the aws/ssm key decrypts for
    // any account principal: without this Deny a worker could read the manager token (a takeover of the swarm)
    // or another cluster's tokens. An explicit Deny beats the managed policy's Allow.
    const parameterArn = (name: string) =>
      Stack.of(this).formatArn({ service: 'ssm', resource: 'parameter', resourceName: name.slice(1), arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
    this.workerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheWorkerTokenAndManagerAddress',
        effect: iam.Effect.DENY,
        actions: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParameterHistory', 'ssm:GetParametersByPath'],
        notResources: [parameterArn(names.workerToken), parameterArn(names.managerAddress)],
      }),
    );

    // ── Manager ────────────────────────────────────────────────────────────────────────────────────────────────
    const managerType = new ec2.InstanceType(config.managerInstanceType);
    this.managerUserData = ec2.UserData.forLinux();
    this.manager = new ec2.Instance(this, 'Manager', {
      vpc: this.vpc,
      vpcSubnets,
      instanceType: managerType,
      machineImage: machineImageFor(config, managerType),
      securityGroup: this.securityGroup,
      role: this.managerRole,
      userData: this.managerUserData,
      // The swarm's Raft state lives on the manager: a new manager would init a new swarm and strand every worker.
      // A user-data change therefore only restarts it (user-data runs once per instance); the swarm survives.
      userDataCausesReplacement: false,
      // IMDSv2 only; hop limit 1 keeps containers (one hop further) away from the manager's credentials.
      httpTokens: ec2.HttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: ROOT_DEVICE,
          volume: ec2.BlockDeviceVolume.ebs(config.rootVolumeGiB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
        },
      ],
    });
    addSwarmNodeCommands(this.managerUserData, { role: 'manager', clusterName: config.name, signalResource: this.manager, scripts: internals.nodeScripts });
    Tags.of(this.manager).add(TAG_ROLE, 'manager', { priority: 200 });
    Validations.of(this.manager).acknowledge(
      { id: 'AwsSolutions-EC28', reason: 'Detailed monitoring costs extra per instance; basic monitoring is enough for a swarm node.' },
      { id: 'AwsSolutions-EC29', reason: 'Termination protection would make `cdk destroy` fail; the stack owns the manager.' },
      {
        id: 'AwsSolutions-EC26',
        reason:
          'The root volume is encrypted (BlockDeviceMappings Ebs.Encrypted, asserted by the tests). cdk-nag 3.0.2 fails this rule for any instance without a launch template once the stack holds one (the worker launch template).',
      },
    );
    // The manager signals its own CreationPolicy (the Auto Scaling Group grants this to workers by itself).
    this.managerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'SignalThisStack', actions: ['cloudformation:SignalResource'], resources: [Aws.STACK_ID] }),
    );
    // Explicit Count 1: one manager, one signal.
    this.manager.instance.cfnOptions.creationPolicy = {
      resourceSignal: { count: 1, timeout: MANAGER_SIGNAL_TIMEOUT.toIsoString() },
    };

    // ── Workers ────────────────────────────────────────────────────────────────────────────────────────────────
    const workerType = new ec2.InstanceType(config.workerInstanceType);
    this.workerUserData = ec2.UserData.forLinux();
    // An explicit launch template: AWS offers launch configurations to no new account, and the template is the
    // same for 1 or 1000 workers.
    this.workerLaunchTemplate = new ec2.LaunchTemplate(this, 'WorkerLaunchTemplate', {
      instanceType: workerType,
      machineImage: machineImageFor(config, workerType),
      securityGroup: this.securityGroup,
      role: this.workerRole,
      userData: this.workerUserData,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: ROOT_DEVICE,
          volume: ec2.BlockDeviceVolume.ebs(config.rootVolumeGiB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3, deleteOnTermination: true }),
        },
      ],
    });
    this.workers = new autoscaling.AutoScalingGroup(this, 'Workers', {
      vpc: this.vpc,
      vpcSubnets,
      launchTemplate: this.workerLaunchTemplate,
      minCapacity: config.workers,
      maxCapacity: config.workers,
      desiredCapacity: config.workers,
      // Each worker signals after a successful join; 0 workers expect no signals (CloudFormation rejects Count 0).
      signals: workersKnownZero ? undefined : autoscaling.Signals.waitForAll({ timeout: WORKER_SIGNAL_TIMEOUT }),
    });
    addSwarmNodeCommands(this.workerUserData, {
      role: 'worker',
      clusterName: config.name,
      signalResource: this.workers,
      joinTimeoutSeconds: WORKER_JOIN_TIMEOUT_S,
      scripts: internals.nodeScripts,
    });
    Tags.of(this.workers).add(TAG_ROLE, 'worker', { priority: 200 });
    Tags.of(this.workerLaunchTemplate).add(TAG_ROLE, 'worker', { priority: 200 });
    Validations.of(this.workers).acknowledge(
      {
        id: 'AwsSolutions-AS3',
        reason: 'Scaling events are visible in the Auto Scaling activity history; no notification topic is needed for a fixed-size group.',
      },
      {
        id: 'Annotation::@aws-cdk/aws-autoscaling:desiredCapacitySet',
        reason: 'min = max = desired = workers on purpose: every deploy sets the group to the configured size.',
      },
    );

    if (config.ami) {
      for (const c of [this.manager, this.workerLaunchTemplate]) {
        Validations.of(c).acknowledge({
          id: 'CloudFormation-Validate::W9010',
          reason: 'The AMI id is the explicit `ami` setting: the user chose this image for this region.',
        });
      }
    }

    // ── Optional load balancer ─────────────────────────────────────────────────────────────────────────────────
    if (config.loadBalancer) {
      this.loadBalancer = this.addLoadBalancer(config);
    }

    // ── Runtime parameter cleanup ──────────────────────────────────────────────────────────────────────────────
    const allNames = [names.workerToken, names.managerToken, names.managerAddress];
    this.parameterCleanup = new cr.AwsCustomResource(this, 'RuntimeParameterCleanup', {
      resourceType: 'Custom::SwarmRuntimeParameterCleanup',
      installLatestAwsSdk: false,
      // DeleteParameters reports missing names in InvalidParameters instead of failing, so deleting a stack whose
      // manager never published anything succeeds.
      onDelete: {
        service: 'SSM',
        action: 'deleteParameters',
        parameters: { Names: allNames },
        ignoreErrorCodesMatching: 'ParameterNotFound',
      },
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({
        resources: allNames.map((n) => stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: n.slice(1) })),
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
    // Created before and deleted after the nodes, so no node can write a parameter after the cleanup ran.
    this.manager.node.addDependency(this.parameterCleanup);
    this.workers.node.addDependency(this.parameterCleanup);

    // ── Outputs ────────────────────────────────────────────────────────────────────────────────────────────────
    const output = (logicalId: string, value: string, description: string) =>
      new CfnOutput(this, logicalId, { value, description }).overrideLogicalId(logicalId);
    output(OUTPUT_IDS.clusterName, config.name, 'Swarm cluster name');
    output(OUTPUT_IDS.managerInstanceId, this.manager.instanceId, 'Swarm manager EC2 instance id');
    output(OUTPUT_IDS.parameterPrefix, parameterPrefix(config.name), 'SSM parameter prefix of the runtime parameters (join tokens, manager address)');
    output(OUTPUT_IDS.workerGroupName, this.workers.autoScalingGroupName, 'Worker Auto Scaling Group name');
    output(OUTPUT_IDS.region, Aws.REGION, 'Region of the cluster');
    output(
      OUTPUT_IDS.sessionCommand,
      `aws ssm start-session --target ${this.manager.instanceId} --region ${Aws.REGION}`,
      'Open a shell on the manager through SSM Session Manager',
    );
  }

  /** EC23 flags 0.0.0.0/0 ingress; a published port open to the world is the user's written choice. */
  private acknowledgeWorldOpenPorts(group: ec2.SecurityGroup, config: ClusterConfig): void {
    const worldOpen = config.publishedPorts.filter((p) => p.cidrs.some((c) => c === '0.0.0.0/0' || c === '::/0'));
    if (worldOpen.length === 0) return;
    Validations.of(group).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: `Open to the internet by explicit configuration (publishedPorts ${worldOpen.map((p) => `${p.port}/${p.protocol}`).join(', ')}); swarm ports stay cluster-internal.`,
    });
  }

  private addLoadBalancer(config: ClusterConfig): elbv2.NetworkLoadBalancer {
    const nlbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `ec2-swarm ${config.name}: load balancer, published ports only from their CIDRs`,
      allowAllOutbound: false,
    });
    const nlb = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      internetFacing: true,
      crossZoneEnabled: true,
      securityGroups: [nlbSecurityGroup],
    });
    for (const p of config.publishedPorts) {
      const port = portFor(p.port, p.protocol);
      for (const cidr of p.cidrs) nlbSecurityGroup.addIngressRule(peerFor(cidr), port, `published ${p.port}/${p.protocol} from ${cidr}`);
      // The NLB keeps the client's address, but a target whose group admits the NLB's security group accepts
      // the NLB's traffic (and its health checks) through that rule; the CIDR rules above still decide who gets in.
      nlbSecurityGroup.addEgressRule(this.securityGroup, port, `to workers ${p.port}/${p.protocol}`);
      this.securityGroup.addIngressRule(nlbSecurityGroup, port, `published ${p.port}/${p.protocol} from the load balancer`);
      const listener = nlb.addListener(`Listener${p.port}${p.protocol}`, {
        port: p.port,
        protocol: p.protocol === 'udp' ? elbv2.Protocol.UDP : elbv2.Protocol.TCP,
      });
      listener.addTargets(`Workers${p.port}${p.protocol}`, {
        port: p.port,
        protocol: p.protocol === 'udp' ? elbv2.Protocol.UDP : elbv2.Protocol.TCP,
        targets: [this.workers],
        // UDP cannot be health-checked directly; a TCP check on the same port needs the service to listen on both.
        healthCheck: { protocol: elbv2.Protocol.TCP },
      });
    }
    this.acknowledgeWorldOpenPorts(nlbSecurityGroup, config);
    Validations.of(nlb).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason: 'Access logs need an S3 bucket with its own lifecycle; left to the user, who can enable them on this load balancer.',
    });
    return nlb;
  }
}
