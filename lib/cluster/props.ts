/**
 * SwarmCluster props: the cluster config (lib/config.ts) as construct props, plus the CDK objects an app already
 * has (VPC, subnets, security group, roles, image, peers). The serializable part is validated by the config's zod
 * schema, so the messages name the prop; tokens are allowed where CloudFormation can resolve them (the sizes).
 */
import { Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { ClusterConfig, parseClusterConfig, SPOT_ALLOCATION_STRATEGIES } from '../config';
import { SwarmError } from '../errors';

/** A port published to clients, with who may reach it. */
export interface SwarmPublishedPort {
  /**
   * TCP or UDP port on every node (and on the load balancer when `loadBalancer` is set).
   */
  readonly port: number;
  /**
   * The port's protocol.
   *
   * @default 'tcp'
   */
  readonly protocol?: 'tcp' | 'udp';
  /**
   * CIDRs allowed to connect (IPv4 or IPv6).
   *
   * No default on purpose: opening a port to the world must be written down. Give `cidrs`, `peers` or both.
   *
   * @default - none; then `peers` must name at least one source
   */
  readonly cidrs?: string[];
  /**
   * Other sources allowed to connect: a managed prefix list (`ec2.Peer.prefixList('pl-…')`), a security group,
   * any `ec2.IPeer`.
   *
   * @default - none; then `cidrs` must name at least one source
   */
  readonly peers?: ec2.IPeer[];
}

/** An EC2 instance type as an app writes it: an `ec2.InstanceType` or its name. */
export type SwarmInstanceType = ec2.InstanceType | string;

/** Workers on Spot: the worker group's instances distribution. */
export interface SwarmWorkerSpot {
  /**
   * Workers that are always On-Demand, before any Spot.
   *
   * @default 0
   */
  readonly onDemandBaseCapacity?: number;
  /**
   * Percentage (0-100) of the workers above the base that are On-Demand; the rest are Spot.
   *
   * @default 0 - every worker above the base is Spot
   */
  readonly onDemandPercentageAboveBaseCapacity?: number;
  /**
   * How Spot capacity is chosen among the worker instance types.
   *
   * @default 'price-capacity-optimized'
   */
  readonly allocationStrategy?: (typeof SPOT_ALLOCATION_STRATEGIES)[number];
}

export interface SwarmClusterProps {
  /**
   * Cluster name: names the SSM parameters (`/ec2-swarm/<name>/…`), the Auto Scaling groups, tags and outputs.
   *
   * 1-32 lowercase letters, digits and hyphens, starting with a letter. Unique per account and region.
   *
   * @default 'swarm'
   */
  readonly name?: string;
  /**
   * Number of managers: 1, 3, 5 or 7 (they survive 0, 1, 2 or 3 failures).
   *
   * Even counts add no fault tolerance and are refused. Use at least three AZs (`maxAzs`, or subnets in three AZs)
   * to survive the loss of one.
   *
   * @default 1
   */
  readonly managers?: number;
  /**
   * Desired number of workers: the worker group's size when it is created (0 to 1000).
   *
   * Also its minimum and maximum unless `minWorkers` / `maxWorkers` say otherwise. May be a token (e.g. a
   * CfnParameter); the range is then checked by CloudFormation, not here. With 0 the group exists empty and
   * expects no signals, so the stack (and its outputs) keep the same shape.
   *
   * @default 3
   */
  readonly workers?: number;
  /**
   * Minimum size of the worker group, for scaling policies (`cluster.workers.scaleOnCpuUtilization(…)`).
   *
   * At most `workers`. May be a token. The group's desired capacity stays `workers` in the template (CloudFormation
   * waits for that many joins), so a deploy that updates the group may set a scaled group back to `workers`.
   *
   * @default - `workers`
   */
  readonly minWorkers?: number;
  /**
   * Maximum size of the worker group, for scaling policies.
   *
   * At least `workers`. May be a token. With `maxWorkers` equal to `workers` the group gets one spare slot for
   * rolling updates (the new worker joins before an old one goes).
   *
   * @default - `workers`
   */
  readonly maxWorkers?: number;
  /**
   * Manager instance type. Its architecture picks the Amazon Linux 2023 image (x86_64 or arm64).
   *
   * @default 't3.small'
   */
  readonly managerInstanceType?: SwarmInstanceType;
  /**
   * Worker instance type. Its architecture picks the Amazon Linux 2023 image (x86_64 or arm64).
   *
   * Do not combine with `workerInstanceTypes`.
   *
   * @default 't3.small'
   */
  readonly workerInstanceType?: SwarmInstanceType;
  /**
   * Several worker instance types, in priority order: the worker group gets a mixed instances policy whose
   * launch template carries the first. All must share one CPU architecture (the image is chosen by it).
   *
   * @default - `workerInstanceType` alone, no mixed instances policy (unless `workerSpot` is set)
   */
  readonly workerInstanceTypes?: SwarmInstanceType[];
  /**
   * Run workers on Spot: a mixed instances policy with this distribution, and capacity rebalancing (an at-risk
   * Spot worker is replaced, and drained through the termination hook, before it is reclaimed).
   *
   * A reclaimed Spot worker gets at most EC2's two-minute notice to drain. Managers are never Spot.
   *
   * @default - every worker On-Demand
   */
  readonly workerSpot?: SwarmWorkerSpot;
  /**
   * Root volume size in GiB (encrypted gp3). At least 8; may be a token.
   *
   * @default 20
   */
  readonly rootVolumeGiB?: number;
  /**
   * An AMI id for every node, used as given (changing it rolls the nodes one at a time).
   *
   * Its root device must be `/dev/xvda` and it must run the node scripts (bash, dnf or Docker preinstalled, AWS
   * CLI v2). Do not combine with `machineImage`.
   *
   * @default - the latest Amazon Linux 2023 image, resolved by EC2 at each launch
   */
  readonly ami?: string;
  /**
   * The image of every node, as an `ec2.IMachineImage` (e.g. `ec2.MachineImage.lookup(…)`,
   * `ec2.MachineImage.genericLinux({ … })`).
   *
   * Must be a Linux image with the requirements of `ami`. Do not combine with `ami`.
   *
   * @default - the latest Amazon Linux 2023 image for each group's architecture, resolved by EC2 at each launch
   *   (`resolve:ssm:` in the launch template: an AMI release changes no template and replaces no node)
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * The VPC to place the cluster in.
   *
   * Do not combine with `vpcId`.
   *
   * @default - a VPC looked up by `vpcId`, else a new VPC: `maxAzs` AZs, public subnets only, no NAT gateway
   */
  readonly vpc?: ec2.IVpc;
  /**
   * An existing VPC id, looked up at synth time (`Vpc.fromLookup`, needs AWS credentials once).
   *
   * For apps that have the VPC as an object, `vpc` is the better choice.
   *
   * @default - a new VPC (see `vpc`)
   */
  readonly vpcId?: string;
  /**
   * Availability zones of a VPC this construct creates.
   *
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Subnets of the nodes (managers and workers). The load balancer is placed by `loadBalancerSubnets`.
   *
   * @default - private subnets with egress if the VPC has any, else public subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * The security group of every node. The construct adds the swarm ports (from the group itself), ESP with
   * `encryptedOverlay`, and the published ports to it; it must allow outbound HTTPS (SSM, package repositories,
   * image registries).
   *
   * @default - a new security group with all outbound traffic allowed
   */
  readonly securityGroup?: ec2.ISecurityGroup;
  /**
   * The managers' instance role. Assumable by `ec2.amazonaws.com`; the construct attaches
   * AmazonSSMManagedInstanceCore (to a role of this app; an imported role must carry it already) and the managers'
   * statements (their parameter prefix, the reconciler's calls, a Deny of every other parameter), and names it in
   * the token key's policy.
   *
   * @default - a new role
   */
  readonly managerRole?: iam.IRole;
  /**
   * The workers' instance role, treated like `managerRole` with the workers' statements (read the worker token
   * and the manager addresses, nothing else).
   *
   * @default - a new role
   */
  readonly workerRole?: iam.IRole;
  /**
   * Ports published to clients, each only from its sources (`cidrs`, `peers`).
   *
   * @default - none: nothing is reachable from outside the cluster
   */
  readonly publishedPorts?: SwarmPublishedPort[];
  /**
   * An internet-facing Network Load Balancer in front of the workers, one listener per published port.
   *
   * @default false
   */
  readonly loadBalancer?: boolean;
  /**
   * Subnets of the load balancer (internet-facing: they must be public).
   *
   * @default - the VPC's public subnets
   */
  readonly loadBalancerSubnets?: ec2.SubnetSelection;
  /**
   * Allow ESP (IP protocol 50) between nodes, so `docker network create --opt encrypted` works.
   *
   * @default false
   */
  readonly encryptedOverlay?: boolean;
  /**
   * Where overlay networks get their subnets (`docker swarm init --default-addr-pool`).
   *
   * Must not overlap the VPC: refused at synth when the VPC CIDR is known (a new VPC, or a given one with a
   * concrete CIDR).
   *
   * @default '172.20.0.0/16' (in 172.16.0.0/12, clear of the new VPC's 10.0.0.0/16 and of docker0/docker_gwbridge)
   */
  readonly overlayAddressPool?: string;
  /**
   * Prefix length of each overlay network's subnet (`--default-addr-pool-mask-length`), 16 to 28.
   *
   * @default 24
   */
  readonly overlayAddressPoolMask?: number;
}

/** Props that are CDK objects: the construct uses them as they are; the config schema never sees them. */
const OBJECT_PROPS = ['vpc', 'vpcSubnets', 'securityGroup', 'managerRole', 'workerRole', 'machineImage', 'loadBalancerSubnets'] as const;

/** Numeric props a token may stand for: CloudFormation resolves them, so only their shape is checked here. */
const TOKEN_PROPS = ['workers', 'minWorkers', 'maxWorkers', 'rootVolumeGiB'] as const;
type TokenProp = (typeof TOKEN_PROPS)[number];

function containsToken(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'string' || typeof value === 'number') return Token.isUnresolved(value);
  if (Array.isArray(value)) return value.some(containsToken);
  if (typeof value === 'object') return Token.isUnresolved(value) || Object.values(value).some(containsToken);
  return false;
}

function propError(prop: string, message: string): SwarmError {
  return SwarmError.user('PROPS_INVALID', `Invalid SwarmCluster props:\n✖ ${message}\n  → at ${prop}`);
}

function instanceTypeName(value: SwarmInstanceType): string {
  return typeof value === 'string' ? value : value.toString();
}

/**
 * Stand-ins for token sizes while the schema checks the rest: inside every concrete bound, so `minWorkers ≤ workers
 * ≤ maxWorkers` and `loadBalancer needs workers > 0` hold for the token and are left to CloudFormation.
 */
function tokenProbes(values: Partial<Record<TokenProp, number>>, tokens: ReadonlySet<TokenProp>): Record<TokenProp, number> {
  const known = (k: TokenProp) => (tokens.has(k) ? undefined : values[k]);
  const min = known('minWorkers');
  const max = known('maxWorkers');
  const workers = known('workers');
  return {
    workers: Math.min(Math.max(1, min ?? 0), max ?? 1000),
    minWorkers: Math.min(workers ?? 0, max ?? 0),
    maxWorkers: Math.max(workers ?? 1000, min ?? 1000),
    rootVolumeGiB: 8,
  };
}

/** Checks that need the objects themselves; the schema checks the rest. */
function checkObjectProps(props: SwarmClusterProps): void {
  if (props.vpc && props.vpcId !== undefined) throw propError('vpcId', 'pass either vpc or vpcId, not both');
  if (props.machineImage && props.ami !== undefined) throw propError('ami', 'pass either machineImage or ami, not both');
  (props.publishedPorts ?? []).forEach((p, i) => {
    if (p.peers !== undefined && !Array.isArray(p.peers)) throw propError(`publishedPorts[${i}].peers`, 'must be a list of ec2.IPeer');
    (p.peers ?? []).forEach((peer, j) => {
      if (typeof (peer as Partial<ec2.IPeer>)?.toIngressRuleConfig !== 'function') {
        throw propError(`publishedPorts[${i}].peers[${j}]`, 'must be an ec2.IPeer (ec2.Peer.ipv4(…), ec2.Peer.prefixList(…), a security group)');
      }
    });
  });
}

/**
 * Validates props with the config schema and fills in defaults. Unresolved numeric tokens (`workers`,
 * `minWorkers`, `maxWorkers`, `rootVolumeGiB`) skip the numeric checks and are passed through; any other token is
 * refused by name. CDK objects are not part of the result: the construct reads them from the props.
 */
export function resolveClusterProps(props: SwarmClusterProps): ClusterConfig {
  checkObjectProps(props);
  const probe: Record<string, unknown> = { ...props };
  for (const key of OBJECT_PROPS) delete probe[key];
  if (props.managerInstanceType !== undefined) probe.managerInstanceType = instanceTypeName(props.managerInstanceType);
  if (props.workerInstanceType !== undefined) probe.workerInstanceType = instanceTypeName(props.workerInstanceType);
  if (props.workerInstanceTypes !== undefined) probe.workerInstanceTypes = props.workerInstanceTypes.map(instanceTypeName);
  const portsWithOtherSources = new Set<number>();
  if (props.publishedPorts !== undefined) {
    probe.publishedPorts = props.publishedPorts.map((p, i) => {
      const { peers, ...rest } = p;
      if ((peers ?? []).length > 0) portsWithOtherSources.add(i);
      return rest;
    });
  }

  const tokens = new Set(TOKEN_PROPS.filter((k) => typeof props[k] === 'number' && Token.isUnresolved(props[k])));
  const stand = tokenProbes(props, tokens);
  for (const key of tokens) probe[key] = stand[key];
  for (const [key, value] of Object.entries(probe)) {
    if (containsToken(value)) {
      throw propError(key, `must be a concrete value at synth time (tokens are accepted only for ${TOKEN_PROPS.join(', ')})`);
    }
  }
  const config = parseClusterConfig(probe, 'SwarmCluster props', { portsWithOtherSources });
  const passthrough: Partial<Record<TokenProp, number>> = {};
  for (const key of tokens) passthrough[key] = props[key];
  return { ...config, ...passthrough };
}
