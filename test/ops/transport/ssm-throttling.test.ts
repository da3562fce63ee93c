/**
 * Throttling through the SDK's real retry middleware (no client mock: aws-sdk-client-mock replaces `send`, so the
 * retry strategy would never run). A fake HTTP handler answers with SSM's JSON protocol.
 */
import { Readable } from 'node:stream';
import { HttpResponse } from '@smithy/core/transport';
import { createSsmClient, SsmRunner } from '../../../lib/ops/ssm-runner';

const MANAGER = 'i-0123456789abcdef0';

function json(statusCode: number, body: unknown, errorType?: string) {
  return {
    response: new HttpResponse({
      statusCode,
      headers: { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) },
      body: Readable.from([Buffer.from(JSON.stringify(body))]),
    }),
  };
}

test('a ThrottlingException is retried by the client (adaptive retry) and the command still returns its result', async () => {
  const targets: string[] = [];
  let throttledOnce = false;
  const requestHandler = {
    handle: async (req: { headers: Record<string, string> }) => {
      const target = req.headers['x-amz-target'].replace('AmazonSSM.', '');
      targets.push(target);
      if (target === 'SendCommand' && !throttledOnce) {
        throttledOnce = true;
        return json(400, { __type: 'ThrottlingException', message: 'Rate exceeded' }, 'ThrottlingException');
      }
      switch (target) {
        case 'DescribeInstanceInformation':
          return json(200, { InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'Online' }] });
        case 'SendCommand':
          return json(200, { Command: { CommandId: 'cmd-1' } });
        case 'GetCommandInvocation':
          return json(200, { Status: 'Success', ResponseCode: 0, StandardOutputContent: 'survived throttling' });
        default:
          return json(400, { __type: 'InvalidAction', message: target }, 'InvalidAction');
      }
    },
  };
  const client = createSsmClient(
    { region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' } },
    { requestHandler: requestHandler as never },
  );
  const runner = new SsmRunner({ client, sleep: async () => {} });

  const [res] = await runner.run([MANAGER], 'true');

  expect(res.stdout).toBe('survived throttling');
  expect(targets.filter((t) => t === 'SendCommand')).toHaveLength(2);
  const mode = client.config.retryMode as unknown;
  expect(typeof mode === 'function' ? await (mode as () => Promise<string>)() : mode).toBe('adaptive');
});
