import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DeleteParametersCommand, DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { AwsCloudApi } from '../../../lib/ops/cloud-api';
import { LAB_CREDENTIALS, resolveTarget } from '../../../lib/ops/target';
import type { ClusterInfo } from '../../../lib/ops/types';

const ssm = mockClient(SSMClient);
const ec2 = mockClient(EC2Client);
const cluster: ClusterInfo = { name: 'demo', region: 'eu-west-1', managerInstanceIds: ['i-0aaaaaaaaaaaaaaaa'], parameterPrefix: '/ec2-swarm/demo' };

beforeEach(() => {
  ssm.reset();
  ec2.reset();
});

describe('AwsCloudApi', () => {
  test('lists running workers by tag across pages, never the manager', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: 'i-0bbbbbbbbbbbbbbbb' }, { InstanceId: 'i-0aaaaaaaaaaaaaaaa' }] }], NextToken: 'p2' })
      .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: 'i-0cccccccccccccccc' }] }] });
    const api = new AwsCloudApi({ cluster, ssm: () => new SSMClient({}), ec2: () => new EC2Client({ region: 'eu-west-1' }) });
    expect(await api.listWorkerInstanceIds()).toEqual(['i-0bbbbbbbbbbbbbbbb', 'i-0cccccccccccccccc']);
    expect(ec2).toHaveReceivedCommandWith(DescribeInstancesCommand, {
      Filters: [
        { Name: 'tag:ec2-swarm:cluster', Values: ['demo'] },
        { Name: 'tag:ec2-swarm:role', Values: ['worker'] },
        { Name: 'instance-state-name', Values: ['running'] },
      ],
    });
    expect(ec2).toHaveReceivedCommandTimes(DescribeInstancesCommand, 2);
  });

  test('without EC2 (the lab), workers are the SSM-managed instances other than the managers, across pages', async () => {
    ssm
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: 'i-0aaaaaaaaaaaaaaaa' }, { InstanceId: 'i-0cccccccccccccccc' }], NextToken: 'n' })
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: 'i-0bbbbbbbbbbbbbbbb' }] });
    const api = new AwsCloudApi({ cluster, ssm: () => new SSMClient({ region: 'eu-west-1' }) });
    expect(await api.listWorkerInstanceIds()).toEqual(['i-0bbbbbbbbbbbbbbbb', 'i-0cccccccccccccccc']);
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 2);
  });

  test('deletes every runtime parameter and reports which existed', async () => {
    ssm.on(DeleteParametersCommand).resolves({ DeletedParameters: ['/ec2-swarm/demo/worker-token'], InvalidParameters: ['/ec2-swarm/demo/manager-token', '/ec2-swarm/demo/manager-addresses'] });
    const api = new AwsCloudApi({ cluster, ssm: () => new SSMClient({ region: 'eu-west-1' }) });
    expect(await api.deleteRuntimeParameters()).toEqual(['/ec2-swarm/demo/worker-token']);
    expect(ssm).toHaveReceivedCommandWith(DeleteParametersCommand, {
      Names: ['/ec2-swarm/demo/worker-token', '/ec2-swarm/demo/manager-token', '/ec2-swarm/demo/manager-addresses', '/ec2-swarm/demo/init-lock', '/ec2-swarm/demo/cluster-id'],
    });
  });
});

describe('resolveTarget', () => {
  const made: string[] = [];
  afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  function labWith(state: unknown): NodeJS.ProcessEnv {
    const dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-lab-'));
    made.push(dir);
    mkdirSync(dir, { recursive: true });
    if (state !== undefined) writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
    return { EC2_SWARM_LAB_DIR: dir };
  }

  test('aws: region from --region, else AWS_REGION; no endpoint, no credentials', async () => {
    expect(await resolveTarget({ env: { AWS_REGION: 'eu-west-1' } })).toEqual({ kind: 'aws', region: 'eu-west-1', outputsFile: undefined });
    expect((await resolveTarget({ region: 'us-east-1', env: { AWS_REGION: 'eu-west-1' } })).region).toBe('us-east-1');
  });

  test('lab not up (no state.json) → environment error telling to run lab up', async () => {
    await expect(resolveTarget({ target: 'lab', env: labWith(undefined) })).rejects.toMatchObject({
      fault: 'environment',
      message: expect.stringContaining('lab is not running: run `ec2-swarm lab up`'),
    });
  });

  test('lab state present but nothing listening → the same environment error', async () => {
    const env = labWith({ ssmEndpoint: 'http://127.0.0.1:9', region: 'us-east-1', outputsFile: 'outputs.json' });
    await expect(resolveTarget({ target: 'lab', env, probe: async () => false })).rejects.toMatchObject({
      code: 'LAB_NOT_RUNNING',
      message: expect.stringContaining('lab is not running'),
    });
  });

  test('lab up → its endpoint, dummy credentials, and its outputs file (relative to the lab dir)', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const env = labWith({ ssmEndpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', outputsFile: 'outputs.json' });
      const t = await resolveTarget({ target: 'lab', env });
      expect(t).toEqual({
        kind: 'lab',
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${port}`,
        credentials: LAB_CREDENTIALS,
        outputsFile: join(env.EC2_SWARM_LAB_DIR!, 'outputs.json'),
      });
    } finally {
      server.close();
    }
  });

  test('a lab endpoint that is not loopback is refused', async () => {
    const env = labWith({ ssmEndpoint: 'https://ssm.us-east-1.amazonaws.com', region: 'us-east-1', outputsFile: 'o.json' });
    await expect(resolveTarget({ target: 'lab', env, probe: async () => true })).rejects.toMatchObject({ code: 'LAB_STATE_INVALID' });
  });

  test('an unknown target is a user error', async () => {
    await expect(resolveTarget({ target: 'gcp' })).rejects.toMatchObject({ fault: 'user', message: '--target must be aws or lab (got "gcp")' });
  });
});
