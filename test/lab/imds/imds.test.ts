/** IMDS answers per source IP from a changing table: instance tags and the Auto Scaling target lifecycle state. */
import { createServer, get, request, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { createImdsHandler, LabInstance } from '../../../lib/lab/imds/imds';

describe('lab IMDS: tags and target-lifecycle-state', () => {
  const table: LabInstance[] = [{ instanceId: 'i-00000000000000001', privateIp: '127.0.0.1', tags: { 'ec2-swarm:role': 'worker' }, targetLifecycleState: 'InService' }];
  let server: Server;
  let port: number;
  beforeAll(async () => {
    const h = createImdsHandler({ region: 'us-east-1', instances: () => table });
    server = createServer((q, r) => h(q, r, '127.0.0.1'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const token = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', method: 'PUT', path: '/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end();
    });
  const md = (t: string, path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      get({ port, host: '127.0.0.1', path: `/latest/meta-data/${path}`, headers: { 'x-aws-ec2-metadata-token': t } }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      }).on('error', reject);
    });

  test('tags/instance/<key> and autoscaling/target-lifecycle-state follow the table', async () => {
    const t = await token();
    expect(await md(t, 'tags/instance/ec2-swarm:role')).toEqual({ status: 200, body: 'worker' });
    expect(await md(t, 'tags/instance')).toEqual({ status: 200, body: 'ec2-swarm:role' });
    expect(await md(t, 'autoscaling/target-lifecycle-state')).toEqual({ status: 200, body: 'InService' });
    table[0] = { ...table[0], targetLifecycleState: 'Terminated' };
    expect(await md(t, 'autoscaling/target-lifecycle-state')).toEqual({ status: 200, body: 'Terminated' });
    expect((await md(t, 'tags/instance/nope')).status).toBe(404);
  });

  test('instance-type and instance-life-cycle follow the table (a Spot worker of a mixed group)', async () => {
    const t = await token();
    expect(await md(t, 'instance-life-cycle')).toEqual({ status: 200, body: 'on-demand' });
    table[0] = { ...table[0], instanceType: 't3a.large', instanceLifecycle: 'spot' };
    expect(await md(t, 'instance-type')).toEqual({ status: 200, body: 't3a.large' });
    expect(await md(t, 'instance-life-cycle')).toEqual({ status: 200, body: 'spot' });
  });
});
