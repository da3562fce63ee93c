/**
 * SwarmCluster props: the cluster config (lib/config.ts) as construct props, validated by the same zod schema so
 * the messages name the prop, with tokens allowed where CloudFormation can resolve them (the numeric sizes).
 */
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { ClusterConfig, parseClusterConfig } from '../config';
import { SwarmError } from '../errors';

/** A port published to clients, with who may reach it. */
export interface SwarmPublishedPort {
  /** TCP or UDP port on every node (and on the load balancer when `loadBalancer` is set). */
  readonly port: number;
  /**
   * @default 'tcp'
   */
  readonly protocol?: 'tcp' | 'udp';
  /**
   * CIDRs allowed to connect. No default on purpose: opening a port to the world must be written down.
   */
  readonly cidrs: string[];
}

export interface SwarmClusterProps {
  /**
   * Cluster name: names the SSM parameters (`/ec2-swarm/<name>/…`), tags and outputs.
   *
   * 1-32 lowercase letters, digits and hyphens, starting with a letter.
   *
   * @default 'swarm'
   */
  readonly name?: string;
  /**
   * Number of managers: 1, 3, 5 or 7 (they survive 0, 1, 2 or 3 failures). Even counts add no fault tolerance
   * and are refused. Use at least as many AZs (`maxAzs`) as you want to survive AZ failures.
   *
   * @default 1
   */
  readonly managers?: number;
  /**
   * Number of workers: the worker Auto Scaling Group's min, max and desired capacity. 0 to 1000; may be a token
   * (e.g. a CfnParameter), in which case the range is checked by CloudFormation, not here.
   *
   * With 0 the group exists empty and expects no signals, so the stack (and its outputs) keep the same shape.
   *
   * @default 3
   */
  readonly workers?: number;
  /**
   * Manager instance type. Its architecture picks the Amazon Linux 2023 image (x86_64 or arm64).
   *
   * @default 't3.small'
   */
  readonly managerInstanceType?: string;
  /**
   * Worker instance type. Its architecture picks the Amazon Linux 2023 image (x86_64 or arm64).
   *
   * @default 't3.small'
   */
  readonly workerInstanceType?: string;
  /**
   * Root volume size in GiB (encrypted gp3). At least 8; may be a token.
   *
   * @default 20
   */
  readonly rootVolumeGiB?: number;
  /**
   * An AMI id for every node. Its root device must be `/dev/xvda` and it must run the node scripts (bash, dnf or
   * Docker preinstalled, AWS CLI v2).
   *
   * @default - the latest Amazon Linux 2023 image, from its public SSM parameter
   */
  readonly ami?: string;
  /**
   * An existing VPC id, looked up at synth time (`Vpc.fromLookup`, needs AWS credentials once).
   *
   * @default - a new VPC (see `vpc`)
   */
  readonly vpcId?: string;
  /**
   * Availability zones of the new VPC.
   *
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Ports published to clients, each only from its CIDRs.
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
   * Allow ESP (IP protocol 50) between nodes, so `docker network create --opt encrypted` works.
   *
   * @default false
   */
  readonly encryptedOverlay?: boolean;
  /**
   * Where overlay networks get their subnets (`docker swarm init --default-addr-pool`). Must not overlap the VPC:
   * refused at synth when the VPC CIDR is known (a new VPC, or a given one with a concrete CIDR).
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
  /**
   * The VPC to place the cluster in (takes precedence over creating one; do not combine with `vpcId`).
   *
   * @default - a new VPC: `maxAzs` AZs, public subnets only, no NAT gateway (the cheapest one that works)
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets for the nodes (and the load balancer).
   *
   * @default - private subnets with egress if the VPC has any, else public subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
}

/** Props a token may stand for: CloudFormation resolves them, so only their shape is checked here. */
const TOKEN_PROPS = { workers: 1, rootVolumeGiB: 8 } as const;

function containsToken(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'string' || typeof value === 'number') return Token.isUnresolved(value);
  if (Array.isArray(value)) return value.some(containsToken);
  if (typeof value === 'object') return Token.isUnresolved(value) || Object.values(value).some(containsToken);
  return false;
}

/**
 * Validates props with the config schema and fills in defaults. Unresolved numeric tokens (`workers`,
 * `rootVolumeGiB`) skip the numeric checks and are passed through; any other token is refused by name.
 */
export function resolveClusterProps(props: SwarmClusterProps): ClusterConfig {
  const { vpc, vpcSubnets, ...config } = props;
  void vpcSubnets;
  if (vpc && config.vpcId !== undefined) {
    throw SwarmError.user('PROPS_INVALID', '✖ pass either vpc or vpcId, not both\n  → at vpcId');
  }
  const probe: Record<string, unknown> = { ...config };
  const passthrough: Partial<Record<keyof typeof TOKEN_PROPS, number>> = {};
  for (const key of Object.keys(TOKEN_PROPS) as (keyof typeof TOKEN_PROPS)[]) {
    const v = config[key];
    if (typeof v === 'number' && Token.isUnresolved(v)) {
      passthrough[key] = v;
      probe[key] = TOKEN_PROPS[key];
    }
  }
  for (const [key, value] of Object.entries(probe)) {
    if (containsToken(value)) {
      throw SwarmError.user(
        'PROPS_INVALID',
        `✖ must be a concrete value at synth time (tokens are accepted only for ${Object.keys(TOKEN_PROPS).join(' and ')})\n  → at ${key}`,
      );
    }
  }
  return { ...parseClusterConfig(probe, 'SwarmCluster props'), ...passthrough };
}
