/**
 * Who may reach and read what: the network and published ports, the nodes' IAM roles and the token key, operator
 * access (grantOperate), the staging bucket. One test file for them (aws-cdk-lib loads once per file, ~1 CPU-s),
 * one synth per configuration (test/cluster/helpers.ts synth).
 */
import { App, CfnParameter, Stack, Token, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { checkAddressPool, cidrsOverlap, ipv4Range } from '../../lib/cluster/address-pool';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { parameterNames, SWARM_PORTS } from '../../lib/config';
import { SwarmError } from '../../lib/errors';
import { ENV, groupOf, ingressRules, logicalIdOf, resourcesOfType, synth, text } from './helpers';

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

const policyOf = (json: Record<string, any>, roleId: string) =>
  resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[]);
const actionsOf = (st: any) => ([] as string[]).concat(st.Action);
/** A parameter ARN as the roles' statements spell it (pseudo parameters). */
const pArn = (name: string) => `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name}`;
/** As the cleanup's statement spells it (the stack's concrete env). */
const concreteArn = (name: string) => `arn:aws:ssm:${ENV.region}:${ENV.account}:parameter${name}`;
const READS = ['ssm:GetParameter', 'ssm:GetParameterHistory', 'ssm:GetParameters', 'ssm:GetParametersByPath'];

function roles(input: Parameters<typeof synth>[0] = { name: 'blue' }) {
  const s = synth(input);
  const manager = policyOf(s.json, logicalIdOf(s.stack, s.stack.cluster.managerRole));
  const worker = policyOf(s.json, logicalIdOf(s.stack, s.stack.cluster.workerRole));
  return { ...s, manager, worker };
}

describe('IAM', () => {
  test('both roles get AmazonSSMManagedInstanceCore and nothing else managed', () => {
    const { stack, json } = synth();
    for (const role of [stack.cluster.managerRole, stack.cluster.workerRole]) {
      const r = json.Resources[logicalIdOf(stack, role)];
      expect(r.Properties.ManagedPolicyArns.map(text)).toEqual(['arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore']);
    }
  });

  test('managers own the cluster prefix (tokens, init-lock, manager-addresses, cluster-id) and nothing else in SSM', () => {
    const { manager } = roles();
    const ssm = manager.filter((s) => s.Effect === 'Allow' && actionsOf(s).some((a) => a.startsWith('ssm:')));
    expect(ssm).toHaveLength(1);
    expect(actionsOf(ssm[0]).sort()).toEqual(['ssm:AddTagsToResource', 'ssm:DeleteParameter', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:PutParameter']);
    expect(text(ssm[0].Resource)).toBe(pArn('/ec2-swarm/blue/*'));
    // Every runtime parameter is under that prefix, and nothing else is.
    for (const name of Object.values(parameterNames('blue'))) expect(name.startsWith('/ec2-swarm/blue/')).toBe(true);
  });

  test("the reconciler's reads are on * (no resource-level support) and read-only; lifecycle actions only on the two groups", () => {
    const { manager } = roles();
    const star = manager.filter((s) => s.Effect === 'Allow' && s.Resource === '*');
    // (ecr:GetAuthorizationToken, also without resource-level support, is the image pulls' token: tested below.)
    expect(star.flatMap(actionsOf).sort()).toEqual(['autoscaling:DescribeAutoScalingInstances', 'ec2:DescribeInstances', 'ecr:GetAuthorizationToken']);
    const lifecycle = manager.filter((s) => actionsOf(s).includes('autoscaling:CompleteLifecycleAction'));
    expect(lifecycle).toHaveLength(1);
    expect(actionsOf(lifecycle[0]).sort()).toEqual(['autoscaling:CompleteLifecycleAction', 'autoscaling:RecordLifecycleActionHeartbeat']);
    expect([].concat(lifecycle[0].Resource).map(text).sort()).toEqual(
      ['ec2-swarm-blue-managers', 'ec2-swarm-blue-workers'].map(
        (g) => `arn:\${AWS::Partition}:autoscaling:\${AWS::Region}:\${AWS::AccountId}:autoScalingGroup:*:autoScalingGroupName/${g}`,
      ),
    );
    // Nothing that changes EC2 or a group's size.
    expect(JSON.stringify(manager)).not.toMatch(/ec2:(Terminate|Stop|Run)|autoscaling:(SetDesired|Update|Terminate)/);
  });

  test('each group signals its own stack', () => {
    const { manager, worker } = roles();
    for (const st of [manager, worker]) {
      const signal = st.find((s) => s.Action === 'cloudformation:SignalResource');
      expect(signal?.Resource).toEqual({ Ref: 'AWS::StackId' });
    }
  });

  test('workers may read only the worker token and the manager addresses', () => {
    const { worker } = roles();
    const names = parameterNames('blue');
    const allow = worker.filter((s) => s.Effect === 'Allow' && actionsOf(s).some((a) => a.startsWith('ssm:')));
    for (const a of allow.flatMap(actionsOf)) expect(a).toMatch(/^ssm:Get/);
    expect(allow.flatMap((s) => [].concat(s.Resource)).map(text).sort()).toEqual([pArn(names.managerAddresses), pArn(names.workerToken)].sort());
    expect(JSON.stringify(worker)).not.toMatch(/manager-token|init-lock|cluster-id|ssm:Put|ssm:Delete|kms:|autoscaling:|ec2:/);
  });

  test('the same explicit Deny for both roles overrides the SSM managed policy: no other parameter is readable', () => {
    const { manager, worker } = roles();
    const names = parameterNames('blue');
    const denies = (st: any[]) => st.filter((s) => s.Effect === 'Deny');
    for (const st of [manager, worker]) {
      expect(denies(st)).toHaveLength(1);
      expect(actionsOf(denies(st)[0]).sort()).toEqual(READS);
      expect(denies(st)[0].Resource).toBeUndefined();
    }
    expect([].concat(denies(worker)[0].NotResource).map(text).sort()).toEqual([pArn(names.managerAddresses), pArn(names.workerToken)].sort());
    expect([].concat(denies(manager)[0].NotResource).map(text)).toEqual([pArn('/ec2-swarm/blue/*')]);
  });

  test('both roles may pull from the ECR of their own account and region, and nothing more in ECR', () => {
    const { manager, worker } = roles();
    for (const st of [manager, worker]) {
      const ecr = st.filter((s) => actionsOf(s).some((a) => a.startsWith('ecr:')));
      expect(ecr.every((s) => s.Effect === 'Allow')).toBe(true);
      const token = ecr.filter((s) => actionsOf(s).includes('ecr:GetAuthorizationToken'));
      expect(token).toHaveLength(1);
      expect(actionsOf(token[0])).toEqual(['ecr:GetAuthorizationToken']);
      expect(token[0].Resource).toBe('*');
      const pulls = ecr.filter((s) => s !== token[0]);
      expect(pulls).toHaveLength(1);
      expect(actionsOf(pulls[0]).sort()).toEqual(['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
      expect([].concat(pulls[0].Resource).map(text)).toEqual(['arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*']);
      // No push, no delete, no repository management.
      expect(JSON.stringify(st)).not.toMatch(/ecr:(Put|Upload|InitiateLayerUpload|CompleteLayerUpload|Delete|Create|Set)/);
    }
  });

  test('stack deletion removes every runtime parameter, after the nodes are gone', () => {
    const { stack, json } = synth({ name: 'blue' });
    const names = Object.values(parameterNames('blue')).sort();
    const [[crId, cr]] = resourcesOfType(json, 'Custom::SwarmRuntimeParameterCleanup');
    const call = JSON.parse(cr.Properties.Delete);
    expect(call).toMatchObject({ service: 'SSM', action: 'deleteParameters' });
    expect(call.parameters.Names.sort()).toEqual(names);
    expect(names).toHaveLength(5);
    expect(cr.Properties.Create).toBeUndefined(); // nothing happens at create/update
    expect(cr.Properties.Update).toBeUndefined();
    const handlerRole = logicalIdOf(stack, stack.cluster.parameterCleanup.grantPrincipal as any);
    const st = policyOf(json, handlerRole);
    expect(st.flatMap(actionsOf)).toEqual(['ssm:DeleteParameters']);
    expect(st.flatMap((s) => [].concat(s.Resource)).map(text).sort()).toEqual(names.map(concreteArn).sort());
    // Both groups depend on it: created before them, deleted after them.
    for (const [, g] of resourcesOfType(json, 'AWS::AutoScaling::AutoScalingGroup')) expect(g.DependsOn).toContain(crId);
  });
});

describe('the join tokens key', () => {
  const keyOf = (json: Record<string, any>) => {
    const keys = resourcesOfType(json, 'AWS::KMS::Key');
    expect(keys).toHaveLength(1);
    return keys[0][1];
  };

  test('customer-managed, rotation on, deleted with the stack after a 7-day window, aliased by cluster', () => {
    const { json, template } = synth({ name: 'blue' });
    const key = keyOf(json);
    expect(key.Properties).toMatchObject({ EnableKeyRotation: true, PendingWindowInDays: 7 });
    expect(key.DeletionPolicy).toBe('Delete');
    template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/ec2-swarm/blue' });
  });

  test('its policy: administrators manage it; managers, workers and administrators use it only through SSM, only for this cluster', () => {
    const { stack, json } = synth({ name: 'blue' });
    const statements: any[] = keyOf(json).Properties.KeyPolicy.Statement;
    const managerRole = logicalIdOf(stack, stack.cluster.managerRole);
    const workerRole = logicalIdOf(stack, stack.cluster.workerRole);
    const root = `arn:aws:iam::${ENV.account}:root`;
    const principalOf = (s: any) => (typeof s.Principal.AWS === 'string' ? s.Principal.AWS : s.Principal.AWS['Fn::GetAtt'][0]);
    expect(statements.map((s) => `${s.Sid} ${principalOf(s)}`).sort()).toEqual(
      [`AccountAdministersTheKey ${root}`, `AccountAdministratorsUseItThroughSsm ${root}`, `ManagersUseItThroughSsm ${managerRole}`, `WorkersDecryptTheWorkerTokenThroughSsm ${workerRole}`].sort(),
    );
    for (const s of statements) expect(s.Effect).toBe('Allow');
    // No kms:* for anyone: the administrators' own statement cannot decrypt.
    expect(statements.flatMap(actionsOf)).not.toContain('kms:*');
    const admin = statements.find((s) => s.Sid === 'AccountAdministersTheKey');
    expect(actionsOf(admin).filter((a) => /Decrypt|Encrypt|GenerateDataKey|ReEncrypt/.test(a))).toEqual([]);
    expect(admin.Condition).toBeUndefined();

    const viaSsm = 'ssm.${AWS::Region}.amazonaws.com';
    const use = statements.filter((s) => s.Sid !== 'AccountAdministersTheKey');
    for (const s of use) {
      expect(text(s.Condition.StringEquals['kms:ViaService'])).toBe(viaSsm);
      expect(actionsOf(s).every((a) => ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'].includes(a))).toBe(true);
    }
    const manager = use.find((s) => s.Sid === 'ManagersUseItThroughSsm');
    expect(actionsOf(manager).sort()).toEqual(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey']);
    expect(text(manager.Condition.StringLike['kms:EncryptionContext:PARAMETER_ARN'])).toBe(pArn('/ec2-swarm/blue/*'));
    const worker = use.find((s) => s.Sid === 'WorkersDecryptTheWorkerTokenThroughSsm');
    expect(actionsOf(worker)).toEqual(['kms:Decrypt']);
    expect(text(worker.Condition.StringEquals['kms:EncryptionContext:PARAMETER_ARN'])).toBe(pArn('/ec2-swarm/blue/worker-token'));
  });

  test('the nodes get its ARN as SWARM_KMS_KEY_ID', () => {
    const { stack, json } = synth();
    const keyId = logicalIdOf(stack, stack.cluster.tokenKey);
    for (const [, lt] of resourcesOfType(json, 'AWS::EC2::LaunchTemplate')) {
      expect(text(lt.Properties.LaunchTemplateData.UserData)).toContain(`SWARM_KMS_KEY_ID='\${${keyId}.Arn}'`);
    }
  });
});

function operated() {
  const app = new App({ context: packageCdkContext() });
  const stack = new Stack(app, 'Platform', { env: ENV });
  const cluster = new SwarmCluster(stack, 'Swarm', { name: 'blue', workers: 1 });
  const ci = new iam.Role(stack, 'Ci', { assumedBy: new iam.AccountPrincipal(ENV.account) });
  const grant = cluster.grantOperate(ci);
  const template = Template.fromStack(stack);
  const json = template.toJSON();
  const ciId = logicalIdOf(stack, ci);
  const policies = resourcesOfType(json, 'AWS::IAM::Policy').filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === ciId));
  const statements: any[] = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  return { app, stack, cluster, ci, grant, template, json, statements };
}

describe('grantOperate', () => {
  const { stack, cluster, statements, grant } = operated();
  const bucket = logicalIdOf(stack, cluster.stagingBucket.bucket);
  // Each statement as "actions on resources [condition]", intrinsic values rendered as ${…}.
  const rendered = statements
    .map((s) => {
      const actions = ([] as string[]).concat(s.Action).sort().join(',');
      const resources = ([] as any[]).concat(s.Resource).map(text).sort().join(' ');
      return `${s.Effect} ${actions} on ${resources}${s.Condition ? ` if ${JSON.stringify(s.Condition)}` : ''}`;
    })
    .sort();

  test('exactly the calls ops make, each on the narrowest resource IAM allows', () => {
    const param = (n: string) => `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/ec2-swarm/blue/${n}`;
    expect(rendered).toEqual(
      [
        // SSM Run Command: only on this cluster's instances (by tag), only with AWS-RunShellScript.
        `Allow ssm:SendCommand on arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:instance/* if {"StringEquals":{"ssm:resourceTag/ec2-swarm:cluster":"blue"}}`,
        'Allow ssm:SendCommand on arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunShellScript',
        // No resource-level permissions exist for these three.
        'Allow ssm:CancelCommand,ssm:DescribeInstanceInformation,ssm:GetCommandInvocation on *',
        // teardown deletes exactly the runtime parameters.
        `Allow ssm:DeleteParameters on ${['cluster-id', 'init-lock', 'manager-addresses', 'manager-token', 'worker-token'].map(param).sort().join(' ')}`,
        'Allow cloudformation:DescribeStacks on arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/Platform/*',
        // Deploy bundles: upload and delete in the staging bucket (StagingBucket.grantStage).
        `Allow s3:Abort*,s3:DeleteObject*,s3:PutObject,s3:PutObjectLegalHold,s3:PutObjectRetention,s3:PutObjectTagging,s3:PutObjectVersionTagging on \${${bucket}.Arn}/*`,
      ].sort(),
    );
  });

  test('grants nothing else: no other service, no parameter read, no key use, no Deny needed', () => {
    const actions = statements.flatMap((s) => ([] as string[]).concat(s.Action));
    expect(actions.filter((a) => !/^(ssm|cloudformation|s3):/.test(a))).toEqual([]);
    expect(actions).not.toEqual(expect.arrayContaining([expect.stringMatching(/^ssm:(GetParameter|PutParameter|StartSession)/)]));
    expect(actions).not.toEqual(expect.arrayContaining([expect.stringMatching(/^s3:GetObject/)]));
    expect(statements.every((s) => s.Effect === 'Allow')).toBe(true);
  });

  test('returns a grant that was applied to the principal', () => {
    expect(grant.success).toBe(true);
    expect(grant.principalStatements.length).toBeGreaterThanOrEqual(5);
  });

  test('the grant is cdk-nag clean (its wildcards are acknowledged with reasons)', () => {
    const { app } = operated();
    const checks = new AwsSolutionsChecks(app);
    Validations.of(app).addPlugins(checks);
    expect(checks.validateScope(app).violations).toEqual([]);
  });

  test('a principal in another stack gets the policy there, pointing at this cluster', () => {
    const app = new App({ context: packageCdkContext() });
    const platform = new Stack(app, 'Platform', { env: ENV });
    const cluster = new SwarmCluster(platform, 'Swarm', { name: 'green', workers: 0 });
    const ci = new Stack(app, 'Ci', { env: ENV });
    const role = new iam.Role(ci, 'Deployer', { assumedBy: new iam.AccountPrincipal(ENV.account) });
    cluster.grantOperate(role);
    Template.fromStack(ci).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'ssm:SendCommand', Condition: { StringEquals: { 'ssm:resourceTag/ec2-swarm:cluster': 'green' } } }),
        ]),
      },
    });
  });
});

describe('staging bucket: deploy bundles reach the managers out of band', () => {
  const s = synth();

  test('encrypted, TLS only, never public, objects expire after a day', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 1, Status: 'Enabled' })] },
    });
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  test('the managers may read and nothing more; workers get nothing', () => {
    const policies = Object.values<any>(s.json.Resources).filter((r) => r.Type === 'AWS::IAM::Policy');
    const s3Actions = (roleRef: string) =>
      policies
        .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleRef))
        .flatMap((p) => p.Properties.PolicyDocument.Statement)
        .flatMap((st: any) => [st.Action].flat())
        .filter((a: string) => a.startsWith('s3:'));
    const managerRole = Object.keys(s.json.Resources).find((k) => k.includes('ManagerRole') && s.json.Resources[k].Type === 'AWS::IAM::Role')!;
    const workerRole = Object.keys(s.json.Resources).find((k) => k.includes('WorkerRole') && s.json.Resources[k].Type === 'AWS::IAM::Role')!;
    expect(s3Actions(managerRole).sort()).toEqual(['s3:GetBucket*', 's3:GetObject*', 's3:List*']);
    expect(s3Actions(workerRole)).toEqual([]);
  });

  test('ops find it through the SwarmStagingBucket output', () => {
    s.template.hasOutput('SwarmStagingBucket', { Value: { Ref: Match.stringLikeRegexp('StagingBucket') } });
  });

  test('no unacknowledged cdk-nag finding comes from the bucket or its grants', () => {
    const v = s.checks.validateScope(s.app).violations ?? [];
    const mine = JSON.stringify(v).match(/[^"]*(StagingBucket|s3:)[^"]*/g) ?? [];
    expect(mine).toEqual([]);
  });
});
