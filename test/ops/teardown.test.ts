import { teardown } from '../../lib/ops/teardown';
import { FakeRunner, environmentError, makeCtx } from './swarm/harness';

const W1 = 'aaaaaaaaaaaaaaaaaaaaaaaa1';
const W2 = 'aaaaaaaaaaaaaaaaaaaaaaaa2';

describe('teardown', () => {
  test('a live cluster: stacks and services, drain, workers leave, nodes removed, manager leaves, parameters deleted', async () => {
    const runner = new FakeRunner((script, id) => {
      if (script.includes('docker stack ls')) return { stdout: 'DONE removed stack demo\nDONE removed service loose\nTASKS-LEFT 0\n' };
      if (script.includes('.Swarm.NodeID')) return { stdout: `NODE ${id === 'i-w1' ? W1 : W2} active\n` };
      if (script.includes('--availability drain')) return { stdout: `DONE drained ${W1}\nDONE drained ${W2}\n` };
      if (script.includes('docker node rm')) return { stdout: `DONE removed node ${W1}\nDONE removed node ${W2}\n` };
      if (script.includes('docker swarm leave')) return { stdout: 'LEFT\n' };
      return new Error(`unexpected script`);
    });
    const deleted: string[][] = [];
    const ctx = makeCtx(runner, {
      cloud: { listWorkerInstanceIds: async () => ['i-w1', 'i-w2'], deleteRuntimeParameters: async () => { deleted.push(['x']); return ['/ec2-swarm/demo/worker-token', '/ec2-swarm/demo/manager-address']; } },
    });
    const r = await teardown(ctx);
    expect(r.done).toEqual([
      'removed stack demo',
      'removed service loose',
      `drained ${W1}`,
      `drained ${W2}`,
      'worker i-w1 left the swarm',
      'worker i-w2 left the swarm',
      `removed node ${W1}`,
      `removed node ${W2}`,
      'manager i-0manager left the swarm',
      'deleted parameters /ec2-swarm/demo/worker-token, /ec2-swarm/demo/manager-address',
    ]);
    expect(r.skipped).toEqual([]);
    // The leave ran ON the workers, and the node removal got exactly the ids they reported.
    const leave = runner.calls.find((c) => c.script.includes('docker swarm leave > /dev/null'));
    expect(leave?.instanceIds).toEqual(['i-w1', 'i-w2']);
    const rm = runner.calls.find((c) => c.script.includes('docker node rm'));
    expect(rm?.script).toContain(`'${W1}' '${W2}'`);
    expect(deleted).toHaveLength(1);
  });

  test('run twice: nothing left, every step skipped with a reason, no error', async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE inactive false\n' }));
    const r = await teardown(makeCtx(runner));
    expect(r.done).toEqual([]);
    expect(r.skipped).toEqual([
      'stacks and services: manager i-0manager is not a swarm manager (inactive false)',
      'workers: none running',
      'manager i-0manager: not part of a swarm',
      'parameters under /ec2-swarm/demo: none left',
    ]);
  });

  test('manager unreachable (half-deleted cluster): workers still leave, parameters still deleted', async () => {
    const runner = new FakeRunner((script, id) => {
      if (id === 'i-0manager') return environmentError('SSM agent on i-0manager never came Online (waited 120s)');
      if (script.includes('.Swarm.NodeID')) return { stdout: `NODE ${W1} active\n` };
      return { stdout: 'LEFT\n' };
    });
    const ctx = makeCtx(runner, { cloud: { listWorkerInstanceIds: async () => ['i-w1'], deleteRuntimeParameters: async () => ['/ec2-swarm/demo/worker-token'] } });
    const r = await teardown(ctx);
    expect(r.done).toEqual(['worker i-w1 left the swarm', 'deleted parameters /ec2-swarm/demo/worker-token']);
    expect(r.skipped[0]).toMatch(/^manager i-0manager: unreachable, skipped stacks, services, drain and leave \(SSM agent on i-0manager never came Online/);
    expect(runner.calls.filter((c) => c.instanceIds.includes('i-0manager'))).toHaveLength(1);
  });

  test('a worker that already left is skipped, the others still leave', async () => {
    const runner = new FakeRunner((script, id) => {
      if (script.includes('docker stack ls')) return { stdout: 'TASKS-LEFT 0\n' };
      if (script.includes('.Swarm.NodeID')) return { stdout: id === 'i-w1' ? ' inactive\nNODE  inactive\n' : `NODE ${W2} active\n` };
      if (script.includes('docker swarm leave')) return { stdout: 'LEFT\n' };
      return { stdout: '' };
    });
    const r = await teardown(makeCtx(runner, { cloud: { listWorkerInstanceIds: async () => ['i-w1', 'i-w2'] } }));
    expect(r.skipped).toContain('worker i-w1: not part of a swarm');
    expect(r.done).toContain('worker i-w2 left the swarm');
    expect(r.skipped).toContain('stacks and services: none left');
  });
});
