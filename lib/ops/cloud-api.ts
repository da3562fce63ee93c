/**
 * The few AWS calls ops make besides running scripts: find the running workers by tag, delete the runtime
 * parameters. Clients are built on first use.
 */
import { type EC2Client, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { DeleteParametersCommand, DescribeInstanceInformationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { parameterNames } from '../config';
import { fromAwsError } from './aws-errors';
import type { CloudApi, ClusterInfo } from './types';

/** DeleteParameters takes at most 10 names per call. */
const MAX_PARAMETERS_PER_DELETE = 10;

export interface CloudApiOptions {
  readonly cluster: ClusterInfo;
  readonly ssm: () => SSMClient;
  /**
   * EC2 client for the worker lookup. Absent (the lab: no EC2 API, one cluster per lab) → every instance the SSM
   * endpoint knows, except the managers, is a worker.
   */
  readonly ec2?: () => EC2Client;
}

export class AwsCloudApi implements CloudApi {
  constructor(private readonly options: CloudApiOptions) {}

  async listWorkerInstanceIds(): Promise<string[]> {
    const { cluster } = this.options;
    const ids: string[] = [];
    if (this.options.ec2) {
      try {
        const pages = paginateDescribeInstances(
          { client: this.options.ec2(), pageSize: 1000 },
          {
            Filters: [
              { Name: 'tag:ec2-swarm:cluster', Values: [cluster.name] },
              { Name: 'tag:ec2-swarm:role', Values: ['worker'] },
              { Name: 'instance-state-name', Values: ['running'] },
            ],
          },
        );
        for await (const page of pages) {
          for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) if (i.InstanceId) ids.push(i.InstanceId);
        }
      } catch (e) {
        throw fromAwsError(e, 'EC2 DescribeInstances (workers)');
      }
    } else {
      let NextToken: string | undefined;
      try {
        do {
          const out = await this.options.ssm().send(
            new DescribeInstanceInformationCommand({ MaxResults: 50, NextToken }),
          );
          for (const i of out.InstanceInformationList ?? []) if (i.InstanceId) ids.push(i.InstanceId);
          NextToken = out.NextToken;
        } while (NextToken);
      } catch (e) {
        throw fromAwsError(e, 'SSM DescribeInstanceInformation (workers)');
      }
    }
    // A manager is never a worker, whatever a tag says.
    return [...new Set(ids)].filter((id) => !cluster.managerInstanceIds.includes(id)).sort();
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
