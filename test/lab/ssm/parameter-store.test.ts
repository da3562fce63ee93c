/**
 * The lab's parameter store through the REAL @aws-sdk/client-ssm against the endpoint on 127.0.0.1
 * (explicit loopback endpoint, dummy credentials: nothing can reach AWS).
 */
import {
  DeleteParameterCommand,
  DeleteParametersCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  paginateGetParametersByPath,
  ParameterAlreadyExists,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabCloud, startLabCloud } from '../../../lib/lab/ssm/endpoint';
import { LAB_OPERATOR_CREDENTIALS } from '../../../lib/lab/credentials';
import type { SigV4Key } from '../../../lib/lab/sigv4';
import { signHeaders } from '../../support/sigv4-sign';

let cloud: LabCloud;
let ssm: SSMClient;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lab-cloud-ps-'));
  cloud = await startLabCloud({
    region: 'eu-west-1',
    instances: [],
    executor: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
    requestLog: join(dir, 'requests.log'),
  });
  ssm = new SSMClient({
    region: 'eu-west-1',
    endpoint: cloud.endpoint,
    credentials: LAB_OPERATOR_CREDENTIALS,
    maxAttempts: 1,
  });
});

afterAll(async () => {
  ssm.destroy();
  await cloud.close();
  rmSync(dir, { recursive: true, force: true });
});

const SECRET = 'SWMTKN-\x31-0123456789abcdefghijklmnopqrstuvwxyz-secretpart';

test('a SecureString comes back in clear only WithDecryption; never in the request log', async () => {
  const put = await ssm.send(new PutParameterCommand({ Name: '/ec2-swarm/t1/worker-token', Type: 'SecureString', Value: SECRET }));
  expect(put.Version).toBe(1);

  const clear = await ssm.send(new GetParameterCommand({ Name: '/ec2-swarm/t1/worker-token', WithDecryption: true }));
  expect(clear.Parameter).toMatchObject({ Name: '/ec2-swarm/t1/worker-token', Type: 'SecureString', Value: SECRET, Version: 1 });
  expect(clear.Parameter?.LastModifiedDate).toBeInstanceOf(Date);
  expect(clear.Parameter?.ARN).toBe('arn:aws:ssm:eu-west-1:123456789012:parameter/ec2-swarm/t1/worker-token');

  const opaque = await ssm.send(new GetParameterCommand({ Name: '/ec2-swarm/t1/worker-token' }));
  expect(opaque.Parameter?.Value).toMatch(/^[A-Za-z0-9+/]+=*$/);
  expect(opaque.Parameter?.Value).not.toContain('SWMTKN');

  expect(readFileSync(join(dir, 'requests.log'), 'utf8')).not.toContain('SWMTKN');
});

test('Overwrite=false on an existing name is ParameterAlreadyExists; Overwrite=true bumps Version', async () => {
  await ssm.send(new PutParameterCommand({ Name: '/t2/address', Type: 'String', Value: '10.0.0.1:2377' }));
  const err = await ssm.send(new PutParameterCommand({ Name: '/t2/address', Type: 'String', Value: 'x' })).catch((e) => e);
  expect(err).toBeInstanceOf(ParameterAlreadyExists);
  expect(err.$metadata.httpStatusCode).toBe(400);
  expect((await ssm.send(new GetParameterCommand({ Name: '/t2/address' }))).Parameter?.Value).toBe('10.0.0.1:2377');

  const v2 = await ssm.send(new PutParameterCommand({ Name: '/t2/address', Value: '10.0.0.2:2377', Overwrite: true }));
  expect(v2.Version).toBe(2);
  const got = await ssm.send(new GetParameterCommand({ Name: '/t2/address' }));
  expect(got.Parameter).toMatchObject({ Value: '10.0.0.2:2377', Version: 2, Type: 'String' });
  expect((await ssm.send(new GetParameterCommand({ Name: '/t2/address:1' }))).Parameter?.Value).toBe('10.0.0.1:2377');
});

test('a missing name is ParameterNotFound (GetParameter, DeleteParameter); batch calls list it as invalid', async () => {
  await expect(ssm.send(new GetParameterCommand({ Name: '/nope/x' }))).rejects.toBeInstanceOf(ParameterNotFound);
  await expect(ssm.send(new DeleteParameterCommand({ Name: '/nope/x' }))).rejects.toBeInstanceOf(ParameterNotFound);

  await ssm.send(new PutParameterCommand({ Name: '/t3/a', Type: 'String', Value: 'A' }));
  const many = await ssm.send(new GetParametersCommand({ Names: ['/t3/a', '/t3/missing'] }));
  expect(many.Parameters?.map((p) => p.Value)).toEqual(['A']);
  expect(many.InvalidParameters).toEqual(['/t3/missing']);

  const del = await ssm.send(new DeleteParametersCommand({ Names: ['/t3/a', '/t3/missing'] }));
  expect(del).toMatchObject({ DeletedParameters: ['/t3/a'], InvalidParameters: ['/t3/missing'] });
  await expect(ssm.send(new GetParameterCommand({ Name: '/t3/a' }))).rejects.toBeInstanceOf(ParameterNotFound);
});

test('GetParametersByPath: one level unless Recursive, pages of MaxResults with NextToken', async () => {
  for (let i = 0; i < 23; i++) {
    await ssm.send(new PutParameterCommand({ Name: `/t4/p${String(i).padStart(2, '0')}`, Type: 'SecureString', Value: `v${i}` }));
  }
  await ssm.send(new PutParameterCommand({ Name: '/t4/deeper/q', Type: 'String', Value: 'deep' }));

  const first = await ssm.send(new GetParametersByPathCommand({ Path: '/t4', MaxResults: 10 }));
  expect(first.Parameters).toHaveLength(10);
  expect(first.NextToken).toBeDefined();

  const names: string[] = [];
  const values: string[] = [];
  for await (const page of paginateGetParametersByPath({ client: ssm, pageSize: 10 }, { Path: '/t4', WithDecryption: true })) {
    for (const p of page.Parameters ?? []) {
      names.push(p.Name!);
      values.push(p.Value!);
    }
  }
  expect(names).toHaveLength(23);
  expect(names).not.toContain('/t4/deeper/q');
  expect(values).toContain('v22');

  const recursive = await ssm.send(new GetParametersByPathCommand({ Path: '/t4/', Recursive: true, MaxResults: 10, NextToken: undefined }));
  let all = recursive.Parameters!.length;
  let token = recursive.NextToken;
  while (token) {
    const next = await ssm.send(new GetParametersByPathCommand({ Path: '/t4/', Recursive: true, MaxResults: 10, NextToken: token }));
    all += next.Parameters!.length;
    token = next.NextToken;
  }
  expect(all).toBe(24);

  await expect(ssm.send(new GetParametersByPathCommand({ Path: '/t4', MaxResults: 11 }))).rejects.toMatchObject({ name: 'ValidationException' });
});

test('bad input is a ValidationException naming the member', async () => {
  await expect(ssm.send(new PutParameterCommand({ Name: '/t5/new', Value: 'x' }))).rejects.toMatchObject({
    name: 'ValidationException',
    message: expect.stringContaining('type is required'),
  });
  await expect(ssm.send(new PutParameterCommand({ Name: '/t5/big', Type: 'String', Value: 'x'.repeat(4097) }))).rejects.toMatchObject({
    name: 'ValidationException',
    message: expect.stringContaining('4096'),
  });
  await expect(ssm.send(new PutParameterCommand({ Name: '/aws/x', Type: 'String', Value: 'x' }))).rejects.toMatchObject({ name: 'ValidationException' });
  await expect(ssm.send(new PutParameterCommand({ Name: 'a/b', Type: 'String', Value: 'x' }))).rejects.toMatchObject({ name: 'ValidationException' });
});

test('unsigned or badly signed requests are refused as SSM refuses them; unknown actions get a clear error', async () => {
  const body = JSON.stringify({ Name: '/t2/address' });
  const base = (target: string): Record<string, string> => ({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target });
  const post = async (target: string, sign?: { creds?: SigV4Key; region?: string; tamper?: boolean }): Promise<{ status: number; body: Record<string, string> }> => {
    const signed = sign ? await signHeaders({ host: new URL(cloud.endpoint!).host, headers: base(target), body, region: sign.region ?? 'eu-west-1', service: 'ssm', creds: sign.creds }) : base(target);
    const { host: _host, ...headers } = signed;
    const r = await fetch(`${cloud.endpoint}/`, { method: 'POST', headers, body: sign?.tamper ? JSON.stringify({ Name: '/t2/other' }) : body });
    return { status: r.status, body: (await r.json()) as Record<string, string> };
  };

  const anon = await post('AmazonSSM.GetParameter');
  expect(anon.status).toBe(400);
  expect(anon.body.__type).toBe('MissingAuthenticationTokenException');

  const wrongSecret = await post('AmazonSSM.GetParameter', { creds: { ...LAB_OPERATOR_CREDENTIALS, secretAccessKey: 'not-the-lab-secret' } });
  expect(wrongSecret).toEqual({ status: 400, body: { __type: 'InvalidSignatureException', message: expect.stringContaining('The request signature we calculated does not match') } });
  expect((await post('AmazonSSM.GetParameter', { tamper: true })).body.__type).toBe('InvalidSignatureException');
  expect((await post('AmazonSSM.GetParameter', { region: 'us-east-1' })).body).toEqual({ __type: 'InvalidSignatureException', message: "Credential should be scoped to a valid region, not 'us-east-1'." });
  const stranger = await post('AmazonSSM.GetParameter', { creds: { accessKeyId: 'AKIDNOTISSUED0000000', secretAccessKey: 'x' } });
  expect(stranger).toEqual({ status: 400, body: { __type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' } });

  const unknown = await post('AmazonSSM.CreateDocument', {});
  expect(unknown.status).toBe(400);
  expect(unknown.body.__type).toBe('UnknownOperationException');
  expect(unknown.body.message).toContain('CreateDocument');

  const ok = await post('AmazonSSM.GetParameter', {});
  expect(ok.status).toBe(200);
});
