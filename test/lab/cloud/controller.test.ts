/**
 * The lab controller's policy (what the construct's IAM intends) and labUp's option checks. No root needed:
 * the end-to-end proof is test/e2e/formation.e2e.test.ts.
 */
import { existsSync } from 'node:fs';
import { SwarmError } from '../../../lib/errors';
import { ControllerInstance, instanceIdFor, labAuthorizer } from '../../../lib/lab/cloud/controller';
import { labUp } from '../../../lib/lab/lab';
import { SsmServiceError } from '../../../lib/lab/ssm/errors';

const MANAGER: ControllerInstance = { instanceId: 'i-0aaaaaaaaaaaaaaa0', privateIp: '192.168.240.10', role: 'manager', ns: 'e2s-h0', index: 0 };
const WORKER: ControllerInstance = { instanceId: 'i-0aaaaaaaaaaaaaaa1', privateIp: '192.168.240.11', role: 'worker', ns: 'e2s-h1', index: 1 };
const authorize = labAuthorizer('lab', [MANAGER, WORKER], 'us-east-1');
const viaGateway = (i: ControllerInstance) => ({ via: 'unix' as const, sourceIp: i.privateIp, instanceId: i.instanceId });

function denied(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SsmServiceError);
    expect((e as SsmServiceError).type).toBe('AccessDeniedException');
    return (e as Error).message;
  }
  throw new Error('expected AccessDeniedException');
}

describe('labAuthorizer: the IAM intent of decision 2', () => {
  test('the manager writes and reads under /ec2-swarm/<cluster>/ only', () => {
    expect(() => authorize(viaGateway(MANAGER), 'PutParameter', { Name: '/ec2-swarm/lab/worker-token' })).not.toThrow();
    expect(() => authorize(viaGateway(MANAGER), 'GetParameter', { Name: '/ec2-swarm/lab/manager-token' })).not.toThrow();
    expect(denied(() => authorize(viaGateway(MANAGER), 'PutParameter', { Name: '/ec2-swarm/other/worker-token' }))).toMatch(
      /assumed-role\/ec2-swarm-lab-manager\/i-0aaaaaaaaaaaaaaa0 is not authorized to perform: ssm:PutParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter\/ec2-swarm\/other\/worker-token/,
    );
    // A prefix match is by path segment: /ec2-swarm/lab-2 is another cluster.
    denied(() => authorize(viaGateway(MANAGER), 'PutParameter', { Name: '/ec2-swarm/lab-2/x' }));
    denied(() => authorize(viaGateway(MANAGER), 'SendCommand', { InstanceIds: [WORKER.instanceId] }));
  });

  test('a worker reads the worker token and the manager address, nothing else, and writes nothing', () => {
    expect(() => authorize(viaGateway(WORKER), 'GetParameter', { Name: '/ec2-swarm/lab/worker-token', WithDecryption: true })).not.toThrow();
    expect(() => authorize(viaGateway(WORKER), 'GetParameters', { Names: ['/ec2-swarm/lab/worker-token', '/ec2-swarm/lab/manager-addresses'] })).not.toThrow();
    denied(() => authorize(viaGateway(WORKER), 'GetParameter', { Name: '/ec2-swarm/lab/manager-token' }));
    denied(() => authorize(viaGateway(WORKER), 'GetParameters', { Names: ['/ec2-swarm/lab/worker-token', '/ec2-swarm/lab/manager-token'] }));
    denied(() => authorize(viaGateway(WORKER), 'GetParametersByPath', { Path: '/ec2-swarm/lab' }));
    denied(() => authorize(viaGateway(WORKER), 'PutParameter', { Name: '/ec2-swarm/lab/manager-addresses' }));
    denied(() => authorize(viaGateway(WORKER), 'DeleteParameter', { Name: '/ec2-swarm/lab/worker-token' }));
  });

  test('an address that is no lab instance gets nothing; the operator on 127.0.0.1 gets everything', () => {
    denied(() => authorize({ via: 'unix', sourceIp: '192.168.240.99' }, 'GetParameter', { Name: '/ec2-swarm/lab/manager-addresses' }));
    expect(() => authorize({ via: 'tcp', sourceIp: '127.0.0.1' }, 'GetParameter', { Name: '/ec2-swarm/lab/manager-token' })).not.toThrow();
    expect(() => authorize({ via: 'tcp', sourceIp: '127.0.0.1' }, 'SendCommand', {})).not.toThrow();
  });
});

test('instance ids look like EC2\'s and are stable per lab dir, prefix and index', () => {
  const a = instanceIdFor({ labDir: '/var/lib/ec2-swarm-lab', prefix: 'e2s' }, 0);
  expect(a).toMatch(/^i-0[0-9a-f]{16}$/);
  expect(instanceIdFor({ labDir: '/var/lib/ec2-swarm-lab', prefix: 'e2s' }, 0)).toBe(a);
  expect(instanceIdFor({ labDir: '/var/lib/ec2-swarm-lab', prefix: 'e2s' }, 1)).not.toBe(a);
  expect(instanceIdFor({ labDir: '/var/lib/ec2-swarm-lab', prefix: 'e2t' }, 0)).not.toBe(a);
});

describe('labUp refuses bad options before touching anything (fault user, naming the field)', () => {
  const dir = '/var/lib/ec2-swarm-unit-never';
  test.each([
    [{ workers: 21 }, /workers/],
    [{ workers: -1 }, /workers/],
    [{ workers: 1.5 }, /workers/],
    [{ managers: 2 }, /managers/],
    [{ managers: 9 }, /managers/],
    [{ timeoutSeconds: 0 }, /timeoutSeconds/],
    [{ workerHeadStartSeconds: -2 }, /workerHeadStartSeconds/],
    [{ prefix: 'Bad-Prefix' }, /prefix/],
    [{ labDir: '/tmp/lab' }, /labDir/],
  ])('%j', async (opts, field) => {
    const e = await labUp({ labDir: dir, ...opts }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SwarmError);
    expect(e).toMatchObject({ fault: 'user', code: 'LAB_OPTIONS_INVALID' });
    expect((e as Error).message).toMatch(field);
    expect(existsSync(dir)).toBe(false);
  });
});
