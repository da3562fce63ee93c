/**
 * The lab's Auto Scaling: desired capacity kept by launching the launch template's user-data, replacement of a
 * terminated member (new id, new address), scale-in and terminate-in-group through Terminating:Wait until
 * CompleteLifecycleAction or the heartbeat timeout — through the real AWS CLI (test/support/aws-cli-session.ts) on loopback where it matters, and
 * the IAM intent for hosts (workers may call nothing; managers describe and complete).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoScalingService, marketForNext } from '../../../lib/lab/autoscaling/groups';
import { createQueryApi } from '../../../lib/lab/cloud/aws-query';
import { Ec2Service } from '../../../lib/lab/ec2/instances';
import { LabCloud, startLabCloud } from '../../../lib/lab/ssm/endpoint';
import { type AwsCliSession, startAwsCliSession } from '../../support/aws-cli-session';
import { FakeDriver, makeEc2, startQueryCloud, workerGroup } from '../cloud/aws-query-support';
import { instanceRoleCredentials, LAB_OPERATOR_CREDENTIALS } from '../../../lib/lab/credentials';
import type { SigV4Key } from '../../../lib/lab/sigv4';
import { signHeaders } from '../../support/sigv4-sign';

const ENV = { PATH: '/usr/bin:/bin', AWS_ACCESS_KEY_ID: LAB_OPERATOR_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LAB_OPERATOR_CREDENTIALS.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', HOME: '/tmp' };

describe('lab Auto Scaling model', () => {
  let now: number;
  let driver: FakeDriver;
  let ec2: Ec2Service;
  let asg: AutoScalingService;
  const live = () => ec2.list().filter((i) => i.state !== 'terminated');
  beforeEach(() => {
    now = 1_000_000;
    driver = new FakeDriver();
    ec2 = makeEc2(driver);
    asg = new AutoScalingService({ ec2, groups: [workerGroup()], now: () => now });
  });

  test('GIVEN desired 2 WHEN ticked THEN two instances launch with the user-data and the propagated tags', async () => {
    asg.tick();
    await ec2.settled();
    asg.tick();
    expect(live().map((i) => i.state)).toEqual(['running', 'running']);
    expect([...driver.userData.values()]).toEqual(['#!/bin/bash\necho worker\n', '#!/bin/bash\necho worker\n']);
    expect(live()[0].tags).toEqual({ 'aws:autoscaling:groupName': 'lab-WorkerGroup-ABC', 'ec2-swarm:cluster': 'lab', 'ec2-swarm:role': 'worker' });
    expect(live().map((i) => i.availabilityZone).sort()).toEqual(['us-east-1a', 'us-east-1b']);
    expect(live().map((i) => asg.membership(i.instanceId)?.state)).toEqual(['InService', 'InService']);
  });

  test('a member terminated outside the group is replaced by a new instance with a new id and address', async () => {
    asg.tick();
    await ec2.settled();
    const [victim] = live();
    ec2.terminateInstances([victim.instanceId]);
    await ec2.settled();
    asg.tick();
    await ec2.settled();
    const now2 = live();
    expect(now2).toHaveLength(2);
    expect(now2.map((i) => i.instanceId)).not.toContain(victim.instanceId);
    expect(now2.map((i) => i.privateIp)).not.toContain(victim.privateIp);
    expect(asg.membership(victim.instanceId)).toBeUndefined();
  });

  test('scale-in waits in Terminating:Wait until CompleteLifecycleAction; the heartbeat timeout ends the wait too', async () => {
    asg.tick();
    await ec2.settled();
    asg.setDesiredCapacity('lab-WorkerGroup-ABC', 1);
    const waiting = live().filter((i) => asg.membership(i.instanceId)?.state === 'Terminating:Wait');
    expect(waiting).toHaveLength(1);
    await ec2.settled();
    expect(waiting[0].state).toBe('running'); // the hook holds it
    asg.completeLifecycleAction({ group: 'lab-WorkerGroup-ABC', hook: 'ec2-swarm-drain', instanceId: waiting[0].instanceId, result: 'CONTINUE' });
    await ec2.settled();
    asg.tick();
    expect(ec2.get(waiting[0].instanceId)!.state).toBe('terminated');
    expect(live()).toHaveLength(1);
    expect(() => asg.completeLifecycleAction({ group: 'lab-WorkerGroup-ABC', hook: 'ec2-swarm-drain', instanceId: waiting[0].instanceId, result: 'CONTINUE' })).toThrow(/No active Lifecycle Action/);

    // terminate-in-group without decrement: the member waits, a replacement launches; the heartbeat timeout ends the wait.
    const [last] = live();
    asg.terminateInstanceInGroup(last.instanceId, false);
    expect(asg.membership(last.instanceId)?.state).toBe('Terminating:Wait');
    await ec2.settled();
    expect(live()).toHaveLength(2);
    now += 599_000;
    asg.tick();
    expect(asg.membership(last.instanceId)?.state).toBe('Terminating:Wait');
    now += 2_000;
    asg.tick();
    await ec2.settled();
    asg.tick();
    expect(ec2.get(last.instanceId)!.state).toBe('terminated');
    expect(live()).toHaveLength(1);
  });

  test('desired capacity outside min/max is refused like the service does', () => {
    expect(() => asg.setDesiredCapacity('lab-WorkerGroup-ABC', 6)).toThrow('New SetDesiredCapacity value 6 is above max value 5 for the AutoScalingGroup.');
    expect(() => asg.setDesiredCapacity('nope', 1)).toThrow(/AutoScalingGroup nope not found/);
    expect(() => asg.updateGroup('lab-WorkerGroup-ABC', { minSize: 3, maxSize: 2 })).toThrow(/must be greater than or equal to min bound/);
  });
});

const policy = { instanceTypes: ['t3.large', 't3a.large'], onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 50 };

describe('a group with a mixed instances policy', () => {

  test('On-Demand for the base, then the percentage of the rest (rounded up), Spot for the others', () => {
    // running, of them On-Demand → the next one
    expect(marketForNext(policy, 0, 0)).toBe('on-demand'); // the base
    expect(marketForNext(policy, 1, 1)).toBe('on-demand'); // 2: 1 above the base, 50% rounded up = 1
    expect(marketForNext(policy, 2, 2)).toBe('spot'); // 3: 2 above, 1 of them On-Demand
    expect(marketForNext(policy, 3, 2)).toBe('on-demand'); // 4: 3 above → 2 On-Demand above the base
    expect(marketForNext({ ...policy, onDemandBaseCapacity: 0, onDemandPercentageAboveBaseCapacity: 0 }, 5, 0)).toBe('spot');
    expect(marketForNext({ ...policy, onDemandBaseCapacity: 0, onDemandPercentageAboveBaseCapacity: 100 }, 5, 5)).toBe('on-demand');
  });

  test("launches from the policy's launch template (its user-data, tags), the first type, On-Demand and Spot as distributed", async () => {
    const driver = new FakeDriver();
    const ec2 = makeEc2(driver);
    const asg = new AutoScalingService({ ec2, groups: [workerGroup({ desiredCapacity: 4, mixedInstancesPolicy: policy })] });
    asg.tick();
    await ec2.settled();
    const live = ec2.list().filter((i) => i.state !== 'terminated');
    expect([...driver.userData.values()]).toEqual(Array(4).fill('#!/bin/bash\necho worker\n'));
    expect(live.map((i) => [i.instanceType, i.instanceLifecycle ?? 'on-demand'])).toEqual([
      ['t3.large', 'on-demand'],
      ['t3.large', 'on-demand'],
      ['t3.large', 'spot'],
      ['t3.large', 'on-demand'],
    ]);
    expect(live[2].tags).toMatchObject({ 'aws:autoscaling:groupName': 'lab-WorkerGroup-ABC', 'ec2-swarm:role': 'worker' });
    // A Spot instance lost is replaced by Spot: the On-Demand share is already met.
    ec2.terminateInstances([live[2].instanceId]);
    await ec2.settled();
    asg.tick();
    await ec2.settled();
    const replaced = ec2.list().filter((i) => i.state !== 'terminated');
    expect(replaced).toHaveLength(4);
    expect(replaced.filter((i) => i.instanceLifecycle === 'spot').map((i) => i.instanceId)).not.toContain(live[2].instanceId);
    expect(replaced.filter((i) => i.instanceLifecycle === 'spot')).toHaveLength(1);
  });

  test('a plain group leaves the type and market to EC2 (On-Demand)', async () => {
    const ec2 = makeEc2(new FakeDriver());
    new AutoScalingService({ ec2, groups: [workerGroup({ desiredCapacity: 1 })] }).tick();
    await ec2.settled();
    expect(ec2.list()[0]).not.toHaveProperty('instanceType');
    expect(ec2.list()[0]).not.toHaveProperty('instanceLifecycle');
  });
});

describe('lab Auto Scaling API (Query 2011-01-01) through the real AWS CLI', () => {
  let ec2: Ec2Service;
  let asg: AutoScalingService;
  let cloud: LabCloud;
  let cli: AwsCliSession;
  /** stdout of `aws autoscaling ARGS`; a non-zero exit rejects with its code and stderr. */
  const aws = async (...args: string[]): Promise<string> => {
    const r = await cli.run(['--endpoint-url', cloud.endpoint!, '--region', 'us-east-1', '--output', 'json', 'autoscaling', ...args], ENV);
    if (r.code !== 0) throw Object.assign(new Error(`aws autoscaling ${args[0]} exited ${r.code}: ${r.stderr}`), r);
    return r.stdout;
  };
  beforeAll(async () => {
    cli = startAwsCliSession();
    ec2 = makeEc2(new FakeDriver());
    // Beside the plain group, one with a mixed instances policy (read back by describe-auto-scaling-groups).
    asg = new AutoScalingService({ ec2, groups: [workerGroup(), workerGroup({ name: 'lab-SpotGroup-DEF', desiredCapacity: 2, mixedInstancesPolicy: policy })] });
    asg.tick();
    await ec2.settled();
    asg.tick();
    cloud = await startQueryCloud(ec2, asg);
  });
  afterAll(async () => {
    await cli.close();
    await cloud.close();
  });

  test('describe-auto-scaling-instances, set-desired-capacity, complete-lifecycle-action, describe-auto-scaling-groups', async () => {
    const before = JSON.parse(await aws('describe-auto-scaling-instances')) as { AutoScalingInstances: { InstanceId: string; LifecycleState: string; AutoScalingGroupName: string; HealthStatus: string }[] };
    expect(before.AutoScalingInstances.map((i) => [i.LifecycleState, i.AutoScalingGroupName, i.HealthStatus])).toEqual([
      ['InService', 'lab-WorkerGroup-ABC', 'HEALTHY'],
      ['InService', 'lab-WorkerGroup-ABC', 'HEALTHY'],
      ['InService', 'lab-SpotGroup-DEF', 'HEALTHY'],
      ['InService', 'lab-SpotGroup-DEF', 'HEALTHY'],
    ]);
    await aws('set-desired-capacity', '--auto-scaling-group-name', 'lab-WorkerGroup-ABC', '--desired-capacity', '1');
    // The CLI's reading of describe-auto-scaling-instances is proven above; the state it left is read directly.
    const waiting = before.AutoScalingInstances.filter((i) => asg.membership(i.InstanceId)?.state === 'Terminating:Wait');
    expect(waiting).toHaveLength(1);
    await aws('complete-lifecycle-action', '--auto-scaling-group-name', 'lab-WorkerGroup-ABC', '--lifecycle-hook-name', 'ec2-swarm-drain', '--instance-id', waiting[0].InstanceId, '--lifecycle-action-result', 'CONTINUE');
    expect(asg.membership(waiting[0].InstanceId)?.state).not.toBe('Terminating:Wait');
    await ec2.settled();
    asg.tick();
    const groups = JSON.parse(await aws('describe-auto-scaling-groups')) as { AutoScalingGroups: { AutoScalingGroupName: string; DesiredCapacity: number; MinSize: number; MaxSize: number; Instances: { InstanceType: string }[]; Tags: { Key: string; Value: string }[] }[] };
    expect(groups.AutoScalingGroups.map((g) => g.AutoScalingGroupName)).toEqual(['lab-WorkerGroup-ABC', 'lab-SpotGroup-DEF']);
    expect(groups.AutoScalingGroups[0]).toMatchObject({ DesiredCapacity: 1, MinSize: 0, MaxSize: 5, LaunchTemplate: { LaunchTemplateId: 'lt-0123', LaunchTemplateName: 'WorkerLaunchTemplate', Version: '1' } });
    // The mixed group: the policy instead of LaunchTemplate, each instance with the type it got.
    const spot = groups.AutoScalingGroups[1];
    expect(spot).not.toHaveProperty('LaunchTemplate');
    expect(spot).toMatchObject({
      MixedInstancesPolicy: {
        LaunchTemplate: {
          LaunchTemplateSpecification: { LaunchTemplateId: 'lt-0123', LaunchTemplateName: 'WorkerLaunchTemplate', Version: '1' },
          Overrides: [{ InstanceType: 't3.large' }, { InstanceType: 't3a.large' }],
        },
        InstancesDistribution: { OnDemandBaseCapacity: 1, OnDemandPercentageAboveBaseCapacity: 50 },
      },
    });
    expect(spot.Instances.map((i) => i.InstanceType)).toEqual(['t3.large', 't3.large']);
    expect(groups.AutoScalingGroups[0].Instances).toHaveLength(1);
    expect(groups.AutoScalingGroups[0].Tags).toEqual(expect.arrayContaining([expect.objectContaining({ Key: 'ec2-swarm:role', Value: 'worker' })]));
    await expect(aws('set-desired-capacity', '--auto-scaling-group-name', 'lab-WorkerGroup-ABC', '--desired-capacity', '9')).rejects.toMatchObject({
      stderr: expect.stringContaining('above max value 5'),
    });
    const t = JSON.parse(await aws('terminate-instance-in-auto-scaling-group', '--instance-id', ec2.list().find((i) => i.state === 'running')!.instanceId, '--no-should-decrement-desired-capacity')) as { Activity: { StatusCode: string } };
    expect(t.Activity.StatusCode).toBe('InProgress');
  }, 300_000); // six runs of the AWS CLI on a shared machine
});

describe('IAM intent for hosts (requests through the gateway socket)', () => {
  let dir: string;
  let cloud: LabCloud;
  let ec2: Ec2Service;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lab-asg-'));
    ec2 = makeEc2(new FakeDriver());
    ec2.adopt({ index: 0, instanceId: 'i-00000000000000001', privateIp: '192.168.9.10', hostname: 'm', ns: 't-h0', tags: { 'ec2-swarm:role': 'manager' } });
    ec2.adopt({ index: 1, instanceId: 'i-00000000000000002', privateIp: '192.168.9.11', hostname: 'w', ns: 't-h1', tags: { 'ec2-swarm:role': 'worker' } });
    const asg = new AutoScalingService({ ec2, groups: [] });
    const roleOf = (id: string) => ec2.get(id)?.tags['ec2-swarm:role'] as 'manager' | 'worker' | undefined;
    cloud = await startLabCloud({
      region: 'us-east-1',
      instances: () => ec2.list().map((i) => ({ instanceId: i.instanceId, privateIp: i.privateIp, tags: i.tags })),
      executor: async () => ({ exitCode: 0, stdout: '', stderr: '', timedOut: false }),
      tcp: false,
      socketPath: join(dir, 'cloud.sock'),
      queryApi: createQueryApi({ ec2, autoscaling: asg, region: 'us-east-1', accountId: '123456789012', clusterName: 'lab', roleOf }),
    });
  });
  afterAll(async () => {
    await cloud.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // A host signs with the role credentials its IMDS hands out (or, to be refused, with a key of its own making).
  const call = async (sourceIp: string, body: string, creds?: SigV4Key): Promise<{ status: number; text: string }> => {
    const service = body.includes('Version=2016-11-15') ? 'ec2' : 'autoscaling';
    const instanceId = ec2.list().find((i) => i.privateIp === sourceIp)!.instanceId;
    const headers = await signHeaders({ host: `${service}.us-east-1.amazonaws.com`, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body, region: 'us-east-1', service, creds: creds ?? instanceRoleCredentials(instanceId) });
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: join(dir, 'cloud.sock'), method: 'POST', path: '/', headers: { ...headers, 'x-lab-source-ip': sourceIp } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };

  test('a manager may describe instances; a worker may not, and may not stop one', async () => {
    const m = await call('192.168.9.10', 'Action=DescribeInstances&Version=2016-11-15');
    expect(m.status).toBe(200);
    expect(m.text).toContain('<instanceId>i-00000000000000002</instanceId>');
    const w = await call('192.168.9.11', 'Action=DescribeInstances&Version=2016-11-15');
    expect(w.status).toBe(403);
    expect(w.text).toContain('<Code>UnauthorizedOperation</Code>');
    const s = await call('192.168.9.11', 'Action=StopInstances&Version=2016-11-15&InstanceId.1=i-00000000000000001');
    expect(s.status).toBe(403);
    const ms = await call('192.168.9.10', 'Action=StopInstances&Version=2016-11-15&InstanceId.1=i-00000000000000002');
    expect(ms.status).toBe(403);
    const wa = await call('192.168.9.11', 'Action=DescribeAutoScalingInstances&Version=2011-01-01');
    expect(wa.status).toBe(403);
    expect(wa.text).toContain('<Code>AccessDenied</Code>');
    expect(ec2.get('i-00000000000000001')!.state).toBe('running');
  });

  test('a request signed with the wrong secret or a key the lab never issued is refused as EC2 and Auto Scaling refuse it', async () => {
    const own = instanceRoleCredentials(ec2.list().find((i) => i.privateIp === '192.168.9.10')!.instanceId);
    const bad = await call('192.168.9.10', 'Action=DescribeInstances&Version=2016-11-15', { ...own, secretAccessKey: 'f'.repeat(40) });
    expect(bad.status).toBe(403);
    expect(bad.text).toMatch(/<Response><Errors><Error><Code>SignatureDoesNotMatch<\/Code>/);
    const stranger = await call('192.168.9.10', 'Action=DescribeInstances&Version=2016-11-15', { accessKeyId: 'AKIDNOTISSUED0000000', secretAccessKey: 'x' });
    expect(stranger.status).toBe(401);
    expect(stranger.text).toContain('<Code>AuthFailure</Code>');
    const asg = await call('192.168.9.10', 'Action=DescribeAutoScalingInstances&Version=2011-01-01', { accessKeyId: 'AKIDNOTISSUED0000000', secretAccessKey: 'x' });
    expect(asg.status).toBe(403);
    expect(asg.text).toContain('<Code>InvalidClientTokenId</Code>');
  });
});
