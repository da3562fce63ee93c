import { parameterNames } from '../../lib/config';
import { ENV, logicalIdOf, resourcesOfType, synth, text } from './helpers';

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
