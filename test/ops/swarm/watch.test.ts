/**
 * The long poll of the state query (design.md decision 19), the real script under bash with the docker stand-in:
 * the manager waits while the state's fingerprint equals the one already judged, and answers at a change, at the
 * wake-up time or at its bound. Few looks per test: each runs the whole query script.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { querySwarm, type QueryOptions } from '../../../lib/ops/swarm/query';
import { FINGERPRINT_RE, buildQueryScript } from '../../../lib/ops/swarm/query-script';
import { BashRunner, StubHost, hasBash, makeCtx, snapshotFixture } from './harness';

const d = hasBash() ? describe : describe.skip;

d('the long poll on the manager', () => {
  let host: StubHost;
  beforeEach(() => {
    host = new StubHost();
    host.load(snapshotFixture('query-basic.txt'));
  });
  afterEach(() => host.cleanup());

  const read = (name: string): string => readFileSync(join(host.dir, name), 'utf8');

  async function look(opts: QueryOptions): Promise<{ fingerprint?: string; ms: number; calls: string[] }> {
    const before = host.calls().length;
    const t0 = Date.now();
    const r = await querySwarm(makeCtx(new BashRunner(host)), opts);
    if (!r.active) throw new Error('expected an active swarm');
    return { fingerprint: r.fingerprint, ms: Date.now() - t0, calls: host.calls().slice(before).map((a) => `${a[0]} ${a[1]}`) };
  }

  test('the fingerprint: same state same value ("2 minutes ago" is no change); a task or a node changing changes it', async () => {
    const a = await look({ watch: { maxWaitMs: 5000 } });
    expect(a.fingerprint).toMatch(FINGERPRINT_RE);
    // Without `since` it answers at once. One look at the state (three list calls, no task inspected), then the snapshot.
    expect(a.calls.slice(0, 4)).toEqual(['node ls', 'service ls', 'service ps', 'info --format']);
    const ps = read('ps');
    host.write('ps', ps.replace(/2 minutes ago/g, '3 minutes ago'));
    expect((await look({ watch: { maxWaitMs: 0 } })).fingerprint).toBe(a.fingerprint);
    host.write('ps', ps.replace(' Running Running ', ' Running Failed '));
    const task = (await look({ watch: { maxWaitMs: 0 } })).fingerprint;
    expect(task).not.toBe(a.fingerprint);
    host.write('nodes', read('nodes').replace('\tready\t', '\tdown\t'));
    expect((await look({ watch: { maxWaitMs: 0 } })).fingerprint).not.toBe(task);
   }, 120_000);

  test('the update state of a service named as in an update is part of it', async () => {
    const line = read('services').split('\n').find((l) => l.includes('"web"'))!;
    // The stand-in's `service ls -q` gives 12-character ids, as docker does.
    const watch = { maxWaitMs: 0, updatingServiceIds: [line.slice(0, 12)] };
    const before = await look({ watch });
    host.write('services', read('services').replace(line, line.replace('\t""\t""\t', '\t"completed"\t""\t')));
    expect((await look({ watch })).fingerprint).not.toBe(before.fingerprint);
   }, 120_000);

  test('status takes no fingerprint (no watch, no extra calls)', async () => {
    const r = await querySwarm(makeCtx(new BashRunner(host)));
    expect(r).toMatchObject({ active: true });
    expect((r as { fingerprint?: string }).fingerprint).toBeUndefined();
    expect(host.calls()[0].slice(0, 2)).toEqual(['info', '--format']);
  });

  test('waiting: bounded by steps on a clock that stands still; until the wake-up time; a change ends it', async () => {
    // The stub's `date` first returns the snapshot's fixed instant: only the count of steps ends this wait.
    const { fingerprint } = await look({ watch: { maxWaitMs: 0 } });
    const still = await look({ watch: { since: fingerprint, maxWaitMs: 400 } });
    expect(still.fingerprint).toBe(fingerprint);
    expect(still.calls.filter((c) => c === 'node ls').length).toBeGreaterThanOrEqual(3); // it looked again
    // From here the real clock.
    rmSync(join(host.dir, 'now'));
    const woken = await look({ watch: { since: fingerprint, maxWaitMs: 60_000, wakeAtMs: Date.now() + 600 } });
    expect(woken.fingerprint).toBe(fingerprint);
    expect(woken.ms).toBeGreaterThanOrEqual(550);
    const ps = read('ps');
    const timer = setTimeout(() => host.write('ps', ps.replace(' Running Running ', ' Running Failed ')), 500);
    try {
      const changed = await look({ watch: { since: fingerprint, maxWaitMs: 60_000 } });
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
    [{ maxWaitMs: 0, updatingServiceIds: ['abc$(id)'] }, /not a service id/],
  ])('%j is refused before any script is built', (watch, message) => {
    expect(() => buildQueryScript(20000, watch)).toThrow(message);
  });

  test('valid values are single-quoted', () => {
    const s = buildQueryScript(20000, { since: 'f'.repeat(32), maxWaitMs: 1200, wakeAtMs: 1_800_000_000_123, updatingServiceIds: ['svc1', 'svc2'] });
    expect(s).toContain(`since='${'f'.repeat(32)}'`);
    expect(s).toContain("max_wait_ms='1200'");
    expect(s).toContain("wake_ms='1800000000123'");
    expect(s).toContain("updating=('svc1' 'svc2')");
  });
});
