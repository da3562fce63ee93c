import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  InvocationDoesNotExist,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { SwarmError, exitCodeOf } from '../../../lib/errors';
import { AGENT_RECHECK_MS, MAX_INSTANCES_PER_COMMAND, SsmRunner, type SsmRunnerOptions } from '../../../lib/ops/ssm-runner';
import type { Reporter } from '../../../lib/ops/types';

const ssm = mockClient(SSMClient);
const MANAGER = 'i-0123456789abcdef0';

/** A fake clock: sleeping advances time instantly, so bounded waits finish in microseconds. */
function fakeClock() {
  const clock = { t: 1_000_000, slept: [] as number[] };
  return {
    clock,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.slept.push(ms);
      clock.t += ms;
    },
  };
}

function runner(extra: Partial<SsmRunnerOptions> = {}) {
  const { clock, now, sleep } = fakeClock();
  const r = new SsmRunner({ client: () => new SSMClient({ region: 'eu-west-1' }), now, sleep, ...extra });
  return { r, clock };
}

function online(...ids: string[]) {
  return { InstanceInformationList: ids.map((InstanceId) => ({ InstanceId, PingStatus: 'Online' as const })) };
}

const notYet = () => new InvocationDoesNotExist({ message: 'Invocation does not exist', $metadata: {} });

async function caught(p: Promise<unknown>): Promise<SwarmError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    return e as SwarmError;
  }
  throw new Error('expected a SwarmError');
}

beforeEach(() => {
  ssm.reset();
  ssm.on(DescribeInstanceInformationCommand).resolves(online(MANAGER));
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: 'cmd-1' } });
});

describe('SsmRunner: sending', () => {
  test('sends the script with AWS-RunShellScript and the execution timeout, and nothing else in Parameters', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'ok\n' });
    const { r } = runner();

    const [res] = await r.run([MANAGER], 'docker info', { timeoutSeconds: 90, label: 'swarm status' });

    expect(res).toEqual({ instanceId: MANAGER, exitCode: 0, stdout: 'ok\n', stderr: '' });
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, {
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [MANAGER],
      Parameters: { commands: ['docker info'], executionTimeout: ['90'] },
    });
    expect(ssm).toHaveReceivedCommandWith(DescribeInstanceInformationCommand, { Filters: [{ Key: 'InstanceIds', Values: [MANAGER] }] });
  });

  test('more than 50 instances go out in batches of at most 50, and results come back in the order asked', async () => {
    const ids = Array.from({ length: 120 }, (_, i) => `i-${i.toString(16).padStart(17, '0')}`);
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => online(...input.Filters[0].Values));
    let n = 0;
    ssm.on(SendCommandCommand).callsFake(() => ({ Command: { CommandId: `cmd-${++n}` } }));
    ssm.on(GetCommandInvocationCommand).callsFake((input) => ({ Status: 'Success', ResponseCode: 0, StandardOutputContent: input.InstanceId }));
    const { r } = runner();

    const results = await r.run(ids, 'true');

    const sends = ssm.commandCalls(SendCommandCommand);
    expect(sends.map((c) => c.args[0].input.InstanceIds!.length)).toEqual([50, 50, 20]);
    expect(sends.every((c) => c.args[0].input.InstanceIds!.length <= MAX_INSTANCES_PER_COMMAND)).toBe(true);
    expect(new Set(sends.flatMap((c) => c.args[0].input.InstanceIds))).toEqual(new Set(ids));
    for (const c of ssm.commandCalls(DescribeInstanceInformationCommand)) expect(c.args[0].input.Filters![0].Values!.length).toBeLessThanOrEqual(50);
    expect(results.map((x) => x.stdout)).toEqual(ids);
  });

  test('the agent check runs once per instance, not before every command', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
    const { r } = runner();
    await r.run([MANAGER], 'true');
    await r.run([MANAGER], 'true');
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 1);
    expect(ssm).toHaveReceivedCommandTimes(SendCommandCommand, 2);
  });

  test('the SSM client is built on first use only', async () => {
    const factory = jest.fn(() => new SSMClient({ region: 'eu-west-1' }));
    const { r } = runner({ client: factory });
    expect(factory).not.toHaveBeenCalled();
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
    await r.run([MANAGER], 'true');
    await r.run([MANAGER], 'true');
    expect(factory).toHaveBeenCalledTimes(1);
  });
});

describe('SsmRunner: waiting for the result', () => {
  test('InvocationDoesNotExist right after SendCommand is retried, then Success', async () => {
    ssm.on(GetCommandInvocationCommand).rejectsOnce(notYet()).rejectsOnce(notYet()).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'done' });
    const { r } = runner();
    const [res] = await r.run([MANAGER], 'true');
    expect(res.stdout).toBe('done');
    expect(ssm).toHaveReceivedCommandTimes(GetCommandInvocationCommand, 3);
  });

  test('InvocationDoesNotExist that never ends is an environment error, not an endless wait', async () => {
    ssm.on(GetCommandInvocationCommand).rejects(notYet());
    const { r } = runner({ invocationVisibleTimeoutSeconds: 30 });
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.code).toBe('SSM_INVOCATION_MISSING');
    expect(exitCodeOf(err)).toBe(3);
  });

  test('Pending, InProgress and Delayed keep waiting, then Success', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .resolvesOnce({ Status: 'Pending' })
      .resolvesOnce({ Status: 'Delayed', StatusDetails: 'Delayed' })
      .resolvesOnce({ Status: 'InProgress' })
      .resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'late but fine' });
    const { r, clock } = runner();
    const [res] = await r.run([MANAGER], 'true');
    expect(res.stdout).toBe('late but fine');
    expect(ssm).toHaveReceivedCommandTimes(GetCommandInvocationCommand, 4);
    // The first poll 100 ms after SendCommand, then ×1.5.
    expect(clock.slept).toEqual([100, 150, 225, 338]);
  });

  test('no poll before 100 ms; the back-off is capped at 1 s, so a 10 s command costs 14 polls', async () => {
    const { r, clock } = runner();
    const sentAt: number[] = [];
    const polledAt: number[] = [];
    ssm.on(SendCommandCommand).callsFake(() => {
      sentAt.push(clock.t);
      return { Command: { CommandId: 'cmd-1' } };
    });
    ssm.on(GetCommandInvocationCommand).callsFake(() => {
      polledAt.push(clock.t - sentAt[0]);
      return clock.t - sentAt[0] >= 10_000 ? { Status: 'Success', ResponseCode: 0 } : { Status: 'InProgress' };
    });
    await r.run([MANAGER], 'sleep 10');
    expect(polledAt[0]).toBe(100);
    expect(Math.max(...clock.slept)).toBe(1000);
    expect(polledAt).toHaveLength(14);
    // Done within a second of finishing: never more than the cap late.
    expect(polledAt[polledAt.length - 1] - 10_000).toBeLessThan(1000);
  });

  test('a script that waits on the host until a known moment: polled quickly again from then, not up to 1 s late', async () => {
    const { r, clock } = runner();
    let sentAt = 0;
    const polledAt: number[] = [];
    ssm.on(SendCommandCommand).callsFake(() => {
      sentAt = clock.t;
      return { Command: { CommandId: 'cmd-1' } };
    });
    // The script answers 5.3 s after it was sent (its wake-up at 5 s, then the snapshot).
    ssm.on(GetCommandInvocationCommand).callsFake(() => {
      polledAt.push(clock.t - sentAt);
      return clock.t - sentAt >= 5300 ? { Status: 'Success', ResponseCode: 0 } : { Status: 'InProgress' };
    });
    await r.run([MANAGER], 'long poll', { resultExpectedAfterMs: 5000 });
    expect(polledAt).toContain(5000);
    // Every 100 ms from 5000 while the answer is due: seen as it answered (without the hint: at 6081, 781 ms late).
    expect(polledAt.slice(-4)).toEqual([5000, 5100, 5200, 5300]);
    expect(polledAt).toHaveLength(12);
  });

  test('pollMaxMs: a short command is polled at most that far apart, and a command on many instances no faster than ten polls a second', async () => {
    const ids = ['i-0000000000000000a', 'i-0000000000000000b', 'i-0000000000000000c'];
    ssm.on(DescribeInstanceInformationCommand).resolves(online(MANAGER, ...ids));
    for (const [instances, cap] of [[[MANAGER], 250], [ids, 300]] as const) {
      const { r, clock } = runner();
      const sentAt = clock.t;
      ssm.on(GetCommandInvocationCommand).callsFake(() => (clock.t - sentAt >= 2000 ? { Status: 'Success', ResponseCode: 0 } : { Status: 'InProgress' }));
      await r.run(instances, 'docker swarm leave', { pollMaxMs: 250 });
      expect(clock.slept.slice(0, 3)).toEqual([100, 150, 225]);
      expect(Math.max(...clock.slept)).toBe(cap);
      // Seen within the cap of the end, where the default cap of 1 s would see it up to 1 s late.
      expect(clock.t - sentAt - 2000).toBeLessThan(cap);
    }
  });

  test('pollIntervalMs overrides the first pause and the cap', async () => {
    ssm.on(GetCommandInvocationCommand).resolvesOnce({ Status: 'InProgress' }).resolvesOnce({ Status: 'InProgress' }).resolves({ Status: 'Success', ResponseCode: 0 });
    const { r, clock } = runner({ pollIntervalMs: [500, 600] });
    await r.run([MANAGER], 'true');
    expect(clock.slept).toEqual([500, 600, 600]);
  });

  test('a throttled poll (after the SDK gave up retrying) just polls again', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    ssm.on(GetCommandInvocationCommand).rejectsOnce(throttled).resolves({ Status: 'Success', ResponseCode: 0, StandardOutputContent: 'x' });
    const { r } = runner();
    const [res] = await r.run([MANAGER], 'true');
    expect(res.stdout).toBe('x');
  });

  test('Failed with a non-zero exit code is a result with stdout and stderr: the caller decides', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'Failed',
      StatusDetails: 'Failed',
      ResponseCode: 17,
      StandardOutputContent: 'partial',
      StandardErrorContent: 'Error response from daemon: service web not found\n',
    });
    const { r } = runner();
    const [res] = await r.run([MANAGER], 'docker service inspect web');
    expect(res).toEqual({ instanceId: MANAGER, exitCode: 17, stdout: 'partial', stderr: 'Error response from daemon: service web not found\n' });
  });

  test('TimedOut is an environment error (exit 3) carrying the stderr tail', async () => {
    const stderr = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n');
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'TimedOut', StatusDetails: 'ExecutionTimedOut', ResponseCode: -1, StandardErrorContent: stderr });
    const { r } = runner();
    const err = await caught(r.run([MANAGER], 'sleep 999', { timeoutSeconds: 30, label: 'verify' }));
    expect(err.fault).toBe('environment');
    expect(err.exitCode).toBe(3);
    expect(err.code).toBe('SSM_COMMAND_TIMED_OUT');
    expect(err.message).toContain(`verify on ${MANAGER}`);
    expect(err.message).toContain('timed out after 30s');
    expect(err.message).toContain('line 39');
    expect(err.message).not.toContain('line 5\n'); // a tail, not the whole stderr
  });

  test.each([
    ['Cancelled', 'Cancelled', /was cancelled/],
    ['Failed', 'Undeliverable', /undeliverable/],
    ['Failed', 'Terminated', /terminated/],
    ['TimedOut', 'DeliveryTimedOut', /never picked up/],
  ])('%s/%s is an environment error explaining what happened', async (Status, StatusDetails, message) => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: Status as 'Failed', StatusDetails, ResponseCode: -1 });
    const { r } = runner();
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.exitCode).toBe(3);
    expect(err.message).toMatch(message);
  });

  test('a command that never finishes is cancelled and reported when its bound is up', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'InProgress' });
    ssm.on(CancelCommandCommand).resolves({});
    const { r, clock } = runner({ deliverySlackSeconds: 10 });
    const start = clock.t;
    const err = await caught(r.run([MANAGER], 'sleep infinity', { timeoutSeconds: 20 }));
    expect(err.code).toBe('SSM_WAIT_TIMEOUT');
    expect(err.exitCode).toBe(3);
    expect(clock.t - start).toBeLessThanOrEqual(30_000 + 5000);
    expect(ssm).toHaveReceivedCommandWith(CancelCommandCommand, { CommandId: 'cmd-1', InstanceIds: [MANAGER] });
  });

  test('a join token in stderr of a failed command is redacted in the error', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({
      Status: 'TimedOut',
      StatusDetails: 'ExecutionTimedOut',
      StandardErrorContent: 'oops SWMTKN-\x31-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx\n',
    });
    const { r } = runner();
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.message).not.toMatch(/SWMTKN-\x31-3pu6/);
    expect(err.message).toContain('SWMTKN-<redacted>');
  });
});

describe('SsmRunner: the SSM agent', () => {
  test('offline, then Online: waits, shows progress, then sends', async () => {
    ssm
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [] })
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'ConnectionLost' }] })
      .resolves(online(MANAGER));
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
    const progress: string[] = [];
    const reporter: Reporter = { info: () => {}, warn: () => {}, progress: (m) => progress.push(m), done: () => {} };
    const { r } = runner({ reporter });
    await r.run([MANAGER], 'true');
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 3);
    expect(ssm).toHaveReceivedCommandTimes(SendCommandCommand, 1);
    expect(progress[0]).toContain(`waiting for the SSM agent on 1 instance(s): ${MANAGER}`);
  });

  test('never Online within the bound: environment error naming the instance and what to check; nothing sent', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'ConnectionLost' }] });
    const { r, clock } = runner({ agentOnlineTimeoutSeconds: 60 });
    const start = clock.t;
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.code).toBe('SSM_AGENT_OFFLINE');
    expect(exitCodeOf(err)).toBe(3);
    expect(err.message).toContain(`SSM agent on ${MANAGER} is ConnectionLost after 60s`);
    expect(err.message).toContain('AmazonSSMManagedInstanceCore');
    expect(clock.t - start).toBe(60_000);
    expect(ssm).not.toHaveReceivedCommand(SendCommandCommand);
  });

  test('an instance SSM has never heard of is reported as not registered', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });
    const { r } = runner({ agentOnlineTimeoutSeconds: 10 });
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.message).toContain(`${MANAGER} is not registered with SSM after 10s`);
  });

  test('access denied is an environment error that says to check the credentials', async () => {
    ssm.on(DescribeInstanceInformationCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
    const { r } = runner();
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.exitCode).toBe(3);
    expect(err.message).toMatch(/IAM permissions/);
  });
});

describe('SsmRunner: the command time bound (deadlineAt) covers every wait', () => {
  test('the agent-online wait ends at the deadline, not after its own 300 s, and says which bound', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'ConnectionLost' }] });
    const { clock, now, sleep } = fakeClock();
    const r = new SsmRunner({ client: () => new SSMClient({ region: 'eu-west-1' }), now, sleep, deadlineAt: clock.t + 20_000, deadlineDescription: '--timeout 10s + 10s margin' });
    const start = clock.t;
    const err = await caught(r.run([MANAGER], 'true'));
    expect(err.code).toBe('SSM_AGENT_OFFLINE');
    expect(exitCodeOf(err)).toBe(3);
    expect(err.message).toMatch(/is ConnectionLost after 20s \(the command's time bound: --timeout 10s \+ 10s margin\)/);
    expect(clock.t - start).toBeLessThanOrEqual(20_000);
    expect(ssm).not.toHaveReceivedCommand(SendCommandCommand);
  });

  test('polling for a result ends at the deadline, cancels the command, and the execution timeout never reaches past it', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'InProgress' });
    const { clock, now, sleep } = fakeClock();
    const r = new SsmRunner({ client: () => new SSMClient({ region: 'eu-west-1' }), now, sleep, deadlineAt: clock.t + 30_000, deadlineDescription: '--timeout 20s + 10s margin' });
    const start = clock.t;
    const err = await caught(r.run([MANAGER], 'sleep 1000', { timeoutSeconds: 600, label: 'swarm state' }));
    expect(err).toMatchObject({ code: 'DEADLINE_EXCEEDED', fault: 'environment' });
    expect(err.message).toMatch(/swarm state on i-0123456789abcdef0 .*no answer within the command's time bound \(--timeout 20s \+ 10s margin\)/);
    expect(clock.t - start).toBeLessThanOrEqual(30_000);
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, { Parameters: { commands: ['sleep 1000'], executionTimeout: ['30'] } });
    expect(ssm).toHaveReceivedCommand(CancelCommandCommand);
  });

  test('a run asked for after the deadline sends nothing', async () => {
    const { clock, now, sleep } = fakeClock();
    const r = new SsmRunner({ client: () => new SSMClient({ region: 'eu-west-1' }), now, sleep, deadlineAt: clock.t - 1 });
    await expect(r.run([MANAGER], 'true')).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(ssm).not.toHaveReceivedCommand(SendCommandCommand);
    expect(ssm).not.toHaveReceivedCommand(DescribeInstanceInformationCommand);
  });
});

describe('SsmRunner: the delivery bound (another instance could run the command instead)', () => {
  test('a command the agent never picks up is cancelled at the bound: SSM_NOT_DELIVERED (exit 3); SSM\'s own delivery timeout backs it up', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Pending', StatusDetails: 'Pending' });
    ssm.on(CancelCommandCommand).resolves({});
    const { r, clock } = runner();
    const start = clock.t;
    const err = await caught(r.run([MANAGER], 'true', { label: 'swarm state', deliveryBoundSeconds: 10 }));
    expect(err.code).toBe('SSM_NOT_DELIVERED');
    expect(exitCodeOf(err)).toBe(3);
    expect(err.message).toBe(`swarm state on ${MANAGER}: the SSM agent did not start command cmd-1 within 10s (status Pending); the command was cancelled`);
    expect(clock.t - start).toBe(10_000);
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, { InstanceIds: [MANAGER], TimeoutSeconds: 30 });
    expect(ssm).toHaveReceivedCommandWith(CancelCommandCommand, { CommandId: 'cmd-1', InstanceIds: [MANAGER] });
  });

  test('a command the agent started is waited for past the bound, as any other', async () => {
    const { r, clock } = runner();
    const start = clock.t;
    let polls = 0;
    // Pending at first, started before the bound, done 30 s in.
    ssm.on(GetCommandInvocationCommand).callsFake(() =>
      ++polls === 1 ? { Status: 'Pending' } : clock.t - start < 30_000 ? { Status: 'InProgress' } : { Status: 'Success', ResponseCode: 0, StandardOutputContent: 'ok' },
    );
    const [res] = await r.run([MANAGER], 'sleep 30', { deliveryBoundSeconds: 2 });
    expect(res).toMatchObject({ exitCode: 0, stdout: 'ok' });
    expect(clock.t - start).toBeGreaterThanOrEqual(30_000);
    expect(ssm).not.toHaveReceivedCommand(CancelCommandCommand);
  });

  test('without a bound nothing changes: no TimeoutSeconds, a Pending command is waited for', async () => {
    let polls = 0;
    ssm.on(GetCommandInvocationCommand).callsFake(() => (++polls < 20 ? { Status: 'Pending' } : { Status: 'Success', ResponseCode: 0 }));
    const { r } = runner();
    await r.run([MANAGER], 'true');
    expect(ssm.commandCalls(SendCommandCommand)[0].args[0].input.TimeoutSeconds).toBeUndefined();
    expect(ssm).not.toHaveReceivedCommand(CancelCommandCommand);
  });

  test('an agent that is not Online fails at once, not after the agent wait; nothing is sent', async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [{ InstanceId: MANAGER, PingStatus: 'ConnectionLost' }] });
    const { r, clock } = runner({ agentOnlineTimeoutSeconds: 300, deadlineAt: 1_000_000 + 600_000, deadlineDescription: '--timeout 590s + 10s margin' });
    const start = clock.t;
    const err = await caught(r.run([MANAGER], 'true', { deliveryBoundSeconds: 10 }));
    expect(err.code).toBe('SSM_AGENT_OFFLINE');
    expect(err.message).toContain(`the SSM agent on ${MANAGER} is ConnectionLost (not waited for: another instance can run the command)`);
    expect(err.message).not.toContain('time bound');
    expect(clock.t - start).toBe(0);
    expect(ssm).not.toHaveReceivedCommand(SendCommandCommand);
  });

  test('an agent seen Online more than a few seconds ago is asked about again; a failed run is forgotten', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
    const { r, clock } = runner();
    await r.run([MANAGER], 'true', { deliveryBoundSeconds: 10 });
    await r.run([MANAGER], 'true', { deliveryBoundSeconds: 10 });
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 1);
    clock.t += AGENT_RECHECK_MS + 1;
    await r.run([MANAGER], 'true', { deliveryBoundSeconds: 10 });
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 2);
    // Unbounded runs keep trusting the sighting (the agent check runs once per instance).
    clock.t += AGENT_RECHECK_MS + 1;
    await r.run([MANAGER], 'true');
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 2);
    // A run that failed on the instance: the next run, bounded or not, asks again.
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Failed', StatusDetails: 'Undeliverable', ResponseCode: -1 });
    await caught(r.run([MANAGER], 'true'));
    ssm.on(GetCommandInvocationCommand).resolves({ Status: 'Success', ResponseCode: 0 });
    await r.run([MANAGER], 'true');
    expect(ssm).toHaveReceivedCommandTimes(DescribeInstanceInformationCommand, 3);
  });
});
