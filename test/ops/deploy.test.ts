import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { deploy, planDeploy } from '../../lib/ops/deploy';
import { scale } from '../../lib/ops/scale';
import { BashRunner, FakeRunner, StubHost, makeCtx, queryStdout, fixture } from './swarm/harness';
import { QUERY_MAGIC } from '../../lib/ops/swarm/query-script';

/** Payloads that would run a command if they ever reached the shell unquoted. */
const NASTY = [
  `'; touch MARK; '`,
  `"; touch MARK; "`,
  '$(touch MARK)',
  '`touch MARK`',
  'a\nb; touch MARK\n',
  '\\\'; touch MARK #',
  '${IFS}touch${IFS}MARK',
  ' leading and trailing spaces \t',
  'ünïcødé ✓ \x01\x7f',
];

let dir: string;
let host: StubHost;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'c2-deploy-'));
  host = new StubHost();
});
afterEach(() => {
  host.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function mark(): string {
  return join(host.dir, 'MARK');
}
function spec(doc: unknown): string {
  const f = join(dir, 'services.yml');
  writeFileSync(f, JSON.stringify(doc));
  return f;
}
const withMark = (s: string): string => s.replace(/MARK/g, mark());

describe('deploy: bad input is rejected before any runner call (exit 2)', () => {
  const bad: [string, unknown][] = [
    ['service name with ;', { services: [{ name: 'web;touch x', image: 'nginx' }] }],
    ['service name with $( )', { services: [{ name: '$(id)', image: 'nginx' }] }],
    ['service name with a newline', { services: [{ name: 'web\nx', image: 'nginx' }] }],
    ['service name with a dot (Docker forbids it)', { services: [{ name: 'web.1', image: 'nginx' }] }],
    ['image with ;', { services: [{ name: 'web', image: 'nginx;touch x' }] }],
    ['image with backticks', { services: [{ name: 'web', image: 'nginx`id`' }] }],
    ['image with a space', { services: [{ name: 'web', image: 'nginx --privileged' }] }],
    ['env key with $', { services: [{ name: 'web', image: 'nginx', env: { 'A$(id)': 'x' } }] }],
    ['constraint with a newline', { services: [{ name: 'web', image: 'nginx', constraints: ['node.role==worker\ntouch x'] }] }],
    ['replicas with mode global', { services: [{ name: 'web', image: 'nginx', mode: 'global', replicas: 2 }] }],
    ['unknown field', { services: [{ name: 'web', image: 'nginx', privileged: true }] }],
  ];
  test.each(bad)('%s', async (_what, doc) => {
    const runner = new FakeRunner(() => ({}));
    const err = await deploy(makeCtx(runner), { file: spec(doc) }).catch((e) => e);
    expect(err).toMatchObject({ fault: 'user', exitCode: 2 });
    expect(err.message).toMatch(/services\[0\]|services\.0/);
    expect(runner.calls).toHaveLength(0);
  });

  test.each([`x'; touch y; '`, 'a b', 'My-Stack', '-rf', '$(id)', 'a\nb', ''])('stack name %j', async (name) => {
    const f = join(dir, 'docker-compose.yml');
    writeFileSync(f, 'services:\n  web:\n    image: nginx\n');
    const runner = new FakeRunner(() => ({}));
    await expect(deploy(makeCtx(runner), { file: f, name })).rejects.toMatchObject({ fault: 'user', code: 'INVALID_STACK_NAME' });
    expect(runner.calls).toHaveLength(0);
  });
});

describe('deploy: free-form values are delivered literally, never executed (script run by bash, docker stubbed)', () => {
  test('env values and command words reach docker as the exact argv', async () => {
    const env = Object.fromEntries(NASTY.map((v, i) => [`V${i}`, withMark(v)]));
    const command = NASTY.map(withMark);
    const runner = new BashRunner(host);
    await deploy(makeCtx(runner), { file: spec({ services: [{ name: 'web', image: 'nginx:1.27', replicas: 2, env, command, constraints: ['node.labels.zone==eu west'] }] }), resolveImage: 'never' });
    const create = host.calls().find((a) => a[0] === 'service' && a[1] === 'create')!;
    for (const [k, v] of Object.entries(env)) expect(create).toContain(`${k}=${v}`);
    // The command words follow the image, one argv element each.
    expect(create.slice(create.indexOf('nginx:1.27') + 1)).toEqual(command);
    expect(create).toContain('node.labels.zone==eu west');
    expect(create).toContain('--no-resolve-image');
    expect(existsSync(mark())).toBe(false);
  });

  test('update of an existing service: same values through --env-add, stale settings removed', async () => {
    host.write('names', 'web\n');
    host.write('inspect', 'A\nOLD\n'); // what the service has now (env keys; same answer for every inspect)
    const runner = new BashRunner(host);
    const v = withMark(NASTY[2]);
    await deploy(makeCtx(runner), { file: spec({ services: [{ name: 'web', image: 'nginx:1.28', env: { A: v } }] }) });
    const update = host.calls().find((a) => a[0] === 'service' && a[1] === 'update')!;
    expect(update).toEqual(expect.arrayContaining(['--image', 'nginx:1.28', '--env-add', `A=${v}`, '--env-rm', 'OLD']));
    expect(update.flatMap((a, i) => (a === '--env-rm' ? [update[i + 1]] : []))).toEqual(['OLD']);
    expect(update.at(-1)).toBe('web');
    expect(host.calls().some((a) => a[0] === 'service' && a[1] === 'create')).toBe(false);
    expect(existsSync(mark())).toBe(false);
  });

  test('a compose value arrives exactly, whatever it contains (resolved locally, $ re-escaped for the manager)', async () => {
    const app = join(dir, 'My App!');
    mkdirSync(app);
    const value = withMark("'; $$(touch MARK) `touch MARK` \\\" EOF");
    const content = `services:\n  web:\n    image: nginx\n    environment:\n      X: "${value}"\n# ${withMark('$(touch MARK)')}\n`;
    writeFileSync(join(app, 'docker-compose.yml'), content);
    const r = await deploy(makeCtx(new BashRunner(host)), { file: join(app, 'docker-compose.yml'), resolveImage: 'never' });
    expect(r).toMatchObject({ kind: 'stack', name: 'myapp', services: ['myapp_web'] });
    const call = host.calls().find((a) => a[0] === 'stack')!;
    expect(call).toEqual(['stack', 'deploy', '--with-registry-auth', '--resolve-image', 'never', '-c', expect.any(String), 'myapp']);
    // The resolved file keeps `$$` (docker interpolates again on the manager and turns it into one `$`).
    const shipped = parseYaml(readFileSync(join(host.dir, 'compose-copy'), 'utf8'));
    expect(shipped.services.web.environment.X).toBe(value.replace('\\"', '"'));
    expect(existsSync(mark())).toBe(false);
  });
});

describe('deploy: file kinds and options', () => {
  test('compose detected by a services mapping; spec by a services list; --name overrides the directory', () => {
    const c = join(dir, 'stack.yml');
    writeFileSync(c, 'services:\n  api:\n    image: nginx\n');
    expect(planDeploy({ file: c, name: 'prod' })).toMatchObject({ kind: 'stack', stack: 'prod', services: ['prod_api'] });
    expect(planDeploy({ file: spec({ services: [{ name: 'api', image: 'nginx' }] }) })).toMatchObject({ kind: 'services', services: ['api'] });
  });

  test('a directory that normalises to nothing asks for --name', () => {
    const d = join(dir, '__');
    mkdirSync(d);
    writeFileSync(join(d, 'compose.yaml'), 'services:\n  a:\n    image: nginx\n');
    expect(() => planDeploy({ file: join(d, 'compose.yaml') })).toThrow(/pass --name/);
  });

  test('--wait verifies the deployed services and reports them short with the task error', async () => {
    const runner = new FakeRunner((script) => (script.includes(QUERY_MAGIC) ? { stdout: queryStdout(fixture('query-basic.txt')) } : { stdout: 'EC2SWARM-CREATED broken\n' }));
    const r = await deploy(makeCtx(runner), { file: spec({ services: [{ name: 'broken', image: 'local/nosuch:1', replicas: 2 }] }), wait: true, timeoutSeconds: 4 });
    expect(r.verify?.converged).toBe(false);
    expect(r.verify?.services).toEqual([expect.objectContaining({ name: 'broken', desired: 2, running: 0, lastError: 'No such image: local/nosuch:1' })]);
    // one deploy call, then one query per poll (t=0, 2, 4)
    expect(runner.calls).toHaveLength(4);
  });
});

describe('scale', () => {
  test.each([[{ 'web;id': 2 }], [{ web: -1 }], [{ web: 1.5 }], [{ web: 1e9 }], [{}]])('rejects %j before any runner call', async (targets) => {
    const runner = new FakeRunner(() => ({}));
    await expect(scale(makeCtx(runner), { targets, timeoutSeconds: 1 })).rejects.toMatchObject({ fault: 'user' });
    expect(runner.calls).toHaveLength(0);
  });

  test('one script scales every service, then verify looks at those services only', async () => {
    host.write('names', 'web\npinned\n');
    const bash = new BashRunner(host);
    const runner = new FakeRunner(() => ({}));
    const ctx = makeCtx({
      run: async (ids, script, o) => (script.includes(QUERY_MAGIC) ? runner.run(ids, script, o).then((r) => r.map((x) => ({ ...x, stdout: queryStdout(fixture('query-basic.txt')) }))) : bash.run(ids, script, o)),
    });
    const r = await scale(ctx, { targets: { web: 3, pinned: 2 }, timeoutSeconds: 0 });
    expect(host.calls().find((a) => a[1] === 'scale')).toEqual(['service', 'scale', '--detach', 'web=3', 'pinned=2']);
    expect(r.converged).toBe(true);
    expect(r.services.map((s) => s.name)).toEqual(['pinned', 'web']);
  });

  test('an unknown service is the user\'s mistake', async () => {
    host.write('names', 'web\n');
    await expect(scale(makeCtx(new BashRunner(host)), { targets: { webb: 1 }, timeoutSeconds: 0 })).rejects.toMatchObject({ code: 'SERVICE_NOT_FOUND', fault: 'user' });
  });
});

describe('deploy failures: who is at fault, and what a failed deploy left', () => {
  const rejected: [string, string][] = [
    ['a constraint value with a quote', `Error response from daemon: rpc error: code = Unknown desc = value '"wor' is invalid`],
    ['a constraint without operator', 'failed to create service x_web: Error response from daemon: rpc error: code = Unknown desc = constraint expected one operator from ==, !='],
    ['an image reference with ;', 'Error response from daemon: rpc error: code = InvalidArgument desc = ContainerSpec: "local/busybox;x" is not a valid repository/tag'],
    ['an unescaped $( ) in compose', 'invalid interpolation format for services.web.command: "echo $(id)"; you may need to escape any $ with another $'],
    ['a compose schema error', 'services.web.deploy.replicas must be a integer'],
  ];
  test.each(rejected)('Docker rejected the input (%s) → exit 2 with Docker\'s message', async (_what, stderr) => {
    const runner = new FakeRunner(() => ({ exitCode: 1, stderr: `${stderr}\n` }));
    const err = await deploy(makeCtx(runner), { file: spec({ services: [{ name: 'web', image: 'nginx:1.27' }] }) }).catch((e) => e);
    expect(err).toMatchObject({ fault: 'user', exitCode: 2, code: 'DOCKER_REJECTED_INPUT' });
    expect(err.message).toContain('Docker rejected the input');
  });

  test('a cluster failure stays exit 1; a failed stack deploy lists what it left and how to remove it', async () => {
    const f = join(dir, 'app', 'docker-compose.yml');
    mkdirSync(join(dir, 'app'));
    writeFileSync(f, 'services:\n  web:\n    image: nginx\n');
    const runner = new FakeRunner(() => ({ exitCode: 1, stderr: 'failed to create service app_web: Error response from daemon: rpc error: code = Unavailable desc = the swarm does not have a leader\n', stdout: 'EC2SWARM-LEFT network app_default\n' }));
    const err = await deploy(makeCtx(runner), { file: f }).catch((e) => e);
    expect(err).toMatchObject({ fault: 'cluster', exitCode: 1 });
    expect(err.message).toMatch(/left behind by the failed deploy: network app_default \(remove with `docker stack rm app` or `ec2-swarm teardown`\)/);
  });

  test("Docker's warnings are shown, its --detach notes are not", async () => {
    const f = join(dir, 'app2', 'docker-compose.yml');
    mkdirSync(join(dir, 'app2'));
    writeFileSync(f, 'services:\n  web:\n    image: nginx\n');
    const runner = new FakeRunner(() => ({
      stdout: 'EC2SWARM-WARN Ignoring unsupported options: build, restart\nEC2SWARM-WARN Since --detach=false was not specified, tasks will be created in the background.\n',
    }));
    const ctx = makeCtx(runner);
    const r = await deploy(ctx, { file: f });
    expect(r.warnings).toEqual(['Ignoring unsupported options: build, restart']);
    expect(ctx.reporter.lines).toContain('warn docker: Ignoring unsupported options: build, restart');
  });

  test('the compose script keeps Docker\'s stderr and reports what is left when the stack deploy fails (bash, docker stubbed)', () => {
    const f = join(dir, 'app3', 'docker-compose.yml');
    mkdirSync(join(dir, 'app3'));
    writeFileSync(f, 'services:\n  web:\n    image: nginx\n');
    const plan = planDeploy({ file: f });
    expect(plan.script).toContain('docker stack deploy');
    expect(plan.script).toMatch(/EC2SWARM-LEFT \$kind/);
    expect(plan.script).toMatch(/EC2SWARM-BEFORE[\s\S]*docker stack deploy[\s\S]*EC2SWARM-AFTER/);
  });
});
