/**
 * The reconciler's decision (reconcile.sh --decide): a pure function of two recorded observations, so every rule
 * is tested on states as `docker node inspect` and the Auto Scaling / EC2 APIs report them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RECONCILE_SH } from './helpers';

/** One node: id role status availability reachability leader addr instance tasks. */
function node(id: string, role: 'manager' | 'worker', instance: string, o: { status?: string; av?: string; reach?: string; leader?: boolean; tasks?: string } = {}): string {
  const m = role === 'manager';
  const n = id.padEnd(25, '0');
  return [n, role, o.status ?? 'ready', o.av ?? 'active', m ? (o.reach ?? 'reachable') : '-', m ? String(o.leader ?? false) : '-',
    m ? `10.0.1.${id.charCodeAt(0) % 50}:2377` : '-', instance, o.tasks ?? '-'].join('\t');
}
const nid = (id: string) => id.padEnd(25, '0');
/** One instance: id group lifecycle ec2-state. */
const inst = (id: string, lifecycle = 'InService', ec2 = '-', group = 'ec2-swarm-demo-workers') => [id, group, lifecycle, ec2].join('\t');

describe('reconcile.sh --decide', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ec2swarm-decide-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function decide(nodes: string[], instances: string[]): string[] {
    fs.writeFileSync(path.join(dir, 'nodes.tsv'), nodes.map((l) => `${l}\n`).join(''));
    fs.writeFileSync(path.join(dir, 'instances.tsv'), instances.map((l) => `${l}\n`).join(''));
    const r = spawnSync('/bin/bash', [RECONCILE_SH, '--decide', path.join(dir, 'nodes.tsv'), path.join(dir, 'instances.tsv')], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return r.stdout.split('\n').filter(Boolean);
  }
  const managers3 = [node('a', 'manager', 'i-a', { leader: true }), node('b', 'manager', 'i-b'), node('c', 'manager', 'i-c')];
  const mgrInstances = ['i-a', 'i-b', 'i-c'].map((i) => inst(i, 'InService', '-', 'ec2-swarm-demo-managers'));
  const publish3 = 'publish\t10.0.1.47:2377,10.0.1.48:2377,10.0.1.49:2377';

  test('a healthy cluster: nothing to do but (re)publish the reachable managers, sorted', () => {
    expect(decide([...managers3, node('w', 'worker', 'i-ff')], [...mgrInstances, inst('i-ff')])).toEqual([publish3]);
  });

  test('a worker whose instance is Terminating:Wait is drained first', () => {
    expect(decide([...managers3, node('w', 'worker', 'i-ff')], [...mgrInstances, inst('i-ff', 'Terminating:Wait')])).toEqual([`drain\t${nid('w')}`, publish3]);
  });

  test('a drained terminating worker: wait while tasks run, complete the lifecycle action once none runs', () => {
    const ins = [...mgrInstances, inst('i-ff', 'Terminating:Wait')];
    expect(decide([...managers3, node('w', 'worker', 'i-ff', { av: 'drain', tasks: '2' })], ins)).toEqual([`wait\t${nid('w')}\tdrained; 2 task(s) still running`, publish3]);
    expect(decide([...managers3, node('w', 'worker', 'i-ff', { av: 'drain', tasks: '0' })], ins)).toEqual(['complete\ti-ff\tec2-swarm-demo-workers', publish3]);
  });

  test('a terminating worker that is already Down: complete at once (its tasks were rescheduled)', () => {
    expect(decide([...managers3, node('w', 'worker', 'i-ff', { status: 'down' })], [...mgrInstances, inst('i-ff', 'Terminating:Wait')])).toEqual(['complete\ti-ff\tec2-swarm-demo-workers', publish3]);
  });

  test('an instance of another group (not in the observation) is never drained', () => {
    expect(decide([...managers3, node('w', 'worker', 'i-ff')], [...mgrInstances, inst('i-ff', '-', '-', '-')])).toEqual([publish3]);
  });

  test.each([
    ['terminated', true],
    ['gone', true],
    ['stopped', false],
    ['running', false],
    ['shutting-down', false],
    ['?', false],
  ])('a Down worker whose instance is %s: removed = %s', (state, removed) => {
    const out = decide([...managers3, node('w', 'worker', 'i-ff', { status: 'down' })], [...mgrInstances, inst('i-ff', '-', state, '-')]);
    expect(out).toEqual(removed ? [`rm\t${nid('w')}`, publish3] : [publish3]);
  });

  test('never a live node: a Ready node whose instance EC2 reports terminated stays', () => {
    expect(decide([...managers3, node('w', 'worker', 'i-ff')], [...mgrInstances, inst('i-ff', '-', 'terminated')])).toEqual([publish3]);
  });

  test('never a node without the instance label, even when Down', () => {
    expect(decide([...managers3, node('w', 'worker', '', { status: 'down' })], [...mgrInstances])).toEqual([publish3]);
  });

  test('a node that rejoined (new node id, same instance) makes its old Down entry removable while the instance lives', () => {
    const out = decide([...managers3, node('old', 'worker', 'i-ff', { status: 'down' }), node('new', 'worker', 'i-ff')], [...mgrInstances, inst('i-ff', 'InService', 'running')]);
    expect(out).toEqual([`rm\t${nid('old')}`, publish3]);
  });

  test('a Down manager whose instance is gone is demoted first (quorum holds: 2 of 3 reachable), removed later', () => {
    const nodes = [node('a', 'manager', 'i-a', { leader: true }), node('b', 'manager', 'i-b'), node('c', 'manager', 'i-c', { status: 'down', reach: 'unreachable' })];
    const out = decide(nodes, [...mgrInstances.slice(0, 2), inst('i-c', '-', 'gone', '-')]);
    expect(out).toEqual([`demote\t${nid('c')}`, 'publish\t10.0.1.47:2377,10.0.1.48:2377']);
    // Next pass: it is a Down worker now.
    expect(decide([nodes[0], nodes[1], node('c', 'worker', 'i-c', { status: 'down' })], [inst('i-c', '-', 'gone', '-')])).toContain(`rm\t${nid('c')}`);
  });

  test('quorum guard: with 1 of 3 managers reachable nothing is demoted or removed', () => {
    const nodes = [node('a', 'manager', 'i-a', { leader: true }), node('b', 'manager', 'i-b', { status: 'down', reach: 'unreachable' }), node('c', 'manager', 'i-c', { status: 'down', reach: 'unreachable' })];
    const out = decide(nodes, [mgrInstances[0], inst('i-b', '-', 'gone', '-'), inst('i-c', '-', 'terminated', '-')]);
    expect(out).toEqual([
      `wait\t${nid('b')}\tremoving this Down manager would lose quorum`,
      `wait\t${nid('c')}\tremoving this Down manager would lose quorum`,
      'publish\t10.0.1.47:2377',
    ]);
  });

  test('two Down managers of five (3 reachable): both demoted in one pass, each step keeping a majority', () => {
    const nodes = [...managers3, node('d', 'manager', 'i-d', { status: 'down', reach: 'unreachable' }), node('e', 'manager', 'i-e', { status: 'down', reach: 'unreachable' })];
    const out = decide(nodes, [...mgrInstances, inst('i-d', '-', 'gone', '-'), inst('i-e', '-', 'gone', '-')]);
    expect(out).toEqual([`demote\t${nid('d')}`, `demote\t${nid('e')}`, publish3]);
  });

  test('a terminating reachable manager: drained, then demoted only when the rest keep a majority', () => {
    const ins = [inst('i-a', 'InService', '-', 'g'), inst('i-b', 'InService', '-', 'g'), inst('i-c', 'Terminating:Wait', '-', 'ec2-swarm-demo-managers')];
    expect(decide(managers3, ins)).toEqual([`drain\t${nid('c')}`, publish3]);
    const drained = [managers3[0], managers3[1], node('c', 'manager', 'i-c', { av: 'drain', tasks: '0' })];
    expect(decide(drained, ins)).toEqual([`demote\t${nid('c')}`, publish3]);
    // A rolling update adds the new manager first (4 reachable): still fine. With b unreachable it must wait.
    const bDown = [managers3[0], node('b', 'manager', 'i-b', { reach: 'unreachable', status: 'down' }), node('c', 'manager', 'i-c', { av: 'drain', tasks: '0' })];
    expect(decide(bDown, ins)).toEqual([`wait\t${nid('c')}\tdemoting this terminating manager would lose quorum`, 'publish\t10.0.1.47:2377,10.0.1.49:2377']);
    // Demoted (now a drained worker with no tasks): the lifecycle action completes.
    const demoted = [managers3[0], managers3[1], node('c', 'worker', 'i-c', { av: 'drain', tasks: '0' })];
    expect(decide(demoted, ins)).toEqual(['complete\ti-c\tec2-swarm-demo-managers', 'publish\t10.0.1.47:2377,10.0.1.48:2377']);
  });

  test('unreachable managers are not published', () => {
    const nodes = [managers3[0], node('b', 'manager', 'i-b', { reach: 'unreachable', status: 'down' }), managers3[2]];
    expect(decide(nodes, mgrInstances)).toEqual(['publish\t10.0.1.47:2377,10.0.1.49:2377']);
  });

  test('usage errors exit 2', () => {
    const r = spawnSync('/bin/bash', [RECONCILE_SH, '--decide', '/nonexistent'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(spawnSync('/bin/bash', [RECONCILE_SH, '--bogus'], { encoding: 'utf8' }).status).toBe(2);
  });
});
