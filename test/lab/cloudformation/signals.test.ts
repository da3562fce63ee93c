/** The signal recorder: what a signal means, and how the lab decides the "deploy" succeeded. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSignal, readSignals, SignalRecorder, signalsFile, summarizeSignals } from '../../../lib/lab/cloudformation/signals';

const A = 'i-0aaaaaaaaaaaaaaa0';
const B = 'i-0bbbbbbbbbbbbbbb1';
const at = (): number => Date.parse('2026-11-24T12:00:00Z');

test.each([
  [{ exitCode: '0' }, 'SUCCESS', 0],
  [{ exitCode: '1' }, 'FAILURE', 1],
  [{ exitCode: '0', success: 'false' }, 'FAILURE', 0],
  [{ success: 'true' }, 'SUCCESS', null],
  [{ exitCode: '2', success: 'true' }, 'FAILURE', 2],
])('%j → %s', (fields, status, exitCode) => {
  const s = parseSignal({ stack: 'SwarmStack', resource: 'Manager', ...fields }, { instanceId: A }, at);
  expect(s).toMatchObject({ status, exitCode, instanceId: A, time: '2026-11-24T12:00:00.000Z' });
});

test.each([
  [{ resource: 'R' }, 'stack'],
  [{ stack: 'S' }, 'resource'],
  [{ stack: 'S', resource: 'R', exitCode: '1.5' }, 'exitCode'],
  [{ stack: 'S', resource: 'R', success: 'yes' }, 'success'],
  [{ stack: 'S', resource: 'R', region: 'mars' }, 'region'],
  [{ stack: 'S;rm', resource: 'R' }, 'stack'],
])('a bad signal %j is refused naming %s', (fields, field) => {
  expect(() => parseSignal(fields, {})).toThrow(new RegExp(`signal: ${field} must`));
});

test('the latest signal of each host counts; missing hosts keep allSucceeded false', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lab-signals-'));
  try {
    const rec = new SignalRecorder(signalsFile(dir));
    expect(rec.list()).toEqual([]);
    rec.record(parseSignal({ stack: 'S', resource: 'W', exitCode: '1' }, { instanceId: B }));
    rec.record(parseSignal({ stack: 'S', resource: 'M', exitCode: '0' }, { instanceId: A }));
    expect(summarizeSignals(rec.list(), [A, B])).toMatchObject({ allSucceeded: false, succeeded: [A], missing: [] });
    expect(summarizeSignals(rec.list(), [A, B]).failed.map((s) => s.instanceId)).toEqual([B]);

    rec.record(parseSignal({ stack: 'S', resource: 'W', exitCode: '0' }, { instanceId: B }));
    expect(summarizeSignals(readSignals(signalsFile(dir)), [A, B])).toMatchObject({ allSucceeded: true, failed: [], missing: [] });
    expect(summarizeSignals(rec.list(), [A, B, 'i-0ccccccccccccccc2'])).toMatchObject({ allSucceeded: false, missing: ['i-0ccccccccccccccc2'] });
    expect(summarizeSignals([], [])).toMatchObject({ allSucceeded: false });
    expect(JSON.parse(readFileSync(signalsFile(dir), 'utf8'))).toHaveLength(3);

    writeFileSync(signalsFile(dir), '{"not":"a list"}');
    expect(() => rec.list()).toThrow(/JSON array/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
