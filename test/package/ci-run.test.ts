/**
 * .ci/run's own logic, with every part stubbed (a fake `npm` and `npx` on PATH, a fake install-prereqs.sh; the real
 * .ci/run and scripts/dev/test-e2e.sh in a copy of the checkout): `npm test` runs, the package check beside it, the
 * other Node lines only once `npm test` is past its unit tests, every part's output is shown, and any part failing
 * fails the run. Nothing real is installed or tested here (CI itself does that). The runs wait on sleeps (the
 * fake parts' durations, the one-second poll for the mark): they run concurrently.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '../..');

/** The fake npm: what each call of .ci/run does, recorded in $CI_EVENTS in order; FAKE_* variables choose outcomes. */
const FAKE_NPM = `#!/usr/bin/env bash
set -euo pipefail
event() { echo "$*" >>"$CI_EVENTS"; }
case "$*" in
  "ci --no-audit --no-fund") event ci ;;
  test)
    event test-start
    if [ "\${FAKE_TEST_HANG:-}" = 1 ]; then echo $$ >"$CI_EVENTS.test-pid"; exec sleep 30; fi
    if [ "\${FAKE_TEST_EARLY_FAIL:-}" = 1 ]; then event test-failed-early; exit 1; fi
    sleep 0.3 # its unit tests
    bash scripts/dev/test-e2e.sh
    sleep 1.5 # the end-to-end suite goes on
    event test-end
    exit "\${FAKE_TEST_EXIT:-0}" ;;
  "run --silent test:consumer")
    event consumer
    if [ "\${FAKE_CONSUMER_HANG:-}" = 1 ]; then echo $$ >"$CI_EVENTS.consumer-pid"; exec sleep 30; fi
    echo "consumer output"
    exit "\${FAKE_CONSUMER_EXIT:-0}" ;;
  "run --silent test:node-lts")
    if [ -e "$EC2_SWARM_CI_UNIT_DONE" ]; then event node-lts-after-mark; else event node-lts-before-mark; fi
    echo "node-lts output"
    exit "\${FAKE_LTS_EXIT:-0}" ;;
  *) echo "fake npm: unexpected $*" >&2; exit 99 ;;
esac
`;

const FAKE_NPX = `#!/usr/bin/env bash
echo "e2e $*" >>"$CI_EVENTS"
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ec2-swarm-ci-run-'));
  const checkout = join(dir, 'checkout');
  for (const d of ['.ci', 'scripts/dev', 'bin']) mkdirSync(join(checkout, d), { recursive: true });
  copyFileSync(join(REPO, '.ci/run'), join(checkout, '.ci/run'));
  copyFileSync(join(REPO, 'scripts/dev/test-e2e.sh'), join(checkout, 'scripts/dev/test-e2e.sh'));
  writeFileSync(join(checkout, 'scripts/dev/install-prereqs.sh'), 'echo "prereqs" >>"$CI_EVENTS"\n');
  writeFileSync(join(checkout, 'bin/npm'), FAKE_NPM);
  writeFileSync(join(checkout, 'bin/npx'), FAKE_NPX);
  for (const f of ['.ci/run', 'bin/npm', 'bin/npx']) chmodSync(join(checkout, f), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface CiRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: string[];
  /** What .ci/run left in its TMPDIR (its logs must go). */
  leftInTmp: string[];
}

let n = 0;
function startCi(env: Record<string, string>): { child: ChildProcess; events: string; done: Promise<CiRun> } {
  const checkout = join(dir, 'checkout');
  const events = join(dir, `events-${++n}`);
  const tmp = join(dir, `tmp-${n}`);
  mkdirSync(tmp);
  writeFileSync(events, '');
  const child = spawn(join(checkout, '.ci/run'), [], {
    env: { PATH: `${join(checkout, 'bin')}:/usr/bin:/bin`, HOME: dir, TMPDIR: tmp, CI_EVENTS: events, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CiRun>((res) =>
    child.once('close', (code, signal) => {
      res({ code, signal, stdout, stderr, events: readFileSync(events, 'utf8').trim().split('\n'), leftInTmp: readdirSync(tmp) });
    }),
  );
  return { child, events, done };
}

async function ci(env: Record<string, string> = {}): Promise<CiRun> {
  const r = await startCi(env).done;
  expect(r.leftInTmp).toEqual([]);
  return r;
}

/** Whether a process still runs (a zombie waiting for its reaper does not). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
}

test.concurrent('everything passes: exit 0; the Node lines start during npm test, at its end-to-end part; every output shown', async () => {
  const r = await ci();
  expect(r.code).toBe(0);
  expect(r.events.slice(0, 3)).toEqual(['prereqs', 'ci', expect.stringMatching(/^(test-start|consumer)$/)]);
  expect(r.events).toEqual(expect.arrayContaining(['consumer', 'test-start', 'test-end', 'node-lts-after-mark']));
  expect(r.events).not.toContain('node-lts-before-mark');
  // The mark came from scripts/dev/test-e2e.sh while npm test still ran, not from .ci/run after it ended.
  expect(r.events.indexOf('node-lts-after-mark')).toBeLessThan(r.events.indexOf('test-end'));
  expect(r.events.indexOf('node-lts-after-mark')).toBeGreaterThan(r.events.indexOf('test-start'));
  if (process.getuid?.() === 0) expect(r.events).toContain('e2e jest --config jest.e2e.config.js --runInBand');
  expect(r.stdout).toContain('ci: ---- test:consumer (exit 0) ----\nconsumer output\n');
  expect(r.stdout).toContain('ci: ---- test:node-lts (exit 0) ----\nnode-lts output\n');
  expect(r.stdout).toContain('ci: passed: npm test, test:consumer test:node-lts');
}, 60_000);

test.concurrent('npm test failing before its end-to-end part: exit 1, and the other parts still run and are shown', async () => {
  const r = await ci({ FAKE_TEST_EARLY_FAIL: '1' });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('ci: FAILED: npm test\n');
  expect(r.events).toEqual(expect.arrayContaining(['test-failed-early', 'consumer', 'node-lts-after-mark']));
  expect(r.events.indexOf('node-lts-after-mark')).toBeGreaterThan(r.events.indexOf('test-failed-early'));
  expect(r.stdout).toContain('node-lts output');
}, 60_000);

test.concurrent.each([
  [{ FAKE_TEST_EXIT: '1' }, 'npm test'],
  [{ FAKE_CONSUMER_EXIT: '3' }, 'test:consumer'],
  [{ FAKE_LTS_EXIT: '1' }, 'test:node-lts'],
  [{ FAKE_CONSUMER_EXIT: '1', FAKE_LTS_EXIT: '1' }, 'test:consumer test:node-lts'],
])('%j: exit 1 naming %s', async (env, failed) => {
  const r = await ci(env);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`ci: FAILED: ${failed}\n`);
  expect(r.stdout).not.toContain('ci: passed');
}, 60_000);

test.concurrent('stopped (SIGTERM) while npm test runs: the background parts and npm test are stopped with it', async () => {
  const run = startCi({ FAKE_TEST_HANG: '1', FAKE_CONSUMER_HANG: '1' });
  const pidOf = (what: string) => Number(readFileSync(`${run.events}.${what}-pid`, 'utf8'));
  for (let i = 0; i < 100 && !(existsSync(`${run.events}.consumer-pid`) && existsSync(`${run.events}.test-pid`)); i++) await new Promise((r) => setTimeout(r, 100));
  const consumer = pidOf('consumer');
  const npmTest = pidOf('test');
  run.child.kill('SIGTERM');
  const r = await run.done;
  expect(r.code).toBe(143);
  expect(r.leftInTmp).toEqual([]);
  for (let i = 0; i < 50 && (alive(consumer) || alive(npmTest)); i++) await new Promise((res) => setTimeout(res, 100));
  expect([alive(consumer), alive(npmTest)]).toEqual([false, false]);
}, 60_000);
