/**
 * Where deploy bundles wait for the manager (design.md decision 12): the resolved compose file and the configs,
 * secrets and env values it carries never travel in SSM command parameters, which SSM keeps in its history.
 * Objects are encrypted at rest, reachable over TLS only, never public, and expire after a day; the operator
 * also deletes each one after its deploy. The managers only read; whoever deploys gets `grantStage`.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface StagingBucketProps {
  /**
   * Roles that download bundles (the managers).
   *
   * Read only: they cannot write or delete objects.
   */
  readonly readers: readonly iam.IGrantable[];
  /**
   * Days before an object the operator did not delete expires.
   *
   * @default 1
   */
  readonly expirationDays?: number;
}

export class StagingBucket extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: StagingBucketProps) {
    super(scope, id);
    const days = props.expirationDays ?? 1;
    if (!Number.isInteger(days) || days < 1) throw new Error(`expirationDays must be a whole number of days ≥ 1 (got ${days})`);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(days), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      // Bundles live for minutes; nothing in the bucket outlives the cluster.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Objects live for the minutes of one deploy and are deleted after it; CloudTrail data events are the audit path.',
    });
    for (const reader of props.readers) this.grantRead(reader);
  }

  /** Download only (the managers). */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    const grant = this.bucket.grantRead(grantee);
    this.acknowledgeObjectWildcard(grantee);
    return grant;
  }

  /** Upload and delete bundles: give it to the role your pipeline deploys with. */
  grantStage(grantee: iam.IGrantable): iam.Grant {
    const put = this.bucket.grantPut(grantee);
    this.bucket.grantDelete(grantee);
    this.acknowledgeObjectWildcard(grantee);
    return put;
  }

  private bucketLogicalId(): string {
    const stack = Stack.of(this);
    return stack.resolve(stack.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)) as string;
  }

  private acknowledgeObjectWildcard(grantee: iam.IGrantable): void {
    const principal = grantee.grantPrincipal;
    if (!(principal instanceof Construct)) return;
    Validations.of(principal).acknowledge(
      { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: 'Read access to the staging bucket only (aws-cdk-lib grantRead).' },
      { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: 'Read access to the staging bucket only (aws-cdk-lib grantRead).' },
      { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: 'Read access to the staging bucket only (aws-cdk-lib grantRead).' },
      { id: 'AwsSolutions-IAM5[Action::s3:Abort*]', reason: 'Upload to the staging bucket only (aws-cdk-lib grantPut).' },
      { id: 'AwsSolutions-IAM5[Action::s3:PutObject*]', reason: 'Upload to the staging bucket only (aws-cdk-lib grantPut).' },
      { id: 'AwsSolutions-IAM5[Action::s3:DeleteObject*]', reason: 'Delete in the staging bucket only (aws-cdk-lib grantDelete).' },
      { id: `AwsSolutions-IAM5[Resource::<${this.bucketLogicalId()}.Arn>/*]`, reason: 'Objects of the staging bucket only.' },
    );
  }
}
