/**
 * The node scripts as user-data carries them: full-line comments dropped, then gzip'd and base64'd, unpacked on the
 * instance by `base64 -d | gzip -dc | bash`. The managers' scripts (~30 KB with the reconciler) would not fit EC2's
 * 16 KB user-data limit otherwise. Deterministic (gzip without a timestamp): same scripts, same template.
 */
import { gzipSync } from 'node:zlib';
import { HEREDOC_DELIMITER } from './heredoc';

/** `<<WORD`, `<<-WORD`, `<<'WORD'`, `<<"WORD"`; not `<<<` (a here-string) nor `x << 2` (a shift). */
const HEREDOC_START = /(?<!<)<<(?!<)(-?)\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\2/g;

/**
 * Drops full-line comments (keeping the `#!` line) outside here-documents: they carry no behaviour on an instance.
 * Lines inside a here-document are data and are kept as they are.
 */
export function stripComments(script: string): string {
  const out: string[] = [];
  const pending: Array<{ word: string; tabs: boolean }> = [];
  script.split('\n').forEach((line, i) => {
    if (pending.length > 0) {
      out.push(line);
      const end = pending[0];
      if ((end.tabs ? line.replace(/^\t+/, '') : line) === end.word) pending.shift();
      return;
    }
    if (/^\s*#/.test(line) && !(i === 0 && line.startsWith('#!'))) return;
    out.push(line);
    for (const m of line.matchAll(HEREDOC_START)) pending.push({ word: m[3], tabs: m[1] === '-' });
  });
  return out.join('\n');
}

/** A bash program that writes each file through a quoted heredoc. */
export function installerScript(files: ReadonlyArray<{ path: string; text: string }>): string {
  const parts = ['set -euo pipefail'];
  for (const f of files) {
    const body = f.text.endsWith('\n') ? f.text : `${f.text}\n`;
    parts.push(`cat > ${f.path} <<'${HEREDOC_DELIMITER}'\n${body}${HEREDOC_DELIMITER}`);
  }
  return `${parts.join('\n')}\n`;
}

/**
 * gzip (level 9, no timestamp) then base64 on one line: `base64 -d` needs no line breaks, and 76-column lines cost
 * one byte in 77 of the 16 KB (~190 bytes of the manager's, room a user's additions can use).
 */
export function packForUserData(text: string): string {
  return gzipSync(Buffer.from(text, 'utf8'), { level: 9 }).toString('base64');
}
