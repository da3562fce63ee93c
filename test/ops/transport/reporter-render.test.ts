import { PassThrough } from 'node:stream';
import { renderJson, renderQuorum, renderStatus, renderTeardown, renderVerify } from '../../../lib/ops/render';
import { StreamReporter } from '../../../lib/ops/reporter';

function capture(tty: boolean, json = false) {
  const stream = Object.assign(new PassThrough(), { columns: 80 });
  let text = '';
  stream.on('data', (d) => (text += d));
  const clock = { t: 0 };
  const reporter = new StreamReporter({ stream, tty, json, now: () => clock.t });
  return { reporter, clock, text: () => text };
}

describe('StreamReporter', () => {
  test('on a TTY, progress rewrites one line in place with the elapsed time; done() clears it', () => {
    const { reporter, clock, text } = capture(true);
    reporter.progress('verify: 3/9 running');
    clock.t = 12_000;
    reporter.progress('verify: 7/9 running');
    reporter.done();
    expect(text()).toBe('\r\x1b[2K[0s] verify: 3/9 running\r\x1b[2K[12s] verify: 7/9 running\r\x1b[2K');
    expect(text()).not.toContain('\n');
  });

  test('off a TTY, plain lines: a new count prints, the same words with only a new elapsed time do not (until a while later)', () => {
    const { reporter, clock, text } = capture(false);
    reporter.progress('verify: 3/9 running (1s)');
    clock.t = 2000;
    reporter.progress('verify: 3/9 running (3s)');
    reporter.progress('verify: 5/9 running (3s)');
    clock.t = 30_000;
    reporter.progress('verify: 5/9 running (30s)');
    expect(text()).toBe('verify: 3/9 running (1s)\nverify: 5/9 running (3s)\nverify: 5/9 running (30s)\n');
  });

  test('--json silences progress and info; warnings still reach stderr', () => {
    const { reporter, text } = capture(true, true);
    reporter.progress('x');
    reporter.info('y');
    reporter.warn('z');
    expect(text()).toBe('warning: z\n');
  });

  test('a join token never reaches the stream', () => {
    const { reporter, text } = capture(false);
    reporter.info('got SWMTKN-\x31-abc123-def456');
    expect(text()).toBe('got SWMTKN-<redacted>\n');
  });
});

describe('render', () => {
  test('status: a node table (managers with their reachability), the quorum line and a service table with exact counts', () => {
    const out = renderStatus({
      nodes: [
        { id: 'a', hostname: 'mgr', role: 'manager', status: 'Ready', availability: 'Active', leader: true, reachability: 'Reachable', instanceId: 'i-0a' },
        { id: 'c', hostname: 'mgr2', role: 'manager', status: 'Down', availability: 'Active', leader: false, reachability: 'Unreachable' },
        { id: 'd', hostname: 'mgr3', role: 'manager', status: 'Ready', availability: 'Active', leader: false, reachability: 'Reachable' },
        { id: 'b', hostname: 'w1', role: 'worker', status: 'Down', availability: 'Active', leader: false },
      ],
      managers: { managers: 3, reachable: 2, quorum: 2, tolerates: 0, hasQuorum: true, leader: 'mgr' },
      services: [{ name: 'demo_web', mode: 'replicated', desired: 6, running: 4, tasks: [{ slot: 2, node: 'w1', desiredState: 'running', currentState: 'pending' }] }],
    });
    expect(out).toMatch(/mgr\s*│\s*manager\s*│\s*Ready\s*│\s*Active\s*│\s*Leader\s*│\s*│\s*i-0a/);
    expect(out).toMatch(/mgr2\s*│\s*manager\s*│\s*Down\s*│\s*Active\s*│\s*Unreachable/);
    expect(out).toMatch(/w1\s*│\s*worker\s*│\s*Down\s*│\s*Active\s*│\s*│/);
    expect(out).toContain('managers: 3 (2 reachable), leader mgr; quorum 2: tolerates no further manager failure\n');
    expect(out).toMatch(/demo_web\s*│\s*replicated\s*│\s*6\s*│\s*4\s*│.*short/);
    expect(out).toContain('tasks of demo_web:');
  });

  test('verify: not converged names each short service with its last task error', () => {
    const out = renderVerify({
      converged: false,
      elapsedSeconds: 60,
      services: [
        { name: 'ok', mode: 'global', desired: 3, running: 3 },
        { name: 'bad', mode: 'replicated', desired: 2, running: 0, lastError: 'No such image: nope:1' },
      ],
    });
    expect(out).toContain('not converged after 60s: 1 service(s) short');
    expect(out).toContain('bad: 0/2 running; last task error: No such image: nope:1');
    expect(out).not.toContain('  ok:');
  });

  test('teardown: what was done, then what was skipped', () => {
    expect(renderTeardown({ complete: true, done: ['removed stack demo'], skipped: ['manager: not in a swarm'], left: [] })).toBe('done: removed stack demo\nskipped: manager: not in a swarm\n');
    expect(renderTeardown({ complete: true, done: [], skipped: [], left: [] })).toBe('nothing to do\n');
    expect(renderTeardown({ complete: false, outcome: 'incomplete', done: [], skipped: [], left: ['network x_default'] })).toBe('left: network x_default\nteardown NOT complete: see "left:" above\n');
  });

  test('json is one parseable document', () => {
    expect(JSON.parse(renderJson({ a: [1, 2] }))).toEqual({ a: [1, 2] });
  });
});

describe('render: the quorum line', () => {
  test.each([
    [{ managers: 1, reachable: 1, quorum: 1, tolerates: 0, hasQuorum: true, leader: 'm1' }, 'managers: 1 (1 reachable), leader m1; quorum 1: tolerates no further manager failure\n'],
    [{ managers: 5, reachable: 5, quorum: 3, tolerates: 2, hasQuorum: true, leader: 'm1' }, 'managers: 5 (5 reachable), leader m1; quorum 3: tolerates 2 more manager failures\n'],
    [{ managers: 3, reachable: 3, quorum: 2, tolerates: 1, hasQuorum: true, leader: 'm2' }, 'managers: 3 (3 reachable), leader m2; quorum 2: tolerates 1 more manager failure\n'],
    [{ managers: 3, reachable: 1, quorum: 2, tolerates: 0, hasQuorum: false }, 'managers: 3 (1 reachable), no leader; quorum 2: QUORUM LOST, nothing can change (README: "a majority of managers is lost")\n'],
  ])('%j', (q, line) => {
    expect(renderQuorum(q)).toBe(line);
  });
});
