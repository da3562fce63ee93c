import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteParametersCommand, DescribeInstanceInformationCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { AwsCloudApi } from '../../../lib/ops/cloud-api';
import { LAB_CREDENTIALS, resolveTarget } from '../../../lib/ops/target';
import type { ClusterInfo } from '../../../lib/ops/types';

const ssm = mockClient(SSMClient);
const cluster: ClusterInfo = { name: 'demo', region: 'eu-west-1', managerInstanceIds: ['i-0aaaaaaaaaaaaaaaa'], parameterPrefix: '/ec2-swarm/demo' };

beforeEach(() => {
  ssm.reset();
});

describe('AwsCloudApi', () => {
  test('workers: online instances tagged with the cluster and role worker, across pages, never a manager', async () => {
    ssm
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({
        InstanceInformationList: [
          { InstanceId: 'i-0bbbbbbbbbbbbbbbb', PingStatus: 'Online' },
          { InstanceId: 'i-0aaaaaaaaaaaaaaaa', PingStatus: 'Online' },
          { InstanceId: 'i-0dddddddddddddddd', PingStatus: 'ConnectionLost' },
        ],
        NextToken: 'p2',
      })
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: 'i-0cccccccccccccccc', PingStatus: 'Online' }] });
    const api = new AwsCloudApi({ cluster, ssm: () => new SSMClient({ region: 'eu-west-1' }) });
    expect(await api.listWorkerInstanceIds()).toEqual(['i-0bbbbbbbbbbbbbbbb', 'i-0cccccccccccccccc']);
    expect(ssm).toHaveReceivedCommandWith(DescribeInstanceInformationCommand, {
      Filters: [
        { Key: 'tag:ec2-swarm:cluster', Values: ['demo'] },
        { Key: 'tag:ec2-swarm:role', Values: ['worker'] },
      ],
    });
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 2);
  });

  test('managers: found by tag, agents online first, then the others (a stopped leader is tried last)', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: [
        { InstanceId: 'i-0aaaaaaaaaaaaaaaa', PingStatus: 'ConnectionLost' },
        { InstanceId: 'i-0cccccccccccccccc', PingStatus: 'Online' },
        { InstanceId: 'i-0bbbbbbbbbbbbbbbb', PingStatus: 'Online' },
      ],
    });
    const api = new AwsCloudApi({ cluster: { ...cluster, managerInstanceIds: [] }, ssm: () => new SSMClient({ region: 'eu-west-1' }) });
    expect(await api.listManagerInstanceIds()).toEqual(['i-0bbbbbbbbbbbbbbbb', 'i-0cccccccccccccccc', 'i-0aaaaaaaaaaaaaaaa']);
    expect(await api.listOnlineManagerInstanceIds()).toEqual(['i-0bbbbbbbbbbbbbbbb', 'i-0cccccccccccccccc']);
    expect(ssm).toHaveReceivedCommandWith(DescribeInstanceInformationCommand, {
      Filters: [
        { Key: 'tag:ec2-swarm:cluster', Values: ['demo'] },
        { Key: 'tag:ec2-swarm:role', Values: ['manager'] },
      ],
    });
  });

  test('an SSM failure while listing is a transport error naming the call', async () => {
    ssm.on(DescribeInstanceInformationCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const api = new AwsCloudApi({ cluster, ssm: () => new SSMClient({ region: 'eu-west-1', maxAttempts: 1 }) });
    await expect(api.listManagerInstanceIds()).rejects.toMatchObject({ message: expect.stringContaining('DescribeInstanceInformation (managers)') });
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
