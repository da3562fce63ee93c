/**
 * Who may do what (docs/round2-contracts.md, "Runtime parameters"): the managers' and the workers' roles, and the
 * customer-managed KMS key of the join tokens. Least privilege: workers read exactly the worker token and the
 * manager addresses; managers own the cluster's prefix and what the reconciler needs; an explicit Deny stops the
 * SSM managed policy's `ssm:GetParameter*` on `*` from reaching any other parameter, for both roles.
 */
import { Aws, Duration, RemovalPolicy, Resource, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { autoScalingGroupNames, ClusterConfig, parameterNames, parameterPrefix } from '../config';

/** SSM reads the managed policy AmazonSSMManagedInstanceCore allows on every parameter. */
export const PARAMETER_READ_ACTIONS = ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParameterHistory', 'ssm:GetParametersByPath'];
/** Key use through SSM: SecureString put (Encrypt; GenerateDataKey for advanced parameters) and get (Decrypt). */
const KEY_USE_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'];
/** Managing the key, never using it: for the account's administrators. */
const KEY_ADMIN_ACTIONS = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
];

/** ARN of an SSM parameter by name (`/ec2-swarm/…`), in pseudo parameters so cdk-nag finding ids do not depend on the region. */
export function parameterArn(name: string): string {
  return `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${name}`;
}

/** ARN pattern of an Auto Scaling group by name (its id part is not known before it exists). */
export function autoScalingGroupArn(name: string): string {
  return `arn:${Aws.PARTITION}:autoscaling:${Aws.REGION}:${Aws.ACCOUNT_ID}:autoScalingGroup:*:autoScalingGroupName/${name}`;
}

/** What pulling an image needs in ECR: the layer and manifest reads (no push, no repository listing). */
export const ECR_PULL_ACTIONS = ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'];

/** The registry of the stack's account and region, as the docker CLI names it (`<account>.dkr.ecr.<region>.amazonaws.com`). */
export function ecrRegistry(): string {
  return `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`;
}

/**
 * Pull-only ECR access for a node: the credential helper's token (GetAuthorizationToken has no resource-level
 * permissions, so `*`; the token itself grants nothing the role does not) and the reads of a pull, on the
 * repositories of the stack's own account and region only.
 */
export function grantEcrPull(role: iam.IRole): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'EcrAuthorizationToken', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'EcrPullOnly',
      actions: ECR_PULL_ACTIONS,
      resources: [`arn:${Aws.PARTITION}:ecr:${Aws.REGION}:${Aws.ACCOUNT_ID}:repository/*`],
    }),
  );
  Validations.of(role).acknowledge(
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken supports no resource-level permissions (IAM service authorization reference); the token only carries the role\'s own ECR rights.',
    },
    {
      id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*]',
      reason: "Nodes pull whatever image a deploy names from the cluster's own account and region; pull-only (no push, no delete).",
    },
  );
}

export interface SwarmRolesProps {
  readonly config: ClusterConfig;
  /** @default - a new role */
  readonly managerRole?: iam.IRole;
  /** @default - a new role */
  readonly workerRole?: iam.IRole;
}

export class SwarmRoles extends Construct {
  public readonly managerRole: iam.IRole;
  public readonly workerRole: iam.IRole;
  /** Encrypts the join tokens; only the cluster's roles (through SSM) and the account's administrators use it. */
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: SwarmRolesProps) {
    super(scope, id);
    const { config } = props;
    const names = parameterNames(config.name);
    const prefix = parameterPrefix(config.name);
    const groups = autoScalingGroupNames(config.name);
    const ssmCore = iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore');

    // A given role gets the same managed policy and statements as a new one would.
    this.managerRole =
      props.managerRole ??
      new iam.Role(this, 'ManagerRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
        description: `ec2-swarm ${config.name} manager: SSM access, owns ${prefix}/*, reconciles the two groups`,
      });
    this.workerRole =
      props.workerRole ??
      new iam.Role(this, 'WorkerRole', {
        assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
        description: `ec2-swarm ${config.name} worker: SSM access, reads the worker token and the manager addresses`,
      });
    for (const role of [this.managerRole, this.workerRole]) {
      // An imported role cannot get a managed policy from CDK: it must carry AmazonSSMManagedInstanceCore already.
      if (Resource.isOwnedResource(role)) role.addManagedPolicy(ssmCore);
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
        reason: 'The AWS-maintained minimum for SSM Session Manager and Run Command, the only way in (no SSH).',
      });
    }

    // ── Managers ─────────────────────────────────────────────────────────────────────────────────────────────────
    // Managers own the cluster's prefix: tokens, init-lock (create-if-absent), manager-addresses, cluster-id.
    const prefixArn = parameterArn(`${prefix}/*`);
    this.managerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SwarmRuntimeParameters',
        actions: ['ssm:PutParameter', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:DeleteParameter', 'ssm:AddTagsToResource'],
        resources: [prefixArn],
      }),
    );
    // The reconciler's observations. Neither action supports resource-level permissions (IAM service
    // authorization reference), so `*` is the only resource they accept; both are read-only.
    this.managerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReconcilerObserve',
        actions: ['autoscaling:DescribeAutoScalingInstances', 'ec2:DescribeInstances'],
        resources: ['*'],
      }),
    );
    // Completing (or extending) a termination lifecycle action: only on this cluster's two groups.
    this.managerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReconcilerLifecycleActions',
        actions: ['autoscaling:CompleteLifecycleAction', 'autoscaling:RecordLifecycleActionHeartbeat'],
        resources: [autoScalingGroupArn(groups.managers), autoScalingGroupArn(groups.workers)],
      }),
    );
    Validations.of(this.managerRole).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${prefix}/*]`,
        reason: "Managers own only this cluster's parameter prefix; the wildcard is the cluster's own namespace.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'autoscaling:DescribeAutoScalingInstances and ec2:DescribeInstances support no resource-level permissions; both only read, for the reconciler (prune Down nodes whose instance is gone, drain terminating ones).',
      },
      ...[groups.managers, groups.workers].map((g) => ({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/${g}]`,
        reason: "The group's id part of the ARN is assigned at creation; the name pins it to this cluster's group.",
      })),
    );

    // ── Workers ──────────────────────────────────────────────────────────────────────────────────────────────────
    this.workerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WorkerTokenAndManagerAddresses',
        actions: ['ssm:GetParameter', 'ssm:GetParameters'],
        resources: [parameterArn(names.workerToken), parameterArn(names.managerAddresses)],
      }),
    );

    // ── Both: no other parameter ─────────────────────────────────────────────────────────────────────────────────
    // AmazonSSMManagedInstanceCore allows ssm:GetParameter(s) on every parameter: without an explicit Deny a
    // worker could read the manager token (a takeover of the swarm), and any node another cluster's parameters.
    this.managerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'NoOtherParameters', effect: iam.Effect.DENY, actions: PARAMETER_READ_ACTIONS, notResources: [prefixArn] }),
    );
    this.workerRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NoOtherParameters',
        effect: iam.Effect.DENY,
        actions: PARAMETER_READ_ACTIONS,
        notResources: [parameterArn(names.workerToken), parameterArn(names.managerAddresses)],
      }),
    );

    // ── Both: pull images from the cluster's ECR (design.md, "Private images") ─────────────────────────────────
    for (const role of [this.managerRole, this.workerRole]) grantEcrPull(role);

    // ── The join tokens' key ─────────────────────────────────────────────────────────────────────────────────────
    // An explicit key policy (the only one: no `kms:*` for the account root, so no IAM policy elsewhere in the
    // account can grant its use). Use only through SSM (kms:ViaService) and only for this cluster's parameters
    // (the PARAMETER_ARN encryption context SSM sets).
    const viaSsm = { 'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com` };
    const admins = new iam.AccountRootPrincipal();
    const policy = new iam.PolicyDocument({
      statements: [
        new iam.PolicyStatement({ sid: 'AccountAdministersTheKey', principals: [admins], actions: KEY_ADMIN_ACTIONS, resources: ['*'] }),
        new iam.PolicyStatement({
          sid: 'AccountAdministratorsUseItThroughSsm',
          principals: [admins],
          actions: KEY_USE_ACTIONS,
          resources: ['*'],
          conditions: { StringEquals: viaSsm, StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': prefixArn } },
        }),
        new iam.PolicyStatement({
          sid: 'ManagersUseItThroughSsm',
          principals: [new iam.ArnPrincipal(this.managerRole.roleArn)],
          actions: KEY_USE_ACTIONS,
          resources: ['*'],
          conditions: { StringEquals: viaSsm, StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': prefixArn } },
        }),
        new iam.PolicyStatement({
          sid: 'WorkersDecryptTheWorkerTokenThroughSsm',
          principals: [new iam.ArnPrincipal(this.workerRole.roleArn)],
          actions: ['kms:Decrypt'],
          resources: ['*'],
          conditions: { StringEquals: { ...viaSsm, 'kms:EncryptionContext:PARAMETER_ARN': parameterArn(names.workerToken) } },
        }),
      ],
    });
    this.key = new kms.Key(this, 'TokenKey', {
      description: `ec2-swarm ${config.name}: encrypts the join tokens under ${prefix}`,
      enableKeyRotation: true,
      policy,
      // The tokens die with the stack (the parameter cleanup deletes them); a retained key would bill forever.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
      alias: `alias/ec2-swarm/${config.name}`,
    });
  }
}
