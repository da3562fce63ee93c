import { App, CfnParameter, Stack, Token } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { checkAddressPool, cidrsOverlap, ipv4Range } from '../../lib/cluster/address-pool';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { SWARM_PORTS } from '../../lib/config';
import { SwarmError } from '../../lib/errors';
import { ENV, groupOf, ingressRules, logicalIdOf, synth, text } from './helpers';

const SWARM = SWARM_PORTS.map((p) => `${p.port}/${p.protocol}`);
const covers = (r: { protocol: string; fromPort?: number; toPort?: number }, port: number, protocol: string) =>
  r.protocol === '-1' || (r.protocol === protocol && (r.fromPort ?? 0) <= port && port <= (r.toPort ?? 65535));

describe('network and published ports', () => {
  test('default VPC: public subnets only, no NAT gateway', () => {
    const { template } = synth({ maxAzs: 3 });
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 3);
    template.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: true });
  });

  test('swarm ports are open only from the cluster group itself; nothing else, no SSH', () => {
    const { stack, json } = synth();
    const sg = logicalIdOf(stack, stack.cluster.securityGroup);
    const rules = ingressRules(json);
    expect(rules.map((r) => `${r.fromPort}/${r.protocol}`).sort()).toEqual([...SWARM].sort());
    for (const r of rules) {
      expect(r.groupId).toBe(sg);
      expect(r.sourceGroup).toBe(sg);
      expect(r.cidr).toBeUndefined();
    }
    expect(rules.some((r) => covers(r, 22, 'tcp'))).toBe(false);
  });

  test('ESP only between nodes, only when encryptedOverlay is set', () => {
    const esp = (j: Record<string, any>) => ingressRules(j).filter((r) => r.protocol === '50');
    expect(esp(synth().json)).toEqual([]);
    const { stack, json } = synth({ encryptedOverlay: true });
    const sg = logicalIdOf(stack, stack.cluster.securityGroup);
    expect(esp(json)).toEqual([{ groupId: sg, protocol: '50', fromPort: undefined, toPort: undefined, cidr: undefined, sourceGroup: sg }]);
  });

  test('published ports are open from exactly their CIDRs', () => {
    const { stack, json } = synth({
      publishedPorts: [
        { port: 443, cidrs: ['203.0.113.0/24', '2001:db8::/32'] },
        { port: 5000, protocol: 'udp', cidrs: ['198.51.100.7/32'] },
      ],
    });
    const sg = logicalIdOf(stack, stack.cluster.securityGroup);
    const published = ingressRules(json).filter((r) => r.cidr !== undefined);
    expect(published.map((r) => `${r.groupId} ${r.fromPort}-${r.toPort}/${r.protocol} ${r.cidr}`).sort()).toEqual(
      [`${sg} 443-443/tcp 203.0.113.0/24`, `${sg} 443-443/tcp 2001:db8::/32`, `${sg} 5000-5000/udp 198.51.100.7/32`].sort(),
    );
  });

  test('no 0.0.0.0/0 or ::/0 on a swarm port, even with a world-open published port and a load balancer', () => {
    const { json } = synth({ publishedPorts: [{ port: 80, cidrs: ['0.0.0.0/0', '::/0'] }], loadBalancer: true, encryptedOverlay: true });
    const world = ingressRules(json).filter((r) => r.cidr === '0.0.0.0/0' || r.cidr === '::/0');
    expect(world.length).toBeGreaterThan(0); // the published port: the check below is not vacuous
    for (const r of world) {
      for (const p of SWARM_PORTS) expect(covers(r, p.port, p.protocol)).toBe(false);
      expect(r.protocol).not.toBe('50');
    }
  });

  test('load balancer: one listener per published port, targets the workers, reachable only from the CIDRs', () => {
    const { stack, json, template } = synth({
      publishedPorts: [
        { port: 80, cidrs: ['203.0.113.0/24'] },
        { port: 53, protocol: 'udp', cidrs: ['198.51.100.0/24'] },
      ],
      loadBalancer: true,
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internet-facing' });
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 2);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 53, Protocol: 'UDP' });
    expect(groupOf(json, 'worker').group.Properties.TargetGroupARNs).toHaveLength(2);
    expect(groupOf(json, 'manager').group.Properties.TargetGroupARNs).toBeUndefined();

    const nodes = logicalIdOf(stack, stack.cluster.securityGroup);
    const lb = logicalIdOf(stack, stack.cluster.loadBalancer!.connections.securityGroups[0]);
    const rules = ingressRules(json);
    const describe = (r: (typeof rules)[number]) => `${r.fromPort}/${r.protocol} ${r.cidr ?? r.sourceGroup}`;
    expect(rules.filter((r) => r.groupId === lb).map(describe).sort()).toEqual(['53/udp 198.51.100.0/24', '80/tcp 203.0.113.0/24']);
    expect(rules.filter((r) => r.groupId === nodes && r.sourceGroup === lb).map(describe).sort()).toEqual([`53/udp ${lb}`, `80/tcp ${lb}`]);
  });

  test('no load balancer unless asked', () => {
    synth({ publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }] }).template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
  });
});


describe('overlay address pool vs the VPC', () => {
  const newStack = () => new Stack(new App({ context: packageCdkContext() }), 'S', { env: ENV });
  const userError = (fn: () => unknown): SwarmError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(SwarmError);
      expect((e as SwarmError).fault).toBe('user');
      return e as SwarmError;
    }
    throw new Error('expected a user error');
  };

  test('a pool inside the new VPC (10.0.0.0/16) is refused at synth, naming both ranges', () => {
    const err = userError(() => new SwarmCluster(newStack(), 'C', { overlayAddressPool: '10.0.0.0/8' }));
    expect(err.message).toContain('overlayAddressPool 10.0.0.0/8 overlaps the VPC CIDR 10.0.0.0/16');
    expect(err.message).toContain('→ at overlayAddressPool');
  });

  test('a given VPC with a concrete CIDR is checked too; a pool beside it is accepted and reaches the nodes', () => {
    const stack = newStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Given', { vpcId: 'vpc-0123456789abcdef0', vpcCidrBlock: '192.168.0.0/16', availabilityZones: ['eu-west-1a'], publicSubnetIds: ['subnet-0123456789abcdef0'] });
    const err = userError(() => new SwarmCluster(stack, 'C', { vpc, overlayAddressPool: '192.168.200.0/22' }));
    expect(err.message).toContain('overlayAddressPool 192.168.200.0/22 overlaps the VPC CIDR 192.168.0.0/16');
    const ok = new SwarmCluster(stack, 'D', { vpc, overlayAddressPool: '10.0.0.0/16', overlayAddressPoolMask: 26 });
    const json = Template.fromStack(stack).toJSON();
    const ud = text(json.Resources[stack.resolve((ok.managerLaunchTemplate.node.defaultChild as any).logicalId)].Properties.LaunchTemplateData.UserData);
    expect(ud).toContain("export SWARM_ADDR_POOL='10.0.0.0/16'\nexport SWARM_ADDR_POOL_MASK='26'\n");
  });

  test('a VPC whose CIDR is a token is skipped (CloudFormation knows it, synth cannot)', () => {
    const stack = newStack();
    const cidr = new CfnParameter(stack, 'VpcCidr').valueAsString;
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Given', { vpcId: 'vpc-0123456789abcdef0', vpcCidrBlock: cidr, availabilityZones: ['eu-west-1a'], publicSubnetIds: ['subnet-0123456789abcdef0'] });
    expect(Token.isUnresolved(vpc.vpcCidrBlock)).toBe(true);
    // Would overlap any 10.x VPC; not refused because the VPC's range is unknown here.
    expect(() => new SwarmCluster(stack, 'C', { vpc, overlayAddressPool: '10.0.0.0/8' })).not.toThrow();
  });

  test('range arithmetic: overlap, adjacency, containment', () => {
    expect(cidrsOverlap('10.0.0.0/16', '10.0.255.0/24')).toBe(true);
    expect(cidrsOverlap('10.0.0.0/16', '10.1.0.0/16')).toBe(false);
    expect(cidrsOverlap('172.20.0.0/16', '172.16.0.0/12')).toBe(true);
    expect(cidrsOverlap('172.20.0.0/16', '172.21.0.0/16')).toBe(false);
    expect(ipv4Range('10.0.0.5/24')).toEqual([167772160, 167772415]);
    expect(() => checkAddressPool('172.20.0.0/16', [undefined, '10.0.0.0/16'])).not.toThrow();
  });
});
