import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANAGER_LEAVE_SCRIPT, REMOVE_WORKLOAD_SCRIPT, WORKER_LEAVE_SCRIPT, teardown } from '../../lib/ops/teardown';
import { renderTeardown } from '../../lib/ops/render';
import { FakeRunner, environmentError, makeCtx } from './swarm/harness';

const W1 = 'aaaaaaaaaaaaaaaaaaaaaaaa1';
const W2 = 'aaaaaaaaaaaaaaaaaaaaaaaa2';
const isWorkload = (s: string): boolean => s.includes('docker stack rm');
const isWorkerLeave = (s: string): boolean => s.includes('docker swarm leave > /dev/null');
const isManagerLeave = (s: string): boolean => s.includes('docker swarm leave --force > /dev/null') && !isWorkerLeave(s);
const LEFT_OK = 'CONTAINERS-LEFT 0\nLEFT\n';

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

/** A healthy 1 + 2 cluster: the manager removes the workload and lists both workers, every leave is confirmed. */
function healthy(overrides: (script: string, id: string) => { stdout: string } | Error | undefined = () => undefined) {
  return new FakeRunner((script, id) => {
    const o = overrides(script, id);
    if (o) return o;
    if (isWorkload(script)) return { stdout: `DONE stack demo\nDONE service loose\nWORKER ${W1} ready i-w1\nWORKER ${W2} ready i-w2\n` };
    if (isWorkerLeave(script)) return { stdout: `NODE ${id === 'i-w1' ? W1 : W2}\n${LEFT_OK}` };
    if (isManagerLeave(script)) return { stdout: LEFT_OK };
    return new Error('unexpected script');
  });
}

describe('teardown', () => {
  test('a live cluster: three Run Commands in a row — workload on the manager, the workers leave, the manager leaves — then the parameters', async () => {
    const runner = healthy();
    const c = cloud(['i-w1', 'i-w2']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }));
    expect(r.done).toEqual([
      'removed stack demo',
      'removed service loose',
      'worker i-w1 left the swarm',
      'worker i-w2 left the swarm',
      'manager i-0manager left the swarm',
      'deleted parameters /ec2-swarm/demo/worker-token',
    ]);
    expect(r).toMatchObject({ complete: true, skipped: [], left: [] });
    expect(runner.calls.map((x) => x.instanceIds)).toEqual([['i-0manager'], ['i-w1', 'i-w2'], ['i-0manager']]);
    expect(isWorkerLeave(runner.calls[1].script)).toBe(true);
    expect(isManagerLeave(runner.calls[2].script)).toBe(true);
    // Each step waits on the one before: results polled every 0.25 s at most (decision 22), not every second.
    expect(runner.calls.map((x) => x.options?.pollMaxMs)).toEqual([250, 250, 250]);
    expect(c.calls.deleted).toBe(1);
  });

  test('several managers: the others and the one that did the work all leave, each in its own command, in parallel', async () => {
    const order: string[] = [];
    const runner = healthy((script, id) => {
      if (isManagerLeave(script)) order.push(id);
      return undefined;
    });
    let inFlight = 0;
    let maxInFlight = 0;
    const parallel = {
      calls: runner.calls,
      run: async (ids: readonly string[], s: string, o?: object) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((res) => setTimeout(res, 5));
        try {
          return await runner.run(ids, s, o);
        } finally {
          inFlight--;
        }
      },
    };
    const ctx = makeCtx(parallel, { cloud: cloud(['i-w1', 'i-w2']).api });
    const r = await teardown({ ...ctx, cluster: { ...ctx.cluster, managerInstanceIds: ['i-m1', 'i-m2', 'i-m3'] } });
    expect(r.complete).toBe(true);
    expect(order.sort()).toEqual(['i-m1', 'i-m2', 'i-m3']);
    expect(maxInFlight).toBe(3);
    expect(r.done.filter((d) => d.startsWith('manager '))).toEqual(['manager i-m1 left the swarm', 'manager i-m2 left the swarm', 'manager i-m3 left the swarm']);
  });

  test('run twice: nothing left, said plainly ("not in a swarm", never "inactive false"), complete', async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE inactive false\n' }));
    const r = await teardown(makeCtx(runner, { cloud: { deleteRuntimeParameters: async () => [] } }));
    expect(r).toMatchObject({ complete: true, done: [], left: [] });
    expect(r.skipped).toEqual(['stacks and services: manager i-0manager is not in a swarm', 'workers: none running', 'parameters under /ec2-swarm/demo: none left']);
    // The manager is still asked once more, for its reconciler (stopped in every state).
    expect(runner.calls.map((x) => isManagerLeave(x.script))).toEqual([false, true]);
    expect(renderTeardown(r)).not.toMatch(/inactive|false/);
  });

  test("the manager's dockerd is dead: NOT done, exit-3 outcome, workers keep their membership, parameters kept", async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-STATE no-docker\n' }));
    const c = cloud(['i-w1']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }));
    expect(r).toMatchObject({ complete: false, outcome: 'unreachable' });
    expect(r.left[0]).toBe('manager i-0manager: docker is not answering; its swarm, stacks and services were not touched');
    expect(r.left).toContain('parameters under /ec2-swarm/demo: kept for a retry');
    expect(runner.calls).toHaveLength(1);
    expect(c.calls.deleted).toBe(0);
    expect(renderTeardown(r)).toMatch(/teardown NOT complete/);
  });

  test('manager unreachable, --force: workers still leave and the parameters go, the manager is not asked again, still not complete', async () => {
    const runner = new FakeRunner((_script, id) => {
      if (id === 'i-0manager') return environmentError('SSM agent on i-0manager never came Online (waited 120s)');
      return { stdout: `NODE ${W1}\n${LEFT_OK}` };
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

  test('a service still listed after its removal: reported as left, the workers are not touched, the parameters kept', async () => {
    const runner = healthy((script) => (isWorkload(script) ? { stdout: `DONE service a\nLEFT service stuck\nWORKER ${W1} ready i-w1\n` } : undefined));
    const c = cloud(['i-w1']);
    const r = await teardown(makeCtx(runner, { cloud: c.api }));
    expect(r).toMatchObject({ complete: false, outcome: 'incomplete' });
    expect(r.left).toContain('services still listed after removal: stuck');
    expect(runner.calls).toHaveLength(1);
    expect(c.calls.deleted).toBe(0);
  });

  test('a worker whose leave is not confirmed (task containers left, or still in a swarm): the managers keep the swarm, parameters kept', async () => {
    for (const out of [`NODE ${W1}\nCONTAINERS-LEFT 2\nLEFT\n`, `NODE ${W1}\nCONTAINERS-LEFT 0\nSTILL active\n`, `NODE ${W1}\n`]) {
      const runner = healthy((script) => (isWorkerLeave(script) ? { stdout: out } : undefined));
      const c = cloud(['i-w1']);
      const r = await teardown(makeCtx(runner, { cloud: c.api }));
      expect(r).toMatchObject({ complete: false, outcome: 'incomplete' });
      expect(r.left[0]).toMatch(/^worker i-w1: (left the swarm, but 2 task container\(s\) could not be removed|still in swarm state "active" after leaving|the leave was not confirmed)$/);
      expect(r.left).toContain('manager i-0manager: still holds the swarm (it leaves once the rest is done)');
      expect(runner.calls.some((x) => isManagerLeave(x.script))).toBe(false);
      expect(c.calls.deleted).toBe(0);
    }
  });

  test('a ready worker node that no online instance answered for is left (it was never asked to leave); a down one is not', async () => {
    const runner = healthy((script) => (isWorkload(script) ? { stdout: `WORKER ${W1} ready i-w1\nWORKER ${W2} ready i-w2\nWORKER bbbbbbbbbbbbbbbbbbbbbbbb3 down i-w3\n` } : undefined));
    const r = await teardown(makeCtx(runner, { cloud: cloud(['i-w1']).api }));
    expect(r).toMatchObject({ complete: false, outcome: 'incomplete' });
    expect(r.left[0]).toBe(`worker nodes no online worker instance answered for, still in the swarm: ${W2} (ready, i-w2)`);
    expect(r.done).toContain('worker i-w1 left the swarm');
    expect(runner.calls.some((x) => isManagerLeave(x.script))).toBe(false);
  });

  test('a stack rm that reports an error once its services are gone does not stop the teardown, and says so', async () => {
    const runner = healthy((script) => (isWorkload(script) ? { stdout: 'FAILED stack half\n' } : undefined));
    const r = await teardown(makeCtx(runner));
    expect(r.complete).toBe(true);
    expect(r.skipped).toContain('stacks half: docker stack rm reported an error; what it left goes with the swarm');
  });

  test('300 services: one summary line, not 300', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `s${i}`);
    const runner = healthy((script) => (isWorkload(script) ? { stdout: `${names.map((n) => `DONE service ${n}`).join('\n')}\n` } : undefined));
    const r = await teardown(makeCtx(runner));
    expect(r.done[0]).toBe('removed services (300): s0, s1, s2, s3, s4, s5, s6, s7 and 292 more');
    expect(r.done.filter((d) => d.startsWith('removed service'))).toHaveLength(1);
  });

  test('a worker that already left (the manager still lists its node as ready) is skipped, the others still leave', async () => {
    const runner = healthy((script, id) => (isWorkerLeave(script) && id === 'i-w1' ? { stdout: 'EC2SWARM-STATE inactive false\n' } : undefined));
    const r = await teardown(makeCtx(runner, { cloud: cloud(['i-w1', 'i-w2']).api }));
    expect(r.skipped).toContain('worker i-w1: not in a swarm');
    expect(r.done).toContain('worker i-w2 left the swarm');
    expect(r.complete).toBe(true);
  });
});

/**
 * The scripts themselves, run with bash against a docker stand-in that keeps a tiny swarm in files: what they print
 * is what the tests above feed the teardown.
 */
describe('teardown scripts (bash, docker stand-in)', () => {
  let dir: string;
  const DOCKER = `#!/bin/bash
d=$STUB
exec 9> "$d/lock"; flock 9 # the scripts run docker calls at once: one at a time here, the files are shared
echo "$*" >> "$d/calls"
[ -f "$d/fails-$1-$2" ] && { echo "docker $1 $2 failed" >&2; exit 1; }
case "$1 $2" in
  "info --format") if [[ "$3" == *NodeID* ]]; then echo "$(cat "$d/state") $(cat "$d/nodeid")"; elif [[ "$3" == *ControlAvailable* ]]; then cat "$d/state"; else cut -d' ' -f1 "$d/state"; fi ;;
  "service ls") if [ "$3" = --filter ]; then grep '^demo_' "$d/services" || true; else cat "$d/services"; fi ;;
  "stack ls") grep -q '^demo_' "$d/services" && echo demo; true ;;
  "network ls") cat "$d/stack-networks" 2>/dev/null; true ;;
  "config ls" | "secret ls") : ;;
  "service rm") shift 2; for s in "$@"; do grep -vxF "$s" "$d/services" > "$d/s.tmp"; [ "$s" = stuck ] && echo stuck >> "$d/s.tmp"; mv "$d/s.tmp" "$d/services"; echo "$s"; done ;;
  "stack rm") [ -f "$d/stack-rm-fails" ] && exit 1; grep -v "^$3_" "$d/services" > "$d/s.tmp"; mv "$d/s.tmp" "$d/services" ;;
  "node ls") cut -d' ' -f1 "$d/nodes" ;;
  "node inspect") cat "$d/nodes" ;;
  "swarm leave") echo "inactive false" > "$d/state" ;;
  "ps -aq") cat "$d/containers" ;;
  "rm -f") [ -f "$d/rm-fails" ] || : > "$d/containers" ;;
  *) : ;;
esac
`;
  // SHLVL=1: with a socket for stdin and no SHLVL, Debian's bash reads ~/.bashrc as if sshd had started it (on this
  // machine pyenv's init, ~0.5 CPU-s a start; test/support/tmp-guard-setup.js).
  const env = (): NodeJS.ProcessEnv => ({ PATH: `${dir}:${process.env.PATH}`, STUB: dir, SHLVL: '1' });
  const run = (s: string): { code: number; out: string; calls: string } => {
    const p = spawnSync('bash', ['-c', s], { env: env(), encoding: 'utf8' });
    return { code: p.status ?? -1, out: p.stdout, calls: readFileSync(join(dir, 'calls'), 'utf8') };
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'teardown-'));
    writeFileSync(join(dir, 'docker'), DOCKER);
    chmodSync(join(dir, 'docker'), 0o755);
    writeFileSync(join(dir, 'calls'), '');
    writeFileSync(join(dir, 'state'), 'active true\n');
    writeFileSync(join(dir, 'nodeid'), `${W1}\n`);
    writeFileSync(join(dir, 'services'), 'demo_web\ndemo_worker\nloose\n');
    writeFileSync(join(dir, 'nodes'), `${W1} ready i-w1\n${W2} down i-w2\n`);
    writeFileSync(join(dir, 'containers'), 'c1\nc2\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('workload: stacks and services removed without waiting for tasks; a service docker keeps is LEFT, a failing stack rm FAILED; worker nodes listed', () => {
    writeFileSync(join(dir, 'services'), 'demo_web\nstuck\nloose\n');
    const ok = run(REMOVE_WORKLOAD_SCRIPT);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(`DONE stack demo\nDONE service loose\nLEFT service stuck\nWORKER ${W1} ready i-w1\nWORKER ${W2} down i-w2\n`);
    expect(ok.calls).not.toMatch(/node ps|sleep|network rm/);
    // A stack rm that fails before its services went: they are removed as any other service.
    writeFileSync(join(dir, 'stack-rm-fails'), '');
    writeFileSync(join(dir, 'services'), 'demo_web\nloose\n');
    writeFileSync(join(dir, 'calls'), '');
    const failing = run(REMOVE_WORKLOAD_SCRIPT);
    expect(failing.out).toMatch(/^FAILED stack demo\nDONE service demo_web\nDONE service loose\nWORKER /);
    expect(failing.calls).toMatch(/^service rm demo_web loose$/m);
  });

  test('workload: a stack a failed deploy left with only a network is found by its label and removed', () => {
    writeFileSync(join(dir, 'services'), '');
    writeFileSync(join(dir, 'stack-networks'), 'half\n');
    const r = run(REMOVE_WORKLOAD_SCRIPT);
    expect(r.out).toBe(`DONE stack half\nWORKER ${W1} ready i-w1\nWORKER ${W2} down i-w2\n`);
    expect(r.calls).toMatch(/^network ls --filter label=com.docker.stack.namespace --format \{\{\.Label "com.docker.stack.namespace"\}\}$/m);
    expect(r.calls).toMatch(/^config ls --filter label=com.docker.stack.namespace/m);
    expect(r.calls).toMatch(/^secret ls --filter label=com.docker.stack.namespace/m);
  });

  test('workload: the gate — on a node that is not a working manager, or when a read fails, nothing is removed', () => {
    writeFileSync(join(dir, 'state'), 'active false\n');
    const worker = run(REMOVE_WORKLOAD_SCRIPT);
    expect(worker).toMatchObject({ code: 0, out: 'EC2SWARM-STATE active false\n' });
    expect(worker.calls).not.toMatch(/ rm/);
    writeFileSync(join(dir, 'state'), 'active true\n');
    writeFileSync(join(dir, 'fails-node-ls'), '');
    writeFileSync(join(dir, 'calls'), '');
    const failed = spawnSync('bash', ['-c', REMOVE_WORKLOAD_SCRIPT], { env: env(), encoding: 'utf8' });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('docker node ls failed');
    expect(failed.stdout).toBe('');
    expect(readFileSync(join(dir, 'calls'), 'utf8')).not.toMatch(/ rm/);
  });

  test('worker leave: node id and state in one call, leave, leftover task containers removed and counted, state read again', () => {
    const r = run(WORKER_LEAVE_SCRIPT);
    expect(r.out).toBe(`NODE ${W1}\nCONTAINERS-LEFT 0\nLEFT\n`);
    expect(r.calls).toContain('swarm leave\n');
    expect(r.calls).toContain('ps -aq --filter label=com.docker.swarm.task.id');
    expect(r.calls).toContain('rm -f c1 c2');
    expect(r.calls.match(/^info /gm)).toHaveLength(2); // before (state and node id together) and after the leave
  });

  test('worker leave: a node not in a swarm, or without docker, is said so and not touched', () => {
    writeFileSync(join(dir, 'state'), 'inactive false\n');
    writeFileSync(join(dir, 'nodeid'), '\n');
    expect(run(WORKER_LEAVE_SCRIPT).out).toBe('EC2SWARM-STATE inactive false\n');
    writeFileSync(join(dir, 'fails-info---format'), '');
    const r = run(WORKER_LEAVE_SCRIPT);
    expect(r.out).toBe('EC2SWARM-STATE no-docker\n');
    expect(r.calls).not.toMatch(/swarm leave/);
  });

  test('after a leave, a task container count that could not be taken fails the script: never read as 0', () => {
    writeFileSync(join(dir, 'fails-ps--aq'), '');
    const r = run(WORKER_LEAVE_SCRIPT);
    expect(r.code).not.toBe(0);
    expect(r.out).not.toMatch(/CONTAINERS-LEFT|^LEFT/m);
  });

  test('manager leave: the reconciler is stopped first, in every state; containers that cannot be removed are counted, never hidden', () => {
    const stop = MANAGER_LEAVE_SCRIPT.indexOf('/opt/ec2-swarm/reconcile.sh --stop');
    expect(stop).toBeGreaterThan(-1);
    expect(stop).toBeLessThan(MANAGER_LEAVE_SCRIPT.indexOf('docker info'));
    // It runs while the state is read; the script waits for it before anything else, also when it goes no further.
    expect(MANAGER_LEAVE_SCRIPT.indexOf('wait "$stop_pid"')).toBeLessThan(MANAGER_LEAVE_SCRIPT.indexOf('case "$swarm"'));
    writeFileSync(join(dir, 'rm-fails'), '');
    const r = run(MANAGER_LEAVE_SCRIPT);
    expect(r.out).toBe('CONTAINERS-LEFT 2\nLEFT\n');
    expect(r.calls).toContain('swarm leave --force\n');
  });
});
