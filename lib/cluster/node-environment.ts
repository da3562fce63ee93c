/**
 * The environment the node scripts read (docs/round2-contracts.md, "Node environment"), without CDK or zod:
 * user-data.ts renders it into user-data, and the node-script tests hand the same map to the scripts they run
 * without loading either (together ~0.25 CPU-s in every such test file).
 */
import { SwarmError } from '../errors';
import { parameterNames, parameterPrefix } from '../parameter-names';
import { DEFAULT_OVERLAY_ADDRESS_POOL, DEFAULT_OVERLAY_ADDRESS_POOL_MASK } from '../overlay-pool';

export type NodeRole = 'manager' | 'worker';

/** Default upper bound a worker waits for the manager's token and address (contract default). */
export const DEFAULT_JOIN_TIMEOUT_S = 900;

export interface NodeEnvironmentOptions {
  /** @default - not set (the role scripts know their role) */
  readonly role?: NodeRole;
  /** @default 900 */
  readonly joinTimeoutSeconds?: number;
  /** Key id or ARN for the SecureStrings. @default '' (aws/ssm) */
  readonly kmsKeyId?: string;
  /** @default DEFAULT_OVERLAY_ADDRESS_POOL */
  readonly addressPool?: string;
  /** @default 24 */
  readonly addressPoolMask?: number;
  /** Auto Scaling group names, for the reconciler. @default '' */
  readonly managerGroup?: string;
  /** @default '' */
  readonly workerGroup?: string;
  /** Name of the termination lifecycle hook on both groups. @default '' */
  readonly lifecycleHook?: string;
  /**
   * The ECR registry the nodes' credential helper answers for (`<account>.dkr.ecr.<region>.amazonaws.com`).
   *
   * @default '' - no credential helper is configured
   */
  readonly ecrRegistry?: string;
}

/** Environment variables that may be empty. */
export const OPTIONAL_VARIABLES = new Set(['SWARM_KMS_KEY_ID', 'SWARM_MANAGER_GROUP', 'SWARM_WORKER_GROUP', 'SWARM_LIFECYCLE_HOOK', 'SWARM_ECR_REGISTRY']);

/** The environment the node scripts read (docs/round2-contracts.md, "Node environment"). */
export function nodeEnvironment(clusterName: string, options: NodeEnvironmentOptions = {}): Record<string, string> {
  const joinTimeoutSeconds = options.joinTimeoutSeconds ?? DEFAULT_JOIN_TIMEOUT_S;
  if (!Number.isInteger(joinTimeoutSeconds) || joinTimeoutSeconds < 1) {
    throw SwarmError.user('USER_DATA_VALUE_INVALID', `joinTimeoutSeconds must be a positive whole number (got ${joinTimeoutSeconds})`);
  }
  const mask = options.addressPoolMask ?? DEFAULT_OVERLAY_ADDRESS_POOL_MASK;
  if (!Number.isInteger(mask) || mask < 1 || mask > 32) {
    throw SwarmError.user('USER_DATA_VALUE_INVALID', `addressPoolMask must be a prefix length 1-32 (got ${mask})`);
  }
  const names = parameterNames(clusterName);
  return {
    SWARM_CLUSTER: clusterName,
    SWARM_PARAM_PREFIX: parameterPrefix(clusterName),
    ...(options.role ? { SWARM_ROLE: options.role } : {}),
    SWARM_KMS_KEY_ID: options.kmsKeyId ?? '',
    SWARM_ADDR_POOL: options.addressPool ?? DEFAULT_OVERLAY_ADDRESS_POOL,
    SWARM_ADDR_POOL_MASK: String(mask),
    SWARM_JOIN_TIMEOUT_S: String(joinTimeoutSeconds),
    SWARM_MANAGER_GROUP: options.managerGroup ?? '',
    SWARM_WORKER_GROUP: options.workerGroup ?? '',
    SWARM_LIFECYCLE_HOOK: options.lifecycleHook ?? '',
    SWARM_ECR_REGISTRY: options.ecrRegistry ?? '',
    // Transitional, for node scripts that do not derive the names from SWARM_PARAM_PREFIX yet.
    SWARM_PARAM_WORKER_TOKEN: names.workerToken,
    SWARM_PARAM_MANAGER_TOKEN: names.managerToken,
    SWARM_PARAM_MANAGER_ADDRESS: names.managerAddresses,
  };
}
