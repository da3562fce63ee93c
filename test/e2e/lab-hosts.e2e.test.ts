/**
 * Lab hosts for real: namespaces, holders, dockerd, the image, a two-node swarm, fault injection and teardown.
 * End-to-end (real dockerd, ~25 CPU-s: too much for the unit suite, issue 9 item 9). Needs root and the lab's
 * Debian packages (skipped otherwise, with a note). Own prefixes (d1t…/d1f… + PID, so concurrent runs do not
 * collide) and nets 192.168.232-234.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmError } from '../../lib/errors';
import {
  LAB_IMAGE,
  LabHost,
  checkEnvironment,
  createNetwork,
  cutLink,
  execInHost,
  loadImage,
  recordedHosts,
  restoreLink,
  startDocker,
  startHost,
  startProcessInHub,
  stopDocker,
  teardown,
} from '../../lib/lab/ec2/hosts';
import { isAlive, processStartTime, readResources } from '../../lib/lab/resources';

function canRunLab(): boolean {
  try {
    checkEnvironment();
    return true;
  } catch (e) {
    console.warn(`skipping lab host tests: ${(e as Error).message}`);
    return false;
  }
}
const describeLab = canRunLab() ? describe : describe.skip;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

function netnsWithPrefix(prefix: string): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`${prefix}-`)) : [];
}

function cgroupDirsWithPrefix(prefix: string): string[] {
  const out: string[] = [];
  for (const c of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const d of readdirSync(join('/sys/fs/cgroup', c))) if (d.startsWith(`${prefix}-`)) out.push(join('/sys/fs/cgroup', c, d));
    } catch {
      // a file, not a controller
    }
  }
  return out;
}

/** Every PID living in a lab namespace or recorded, with its start time: all must be gone after teardown. */
function labProcesses(labDir: string, prefix: string): { pid: number; startTime?: string }[] {
  const r = readResources(labDir);
  const procs: { pid: number; startTime?: string }[] = (r?.processes ?? []).map((p) => ({ pid: p.pid, startTime: p.startTime }));
  const nsInodes = new Set<string>();
  for (const ns of netnsWithPrefix(prefix)) {
    try {
      nsInodes.add(String(statSync(`/run/netns/${ns}`).ino));
    } catch {
      // gone
    }
  }
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const ino = String(statSync(`/proc/${e}/ns/net`).ino);
      if (nsInodes.has(ino)) procs.push({ pid: Number(e), startTime: processStartTime(Number(e)) });
    } catch {
      // exited
    }
  }
  return procs;
}

function expectNothingLeft(labDir: string, prefix: string, before: { pid: number; startTime?: string }[]): void {
  expect(netnsWithPrefix(prefix)).toEqual([]);
  expect(before.filter(isAlive).map((p) => p.pid)).toEqual([]);
  expect(cgroupDirsWithPrefix(prefix)).toEqual([]);
  expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(labDir))).toEqual([]);
  expect(existsSync(join(labDir, 'resources.json'))).toBe(false);
  expect(existsSync(join(labDir, `${prefix}-h0`))).toBe(false);
}

const run = process.pid % 100_000;

describeLab('a lab of two hosts', () => {
  const P = `d1t${run}`;
  const labDir = `/var/tmp/ec2-swarm-${P}`;
  const lab = { labDir, prefix: P, net: 232 };
  const ssmName = 'ssm.eu-west-1.amazonaws.com';
  const cfnSignal = '#!/bin/sh\necho "signal $*"\n';
  const machineHosts = readFileSync('/etc/hosts', 'utf8');
  let a: LabHost;
  let b: LabHost;

  beforeAll(async () => {
    const t0 = Date.now();
    await createNetwork({ ...lab, hosts: 2 });
    const common = {
      ...lab,
      extraHosts: [{ ip: '192.168.232.1', names: [ssmName] }],
      optFiles: [{ path: '/opt/aws/bin/cfn-signal', content: cfnSignal, mode: 0o755 }],
    };
    [a, b] = await Promise.all([startHost({ ...common, index: 0 }), startHost({ ...common, index: 1, hostname: 'worker-1' })]);
    await loadImage([a, b]);
    console.log(`lab of 2 hosts up (network, dockerds, image) in ${Date.now() - t0} ms`);
  }, 120_000);

  afterAll(async () => {
    await teardown(labDir).catch(() => teardown(labDir)); // always clean, even if a test failed
    rmSync(labDir, { recursive: true, force: true });
  }, 120_000);

  const sh = (h: LabHost, script: string, opts: Parameters<typeof execInHost>[2] = {}) =>
    execInHost(h, ['sh', '-c', script], { cleanEnv: true, timeoutMs: 20_000, ...opts });

  test('each host has its own dockerd, named by the host name', async () => {
    const names = await Promise.all([a, b].map((h) => sh(h, 'hostname; docker info --format "{{.Name}}"')));
    expect(names.map((r) => r.exitCode)).toEqual([0, 0]);
    expect(names[0].stdout).toBe(`${P}-h0\n${P}-h0\n`);
    expect(names[1].stdout).toBe('worker-1\nworker-1\n');
    // swarm tasks must not try to pull (no registry): the daemon runs with the offline-image switch
    expect(readFileSync(`/proc/${a.dockerdPid}/environ`, 'utf8').split('\0')).toContain('DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1');
    expect(readFileSync(`/proc/${a.dockerdPid}/cmdline`, 'utf8').split('\0').join(' ')).toContain(`--cgroup-parent /${P}-h0`);
  });

  test('another process finds the hosts in the record and can run commands in them', async () => {
    const found = recordedHosts(labDir).sort((x, y) => x.index - y.index);
    expect(found.map((h) => [h.ns, h.address, h.holderPid])).toEqual([
      [`${P}-h0`, '192.168.232.10', a.holderPid],
      [`${P}-h1`, '192.168.232.11', b.holderPid],
    ]);
    expect((await execInHost(found[1], ['hostname'])).stdout).toBe('worker-1\n');
  });

  test('/opt is private per host and pre-populated; nothing appears on the machine', async () => {
    const probe = `/opt/${P}-probe`;
    expect((await sh(a, `echo a > ${probe}`)).exitCode).toBe(0);
    expect((await sh(a, `cat ${probe}`)).stdout).toBe('a\n');
    expect((await sh(b, `test -e ${probe}`)).exitCode).toBe(1);
    expect(existsSync(probe)).toBe(false);
    const signal = await sh(b, '/opt/aws/bin/cfn-signal -e 0 && stat -c %a /opt/aws/bin/cfn-signal');
    expect(signal.stdout).toBe('signal -e 0\n755\n');
    expect(existsSync('/opt/aws/bin/cfn-signal') && readFileSync('/opt/aws/bin/cfn-signal', 'utf8') === cfnSignal).toBe(false);
  });

  test('/etc/hosts maps the extra names; the machine\'s /etc/hosts is unchanged', async () => {
    const r = await sh(a, `grep -F ${ssmName} /etc/hosts`);
    expect(r.stdout).toBe(`192.168.232.1\t${ssmName}\n`);
    expect(readFileSync('/etc/hosts', 'utf8')).toBe(machineHosts);
  });

  test('no default route (nothing can leave); 169.254.169.254 is on-link via eth0', async () => {
    const routes = (await sh(a, 'ip route')).stdout;
    expect(routes).not.toMatch(/^default/m);
    expect(routes).toMatch(/^169\.254\.169\.254 dev eth0 scope link/m);
    expect(routes).toMatch(/^192\.168\.232\.0\/24 dev eth0 .*src 192\.168\.232\.10/m);
    const outside = await sh(a, 'ip route get 1.1.1.1'); // a route lookup only: no packet is sent
    expect(outside.exitCode).not.toBe(0);
    expect(outside.stderr).toMatch(/unreachable/i);
  });

  test('a process started in the hub answers the hosts at 169.254.169.254 (where the gateway serves IMDS)', async () => {
    const www = join(labDir, 'www');
    mkdirSync(join(www, 'latest'), { recursive: true });
    writeFileSync(join(www, 'latest', 'probe'), 'from-the-hub\n');
    const httpd = startProcessInHub(['busybox', 'httpd', '-f', '-p', '169.254.169.254:80', '-h', www], {
      ...lab,
      label: 'test-httpd',
      logFile: join(labDir, 'logs', 'httpd.log'),
    });
    expect(readResources(labDir)?.processes.some((p) => p.pid === httpd.pid && p.role === 'helper')).toBe(true);
    for (const h of [a, b]) {
      const body = await until('the hub httpd', 10_000, async () => {
        const r = await sh(h, 'curl -s --max-time 2 http://169.254.169.254/latest/probe');
        return r.exitCode === 0 ? r.stdout : undefined;
      });
      expect(body).toBe('from-the-hub\n');
    }
  });

  test('local/busybox:latest is the same image on both hosts and runs containers', async () => {
    const ids = await Promise.all([a, b].map((h) => sh(h, `docker image inspect --format '{{.Id}}' ${LAB_IMAGE}`)));
    expect(ids[0].exitCode).toBe(0);
    expect(ids[0].stdout).toMatch(/^sha256:/);
    expect(ids[1].stdout).toBe(ids[0].stdout);
    const run = await sh(b, `docker run --rm ${LAB_IMAGE} echo hello-from-busybox`, { timeoutMs: 30_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('hello-from-busybox\n');
  });

  test('execInHost: argv, env, stdin, exit code; cleanEnv keeps the caller\'s environment out', async () => {
    process.env.D1T_LEAK = 'leaked';
    try {
      const r = await execInHost(a, ['sh', '-c', 'echo "$FOO ${D1T_LEAK:-clean}"; cat; exit 7', 'ignored-arg0'], {
        cleanEnv: true,
        env: { FOO: "it's $(not) expanded" },
        stdin: 'from-stdin\n',
      });
      expect(r).toMatchObject({ exitCode: 7, stdout: "it's $(not) expanded clean\nfrom-stdin\n", timedOut: false });
      expect((await execInHost(a, ['sh', '-c', 'echo ${D1T_LEAK:-clean}'])).stdout).toBe('leaked\n');
    } finally {
      delete process.env.D1T_LEAK;
    }
  });

  test('execInHost timeout kills the whole process group, background children included', async () => {
    const t0 = Date.now();
    const r = await sh(a, 'sleep 30 & echo $! > /tmp/bg; sleep 30', { timeoutMs: 700 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(137);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const bg = Number((await sh(a, 'cat /tmp/bg')).stdout);
    expect(bg).toBeGreaterThan(0);
    await until('the background sleep to die', 3_000, async () => (isAlive({ pid: bg }) ? undefined : true));
  });

  test('the hosts form a swarm: init on one, join on the other (token only via stdin), 2 nodes Ready', async () => {
    const init = await sh(a, 'docker swarm init --advertise-addr 192.168.232.10 --listen-addr 192.168.232.10:2377 >/dev/null', { timeoutMs: 30_000 });
    expect(init.stderr).toBe('');
    const token = (await sh(a, 'docker swarm join-token -q worker')).stdout.trim();
    expect(token).toMatch(/^SWMTKN-/);
    const body = JSON.stringify({ ListenAddr: '192.168.232.11:2377', AdvertiseAddr: '192.168.232.11', RemoteAddrs: ['192.168.232.10:2377'], JoinToken: token });
    const join = await execInHost(
      b,
      ['curl', '-sS', '--fail-with-body', '--unix-socket', '/var/run/docker.sock', '-H', 'Content-Type: application/json', '-d', '@-', 'http://localhost/v1.41/swarm/join'],
      { cleanEnv: true, stdin: body, timeoutMs: 30_000 },
    );
    expect(join.exitCode).toBe(0);
    const ready = await until('2 Ready nodes', 30_000, async () => {
      const r = await sh(a, "docker node ls --format '{{.Hostname}} {{.Status}}'");
      const lines = r.stdout.trim().split('\n').sort();
      return lines.length === 2 && lines.every((l) => l.endsWith(' Ready')) ? lines : undefined;
    });
    expect(ready).toEqual([`${P}-h0 Ready`, 'worker-1 Ready']);
  }, 60_000);

  test('cutLink takes a node Down, restoreLink brings it back Ready', async () => {
    const status = async (): Promise<string> => (await sh(a, "docker node inspect worker-1 --format '{{.Status.State}}'")).stdout.trim();
    await cutLink(b);
    expect((await sh(b, 'cat /sys/class/net/eth0/carrier')).stdout).toBe('0\n');
    await until('worker-1 down', 40_000, async () => ((await status()) === 'down' ? true : undefined));
    await restoreLink(b);
    await until('worker-1 ready again', 40_000, async () => ((await status()) === 'ready' ? true : undefined));
  }, 90_000);

  test('stopDocker stops only dockerd (the host lives on); startDocker brings it back', async () => {
    const oldPid = b.dockerdPid!;
    await stopDocker(b);
    expect(isAlive({ pid: oldPid })).toBe(false);
    const r = await sh(b, 'hostname; docker info >/dev/null 2>&1 || echo docker-down');
    expect(r.stdout).toBe('worker-1\ndocker-down\n');
    b = await startDocker(b);
    expect(b.dockerdPid).not.toBe(oldPid);
    expect((await sh(b, "docker info --format '{{.Swarm.LocalNodeState}}'")).stdout).toBe('active\n');
  }, 60_000);

  test('teardown leaves nothing: namespaces, processes, cgroups, mounts, data dirs; a second teardown is a no-op', async () => {
    expect(cgroupDirsWithPrefix(P).length).toBeGreaterThan(0); // the container run above made some
    const before = labProcesses(labDir, P);
    expect(before.length).toBeGreaterThanOrEqual(6); // 2 holders, 2 dockerd, 2 containerd, httpd…
    const report = await teardown(labDir);
    expect([...report.deletedNetns].sort()).toEqual([`${P}-h0`, `${P}-h1`, `${P}-hub`]);
    expectNothingLeft(labDir, P, before);
    expect((await teardown(labDir)).recorded).toBe(false);
  }, 60_000);
});

describeLab('a host whose dockerd fails to start', () => {
  const P = `d1f${run}`;
  const labDir = `/var/tmp/ec2-swarm-${P}`;
  const lab = { labDir, prefix: P, net: 233 };

  afterAll(async () => {
    await teardown(labDir).catch(() => teardown(labDir));
    rmSync(labDir, { recursive: true, force: true });
  }, 60_000);

  test('start fails with the daemon\'s own words, and teardown still removes everything', async () => {
    await createNetwork({ ...lab, hosts: 1 });
    const err = await startHost({ ...lab, index: 0, dockerdArgs: ['--no-such-flag'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as SwarmError).code).toBe('LAB_DOCKERD_FAILED');
    expect((err as SwarmError).message).toContain('unknown flag: --no-such-flag');
    const before = labProcesses(labDir, P);
    expect(before.some(isAlive)).toBe(true); // the holder is still there
    await teardown(labDir);
    expectNothingLeft(labDir, P, before);
  }, 60_000);

  test('a second lab cannot take over namespaces that are not its own', async () => {
    await createNetwork({ ...lab, hosts: 1 });
    const other = `/var/tmp/ec2-swarm-d1g${run}`;
    try {
      const err = await createNetwork({ labDir: other, prefix: P, net: 234, hosts: 1 }).catch((e: unknown) => e);
      expect((err as SwarmError).code).toBe('LAB_NETNS_EXISTS');
      expect((err as SwarmError).message).toContain('not this lab');
      await teardown(other); // nothing recorded there: must not touch the first lab's namespaces
      expect(netnsWithPrefix(P).sort()).toEqual([`${P}-h0`, `${P}-hub`]);
    } finally {
      rmSync(other, { recursive: true, force: true });
      await teardown(labDir);
    }
    expect(netnsWithPrefix(P)).toEqual([]);
  }, 60_000);
});
