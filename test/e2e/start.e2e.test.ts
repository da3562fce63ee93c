/**
 * `npm start` as a new user runs it: the whole lifecycle on the lab, exit 0, one line per phase and a summary, no
 * join token in its output, nothing of the lab left afterwards; Ctrl-C brings the lab down and exits 130; without
 * root it says so and exits 3. Root. Runs its own labs (dir, prefix, network) beside the other e2e files' ones.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { labDown } from '../../lib/lab/lab';
import { e2eLabIdentity, keepLabLogs } from './ops-cli-support';
import { REPO } from './ops-cli-support';

const LAB = e2eLabIdentity({ labDir: '/var/lib/ec2-swarm-e2st', prefix: 'e2st', net: 236 });
const ENV = { ...process.env, EC2_SWARM_LAB_DIR: LAB.labDir, EC2_SWARM_LAB_PREFIX: LAB.prefix, EC2_SWARM_LAB_NET: String(LAB.net) };

interface Run {
  code: number | null;
  output: string;
  seconds: number;
}

/** Runs argv in its own process group (as a terminal would), optionally sending `signal` to the group once `when` matches. */
function run(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutSeconds: number; signalWhen?: { when: RegExp; afterMs: number; signal: NodeJS.Signals } }): Promise<Run> {
  return new Promise((done) => {
    const t0 = Date.now();
    const child = spawn(argv[0], argv.slice(1), { cwd: REPO, env: opts.env ?? ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let signalled = false;
    const onData = (d: Buffer): void => {
      output += d.toString();
      const s = opts.signalWhen;
      if (s && !signalled && s.when.test(output)) {
        signalled = true;
        setTimeout(() => process.kill(-(child.pid as number), s.signal), s.afterMs);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), opts.timeoutSeconds * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

/** What of this lab is still on the machine: network namespaces with its prefix, processes naming its directory. */
function leftovers(): string[] {
  const left: string[] = [];
  if (existsSync('/run/netns')) left.push(...readdirSync('/run/netns').filter((n) => n.startsWith(`${LAB.prefix}-`)).map((n) => `netns ${n}`));
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(LAB.labDir)) left.push(`process ${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // the process ended meanwhile
    }
  }
  if (existsSync(join(LAB.labDir, 'resources.json'))) left.push('resources.json');
  return left;
}

beforeAll(async () => {
  await labDown({ labDir: LAB.labDir }); // a crashed earlier run of this file
}, 120_000);

afterAll(async () => {
  await labDown({ labDir: LAB.labDir, purge: !keepLabLogs() });
}, 120_000);

test('npm start runs the lifecycle to exit 0 with one line per phase and a summary, and leaves nothing behind', async () => {
  const r = await run(['npm', 'start'], { timeoutSeconds: 420 });
  expect(r.output).toMatch(/^summary: ok$/m);
  expect(r.code).toBe(0);
  for (const phase of ['prerequisites', 'lab up', 'formation', 'deploy', 'scale', 'teardown', 'lab down']) {
    expect(r.output).toMatch(new RegExp(`^\\[\\s*[\\d.]+s\\] ✔ ${phase} \\([\\d.]+s\\)`, 'm'));
    expect(r.output).toMatch(new RegExp(`^  ✔ ${phase}\\s+[\\d.]+s$`, 'm'));
  }
  expect(r.output).toMatch(/demo_web\s*│\s*replicated\s*│\s*6\s*│\s*6\s*│/); // deploy's table
  expect(r.output).toMatch(/demo_web\s*│\s*replicated\s*│\s*8\s*│\s*8\s*│/); // after the scale
  expect(r.output).toMatch(/^managers leave the swarm \(1\)$/m); // teardown's own progress (decision 18: every manager leaves in one step)
  expect(r.output).not.toContain('SWMTKN');
  expect(leftovers()).toEqual([]);
  expect(existsSync(LAB.labDir)).toBe(false); // a clean run purges its lab directory: the machine is as it was
}, 480_000);

test('Ctrl-C during lab up brings the lab down and exits 130', async () => {
  // What `npm start` runs (npm itself then dies of the same SIGINT: a shell sees 130 either way). One process: with
  // the `tsx` wrapper, a child busier than 60 ms when the signal came was SIGKILLed by the wrapper's relay.
  const r = await run([process.execPath, '--import', 'tsx', 'bin/start.ts'], { timeoutSeconds: 240, signalWhen: { when: /running the user-data on every host/, afterMs: 1000, signal: 'SIGINT' } });
  expect(r.output).toMatch(/interrupted \(SIGINT\): bringing the lab down/);
  expect(r.output).toMatch(/✔ lab down/);
  expect(r.code).toBe(130);
  expect(leftovers()).toEqual([]);
}, 300_000);

test('without root it changes nothing, says why, and exits 3', async () => {
  const r = await run(['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '--import', 'tsx', 'bin/start.ts'], {
    env: { ...ENV, HOME: '/tmp' },
    timeoutSeconds: 120,
  });
  expect(r.output).toMatch(/must run as root/);
  expect(r.output).toMatch(/^summary: FAILED \(exit 3\)/m);
  expect(r.output).not.toMatch(/▶ lab up/);
  expect(r.code).toBe(3);
}, 150_000);
