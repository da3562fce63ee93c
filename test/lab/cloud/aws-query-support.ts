/** A lab cloud with the EC2 and Auto Scaling stand-ins on loopback, hosts played by a recording fake driver. */
import { AutoScalingService, GroupSpec } from '../../../lib/lab/autoscaling/groups';
import { createQueryApi } from '../../../lib/lab/cloud/aws-query';
import { Ec2Instance, Ec2Service, HostDriver } from '../../../lib/lab/ec2/instances';
import { LabCloud, startLabCloud } from '../../../lib/lab/ssm/endpoint';

export class FakeDriver implements HostDriver {
  readonly calls: string[] = [];
  readonly userData = new Map<string, string | undefined>();
  async launch(inst: Ec2Instance, userData: string | undefined): Promise<void> {
    this.calls.push(`launch ${inst.instanceId}`);
    this.userData.set(inst.instanceId, userData);
  }
  async stop(inst: Ec2Instance): Promise<void> {
    this.calls.push(`stop ${inst.instanceId}`);
  }
  async start(inst: Ec2Instance): Promise<void> {
    this.calls.push(`start ${inst.instanceId}`);
  }
  async terminate(inst: Ec2Instance): Promise<void> {
    this.calls.push(`terminate ${inst.instanceId}`);
  }
}

export const hex17 = (n: number): string => `i-0${n.toString(16).padStart(16, '0')}`;

export function makeEc2(driver: HostDriver, maxLive = 10): Ec2Service {
  return new Ec2Service({
    driver,
    allocate: (index) => ({ index, instanceId: hex17(index + 1), privateIp: `192.168.9.${10 + index}`, hostname: `ip-192-168-9-${10 + index}.ec2.internal`, ns: `t-h${index}` }),
    availabilityZones: ['us-east-1a', 'us-east-1b'],
    maxLive,
    maxIndex: 50,
  });
}

export const workerGroup = (over: Partial<GroupSpec> = {}): GroupSpec => ({
  name: 'lab-WorkerGroup-ABC',
  minSize: 0,
  maxSize: 5,
  desiredCapacity: 2,
  userData: '#!/bin/bash\necho worker\n',
  launchTemplate: { id: 'lt-0123', name: 'WorkerLaunchTemplate', version: '1' },
  tags: [
    { key: 'ec2-swarm:cluster', value: 'lab', propagateAtLaunch: true },
    { key: 'ec2-swarm:role', value: 'worker', propagateAtLaunch: true },
  ],
  terminationHook: { name: 'ec2-swarm-drain', heartbeatTimeout: 600, defaultResult: 'CONTINUE' },
  availabilityZones: ['us-east-1a', 'us-east-1b'],
  ...over,
});

export async function startQueryCloud(ec2: Ec2Service, asg: AutoScalingService): Promise<LabCloud> {
  const roleOf = (id: string): 'manager' | 'worker' | undefined => {
    const r = ec2.get(id)?.tags['ec2-swarm:role'];
    return r === 'manager' || r === 'worker' ? r : undefined;
  };
  return startLabCloud({
    region: 'us-east-1',
    instances: () => ec2.list().filter((i) => i.state !== 'terminated').map((i) => ({ instanceId: i.instanceId, privateIp: i.privateIp, hostname: i.hostname, tags: i.tags })),
    executor: async () => ({ exitCode: 0, stdout: '', stderr: '', timedOut: false }),
    queryApi: createQueryApi({ ec2, autoscaling: asg, region: 'us-east-1', accountId: '123456789012', clusterName: 'lab', roleOf }),
  });
}
