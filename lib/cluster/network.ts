/**
 * The cluster's network: the VPC (given, looked up, or a new one), the subnets the nodes use, and the one
 * security group of every node with the swarm ports open only between nodes. Published ports are added by
 * `published-ports.ts`.
 */
import { Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { ClusterConfig, SWARM_PORTS } from '../config';
import { checkAddressPool } from './address-pool';

/** The CIDR of a VPC this construct creates (aws-cdk-lib's default, written down so the pool check knows it). */
export const NEW_VPC_CIDR = '10.0.0.0/16';
/** ESP (IP protocol 50) has no ports; Port.esp() renders FromPort/ToPort 50, which CloudFormation ignores. */
const ESP = new ec2.Port({ protocol: ec2.Protocol.ESP, stringRepresentation: 'ESP' });

export function portFor(port: number, protocol: 'tcp' | 'udp'): ec2.Port {
  return protocol === 'udp' ? ec2.Port.udp(port) : ec2.Port.tcp(port);
}

export interface SwarmNetworkProps {
  readonly config: ClusterConfig;
  /** @default - looked up by `config.vpcId`, else a new VPC */
  readonly vpc?: ec2.IVpc;
  /** @default - private subnets with egress if the VPC has any, else public subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** The nodes' security group; the swarm rules are added to it. @default - a new one, all outbound allowed */
  readonly securityGroup?: ec2.ISecurityGroup;
}

export class SwarmNetwork extends Construct {
  public readonly vpc: ec2.IVpc;
  /** Where the nodes (managers and workers) run: every AZ of the selection. */
  public readonly vpcSubnets: ec2.SubnetSelection;
  /** The one security group of every node. */
  public readonly securityGroup: ec2.ISecurityGroup;

  constructor(scope: Construct, id: string, props: SwarmNetworkProps) {
    super(scope, id);
    const { config } = props;
    let knownCidr: string | undefined;
    if (props.vpc) {
      this.vpc = props.vpc;
      knownCidr = Token.isUnresolved(props.vpc.vpcCidrBlock) ? undefined : props.vpc.vpcCidrBlock;
    } else if (config.vpcId) {
      this.vpc = ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: config.vpcId });
      knownCidr = Token.isUnresolved(this.vpc.vpcCidrBlock) ? undefined : this.vpc.vpcCidrBlock;
    } else {
      const vpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr(NEW_VPC_CIDR),
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
      knownCidr = NEW_VPC_CIDR;
    }
    checkAddressPool(config.overlayAddressPool, [knownCidr]);

    this.vpcSubnets =
      props.vpcSubnets ??
      (this.vpc.privateSubnets.length > 0 ? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } : { subnetType: ec2.SubnetType.PUBLIC });

    this.securityGroup =
      props.securityGroup ??
      new ec2.SecurityGroup(this, 'NodeSecurityGroup', {
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
  }
}
