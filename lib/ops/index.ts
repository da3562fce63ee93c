/**
 * `ec2-swarm/ops`: the post-deploy API for IaC repos and pipelines. Loads no CDK.
 *
 * ```ts
 * import { connect, deploy, verify } from 'ec2-swarm/ops';
 * const ctx = await connect({ outputsFile: 'out.json' });
 * await deploy(ctx, { file: 'docker-compose.yml', wait: true, timeoutSeconds: 300 });
 * ctx.close();
 * ```
 */
export * from './types';
export { deploy } from './deploy';
export { verify } from './verify';
export { status } from './status';
export { scale } from './scale';
export { teardown } from './teardown';
export { rotateTokens, type RotateTokensOptions, type RotateTokensResult } from './rotate-tokens';
export { connect, type ConnectOptions, type Connection } from './connect';
export {
  clusterFromOutputs,
  clusterFromOutputsDocument,
  clusterFromOutputsFile,
  clustersInOutputs,
  locateCluster,
  outputKeysOf,
  OUTPUT_KEYS,
  validateClusterSelector,
  type ClusterOutputsRef,
  type LocateOptions,
} from './cluster-locator';
export { resolveTarget, readLabState, type AwsConnection, type LabState, type TargetKind } from './target';
export { createSsmClient, SsmRunner, MAX_INSTANCES_PER_COMMAND, type SsmRunnerOptions } from './ssm-runner';
export { AwsCloudApi } from './cloud-api';
export { createReporter, StreamReporter, type ReporterOptions } from './reporter';
export { renderDeploy, renderJson, renderQuorum, renderRotateTokens, renderStatus, renderTeardown, renderVerify } from './render';
export { redactSecrets } from './aws-errors';
export { SwarmError, isSwarmError, exitCodeOf, type Fault } from '../errors';
