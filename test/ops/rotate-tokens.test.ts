/**
 * `rotateTokens` through the real SSM runner against a mocked SSM API: which manager it asks (the leader first), what
 * the SSM command carries (the node script's name, never a token), and what each answer means (exit codes).
 * Swarm states are the query script's real output on a lab of 3 managers + 1 worker (test/fixtures/docker).
 */
import { SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { SwarmError } from '../../lib/errors';
import { NO_ROTATE_MAGIC, rotateTokens } from '../../lib/ops/rotate-tokens';
import { fixture, isQuery, queryStdout } from './swarm/harness';
import { mockCluster, type Answer } from './support/mock-ssm-cluster';

const ssm = mockClient(SSMClient);
beforeEach(() => ssm.reset());

// In the fixtures: the leader, the two other managers, the worker.
const LEADER = 'i-0050c0c1c12a5c0c6';
const M2 = 'i-04e395099a1a7c469';
const M3 = 'i-0bc79e796dea7c554';
const MANAGERS = [M2, LEADER, M3];
const TOKEN_SHAPE = /S[W]MTKN-\d-/;
const ROTATED: Answer = { exitCode: 0, stderr: '2026-11-30T15:00:00Z ec2-swarm: worker join token rotated; /ec2-swarm/demo/worker-token holds the new one\n' };

const isRotate = (script: string) => script.includes('manager.sh --rotate-tokens');

async function caught(p: Promise<unknown>): Promise<SwarmError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    return e as SwarmError;
  }
  throw new Error('expected a SwarmError');
}

describe('rotateTokens', () => {
  test('runs the node script on the leader; the SSM command names the script and carries no token; done means observed', async () => {
    const c = mockCluster(ssm, MANAGERS, (script) => (isQuery(script) ? { exitCode: 0, stdout: queryStdout(fixture('query-ha-3-managers.txt')) } : isRotate(script) ? ROTATED : { exitCode: 99 }));

    const r = await rotateTokens(c.conn, { timeoutSeconds: 90 });

    expect(r).toEqual({
      rotated: ['worker', 'manager'],
      instanceId: LEADER,
      leader: true,
      parameters: ['/ec2-swarm/demo/worker-token', '/ec2-swarm/demo/manager-token'],
      managers: { managers: 3, reachable: 3, quorum: 2, tolerates: 1, hasQuorum: true, leader: 'ip-192-168-241-10.ec2.internal' },
    });
    const rotate = c.sent.filter((s) => isRotate(s.commands.join('\n')));
    expect(rotate.map((s) => s.instanceId)).toEqual([LEADER]);
    expect(ssm).toHaveReceivedCommandWith(SendCommandCommand, { InstanceIds: [LEADER], DocumentName: 'AWS-RunShellScript', Parameters: { commands: [expect.stringContaining('bash /opt/ec2-swarm/manager.sh --rotate-tokens')], executionTimeout: ['90'] } });
    // Nothing token-shaped and no token parameter value in anything sent: the node reads and writes the tokens itself.
    for (const s of c.sent) expect(JSON.stringify(s.input)).not.toMatch(TOKEN_SHAPE);
    expect(JSON.stringify(rotate[0].input)).not.toMatch(/put-parameter|get-parameter|join-token/);
    expect(c.messages.join('\n')).toContain(`rotated both join tokens on ${LEADER}`);
  });

  test('a leader SSM cannot reach: the next reachable manager rotates (never the unreachable one)', async () => {
    const c = mockCluster(ssm, MANAGERS, (script, id) =>
      id === LEADER ? 'offline' : isQuery(script) ? { exitCode: 0, stdout: queryStdout(fixture('query-ha-manager-down.txt')) } : isRotate(script) ? ROTATED : { exitCode: 99 },
    );

    const r = await rotateTokens(c.conn);

    // In this state M2 is Down and unreachable; M3 is the reachable one.
    expect(r).toMatchObject({ instanceId: M3, leader: false, managers: { managers: 3, reachable: 2, tolerates: 0, hasQuorum: true } });
    expect(c.sent.filter((s) => isRotate(s.commands.join('\n'))).map((s) => s.instanceId)).toEqual([M3]);
  });

  test('the manager refuses (not a manager of the recorded swarm, a step failed) → cluster error (exit 1) with its reason', async () => {
    const c = mockCluster(ssm, MANAGERS, (script) =>
      isQuery(script)
        ? { exitCode: 0, stdout: queryStdout(fixture('query-ha-3-managers.txt')) }
        : { exitCode: 1, stderr: "2026-11-30T15:00:00Z ec2-swarm: ERROR: this node does not manage the cluster's swarm abc\n" },
    );

    const e = await caught(rotateTokens(c.conn));

    expect(e).toMatchObject({ code: 'ROTATE_FAILED', exitCode: 1 });
    expect(e.message).toContain(`rotate-tokens failed on ${LEADER} (exit 1)`);
    expect(e.message).toContain("does not manage the cluster's swarm abc");
    // An answer is the answer: no second manager is asked to rotate.
    expect(c.sent.filter((s) => isRotate(s.commands.join('\n')))).toHaveLength(1);
  });

  test('node scripts older than rotate-tokens → exit 1 naming what to do', async () => {
    const c = mockCluster(ssm, MANAGERS, (script) => (isQuery(script) ? { exitCode: 0, stdout: queryStdout(fixture('query-ha-3-managers.txt')) } : { exitCode: 4, stdout: `${NO_ROTATE_MAGIC}\n` }));
    const e = await caught(rotateTokens(c.conn));
    expect(e).toMatchObject({ code: 'ROTATE_UNSUPPORTED', exitCode: 1 });
    expect(e.message).toMatch(/predate rotate-tokens.*cdk deploy.*Nothing was changed/);
  });

  test('no quorum → refused with the reason (exit 1) before any rotation is sent', async () => {
    const lost = fixture('query-ha-manager-down.txt').replace(/\tready\tfalse(\t"192\.168\.241\.12"\t"[^"]+"\t)reachable/, '\tdown\tfalse$1unreachable');
    const c = mockCluster(ssm, MANAGERS, (script) => (isQuery(script) ? { exitCode: 0, stdout: queryStdout(lost) } : ROTATED));

    const e = await caught(rotateTokens(c.conn));

    expect(e).toMatchObject({ code: 'NO_QUORUM', exitCode: 1 });
    expect(e.message).toContain('1 of 3 managers are reachable and 2 are needed');
    expect(c.sent.filter((s) => isRotate(s.commands.join('\n')))).toHaveLength(0);
  });

  test('no manager answers → environment error (exit 3)', async () => {
    const c = mockCluster(ssm, MANAGERS, () => 'offline');
    const e = await caught(rotateTokens(c.conn));
    expect(e.exitCode).toBe(3);
    expect(c.sent.filter((s) => isRotate(s.commands.join('\n')))).toHaveLength(0);
  });

  test('a bad timeout is a usage error (exit 2) before anything is sent', async () => {
    const c = mockCluster(ssm, MANAGERS, () => ROTATED);
    expect(await caught(rotateTokens(c.conn, { timeoutSeconds: 0 }))).toMatchObject({ exitCode: 2 });
    expect(c.sent).toHaveLength(0);
  });
});
