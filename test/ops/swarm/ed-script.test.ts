/** The delta between two snapshots (design.md decision 21): GNU diff's own ed scripts, applied exactly or refused. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EdScriptError, applyEdScript } from '../../../lib/ops/swarm/ed-script';

/** `diff -e old new` as the manager runs it (exit 1 = files differ). */
function diffE(oldText: string, newText: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'c2-ed-'));
  try {
    writeFileSync(join(dir, 'old'), oldText);
    writeFileSync(join(dir, 'new'), newText);
    try {
      return execFileSync('diff', ['-e', join(dir, 'old'), join(dir, 'new')], { encoding: 'utf8' });
    } catch (e) {
      const r = e as { status?: number; stdout?: string };
      if (r.status === 1 && typeof r.stdout === 'string') return r.stdout;
      throw e;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const lines = (t: string): string[] => t.split('\n').slice(0, -1);

test('changes, insertions and deletions anywhere, several at once: the result is the new text, line for line', () => {
  const old = Array.from({ length: 40 }, (_, i) => `row ${i}\t"x"`);
  const next = [...old];
  next[0] = 'row 0\t"changed"';
  next.splice(10, 3);
  next.splice(20, 0, 'inserted a', 'inserted b');
  next[next.length - 1] = 'last changed';
  next.push('appended');
  const oldText = `${old.join('\n')}\n`;
  const newText = `${next.join('\n')}\n`;
  const script = diffE(oldText, newText);
  expect(applyEdScript(lines(oldText), script)).toEqual(next);
  // Into and out of an empty text.
  expect(applyEdScript([], diffE('', newText))).toEqual(next);
  expect(applyEdScript(lines(oldText), diffE(oldText, ''))).toEqual([]);
});

test('anything but a bottom-up diff -e script is refused', () => {
  const old = ['a', 'b', 'c'];
  expect(() => applyEdScript(old, '1c\nx\n')).toThrow(EdScriptError); // no closing "."
  expect(() => applyEdScript(old, '5d\n')).toThrow(/out of order or range/);
  expect(() => applyEdScript(old, '1d\n3d\n')).toThrow(/out of order or range/); // top-down
  expect(() => applyEdScript(old, 's/a/b/\n')).toThrow(/not a diff -e command/);
  expect(() => applyEdScript(old, '2,1d\n')).toThrow(/out of order or range/);
});
