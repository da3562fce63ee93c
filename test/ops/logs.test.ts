import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmError } from '../../lib/errors';
import { LOGS_BYTE_CAP, logs, planLogs } from '../../lib/ops/logs';
import { FakeRunner, makeCtx } from './swarm/harness';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cp-logs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the logs script under bash with a docker stub printing `lines` lines (or failing for an unknown service). */
function runScript(script: string, lines: number, known = true): { stdout: string; calls: string } {
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(
    join(dir, 'bin/docker'),
    `#!/bin/bash\nprintf '%s\\n' "$*" >> "${dir}/calls"\ncase "$1 $2" in\n  "service inspect") ${known ? 'echo id' : 'exit 1'} ;;\n  "service logs") for i in $(seq 1 ${lines}); do echo "2026-11-30T12:00:00Z web.1.x@node    | line $i"; done; echo "to stderr" >&2 ;;\nesac\n`,
  );
  chmodSync(join(dir, 'bin/docker'), 0o755);
  const r = spawnSync('bash', ['-c', script], { env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, TMPDIR: join(dir, 'tmp') }, encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  return { stdout: r.stdout, calls: readFileSync(join(dir, 'calls'), 'utf8') };
}

describe('logs SERVICE: bounded output through the manager runner', () => {
  test('passes --tail and --since to docker, keeps stderr lines, and caps the bytes at the newest end', async () => {
    const s = planLogs({ service: 'demo_web', tail: 5000, since: '10m' });
    const { stdout, calls } = runScript(s, 2000);
    expect(calls).toContain('service logs --timestamps --no-trunc --tail 5000 --since 10m -- demo_web');
    const runner = new FakeRunner(() => ({ stdout }));
    const r = await logs(makeCtx(runner), { service: 'demo_web', tail: 5000, since: '10m' });
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.text)).toBe(LOGS_BYTE_CAP);
    expect(r.text.trimEnd().endsWith('to stderr')).toBe(true);
    expect(r.text).toContain('line 2000');
    expect(r.text).not.toContain('| line 1\n');
    expect(r.totalBytes).toBeGreaterThan(LOGS_BYTE_CAP);
  });

  test('short output is returned whole', async () => {
    const { stdout } = runScript(planLogs({ service: 'demo_web' }), 3);
    const r = await logs(makeCtx(new FakeRunner(() => ({ stdout }))), { service: 'demo_web' });
    expect(r).toMatchObject({ truncated: false });
    expect(r.text.split('\n').filter(Boolean)).toHaveLength(4);
  });

  test('an unknown service is the user\'s error (exit 2)', async () => {
    const { stdout } = runScript(planLogs({ service: 'nope' }), 0, false);
    const err = await logs(makeCtx(new FakeRunner(() => ({ stdout }))), { service: 'nope' }).catch((e) => e);
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as SwarmError).exitCode).toBe(2);
    expect((err as SwarmError).message).toMatch(/no service "nope"/);
  });

  test.each([
    [{ service: 'web;id' }, /SERVICE/],
    [{ service: 'web', tail: 0 }, /--tail: 0 must be/],
    [{ service: 'web', tail: 1.5 }, /--tail/],
    [{ service: 'web', since: '$(id)' }, /--since/],
    [{ service: 'web', since: '10 minutes' }, /--since/],
  ])('bad input %j is refused before any runner call', (opts, message) => {
    expect(() => planLogs(opts)).toThrow(message);
  });

  test('docker timing out is reported as the cluster\'s answer, naming the bound', async () => {
    const runner = new FakeRunner(() => ({ stdout: 'EC2SWARM-LOGS 124 0\n' }));
    await expect(logs(makeCtx(runner), { service: 'web' })).rejects.toThrow(/did not finish within 60 s/);
  });
});

describe('verify names the command to run next', () => {
  test('a short service → `ec2-swarm logs NAME`', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { renderVerify } = require('../../lib/ops/render') as typeof import('../../lib/ops/render');
    const out = renderVerify({
      converged: false,
      elapsedSeconds: 5,
      services: [
        { name: 'demo_ok', mode: 'replicated', desired: 1, running: 1 },
        { name: 'demo_web', mode: 'replicated', desired: 2, running: 0, lastError: 'task: non-zero exit (1)' },
      ],
    } as never);
    expect(out).toContain('next: ec2-swarm logs demo_web --since 10m --tail 50');
  });
});
