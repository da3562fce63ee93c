/** Lab host options and environment checks: no root needed, nothing is started. */
import { copyFileSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmError } from '../../../lib/errors';
import { startHost } from '../../../lib/lab/ec2/hosts';
import { REQUIRED_TOOLS, checkEnvironment, findExecutable, isStaticElf, labConfig } from '../../../lib/lab/lab-config';

function userError(f: () => unknown): SwarmError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    expect((e as SwarmError).fault).toBe('user');
    expect((e as SwarmError).exitCode).toBe(2);
    return e as SwarmError;
  }
  throw new Error('expected a SwarmError');
}

async function asyncUserError(p: Promise<unknown>): Promise<SwarmError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SwarmError);
  expect((e as SwarmError).fault).toBe('user');
  return e as SwarmError;
}

/** Runs `fn` with the given variables set (undefined: unset), then restores them. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  apply(vars);
  try {
    return fn();
  } finally {
    apply(old);
  }
}

describe('labConfig', () => {
  test('defaults: prefix e2s, hub e2s-hub, bridge 192.168.240.1', () => {
    // A lab identity in the caller's environment (a bench or e2e run of another lab) is not a default.
    const c = withEnv({ EC2_SWARM_LAB_PREFIX: undefined, EC2_SWARM_LAB_NET: undefined }, () => labConfig({ labDir: '/var/tmp/x' }));
    expect(c).toMatchObject({ prefix: 'e2s', net: 240, hubNs: 'e2s-hub', hubAddress: '192.168.240.1', labDir: '/var/tmp/x' });
  });

  test('EC2_SWARM_LAB_DIR sets the default lab dir', () => {
    expect(withEnv({ EC2_SWARM_LAB_DIR: '/var/tmp/from-env' }, () => labConfig().labDir)).toBe('/var/tmp/from-env');
  });

  test.each([
    [{ prefix: 'Bad-' }, 'prefix'],
    [{ prefix: 'waytoolongprefix' }, 'prefix'],
    [{ net: 256 }, 'net'],
    [{ net: 1.5 }, 'net'],
    [{ labDir: 'relative/dir' }, 'labDir'],
    [{ labDir: '/tmp/lab' }, 'labDir'], // hosts get a private /tmp: dockerd would not see its data
    [{ labDir: '/opt/lab' }, 'labDir'],
    [{ labDir: '/var/tmp/' + 'x'.repeat(60) }, 'labDir'],
  ])('%j is refused naming %s', (opts, field) => {
    const e = userError(() => labConfig(opts as never));
    expect(e.message).toContain(`→ at ${field}`);
  });

  test('a lab dir below a masked path says why', () => {
    expect(userError(() => labConfig({ labDir: '/tmp/lab' })).message).toMatch(/must not be below .*\/tmp/);
  });
});

describe('startHost options are validated before anything is created', () => {
  const base = { labDir: '/var/tmp/d1t-never-created', prefix: 'd1n' };
  test.each([
    [{ index: -1 }, 'index'],
    [{ index: 0, hostname: 'bad_name!' }, 'hostname'],
    [{ index: 0, extraHosts: [{ ip: 'not-an-ip', names: ['ssm.eu-west-1.amazonaws.com'] }] }, 'extraHosts[0].ip'],
    [{ index: 0, extraHosts: [{ ip: '192.168.240.1', names: ['bad name'] }] }, 'extraHosts[0].names[0]'],
    [{ index: 0, optFiles: [{ path: '/etc/passwd', content: 'x' }] }, 'optFiles[0].path'],
    [{ index: 0, optFiles: [{ path: '/opt/../etc/passwd', content: 'x' }] }, 'optFiles[0].path'],
    [{ index: 0, optFiles: [{ path: 'aws/bin/cfn-signal', content: 'x', mode: 0o17777 }] }, 'optFiles[0].mode'],
  ])('%j is refused naming %s', async (opts, field) => {
    const e = await asyncUserError(startHost({ ...base, ...(opts as { index: number }) }));
    expect(e.message).toContain(`→ at ${field}`);
  });
});

describe('checkEnvironment', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'd1t-env-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('names everything missing: root, each tool with its Debian package, the cgroup layout', () => {
    const cg = join(dir, 'cgroup');
    mkdirSync(cg);
    let err: unknown;
    try {
      checkEnvironment({ isRoot: false, path: join(dir, 'empty-bin'), cgroupRoot: cg });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwarmError);
    const e = err as SwarmError;
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('must run as root');
    expect(e.message).toContain('dockerd, docker (Debian package docker.io)');
    expect(e.message).toContain('nsenter, unshare (Debian package util-linux)');
    expect(e.message).toContain('ip (Debian package iproute2)');
    expect(e.message).toContain('busybox (Debian package busybox-static)');
    expect(e.message).toContain('apt-get install -y docker.io util-linux');
    expect(e.message).toContain('cgroup layout unexpected');
  });

  test('a dynamically linked busybox is refused (the image has no libc)', () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const t of Object.keys(REQUIRED_TOOLS)) {
      const real = findExecutable(t, process.env.PATH + ':/usr/sbin:/usr/bin:/sbin:/bin');
      if (real && t !== 'busybox') symlinkSync(real, join(bin, t));
    }
    copyFileSync(findExecutable('ls', '/usr/bin:/bin')!, join(bin, 'busybox'));
    expect(isStaticElf(join(bin, 'busybox'))).toBe(false);
    expect(() => checkEnvironment({ isRoot: true, path: bin, cgroupRoot: '/sys/fs/cgroup' })).toThrow(/busybox-static.*dynamically linked|dynamically linked.*busybox-static/s);
  });

  test('a non-ELF file is not a static busybox', () => {
    writeFileSync(join(dir, 'busybox'), '#!/bin/sh\n');
    expect(isStaticElf(join(dir, 'busybox'))).toBe(false);
  });
});
