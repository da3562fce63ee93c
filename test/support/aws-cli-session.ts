/**
 * The installed AWS CLI for several commands in one Python process (aws-cli-session.py): the entry point and
 * interpreter /usr/bin/aws uses (read from its #! line), so the wire format the stand-ins must speak is the one a
 * host's CLI reads, without ~1.5 CPU-s of Python start-up per command. A test that must prove the executable
 * itself (its process, its files) still runs /usr/bin/aws.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const AWS_CLI = '/usr/bin/aws';

export interface AwsCliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface AwsCliSession {
  /** One `aws ARGS` with exactly `env` (nothing inherited); resolves when it ends, rejects after `timeoutMs`. */
  run(args: string[], env: Record<string, string>, timeoutMs?: number): Promise<AwsCliRun>;
  /** Ends the Python process (bounded: killed after 5 s). */
  close(): Promise<void>;
}

export function startAwsCliSession(): AwsCliSession {
  const python = /^#!\s*(\S+)/.exec(readFileSync(AWS_CLI, 'utf8'))?.[1];
  if (!python) throw new Error(`${AWS_CLI} does not start with #!INTERPRETER`);
  const child: ChildProcessWithoutNullStreams = spawn(python, [join(__dirname, 'aws-cli-session.py')], { env: { PATH: '/usr/bin:/bin' }, stdio: 'pipe' });
  let buffered = '';
  let stderr = '';
  let exited = false;
  const waiting: Array<{ resolve: (r: AwsCliRun) => void; reject: (e: Error) => void }> = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.resolve(JSON.parse(line) as AwsCliRun);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const ended = new Promise<void>((resolve) =>
    child.once('close', (code, signal) => {
      exited = true;
      for (const w of waiting.splice(0)) w.reject(new Error(`the AWS CLI session ended (${signal ?? code}): ${stderr}`));
      resolve();
    }),
  );
  // Commands run one at a time, in order: a queue of one Python process.
  let last: Promise<unknown> = Promise.resolve();
  return {
    run(args, env, timeoutMs = 60_000) {
      const next = last.then(
        () =>
          new Promise<AwsCliRun>((resolve, reject) => {
            if (exited) return reject(new Error(`the AWS CLI session has ended: ${stderr}`));
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              reject(new Error(`aws ${args.join(' ')} did not end within ${timeoutMs} ms`));
            }, timeoutMs);
            waiting.push({
              resolve: (r) => (clearTimeout(timer), resolve(r)),
              reject: (e) => (clearTimeout(timer), reject(e)),
            });
            child.stdin.write(`${JSON.stringify({ args, env })}\n`);
          }),
      );
      last = next.catch(() => undefined);
      return next;
    },
    async close() {
      if (exited) return;
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await ended;
      clearTimeout(timer);
    },
  };
}
