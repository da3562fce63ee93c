/**
 * The few AWS calls ops make besides running scripts: find the cluster's managers and workers, delete the runtime
 * parameters. Instances are found through SSM `DescribeInstanceInformation` with the tags every node carries
 * (`ec2-swarm:cluster`, `ec2-swarm:role`; docs/round2-contracts.md), so ops need SSM permissions only — on AWS and
 * in the lab alike. Clients are built on first use.
 */
import { DeleteParametersCommand, DescribeInstanceInformationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { parameterNames } from '../config';
import { fromAwsError } from './aws-errors';
import type { CloudApi, ClusterInfo } from './types';

/** DeleteParameters takes at most 10 names per call. */
const MAX_PARAMETERS_PER_DELETE = 10;

export interface CloudApiOptions {
  readonly cluster: ClusterInfo;
  readonly ssm: () => SSMClient;
}

export class AwsCloudApi implements CloudApi {
  constructor(private readonly options: CloudApiOptions) {}

  /** Instance ids of one role, agents Online first (a stopped or lost instance stays listed as ConnectionLost). */
  private async byRole(role: 'manager' | 'worker'): Promise<{ online: string[]; other: string[] }> {
    const online: string[] = [];
    const other: string[] = [];
    let NextToken: string | undefined;
    try {
      do {
        const out = await this.options.ssm().send(
          new DescribeInstanceInformationCommand({
            MaxResults: 50,
            NextToken,
            Filters: [
              { Key: 'tag:ec2-swarm:cluster', Values: [this.options.cluster.name] },
              { Key: 'tag:ec2-swarm:role', Values: [role] },
            ],
          }),
        );
        for (const i of out.InstanceInformationList ?? []) {
          if (i.InstanceId) (i.PingStatus === 'Online' ? online : other).push(i.InstanceId);
        }
        NextToken = out.NextToken;
      } while (NextToken);
    } catch (e) {
      throw fromAwsError(e, `SSM DescribeInstanceInformation (${role}s)`);
    }
    return { online: [...new Set(online)].sort(), other: [...new Set(other)].sort() };
  }

  async listManagerInstanceIds(): Promise<string[]> {
    const { online, other } = await this.byRole('manager');
    return [...online, ...other.filter((id) => !online.includes(id))];
  }

  async listOnlineManagerInstanceIds(): Promise<string[]> {
    return (await this.byRole('manager')).online;
  }

  async listWorkerInstanceIds(): Promise<string[]> {
    const { online } = await this.byRole('worker');
    // A manager is never a worker, whatever a tag says.
    return online.filter((id) => !this.options.cluster.managerInstanceIds.includes(id));
  }

  async deleteRuntimeParameters(): Promise<string[]> {
    const names = Object.values(parameterNames(this.options.cluster.name));
    const deleted: string[] = [];
    for (let i = 0; i < names.length; i += MAX_PARAMETERS_PER_DELETE) {
      try {
        const out = await this.options.ssm().send(new DeleteParametersCommand({ Names: names.slice(i, i + MAX_PARAMETERS_PER_DELETE) }));
        deleted.push(...(out.DeletedParameters ?? []));
      } catch (e) {
        throw fromAwsError(e, 'SSM DeleteParameters');
      }
    }
    return deleted;
  }
}
