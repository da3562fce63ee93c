/**
 * The one script builder (decision 5/6): every script ops run on a node is assembled here. Constant text is
 * written by ops code; every value is passed as an interpolation of `sh` and single-quoted by `shQuote`;
 * files and free-form values travel base64-encoded and are decoded on the host, never interpolated raw.
 */

/** Marks text that is already shell (constant, written by ops code), so `sh` inserts it unquoted. */
export class RawShell {
  constructor(public readonly text: string) {}
}

export function raw(text: string): RawShell {
  return new RawShell(text);
}

/** POSIX single quoting: the only way values enter a script. NUL cannot be passed in argv at all. */
export function shQuote(value: string | number): string {
  const s = String(value);
  if (s.includes('\0')) throw new Error('shQuote: NUL byte cannot be passed to a shell');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

type ShValue = string | number | RawShell | readonly (string | number)[];

/**
 * Tagged template: `sh\`docker service scale --detach ${pairs}\`` → each value single-quoted, arrays become
 * several quoted words, RawShell is inserted as written.
 */
export function sh(strings: TemplateStringsArray, ...values: ShValue[]): string {
  let out = strings[0];
  values.forEach((v, i) => {
    if (v instanceof RawShell) out += v.text;
    else if (Array.isArray(v)) out += v.map((x) => shQuote(x)).join(' ');
    else out += shQuote(v as string | number);
    out += strings[i + 1];
  });
  return out;
}

export function toBase64(content: string | Buffer): string {
  return Buffer.from(content).toString('base64');
}

/** Shell that decodes base64 into a new variable, byte for byte (the `x` guard keeps trailing newlines). */
export function decodeToVar(varName: string, content: string | Buffer): string {
  assertShellIdentifier(varName);
  return `${varName}=$(printf '%s' ${shQuote(toBase64(content))} | base64 -d; printf x); ${varName}=\${${varName}%x}`;
}

/** Shell that decodes base64 into a new private temporary file whose path is in `varName`. */
export function decodeToFile(varName: string, content: string | Buffer): string {
  assertShellIdentifier(varName);
  return `${varName}=$(mktemp "$EC2SWARM_TMP/f.XXXXXXXX")\nprintf '%s' ${shQuote(toBase64(content))} | base64 -d > "$${varName}"`;
}

function assertShellIdentifier(name: string): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a shell variable name: ${name}`);
}

/**
 * The common preamble: strict mode, a private temporary directory removed on exit, docker's CLI hints off.
 * Runs as root on the manager via SSM (or under the lab's runner): the same text in both.
 */
export const PREAMBLE = [
  '#!/bin/bash',
  'set -euo pipefail',
  'export DOCKER_CLI_HINTS=false',
  'umask 077',
  'EC2SWARM_TMP=$(mktemp -d)',
  "trap 'rm -rf \"$EC2SWARM_TMP\"' EXIT",
].join('\n');

/** Builds a script from body parts under the common preamble. */
export function script(...parts: string[]): string {
  return [PREAMBLE, ...parts].join('\n') + '\n';
}
