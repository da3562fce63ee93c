import { App } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { formatPlan } from '../../lib/cluster/plan';
import { addSwarmStack, packageCdkContext, planCluster } from '../../lib/cluster/swarm-app';
import { parseClusterConfig } from '../../lib/config';

describe('the app', () => {
  test('synth fails on a finding nobody acknowledged (cdk-nag is enforced, not just reported)', () => {
    const app = new App({ context: packageCdkContext() });
    const { stack } = addSwarmStack(app, parseClusterConfig({}));
    const sg = new ec2.SecurityGroup(stack, 'Extra', { vpc: stack.cluster.vpc, description: 'extra' });
    sg.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    expect(() => app.synth()).toThrow(/AwsSolutions-EC23/);
  });

  test('synth succeeds for the default cluster', () => {
    const app = new App({ context: packageCdkContext() });
    addSwarmStack(app, parseClusterConfig({}));
    expect(() => app.synth()).not.toThrow();
  });
});

describe('the plan (npm run plan)', () => {
  const { plan, findings } = planCluster(parseClusterConfig({ workers: 3 }));
  const text = formatPlan(plan);

  test('no unacknowledged findings', () => {
    expect(findings).toEqual([]);
  });

  test('says what will be created', () => {
    expect(plan.stackName).toBe('ec2-swarm-swarm');
    expect(text).toContain('1 manager + 3 workers (4 EC2 instances); the managers survive 0 failures');
    expect(plan.resources['AWS::EC2::Instance']).toBeUndefined();
    expect(plan.resources['AWS::AutoScaling::AutoScalingGroup']).toBe(2);
    expect(plan.resources['AWS::EC2::LaunchTemplate']).toBe(2);
    expect(plan.resources['AWS::AutoScaling::LifecycleHook']).toBe(2);
    expect(plan.resources['AWS::KMS::Key']).toBe(1);
    expect(text).toContain('resolved by EC2 at each launch');
  });

  test('3 managers: the plan says how many failures they survive', () => {
    const p = planCluster(parseClusterConfig({ managers: 3, workers: 2 }));
    expect(p.findings).toEqual([]);
    expect(formatPlan(p.plan)).toContain('3 managers + 2 workers (5 EC2 instances); the managers survive 1 failure\n');
  });

  test('lists every inbound rule with its source, read from the template', () => {
    expect(plan.ingress.map((r) => `${r.traffic} ${r.from}`).sort()).toEqual(
      ['2377/tcp cluster nodes', '4789/udp cluster nodes', '7946/tcp cluster nodes', '7946/udp cluster nodes'].sort(),
    );
    expect(text).toMatch(/2377\/tcp\s+from cluster nodes\s+swarm cluster management/);
  });

  test('published ports and the load balancer show up with their CIDRs', () => {
    const p = planCluster(
      parseClusterConfig({ publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }], loadBalancer: true, encryptedOverlay: true }),
    ).plan;
    const rules = p.ingress.map((r) => `${r.group}: ${r.traffic} ${r.from}`);
    expect(rules).toEqual(
      expect.arrayContaining([
        'nodes: 80/tcp 203.0.113.0/24',
        'nodes: 80/tcp load balancer',
        'load balancer: 80/tcp 203.0.113.0/24',
        'nodes: ESP (IP protocol 50) cluster nodes',
      ]),
    );
  });

  test('who may read and write which parameter, from the IAM policies', () => {
    const access = Object.fromEntries(plan.parameters.map((p) => [p.name, p.access]));
    const owner = { managers: ['read', 'write', 'delete'], 'stack deletion (cleanup)': ['delete'] };
    expect(access['/ec2-swarm/swarm/worker-token']).toEqual({ ...owner, workers: ['read'] });
    expect(access['/ec2-swarm/swarm/manager-addresses']).toEqual({ ...owner, workers: ['read'] });
    expect(access['/ec2-swarm/swarm/manager-token']).toEqual(owner);
    expect(access['/ec2-swarm/swarm/init-lock']).toEqual(owner);
    expect(access['/ec2-swarm/swarm/cluster-id']).toEqual(owner);
    expect(text).toMatch(/\/ec2-swarm\/swarm\/manager-token\s+SecureString\s+managers: read\/write\/delete; stack deletion \(cleanup\): delete/);
  });
});
