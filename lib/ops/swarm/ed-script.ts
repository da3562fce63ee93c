/**
 * Applies the output of `diff -e OLD NEW` (an ed script) to OLD's lines, giving NEW's: how a manager ships only what
 * changed in the state since the snapshot the operator holds (design.md decision 21). GNU diff writes the commands
 * from the end of the file to its start, so each command's line numbers are those of OLD. Anything else is refused
 * (the caller then also checks NEW's md5).
 */

export class EdScriptError extends Error {}

const COMMAND = /^(\d+)(?:,(\d+))?([acd])$/;

export function applyEdScript(old: readonly string[], script: string): string[] {
  const lines = [...old];
  const cmds = script.split('\n');
  if (cmds.at(-1) === '') cmds.pop();
  // Each command must act above the previous one (bottom-up), or the numbers would no longer be OLD's.
  let below = Infinity;
  let i = 0;
  while (i < cmds.length) {
    const cmd = cmds[i++];
    const m = COMMAND.exec(cmd);
    if (!m) throw new EdScriptError(`not a diff -e command: ${JSON.stringify(cmd.slice(0, 40))}`);
    const from = Number(m[1]);
    const to = m[2] !== undefined ? Number(m[2]) : from;
    const op = m[3];
    const text: string[] = [];
    if (op !== 'd') {
      for (;;) {
        if (i >= cmds.length) throw new EdScriptError('text without its closing "." line');
        const t = cmds[i++];
        if (t === '.') break;
        text.push(t);
      }
    }
    const first = op === 'a' ? from + 1 : from;
    if (to < from || to > lines.length || (op === 'a' ? from < 0 || m[2] !== undefined : from < 1) || to >= below) {
      throw new EdScriptError(`line numbers out of order or range: ${cmd}`);
    }
    below = first;
    if (op === 'a') lines.splice(from, 0, ...text);
    else lines.splice(from - 1, to - from + 1, ...text);
  }
  return lines;
}
