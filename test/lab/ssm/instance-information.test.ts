/** DescribeInstanceInformation with tag filters (how ops find managers and workers) over a changing instance table. */
import { DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { LabInstance } from '../../../lib/lab/imds/imds';
import { LabCloud, startLabCloud } from '../../../lib/lab/ssm/endpoint';
import { LAB_OPERATOR_CREDENTIALS } from '../../../lib/lab/credentials';

describe('DescribeInstanceInformation tag filters', () => {
  const table: LabInstance[] = [
    { instanceId: 'i-00000000000000001', privateIp: '10.0.0.1', tags: { 'ec2-swarm:cluster': 'lab', 'ec2-swarm:role': 'manager' } },
    { instanceId: 'i-00000000000000002', privateIp: '10.0.0.2', tags: { 'ec2-swarm:cluster': 'lab', 'ec2-swarm:role': 'worker' } },
    { instanceId: 'i-00000000000000003', privateIp: '10.0.0.3', tags: { 'ec2-swarm:cluster': 'other', 'ec2-swarm:role': 'manager' } },
  ];
  let cloud: LabCloud;
  let ssm: SSMClient;
  beforeAll(async () => {
    cloud = await startLabCloud({ region: 'us-east-1', instances: () => table, executor: async () => ({ exitCode: 0, stdout: '', stderr: '', timedOut: false }) });
    ssm = new SSMClient({ region: 'us-east-1', endpoint: cloud.endpoint, credentials: LAB_OPERATOR_CREDENTIALS });
  });
  afterAll(async () => {
    ssm.destroy();
    await cloud.close();
  });
  const ids = async (Filters: { Key: string; Values: string[] }[]): Promise<string[]> =>
    ((await ssm.send(new DescribeInstanceInformationCommand({ Filters }))).InstanceInformationList ?? []).map((i) => i.InstanceId!);

  test('tag:<key> filters combine (AND across keys, OR across values); the table is read at each call', async () => {
    expect(await ids([{ Key: 'tag:ec2-swarm:cluster', Values: ['lab'] }, { Key: 'tag:ec2-swarm:role', Values: ['manager'] }])).toEqual(['i-00000000000000001']);
    expect(await ids([{ Key: 'tag:ec2-swarm:role', Values: ['manager', 'worker'] }])).toHaveLength(3);
    expect(await ids([{ Key: 'tag-key', Values: ['nope'] }])).toEqual([]);
    table.push({ instanceId: 'i-00000000000000004', privateIp: '10.0.0.4', tags: { 'ec2-swarm:cluster': 'lab', 'ec2-swarm:role': 'worker' } });
    expect(await ids([{ Key: 'tag:ec2-swarm:cluster', Values: ['lab'] }, { Key: 'tag:ec2-swarm:role', Values: ['worker'] }])).toEqual(['i-00000000000000002', 'i-00000000000000004']);
  });

  test('an unknown filter key is InvalidFilterKey', async () => {
    await expect(ids([{ Key: 'Color', Values: ['x'] }])).rejects.toMatchObject({ name: 'InvalidFilterKey' });
  });
});
