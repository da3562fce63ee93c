/**
 * A cluster behind a mocked SSM API (aws-sdk-client-mock): the managers are found by tag, each command is answered
 * by a handler given the script and the instance, and the real SsmRunner and AwsCloudApi run on a fake clock, so
 * ops code runs unchanged and fast.
 */
import { CancelCommandCommand, DescribeInstanceInformationCommand, GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { AwsCloudApi } from '../../../lib/ops/cloud-api';
import type { Connection } from '../../../lib/ops/connect';
import { SsmRunner } from '../../../lib/ops/ssm-runner';
import type { ClusterInfo, Reporter } from '../../../lib/ops/types';

/** 'offline': the agent is ConnectionLost; 'pending': SSM says Online but the agent never picks a command up (a stopped instance SSM has not noticed yet). */
export type Answer = { exitCode: number; stdout?: string; stderr?: string } | 'offline' | 'pending';

export interface SentCommand {
  readonly instanceId: string;
  readonly commands: readonly string[];
  readonly input: Record<string, unknown>;
}

export interface MockCluster {
  readonly conn: Connection;
  /** Every SendCommand, in order, with its full input (to assert what left the machine). */
  readonly sent: SentCommand[];
  readonly messages: string[];
  /** Every CancelCommand: command id / instance id. */
  readonly cancelled: string[];
  /** The fake clock (ms); sleeping advances it. */
  readonly clock: { t: number };
}

export const CLUSTER: ClusterInfo = { name: 'demo', region: 'eu-west-1', managerInstanceIds: [], parameterPrefix: '/ec2-swarm/demo', managerGroupName: 'ec2-swarm-demo-managers' };

/**
 * `managers`: instance ids DescribeInstanceInformation lists (tag filters), Online unless the handler says
 * 'offline' for them. `answer(script, instanceId)` answers each command.
 */
export function mockCluster(ssm: AwsClientStub<SSMClient>, managers: readonly string[], answer: (script: string, instanceId: string) => Answer): MockCluster {
  const sent: SentCommand[] = [];
  const cancelled: string[] = [];
  const messages: string[] = [];
  const results = new Map<string, Answer>();
  const offline = (id: string) => answer('', id) === 'offline';
  ssm.on(DescribeInstanceInformationCommand).callsFake((input: { Filters?: { Key: string; Values: string[] }[] }) => {
    const byId = input.Filters?.find((f) => f.Key === 'InstanceIds')?.Values;
    const ids = byId ?? [...managers];
    return { InstanceInformationList: ids.map((InstanceId) => ({ InstanceId, PingStatus: offline(InstanceId) ? 'ConnectionLost' : 'Online' })) };
  });
  ssm.on(SendCommandCommand).callsFake((input: { InstanceIds: string[]; Parameters: { commands: string[] } }) => {
    const id = `cmd-${sent.length + 1}`;
    for (const instanceId of input.InstanceIds) {
      sent.push({ instanceId, commands: input.Parameters.commands, input: input as unknown as Record<string, unknown> });
      results.set(`${id}/${instanceId}`, answer(input.Parameters.commands.join('\n'), instanceId));
    }
    return { Command: { CommandId: id } };
  });
  ssm.on(GetCommandInvocationCommand).callsFake((input: { CommandId: string; InstanceId: string }) => {
    const a = results.get(`${input.CommandId}/${input.InstanceId}`);
    if (cancelled.includes(`${input.CommandId}/${input.InstanceId}`)) return { Status: 'Cancelled', StatusDetails: 'Cancelled', ResponseCode: -1 };
    if (a === 'pending') return { Status: 'Pending', StatusDetails: 'Pending', ResponseCode: -1 };
    if (!a || a === 'offline') return { Status: 'Failed', StatusDetails: 'Undeliverable' };
    return { Status: a.exitCode === 0 ? 'Success' : 'Failed', ResponseCode: a.exitCode, StandardOutputContent: a.stdout ?? '', StandardErrorContent: a.stderr ?? '' };
  });

  ssm.on(CancelCommandCommand).callsFake((input: { CommandId: string; InstanceIds?: string[] }) => {
    for (const id of input.InstanceIds ?? []) cancelled.push(`${input.CommandId}/${id}`);
    return {};
  });

  const clock = { t: 1_000_000 };
  const now = () => clock.t;
  const sleep = async (ms: number) => {
    clock.t += ms;
  };
  const reporter: Reporter = { info: (m) => messages.push(m), warn: (m) => messages.push(m), progress: () => undefined, done: () => undefined };
  const client = new SSMClient({ region: CLUSTER.region });
  const runner = new SsmRunner({ client, reporter, now, sleep, agentOnlineTimeoutSeconds: 30 });
  const cloud = new AwsCloudApi({ cluster: CLUSTER, ssm: () => client });
  const conn: Connection = { target: 'aws', cluster: CLUSTER, runner, cloud, reporter, now, sleep, close: () => client.destroy() };
  return { conn, sent, messages, cancelled, clock };
}
