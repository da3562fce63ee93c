/**
 * One call from "which cluster, which target" to an OpsContext: target → cluster (outputs file or stack) →
 * lazily built SSM/EC2 clients → SSM runner and cloud API. Used by the CLI and by IaC repos alike.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import { AwsCloudApi } from './cloud-api';
import { s3StagingChannel } from './compose/staging';
import { clusterFromOutputsFile, locateCluster, validateClusterSelector } from './cluster-locator';
import { createSsmClient, SsmRunner } from './ssm-runner';
import { type AwsConnection, resolveTarget, type TargetKind } from './target';
import { type ClusterInfo, type OpsContext, type Reporter, silentReporter } from './types';

export interface ConnectOptions {
  /** @default 'aws' */
  readonly target?: TargetKind | string;
  /** A `cdk deploy --outputs-file` file. With target lab, defaults to the lab's. */
  readonly outputsFile?: string;
  /** Stack name: picks a stack in the outputs file, or reads the stack's CloudFormation outputs. */
  readonly stack?: string;
  /**
   * Which cluster, when the outputs file or stack holds several: its name (the construct's `name`, as in its tags)
   * or its construct id's output prefix (`Blue` for outputs `BlueClusterName`, …). @default - the only one
   */
  readonly cluster?: string;
  /** Overrides the region from the outputs (and AWS_REGION for `stack` alone). */
  readonly region?: string;
  readonly reporter?: Reporter;
  /** Bound on the wait for SSM agents before the first command. @default 300 */
  readonly agentOnlineTimeoutSeconds?: number;
  /** The command's overall bound (epoch ms): every SSM wait and request ends by then. */
  readonly deadlineAt?: number;
  /** How that bound is described in errors, e.g. "--timeout 10s + 10s margin". */
  readonly deadlineDescription?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface Connection extends OpsContext {
  readonly target: TargetKind;
  /** Closes the SDK clients (sockets) that were built. */
  close(): void;
}

function memo<T>(make: () => T): { get: () => T; made: () => T | undefined } {
  let value: T | undefined;
  return { get: () => (value ??= make()), made: () => value };
}

export async function connect(opts: ConnectOptions = {}): Promise<Connection> {
  if (opts.cluster !== undefined) validateClusterSelector(opts.cluster);
  const target = await resolveTarget({ target: opts.target, region: opts.region, outputsFile: opts.outputsFile, env: opts.env, cwd: opts.cwd });
  // AWS_REGION must not override the region the stack itself reports; only an explicit --region does.
  const cluster: ClusterInfo = target.outputsFile
    ? clusterFromOutputsFile(target.outputsFile, opts.stack, opts.region ?? (target.kind === 'lab' ? target.region : undefined), opts.cluster)
    : await locateCluster({ stack: opts.stack, cluster: opts.cluster, region: target.region, endpoint: target.endpoint, credentials: target.credentials });

  const conn: AwsConnection = { region: cluster.region, endpoint: target.endpoint, credentials: target.credentials };
  const reporter = opts.reporter ?? silentReporter;
  const ssm = memo<SSMClient>(() => createSsmClient(conn));
  const runner = new SsmRunner({
    client: ssm.get,
    reporter,
    agentOnlineTimeoutSeconds: opts.agentOnlineTimeoutSeconds,
    ...(opts.deadlineAt !== undefined ? { deadlineAt: opts.deadlineAt } : {}),
    ...(opts.deadlineDescription ? { deadlineDescription: opts.deadlineDescription } : {}),
    endpointDescription: target.endpoint ?? `the SSM endpoint in ${conn.region}`,
  });
  // Deploy bundles travel through the cluster's staging bucket (lib/ops/compose/staging.ts).
  // On the lab target only the lab's own S3 stand-in, never the real S3.
  const staging = cluster.stagingBucket && (target.kind === 'aws' || target.s3Endpoint)
    ? s3StagingChannel({ bucket: cluster.stagingBucket, region: conn.region, ...(target.s3Endpoint ? { endpoint: target.s3Endpoint } : {}), ...(conn.credentials ? { credentials: conn.credentials } : {}) })
    : undefined;
  const cloud = new AwsCloudApi({ cluster, ssm: ssm.get });
  return {
    target: target.kind,
    cluster,
    runner,
    cloud,
    reporter,
    ...(staging ? { staging } : {}),
    close: () => {
      staging?.close();
      ssm.made()?.destroy();
    },
  };
}
