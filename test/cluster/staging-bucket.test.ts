import { Match } from 'aws-cdk-lib/assertions';
import { synth } from './helpers';

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
