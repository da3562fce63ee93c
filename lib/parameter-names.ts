/** Names of the runtime SSM parameters (docs/round2-contracts.md), without zod or CDK: config.ts re-exports them. */

/** Every runtime SSM parameter the cluster writes lives under this prefix (decision 2). */
export function parameterPrefix(clusterName: string): string {
  return `/ec2-swarm/${clusterName}`;
}

export interface RuntimeParameterNames {
  /** SecureString: workers and managers read it. */
  readonly workerToken: string;
  /** SecureString: managers only. */
  readonly managerToken: string;
  /** String: comma-separated `IP:2377` of the current managers; workers read it. */
  readonly managerAddresses: string;
  /** String: instance id of the manager that won the right to `swarm init` (create-if-absent). */
  readonly initLock: string;
  /** String: the swarm's cluster id, so no manager ever initialises a second swarm. */
  readonly clusterId: string;
}

/** The runtime parameters (docs/round2-contracts.md): managers own all; workers read the worker token and addresses. */
export function parameterNames(clusterName: string): RuntimeParameterNames {
  const p = parameterPrefix(clusterName);
  return {
    workerToken: `${p}/worker-token`,
    managerToken: `${p}/manager-token`,
    managerAddresses: `${p}/manager-addresses`,
    initLock: `${p}/init-lock`,
    clusterId: `${p}/cluster-id`,
  };
}
