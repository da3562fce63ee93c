import { MANAGER_LEAVE_SCRIPT, teardown } from '../../lib/ops/teardown';
import { renderTeardown } from '../../lib/ops/render';
import { FakeRunner, environmentError, makeCtx } from './swarm/harness';

const W1 = 'aaaaaaaaaaaaaaaaaaaaaaaa1';
const W2 = 'aaaaaaaaaaaaaaaaaaaaaaaa2';

/** A cloud stand-in that records whether the parameters were deleted. */
function cloud(workers: string[] = []) {
  const calls = { deleted: 0 };
  return {
    calls,
    api: {
      listWorkerInstanceIds: async () => workers,
      deleteRuntimeParameters: async () => {
        calls.deleted++;
        return ['/ec2-swarm/demo/worker-token'];
      },
    },
  };
}

describe('teardown', () => {
  test("a manager stops its reconciler before it leaves (a pass still running would republish the deleted manager-addresses)", () => {
    const stop = MANAGER_LEAVE_SCRIPT.indexOf('/opt/ec2-swarm/reconcile.sh --stop');
    expect(stop).toBeGreaterThan(-1);
    expect(stop).toBeLessThan(MANAGER_LEAVE_SCRIPT.indexOf('docker swarm leave --force'));
  });

  test('a live cluster: stacks and services, drain, workers leave, nodes removed, manager leaves, parameters deleted', async () => {
    const runner = new FakeRunner((script, id) => {
      if (script.includes('docker stack rm')) return { stdout: 'DONE stack demo\nDONE service loose\nTASKS-LEFT 0\n' };
      if (script.includes('.Swarm.NodeID')) return { stdout: `NODE ${id === 'i-w1' ? W1 : W2} active\n` };
      if (script.includes('--availability drain')) return { stdout: `DONE drained ${W1}\nDONE drained ${W2}\n` };
      if (script.includes('docker node rm')) return { stdout: `DONE removed node ${W1}\nDONE removed node ${W2}\n` };
      if (script.includes('docker swarm leave')) return { stdout: 'LEFT\n' };
      return new Error(`unexpected script`);
    });
    const c = cloud(['i-w1', 'i-w2']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }));
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
      'deleted parameters /ec2-swarm/demo/worker-token',
    ]);
    expect(r).toMatchObject({ complete: true, skipped: [], left: [] });
    // The leave ran ON the workers, and the node removal got exactly the ids they reported.
    const leave = runner.calls.find((c) => c.script.includes('docker swarm leave > /dev/null'));
    expect(leave?.instanceIds).toEqual(['i-w1', 'i-w2']);
    const rm = runner.calls.find((c) => c.script.includes('docker node rm'));
    expect(rm?.script).toContain(`'${W1}' '${W2}'`);
    expect(c.calls.deleted).toBe(1);
  });

  test('run twice: nothing left, said plainly ("not in a swarm", never "inactive false"), complete', async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE inactive false\n' }));
    const r = await teardown(makeCtx(runner, { cloud: { deleteRuntimeParameters: async () => [] } }));
    expect(r).toMatchObject({ complete: true, done: [], left: [] });
    expect(r.skipped).toEqual(['stacks and services: manager i-0manager is not in a swarm', 'workers: none running', 'parameters under /ec2-swarm/demo: none left']);
    expect(renderTeardown(r)).not.toMatch(/inactive|false/);
  });

  test("the manager's dockerd is dead: NOT done, exit-3 outcome, workers keep their membership, parameters kept", async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE no-docker\n' }));
    const c = cloud(['i-w1']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }));
    expect(r).toMatchObject({ complete: false, outcome: 'unreachable' });
    expect(r.left[0]).toBe('manager i-0manager: docker is not answering; its swarm, stacks and services were not touched');
    expect(r.left).toContain('parameters under /ec2-swarm/demo: kept for a retry');
    expect(runner.calls.filter((x) => x.instanceIds.includes('i-w1'))).toHaveLength(0);
    expect(c.calls.deleted).toBe(0);
    expect(renderTeardown(r)).toMatch(/teardown NOT complete/);
  });

  test('manager unreachable, --force: workers still leave and the parameters go, but it is still not complete', async () => {
    const runner = new FakeRunner((script, id) => {
      if (id === 'i-0manager') return environmentError('SSM agent on i-0manager never came Online (waited 120s)');
      if (script.includes('.Swarm.NodeID')) return { stdout: `NODE ${W1} active\n` };
      return { stdout: 'LEFT\n' };
    });
    const c = cloud(['i-w1']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }), { force: true });
    expect(r).toMatchObject({ complete: false, outcome: 'unreachable' });
    expect(r.done).toEqual(['worker i-w1 left the swarm', 'deleted parameters /ec2-swarm/demo/worker-token']);
    expect(r.left[0]).toMatch(/^manager i-0manager: unreachable \(SSM agent on i-0manager never came Online/);
    expect(r.skipped).toContain('--force: going on with the workers and the parameters although the manager is not done');
    expect(runner.calls.filter((x) => x.instanceIds.includes('i-0manager'))).toHaveLength(1);
  });

  test('manager unreachable without --force: nothing else is touched', async () => {
    const runner = new FakeRunner(() => environmentError('no route'));
    const c = cloud(['i-w1']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }));
    expect(r).toMatchObject({ complete: false, outcome: 'unreachable', done: [] });
    expect(runner.calls).toHaveLength(1);
    expect(c.calls.deleted).toBe(0);
  });

  test('a stack network still in use when the wait ends is reported as left, and the parameters are kept', async () => {
    const runner = new FakeRunner((script) => {
      if (script.includes('docker stack rm')) return { stdout: 'DONE stack broken\nLEFT network broken_default\nTASKS-LEFT 0\n' };
      return { stdout: '' };
    });
    const c = cloud();
    const r = await teardown(makeCtx(runner, { cloud: c.api }), { taskWaitSeconds: 5 });
    expect(r).toMatchObject({ complete: false, outcome: 'incomplete' });
    expect(r.left).toContain('stack networks still in use after 5s: broken_default');
    expect(c.calls.deleted).toBe(0);
  });

  test('stacks are found by their label on services, networks, configs and secrets (a failed deploy leaves only a network)', async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE inactive false\n' }));
    await teardown(makeCtx(runner));
    const s = runner.calls[0].script;
    expect(s).toContain('for kind in service config secret; do docker "$kind" ls -q --filter label=com.docker.stack.namespace | xargs -r docker "$kind" inspect');
    expect(s).toContain('docker network ls -q --filter label=com.docker.stack.namespace | xargs -r docker network inspect');
    expect(s).toContain('docker network ls -q --filter label=com.docker.stack.namespace | xargs -r docker network rm');
  });

  test('300 services: one summary line, not 300', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `s${i}`);
    const runner = new FakeRunner((script) => {
      if (script.includes('docker stack rm')) return { stdout: `${names.map((n) => `DONE service ${n}`).join('\n')}\nTASKS-LEFT 0\n` };
      return { stdout: 'LEFT\n' };
    });
    const r = await teardown(makeCtx(runner));
    expect(r.done[0]).toBe('removed services (300): s0, s1, s2, s3, s4, s5, s6, s7 and 292 more');
    expect(r.done.filter((d) => d.startsWith('removed service'))).toHaveLength(1);
  });

  test('a worker that already left is skipped, the others still leave', async () => {
    const runner = new FakeRunner((script, id) => {
      if (script.includes('docker stack rm')) return { stdout: 'TASKS-LEFT 0\n' };
      if (script.includes('.Swarm.NodeID')) return { stdout: id === 'i-w1' ? 'NODE  inactive\n' : `NODE ${W2} active\n` };
      if (script.includes('docker swarm leave')) return { stdout: 'LEFT\n' };
      return { stdout: '' };
    });
    const r = await teardown(makeCtx(runner, { cloud: cloud(['i-w1', 'i-w2']).api }));
    expect(r.skipped).toContain('worker i-w1: not in a swarm');
    expect(r.done).toContain('worker i-w2 left the swarm');
    expect(r.skipped).toContain('stacks and services: none left');
    expect(r.complete).toBe(true);
  });
});
