/**
 * The worker group's sizes and rolling-update bound from `workers`, `minWorkers` and `maxWorkers` (design.md,
 * decision 1). The rolling update keeps `workers` in service, so the group needs room above it: a spare slot when
 * the maximum is `workers` itself (CloudFormation requires MinInstancesInService < MaxSize).
 */
import { Token } from 'aws-cdk-lib';
import type { ClusterConfig } from '../config';

export interface WorkerCapacity {
  readonly minCapacity: number;
  readonly desiredCapacity: number;
  readonly maxCapacity: number;
  /** @default - none: a token size cannot be compared or added to, the update then replaces in place */
  readonly minInstancesInService?: number;
  /** False for a known size of 0: CloudFormation rejects a signal count of 0. */
  readonly expectsSignals: boolean;
}

export function workerCapacity(config: Pick<ClusterConfig, 'workers' | 'minWorkers' | 'maxWorkers'>): WorkerCapacity {
  const desired = config.workers;
  const min = config.minWorkers ?? desired;
  const max = config.maxWorkers ?? desired;
  const known = (n: number) => !Token.isUnresolved(n);
  const expectsSignals = !(known(desired) && desired === 0);
  if (known(desired) && known(max)) {
    return { minCapacity: min, desiredCapacity: desired, maxCapacity: max > desired ? max : desired + 1, minInstancesInService: desired, expectsSignals };
  }
  return { minCapacity: min, desiredCapacity: desired, maxCapacity: max, expectsSignals };
}
