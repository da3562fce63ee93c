/**
 * labUp's wait for the CloudFormation signals (no root: signals are written the way the controller records them).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmError } from '../../lib/errors';
import { LabHostInfo, waitForSignals } from '../../lib/lab/lab';
import { SignalRecord, SignalRecorder, signalsFile } from '../../lib/lab/cloudformation/signals';

const host = (i: number): LabHostInfo => ({
  name: `h${i}`,
  role: i === 0 ? 'manager' : 'worker',
  instanceId: `i-0${String(i).repeat(16)}`,
  ip: `192.168.240.${10 + i}`,
  hostname: `ip-192-168-240-${10 + i}.ec2.internal`,
  ns: `e2t-h${i}`,
  index: i,
});
const HOSTS = [host(0), host(1), host(2)];

let dir: string;
let recorder: SignalRecorder;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lab-signals-'));
  mkdirSync(join(dir, 'logs'));
  recorder = new SignalRecorder(signalsFile(dir));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const signal = (h: LabHostInfo, status: 'SUCCESS' | 'FAILURE', resource = h.role === 'manager' ? 'Manager' : 'Workers'): SignalRecord => ({
  instanceId: h.instanceId,
  stack: 'ec2-swarm-lab',
  resource,
  status,
  exitCode: status === 'SUCCESS' ? 0 : 1,
  time: new Date().toISOString(),
});

const wait = (over: Partial<Parameters<typeof waitForSignals>[0]> = {}) =>
  waitForSignals({ labDir: dir, hosts: HOSTS, managerResource: 'Manager', workerResource: 'Workers', deadline: Date.now() + 5000, timeoutSeconds: 5, ...over });

test('resolves once every host signalled SUCCESS, reporting progress', async () => {
  const progress: string[] = [];
  recorder.record(signal(HOSTS[0], 'SUCCESS'));
  setTimeout(() => {
    recorder.record(signal(HOSTS[1], 'SUCCESS'));
    recorder.record(signal(HOSTS[2], 'SUCCESS'));
  }, 400);
  await wait({ reporter: { info: () => undefined, warn: () => undefined, progress: (m) => progress.push(m), done: () => undefined } });
  expect(progress[0]).toMatch(/^signals 1\/3 /);
  expect(progress.at(-1)).toMatch(/^signals 3\/3 /);
});

test('a FAILURE signal is a cluster error naming the host and quoting its cloud-init log', async () => {
  writeFileSync(join(dir, 'logs', 'h2-cloud-init-output.log'), 'line 1\nec2-swarm: ERROR: gave up after 900s\n');
  recorder.record(signal(HOSTS[0], 'SUCCESS'));
  recorder.record(signal(HOSTS[2], 'FAILURE'));
  const e = await wait().catch((x: unknown) => x);
  expect(e).toBeInstanceOf(SwarmError);
  expect(e).toMatchObject({ fault: 'cluster', code: 'LAB_SIGNAL_FAILURE' });
  expect((e as Error).message).toMatch(/h2 \(worker, i-02{16}\) signalled FAILURE \(exit code 1\)/);
  expect((e as Error).message).toMatch(/gave up after 900s/);
});

test('a signal for another resource is a failure too (a worker must signal the worker group)', async () => {
  recorder.record(signal(HOSTS[1], 'SUCCESS', 'Manager'));
  await expect(wait()).rejects.toThrow(/h1 .* signalled SUCCESS \(exit code 0\) for Manager instead of Workers/);
});

test('no signal by the deadline: an environment error naming the hosts still silent', async () => {
  recorder.record(signal(HOSTS[0], 'SUCCESS'));
  const t = Date.now();
  const e = await wait({ deadline: Date.now() + 600, timeoutSeconds: 1 }).catch((x: unknown) => x);
  expect(Date.now() - t).toBeLessThan(3000);
  expect(e).toMatchObject({ fault: 'environment', code: 'LAB_SIGNAL_TIMEOUT' });
  expect((e as Error).message).toMatch(/no signal within 1s from h1 \(worker\), h2 \(worker\)/);
});

test('a user-data that ended without a signal fails fast, not at the deadline', async () => {
  recorder.record(signal(HOSTS[0], 'SUCCESS'));
  recorder.record(signal(HOSTS[1], 'SUCCESS'));
  const runs = new Map([['h2', Promise.resolve()]]);
  const e = await wait({ runs, silentGraceMs: 300, deadline: Date.now() + 60_000, timeoutSeconds: 60 }).catch((x: unknown) => x);
  expect(e).toMatchObject({ code: 'LAB_SIGNAL_MISSING' });
  expect((e as Error).message).toMatch(/h2 \(worker\) finished its user-data without a signal/);
});
