/**
 * The long poll of the state query (design.md decision 19), the real script under bash with the docker stand-in:
 * the manager waits while the state's fingerprint equals the one already judged, and answers at a change, at the
 * wake-up time or at its bound. Few looks per test: each runs the whole query script.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { querySwarm, type HeldSnapshot, type QueryOptions } from '../../../lib/ops/swarm/query';
import { FINGERPRINT_RE, buildQueryScript } from '../../../lib/ops/swarm/query-script';
import { BashRunner, StubHost, hasBash, makeCtx, snapshotFixture } from './harness';

const d = hasBash() ? describe : describe.skip;

d('the long poll on the manager', () => {
  let host: StubHost;
  beforeEach(() => {
    host = new StubHost();
    host.load(snapshotFixture('query-basic.txt'));
    previous = undefined;
  });
  afterEach(() => host.cleanup());

  const read = (name: string): string => readFileSync(join(host.dir, name), 'utf8');
  let previous: HeldSnapshot | undefined;

  async function look(opts: QueryOptions): Promise<{ fingerprint?: string; unchanged?: true; atMs: number; ms: number; calls: string[]; header: string; held: HeldSnapshot }> {
    const before = host.calls().length;
    const t0 = Date.now();
    let header = '';
    const bash = new BashRunner(host);
    const runner = { run: async (...a: Parameters<BashRunner['run']>) => { const r = await bash.run(...a); header ||= r[0].stdout.split('\n')[0]; return r; } };
    const r = await querySwarm(makeCtx(runner), { ...opts, ...(previous ? { previous } : {}) });
    if (!r.active) throw new Error('expected an active swarm');
    previous = r.held;
    return { fingerprint: r.fingerprint, unchanged: r.unchanged, atMs: r.snapshot.nowMs, ms: Date.now() - t0, calls: host.calls().slice(before).map((a) => `${a[0]} ${a[1]}`), header, held: r.held };
  }

  test('the fingerprint: same state same value ("2 minutes ago" is no change); a task, a node, or the version and update state of a service (a spec change that moves no task yet) changing changes it', async () => {
    const a = await look({ watch: { maxWaitMs: 5000 } });
    expect(a.fingerprint).toMatch(FINGERPRINT_RE);
    // Without `since` it answers at once. One look at the state (four list calls side by side, no task inspected),
    // then the snapshot.
    expect(a.calls.slice(0, 4).sort()).toEqual(['node ls', 'service inspect', 'service ls', 'service ps']);
    expect(a.calls[4]).toBe('info --format');
    const ps = read('ps');
    host.write('ps', ps.replace(/2 minutes ago/g, '3 minutes ago'));
    expect((await look({ watch: { maxWaitMs: 0 } })).fingerprint).toBe(a.fingerprint);
    host.write('ps', ps.replace(' Running Running ', ' Running Failed '));
    const task = (await look({ watch: { maxWaitMs: 0 } })).fingerprint;
    expect(task).not.toBe(a.fingerprint);
    host.write('nodes', read('nodes').replace('\tready\t', '\tdown\t'));
    const node = (await look({ watch: { maxWaitMs: 0 } })).fingerprint;
    expect(node).not.toBe(task);
    const line = read('services').split('\n').find((l) => l.includes('"web"'))!;
    host.write('services', read('services').replace(line, line.replace('\t""\t""\t', '\t"completed"\t""\t')));
    expect((await look({ watch: { maxWaitMs: 0 } })).fingerprint).not.toBe(node);
  }, 120_000);

  test('status takes no fingerprint (no watch, no extra calls)', async () => {
    const r = await querySwarm(makeCtx(new BashRunner(host)));
    expect(r).toMatchObject({ active: true });
    expect((r as { fingerprint?: string }).fingerprint).toBeUndefined();
    expect(host.calls()[0].slice(0, 2)).toEqual(['info', '--format']);
  });

  test('a look after a task changed ships the difference from the snapshot held: the same state as a whole snapshot', async () => {
    const a = await look({ watch: { maxWaitMs: 0 } });
    // One task fails: its inspect line (the snapshot) and its listing (the fingerprint).
    const tasks = read('tasks').split('\n');
    const i = tasks.findIndex((l) => l.includes('\trunning\trunning\t'));
    tasks[i] = tasks[i].replace('\trunning\trunning\t', '\tshutdown\tfailed\t').replace('\t""\t', '\t"task: non-zero exit (1)"\t');
    host.write('tasks', tasks.join('\n'));
    host.write('ps', read('ps').replace(' Running Running ', ' Shutdown Failed '));
    const b = await look({ watch: { since: a.fingerprint, maxWaitMs: 0, base: a.held.md5 } });
    expect(b.unchanged).toBeUndefined();
    expect(b.header.split(' ').at(-1)).toBe(a.held.md5);
    const whole = await querySwarm(makeCtx(new BashRunner(host)));
    if (!whole.active) throw new Error('expected an active swarm');
    expect(b.held.text).toBe(whole.held.text);
    expect(b.held.snapshot.tasks.filter((t) => t.state === 'failed')).toHaveLength(1);
    // The manager keeps only the newest text for the operator; without the one named it sends the whole text.
    expect(readdirSync(join(host.dir, 'run'))).toEqual([`b.${b.held.md5}`]);
    rmSync(join(host.dir, 'run', `b.${b.held.md5}`));
    host.write('ps', read('ps').replace(' Shutdown Failed ', ' Shutdown Rejected '));
    const c = await look({ watch: { since: b.fingerprint, maxWaitMs: 0, base: b.held.md5 } });
    expect(c.header.split(' ').at(-1)).toBe('-');
    expect(c.held.text).toBe(whole.held.text);
  }, 120_000);

  test('waiting: bounded by steps on a clock that stands still; "same" at the wake-up time; a change ends it with a snapshot', async () => {
    // The stub's `date` first returns the snapshot's fixed instant: only the count of steps ends this wait.
    const { fingerprint } = await look({ watch: { maxWaitMs: 0 } });
    const still = await look({ watch: { since: fingerprint, maxWaitMs: 400 } });
    // Nothing changed, but no wake-up was reached: at its bound the wait answers with a snapshot (looked at afresh).
    expect(still).toMatchObject({ fingerprint });
    expect(still.unchanged).toBeUndefined();
    expect(still.calls.filter((c) => c === 'service inspect').length).toBeGreaterThanOrEqual(3);
    expect(still.calls).toContain('info --format');
    // From here the real clock.
    rmSync(join(host.dir, 'now'));
    const wake = Date.now() + 600;
    const woken = await look({ watch: { since: fingerprint, maxWaitMs: 60_000, wakeAtMs: wake } });
    expect(woken).toMatchObject({ fingerprint, unchanged: true });
    // Never before the wake-up: the claim is about the state at or after it.
    expect(woken.atMs).toBeGreaterThanOrEqual(wake);
    const ps = read('ps');
    const timer = setTimeout(() => host.write('ps', ps.replace(' Running Running ', ' Running Failed ')), 500);
    try {
      const changed = await look({ watch: { since: fingerprint, maxWaitMs: 60_000 } });
      expect(changed.unchanged).toBeUndefined();
      expect(changed.fingerprint).not.toBe(fingerprint);
      expect(changed.ms).toBeGreaterThanOrEqual(450);
    } finally {
      clearTimeout(timer);
    }
  }, 120_000);
});

describe('the long poll: values that reach the script', () => {
  test.each([
    [{ since: "x'; reboot; '", maxWaitMs: 0 }, /not a state fingerprint/],
    [{ since: 'A'.repeat(32), maxWaitMs: 0 }, /not a state fingerprint/],
    [{ maxWaitMs: -1 }, /bad wait bound/],
    [{ maxWaitMs: 1.5 }, /bad wait bound/],
    [{ maxWaitMs: 0, wakeAtMs: Number.NaN }, /bad wake-up time/],
    [{ maxWaitMs: 0, base: '$(reboot)' }, /not a snapshot digest/],
  ])('%j is refused before any script is built', (watch, message) => {
    expect(() => buildQueryScript(20000, watch)).toThrow(message);
  });

  test('valid values are single-quoted', () => {
    const s = buildQueryScript(20000, { since: 'f'.repeat(32), maxWaitMs: 1200, wakeAtMs: 1_800_000_000_123 });
    expect(s).toContain(`since='${'f'.repeat(32)}'`);
    expect(s).toContain("max_wait_ms='1200'");
    expect(s).toContain("wake_ms='1800000000123'");
  });
});
