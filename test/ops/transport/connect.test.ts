import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCommandInvocationCommand, DescribeInstanceInformationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { connect } from '../../../lib/ops/connect';

const ssm = mockClient(SSMClient);
const dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-connect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const outputs = join(dir, 'out.json');
writeFileSync(
  outputs,
  JSON.stringify({
    Demo: { SwarmClusterName: 'demo', SwarmManagerInstanceId: 'i-0123456789abcdef0', SwarmParameterPrefix: '/ec2-swarm/demo', SwarmRegion: 'eu-west-1' },
  }),
);

beforeEach(() => ssm.reset());

test('the stack\'s own region wins over AWS_REGION; --region wins over both', async () => {
  const a = await connect({ outputsFile: outputs, env: { AWS_REGION: 'us-west-2' } });
  expect(a.cluster.region).toBe('eu-west-1');
  a.close();
  const b = await connect({ outputsFile: outputs, region: 'ap-south-1', env: { AWS_REGION: 'us-west-2' } });
  expect(b.cluster.region).toBe('ap-south-1');
  b.close();
});

test('the context runs scripts on the manager through SSM in the cluster\'s region', async () => {
  ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [{ InstanceId: 'i-0123456789abcdef0', PingStatus: 'Online' }] });
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'c' } });
  ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'hi' });
  const ctx = await connect({ outputsFile: outputs, env: {} });
  const [r] = await ctx.runner.run(ctx.cluster.managerInstanceIds, 'echo hi');
  expect(r.stdout).toBe('hi');
  expect(await ssm.call(0).thisValue.config.region()).toBe('eu-west-1');
  ctx.close();
});
