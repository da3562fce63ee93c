import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmCluster } from '../../lib/cluster/swarm-cluster';
import { ENV, logicalIdOf, resourcesOfType, text } from './helpers';

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
