/**
 * Ports published to clients: each open on the nodes only from its sources (CIDRs, and peers such as prefix lists
 * or security groups), and optionally an internet-facing Network Load Balancer in front of the workers, one
 * listener per port.
 */
import { Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { ClusterConfig } from '../config';
import { portFor } from './network';

function peerFor(cidr: string): ec2.IPeer {
  return cidr.includes(':') ? ec2.Peer.ipv6(cidr) : ec2.Peer.ipv4(cidr);
}

const WORLD = new Set(['0.0.0.0/0', '::/0']);

/** A published port with every source it admits: its CIDRs as peers, then its other peers. */
interface PortSources {
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly sources: ReadonlyArray<{ readonly peer: ec2.IPeer; readonly label: string }>;
}

function sourcesOf(config: ClusterConfig, peers: ReadonlyArray<readonly ec2.IPeer[] | undefined>): PortSources[] {
  return config.publishedPorts.map((p, i) => ({
    port: p.port,
    protocol: p.protocol,
    sources: [...p.cidrs.map((cidr) => ({ peer: peerFor(cidr), label: cidr })), ...(peers[i] ?? []).map((peer) => ({ peer, label: peer.uniqueId }))],
  }));
}

function opensToWorld(peer: ec2.IPeer): boolean {
  const rule = peer.toIngressRuleConfig() as { cidrIp?: string; cidrIpv6?: string };
  return WORLD.has(rule.cidrIp ?? '') || WORLD.has(rule.cidrIpv6 ?? '');
}

/** EC23 flags 0.0.0.0/0 ingress; a published port open to the world is the user's written choice. */
function acknowledgeWorldOpenPorts(group: ec2.ISecurityGroup, ports: readonly PortSources[]): void {
  const worldOpen = ports.filter((p) => p.sources.some((s) => opensToWorld(s.peer)));
  if (worldOpen.length === 0) return;
  Validations.of(group).acknowledge({
    id: 'AwsSolutions-EC23',
    reason: `Open to the internet by explicit configuration (publishedPorts ${worldOpen.map((p) => `${p.port}/${p.protocol}`).join(', ')}); swarm ports stay cluster-internal.`,
  });
}

export interface PublishedPortsProps {
  readonly config: ClusterConfig;
  /** Sources besides the CIDRs, by index of `config.publishedPorts`. @default - none */
  readonly peers?: ReadonlyArray<readonly ec2.IPeer[] | undefined>;
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's public subnets */
  readonly loadBalancerSubnets?: ec2.SubnetSelection;
  /** The nodes' security group: receives one rule per published port and source. */
  readonly nodeSecurityGroup: ec2.ISecurityGroup;
  /** The load balancer's targets. */
  readonly workers: autoscaling.AutoScalingGroup;
}

export class PublishedPorts extends Construct {
  /** The internet-facing load balancer, when `loadBalancer` is set. */
  public readonly loadBalancer?: elbv2.NetworkLoadBalancer;

  constructor(scope: Construct, id: string, props: PublishedPortsProps) {
    super(scope, id);
    const { config, nodeSecurityGroup } = props;
    const ports = sourcesOf(config, props.peers ?? []);
    for (const p of ports) {
      for (const s of p.sources) {
        nodeSecurityGroup.addIngressRule(s.peer, portFor(p.port, p.protocol), `published ${p.port}/${p.protocol} from ${s.label}`);
      }
    }
    acknowledgeWorldOpenPorts(nodeSecurityGroup, ports);
    if (config.loadBalancer) this.loadBalancer = this.addLoadBalancer(props, ports);
  }

  private addLoadBalancer({ config, vpc, nodeSecurityGroup, workers, loadBalancerSubnets }: PublishedPortsProps, ports: readonly PortSources[]): elbv2.NetworkLoadBalancer {
    const nlbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc,
      description: `ec2-swarm ${config.name}: load balancer, published ports only from their CIDRs`,
      allowAllOutbound: false,
    });
    const nlb = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      vpcSubnets: loadBalancerSubnets ?? { subnetType: ec2.SubnetType.PUBLIC },
      internetFacing: true,
      crossZoneEnabled: true,
      securityGroups: [nlbSecurityGroup],
    });
    for (const p of ports) {
      const port = portFor(p.port, p.protocol);
      for (const s of p.sources) nlbSecurityGroup.addIngressRule(s.peer, port, `published ${p.port}/${p.protocol} from ${s.label}`);
      // The NLB keeps the client's address, but a target whose group admits the NLB's security group accepts
      // the NLB's traffic (and its health checks) through that rule; the CIDR rules above still decide who gets in.
      nlbSecurityGroup.addEgressRule(nodeSecurityGroup, port, `to workers ${p.port}/${p.protocol}`);
      nodeSecurityGroup.addIngressRule(nlbSecurityGroup, port, `published ${p.port}/${p.protocol} from the load balancer`);
      const protocol = p.protocol === 'udp' ? elbv2.Protocol.UDP : elbv2.Protocol.TCP;
      const listener = nlb.addListener(`Listener${p.port}${p.protocol}`, { port: p.port, protocol });
      listener.addTargets(`Workers${p.port}${p.protocol}`, {
        port: p.port,
        protocol,
        targets: [workers],
        // UDP cannot be health-checked directly; a TCP check on the same port needs the service to listen on both.
        healthCheck: { protocol: elbv2.Protocol.TCP },
      });
    }
    acknowledgeWorldOpenPorts(nlbSecurityGroup, ports);
    Validations.of(nlb).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason: 'Access logs need an S3 bucket with its own lifecycle; left to the user, who can enable them on this load balancer.',
    });
    return nlb;
  }
}
