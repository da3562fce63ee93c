/**
 * The lab's EC2 API on loopback, through the real SDK client and the real AWS CLI: what the reconciler and the
 * ops see (DescribeInstances with ids and filters, NotFound, stop/start/terminate state transitions).
 */
import { DescribeInstancesCommand, EC2Client, StartInstancesCommand, StopInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { AutoScalingService } from '../../../lib/lab/autoscaling/groups';
import { Ec2Service } from '../../../lib/lab/ec2/instances';
import { LabCloud } from '../../../lib/lab/ssm/endpoint';
import { startAwsCliSession } from '../../support/aws-cli-session';
import { FakeDriver, hex17, makeEc2, startQueryCloud } from '../cloud/aws-query-support';
import { LAB_OPERATOR_CREDENTIALS } from '../../../lib/lab/credentials';

const CREDS = LAB_OPERATOR_CREDENTIALS;

describe('lab EC2 API (Query 2016-11-15)', () => {
  let driver: FakeDriver;
  let ec2: Ec2Service;
  let cloud: LabCloud;
  let client: EC2Client;

  beforeEach(async () => {
    driver = new FakeDriver();
    ec2 = makeEc2(driver);
    ec2.adopt({ index: 0, instanceId: hex17(1), privateIp: '192.168.9.10', hostname: 'h0', ns: 't-h0', tags: { 'ec2-swarm:role': 'manager', 'ec2-swarm:cluster': 'lab' } });
    ec2.adopt({ index: 1, instanceId: hex17(2), privateIp: '192.168.9.11', hostname: 'h1', ns: 't-h1', tags: { 'ec2-swarm:role': 'worker', 'ec2-swarm:cluster': 'lab' } });
    cloud = await startQueryCloud(ec2, new AutoScalingService({ ec2, groups: [] }));
    client = new EC2Client({ region: 'us-east-1', endpoint: cloud.endpoint, credentials: CREDS });
  });
  afterEach(async () => {
    client.destroy();
    await cloud.close();
  });

  test('DescribeInstances: every instance, by id, by tag and by state', async () => {
    const all = await client.send(new DescribeInstancesCommand({}));
    const ids = all.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId));
    expect(ids).toEqual([hex17(1), hex17(2)]);
    const one = all.Reservations![1].Instances![0];
    expect(one).toMatchObject({ PrivateIpAddress: '192.168.9.11', State: { Code: 16, Name: 'running' }, Placement: { AvailabilityZone: 'us-east-1b' } });
    expect(one.Tags).toEqual(expect.arrayContaining([{ Key: 'ec2-swarm:role', Value: 'worker' }]));

    const managers = await client.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:ec2-swarm:role', Values: ['manager'] }] }));
    expect(managers.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId))).toEqual([hex17(1)]);
    const byId = await client.send(new DescribeInstancesCommand({ InstanceIds: [hex17(2)], Filters: [{ Name: 'instance-state-name', Values: ['running'] }] }));
    expect(byId.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId))).toEqual([hex17(2)]);
    const stopped = await client.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['stopped'] }] }));
    expect(stopped.Reservations).toEqual([]);
  });

  test("an instance launched with a type and as Spot (a mixed group's) says so; others are t3.small On-Demand", async () => {
    const spot = ec2.runInstance({ tags: { 'ec2-swarm:role': 'worker' }, instanceType: 't3a.large', instanceLifecycle: 'spot' });
    await ec2.settled();
    const all = (await client.send(new DescribeInstancesCommand({}))).Reservations!.flatMap((r) => r.Instances!);
    expect(all.find((i) => i.InstanceId === spot.instanceId)).toMatchObject({ InstanceType: 't3a.large', InstanceLifecycle: 'spot' });
    expect(all.find((i) => i.InstanceId === hex17(1))).toMatchObject({ InstanceType: 't3.small' });
    expect(all.find((i) => i.InstanceId === hex17(1))).not.toHaveProperty('InstanceLifecycle');
  });

  test('an unknown instance id is InvalidInstanceID.NotFound, naming it', async () => {
    await expect(client.send(new DescribeInstancesCommand({ InstanceIds: [hex17(99)] }))).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
      message: expect.stringContaining(hex17(99)),
    });
  });

  test('stop → stopping then stopped (driver stop); start → pending then running (driver start); terminate stays listed as terminated', async () => {
    const stop = await client.send(new StopInstancesCommand({ InstanceIds: [hex17(2)] }));
    expect(stop.StoppingInstances).toEqual([{ InstanceId: hex17(2), CurrentState: { Code: 64, Name: 'stopping' }, PreviousState: { Code: 16, Name: 'running' } }]);
    await ec2.settled();
    expect(ec2.get(hex17(2))!.state).toBe('stopped');
    await expect(client.send(new StopInstancesCommand({ InstanceIds: [hex17(9)] }))).rejects.toMatchObject({ name: 'InvalidInstanceID.NotFound' });

    const start = await client.send(new StartInstancesCommand({ InstanceIds: [hex17(2)] }));
    expect(start.StartingInstances![0]).toMatchObject({ CurrentState: { Name: 'pending' }, PreviousState: { Name: 'stopped' } });
    await ec2.settled();
    expect(ec2.get(hex17(2))!.state).toBe('running');

    const term = await client.send(new TerminateInstancesCommand({ InstanceIds: [hex17(2)] }));
    expect(term.TerminatingInstances![0]).toMatchObject({ CurrentState: { Name: 'shutting-down' } });
    await ec2.settled();
    expect(driver.calls).toEqual([`stop ${hex17(2)}`, `start ${hex17(2)}`, `terminate ${hex17(2)}`]);
    const gone = await client.send(new DescribeInstancesCommand({ InstanceIds: [hex17(2)] }));
    expect(gone.Reservations![0].Instances![0].State).toEqual({ Code: 48, Name: 'terminated' });
    await expect(client.send(new StartInstancesCommand({ InstanceIds: [hex17(2)] }))).rejects.toMatchObject({ name: 'IncorrectInstanceState' });
  });

  test('the real AWS CLI reads the lab: describe-instances with a tag filter and a query', async () => {
    const env = { PATH: '/usr/bin:/bin', AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', HOME: '/tmp' };
    const cli = startAwsCliSession();
    try {
      const r = await cli.run(
        ['--endpoint-url', cloud.endpoint!, '--region', 'us-east-1', 'ec2', 'describe-instances', '--filters', 'Name=tag:ec2-swarm:role,Values=worker', 'Name=instance-state-name,Values=running', '--query', 'Reservations[].Instances[].[InstanceId,PrivateIpAddress,State.Name]', '--output', 'text'],
        env,
      );
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout.trim().split(/\s+/)).toEqual([hex17(2), '192.168.9.11', 'running']);
      const missing = await cli.run(['--endpoint-url', cloud.endpoint!, '--region', 'us-east-1', 'ec2', 'describe-instances', '--instance-ids', hex17(77)], env);
      expect(missing.code).toBe(254); // the CLI's exit code for an error the service returned
      expect(missing.stderr).toContain('InvalidInstanceID.NotFound');
    } finally {
      await cli.close();
    }
  }, 180_000);
});
