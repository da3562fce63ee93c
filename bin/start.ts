#!/usr/bin/env node
/**
 * `npm start`: the whole lifecycle on the lab, bounded, one line per phase. Root on Linux.
 *
 *   prerequisites → lab up (1 manager + 3 workers run the synthesized user-data and form a swarm) → status →
 *   deploy examples/demo/docker-compose.yml (stack `demo`) and verify → scale demo_web → teardown → lab down
 *
 * The lab always comes down, whatever happened, also on Ctrl-C (exit 130) or SIGTERM (exit 143).
 * Exit codes as the CLI's (design.md): 0 ok, 1 not converged, 2 usage, 3 environment.
 * Environment: EC2_SWARM_LAB_DIR (lab directory), EC2_SWARM_LAB_PREFIX and EC2_SWARM_LAB_NET (namespace prefix and
 * 192.168.<net>.0/24), to run beside another lab.
 * `npm run plan` prints what the CDK app would create on AWS instead.
 */
import { join, resolve } from 'node:path';
import { SwarmError, exitCodeOf, isSwarmError } from '../lib/errors';
import { checkLabEnvironment, labDown, labUp, type LabState } from '../lib/lab/lab';
import { readResources } from '../lib/lab/resources';
import { defaultLabDir } from '../lib/lab-location';
import {
  connect,
  createReporter,
  deploy,
  redactSecrets,
  renderDeploy,
  renderStatus,
  renderVerify,
  scale,
  status,
  teardown,
  type Connection,
  type Reporter,
  type StatusReport,
} from '../lib/ops';

const REPO = resolve(__dirname, '..');
export const DEMO_COMPOSE = join(REPO, 'examples', 'demo', 'docker-compose.yml');

export interface LifecycleOptions {
  /** @default - `$EC2_SWARM_LAB_DIR`, else /var/lib/ec2-swarm-lab */
  readonly labDir?: string;
  /** Namespace/cgroup prefix of the lab. @default - the lab's own default */
  readonly prefix?: string;
  /** Third octet of the lab's underlay network. @default - the lab's own default */
  readonly net?: number;
  /** @default 3 */
  readonly workers?: number;
  /** demo_web's replicas after the scale phase. @default 8 */
  readonly scaleWebTo?: number;
  /** Where phase lines and tables go; ops progress goes there too. @default process.stdout */
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Bounds, seconds. */
  readonly labUpTimeoutSeconds?: number;
  readonly formationTimeoutSeconds?: number;
  readonly convergeTimeoutSeconds?: number;
}

export interface PhaseTiming {
  readonly phase: string;
  readonly seconds: number;
  readonly ok: boolean;
}

export interface LifecycleResult {
  readonly exitCode: number;
  readonly phases: readonly PhaseTiming[];
  readonly totalSeconds: number;
  /** The first error, one line, when the run failed. */
  readonly error?: string;
}

const round1 = (ms: number): number => Math.round(ms / 100) / 10;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls ops status until every host is a Ready swarm node (labUp already waited for every join signal). */
async function waitForFormation(conn: Connection, hosts: number, timeoutSeconds: number): Promise<StatusReport> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const report = await status(conn);
    const ready = report.nodes.filter((n) => n.status.toLowerCase() === 'ready').length;
    conn.reporter.progress(`formation: ${ready}/${hosts} nodes Ready`);
    if (ready === hosts) {
      conn.reporter.done();
      return report;
    }
    if (Date.now() >= deadline) {
      conn.reporter.done();
      throw SwarmError.cluster('FORMATION_INCOMPLETE', `only ${ready} of ${hosts} nodes are Ready after ${timeoutSeconds}s:\n${renderStatus(report)}`);
    }
    await sleep(1000);
  }
}

/**
 * One run of the lifecycle. `interrupt()` (signals, watchdog) brings the lab down while `run()` is still busy;
 * `run()` itself brings it down in its `finally`. Either way labDown runs once per lab up.
 */
export class Lifecycle {
  readonly phases: PhaseTiming[] = [];
  private readonly out: NonNullable<LifecycleOptions['out']>;
  private readonly reporter: Reporter;
  private readonly labDir: string;
  private readonly started = Date.now();
  private labUpCall?: Promise<LabState>;
  private downCall?: Promise<void>;
  private interrupted = false;
  private purgeOnDown = false;

  constructor(private readonly opts: LifecycleOptions = {}) {
    this.out = opts.out ?? process.stdout;
    this.reporter = createReporter({ stream: this.out });
    this.labDir = resolve(opts.labDir ?? defaultLabDir());
  }

  /** Text for a person; join tokens can never reach it (ops output is redacted once more here). */
  private print(text: string): void {
    this.reporter.done();
    this.out.write(redactSecrets(text.endsWith('\n') ? text : `${text}\n`));
  }

  private clock(): string {
    return `[${round1(Date.now() - this.started).toFixed(1).padStart(5)}s]`;
  }

  /** Runs one phase: a start line (name: what it does), an end line with its seconds, a row in the summary. */
  private async phase<T>(name: string, what: string, fn: () => Promise<T>, done?: (t: T) => string): Promise<T> {
    const t0 = Date.now();
    this.print(`${this.clock()} ▶ ${name}${what ? `: ${what}` : ''}`);
    try {
      const value = await fn();
      const seconds = round1(Date.now() - t0);
      this.phases.push({ phase: name, seconds, ok: true });
      this.print(`${this.clock()} ✔ ${name} (${seconds}s)${done ? `: ${done(value)}` : ''}`);
      return value;
    } catch (e) {
      const seconds = round1(Date.now() - t0);
      this.phases.push({ phase: name, seconds, ok: false });
      this.print(`${this.clock()} ✖ ${name} (${seconds}s)`);
      throw e;
    }
  }

  async run(): Promise<LifecycleResult> {
    const workers = this.opts.workers ?? 3;
    const webTo = this.opts.scaleWebTo ?? 8;
    const converge = this.opts.convergeTimeoutSeconds ?? 120;
    let exitCode = 0;
    let error: string | undefined;
    let conn: Connection | undefined;
    try {
      await this.phase('prerequisites', 'root, tools, cgroups, no lab in the way', async () => {
        checkLabEnvironment(); // root, tools, cgroups: says which Debian packages to install (exit 3)
        // Never take over (and then tear down) a lab someone started before: it may be in use.
        if (readResources(this.labDir) !== undefined) {
          throw SwarmError.environment(
            'LAB_EXISTS',
            `a lab already exists in ${this.labDir}: run \`npx tsx bin/ec2-swarm.ts lab down\` first, or set EC2_SWARM_LAB_DIR to another directory`,
          );
        }
      });

      await this.phase(
        'lab up',
        `1 manager + ${workers} workers in network namespaces run the synthesized user-data (lab dir ${this.labDir})`,
        () =>
          (this.labUpCall = labUp({
            workers,
            managers: 1,
            labDir: this.labDir,
            reporter: this.reporter,
            ...(this.opts.prefix !== undefined ? { prefix: this.opts.prefix } : {}),
            ...(this.opts.net !== undefined ? { net: this.opts.net } : {}),
            ...(this.opts.labUpTimeoutSeconds !== undefined ? { timeoutSeconds: this.opts.labUpTimeoutSeconds } : {}),
          })),
        (s) => s.hosts.map((h) => `${h.name} ${h.role} ${h.instanceId} ${h.ip}`).join(', '),
      );

      conn = await connect({ target: 'lab', reporter: this.reporter, env: { ...process.env, EC2_SWARM_LAB_DIR: this.labDir } });
      const c = conn;
      const report = await this.phase('formation', 'every host is a Ready swarm node', () => waitForFormation(c, workers + 1, this.opts.formationTimeoutSeconds ?? 60));
      this.print(renderStatus(report));

      const deployed = await this.phase('deploy', 'examples/demo/docker-compose.yml as stack demo, until every replica runs', () =>
        deploy(c, { file: DEMO_COMPOSE, wait: true, timeoutSeconds: converge, resolveImage: 'never' }),
      );
      this.print(renderDeploy(deployed));
      if (!deployed.verify?.converged) {
        exitCode = 1;
        error = 'the demo stack did not converge';
      } else {
        const scaled = await this.phase('scale', `demo_web=${webTo}, until every replica runs`, () =>
          scale(c, { targets: { demo_web: webTo }, timeoutSeconds: converge }),
        );
        if (!scaled.converged) {
          this.print(renderVerify(scaled));
          exitCode = 1;
          error = `demo_web did not reach ${webTo} replicas`;
        } else {
          this.print(renderStatus(await status(c))); // where the tasks landed
        }
      }

      // Ops report each step as it goes (done/skipped lines), so no table here.
      await this.phase('teardown', 'remove the stack, workers and manager leave, delete the runtime parameters', () =>
        teardown(c),
      );
    } catch (e) {
      exitCode = exitCodeOf(e);
      // One line for the summary: multi-line messages (e.g. the environment check's list) joined.
      error = (isSwarmError(e) || e instanceof Error ? e.message : String(e)).split('\n').map((l) => l.trim()).filter(Boolean).join(' ').slice(0, 300);
      if (!this.interrupted) {
        this.print(`error: ${isSwarmError(e) || !(e instanceof Error) ? String(isSwarmError(e) ? e.message : e) : (e.stack ?? e.message)}`);
      }
    } finally {
      conn?.close();
      // A clean run leaves the machine as it found it; a failed one keeps the logs for a look.
      this.purgeOnDown = exitCode === 0 && !this.interrupted;
      if (!this.purgeOnDown && !this.interrupted) this.print(`logs kept in ${this.labDir}/logs (remove with: npx tsx bin/ec2-swarm.ts lab down --purge)`);
      try {
        await this.down();
      } catch (e) {
        exitCode ||= exitCodeOf(e);
        error ??= `lab down: ${(e as Error).message}`;
        this.print(`error: lab down: ${(e as Error).message}`);
      }
    }
    const result: LifecycleResult = { exitCode, phases: this.phases, totalSeconds: round1(Date.now() - this.started), ...(error ? { error } : {}) };
    if (!this.interrupted) this.print(this.summary(result)); // interrupt() reports its own ending
    return result;
  }

  /** Brings the lab down once (later calls share the first). Nothing to do when lab up was never called. */
  down(): Promise<void> {
    this.downCall ??= this.labUpCall ? this.phase('lab down', 'stop every process, remove namespaces, mounts, cgroups', () => labDown({ labDir: this.labDir, reporter: this.reporter, purge: this.purgeOnDown })).then(() => undefined) : Promise.resolve();
    return this.downCall;
  }

  /**
   * For SIGINT/SIGTERM and the watchdog: stop printing the main flow's errors, bring the lab down. A lab up still
   * in flight may go on creating things after the first labDown, so wait for it (bounded) and clean up again.
   */
  async interrupt(reason: string): Promise<void> {
    this.reporter.done();
    this.out.write(`\n${this.clock()} ${reason}: bringing the lab down\n`);
    this.interrupted = true;
    await this.down().catch((e: Error) => this.out.write(`error: lab down: ${e.message}\n`));
    if (this.labUpCall) {
      const settled = await Promise.race([this.labUpCall.then(() => true, () => true), sleep(30_000).then(() => false)]);
      if (settled) await labDown({ labDir: this.labDir, reporter: this.reporter }).catch((e: Error) => this.out.write(`error: lab down: ${e.message}\n`));
      else this.out.write(`warning: lab up did not stop within 30s; run \`npx tsx bin/ec2-swarm.ts lab down\` with EC2_SWARM_LAB_DIR=${this.labDir}\n`);
    }
    this.out.write(`${this.clock()} ${reason}: stopped\n`);
  }

  summary(r: LifecycleResult): string {
    const verdict = r.exitCode === 0 ? 'ok' : `FAILED (exit ${r.exitCode})${r.error ? `: ${r.error}` : ''}`;
    const width = Math.max(...r.phases.map((p) => p.phase.length), 5);
    const lines = r.phases.map((p) => `  ${p.ok ? '✔' : '✖'} ${p.phase.padEnd(width)} ${p.seconds.toFixed(1).padStart(6)}s`);
    return `\nsummary: ${verdict}\n${lines.join('\n')}\n  = ${'total'.padEnd(width)} ${r.totalSeconds.toFixed(1).padStart(6)}s\n`;
  }
}

/** Upper bound on the whole run: the phases have their own bounds; this catches anything that hangs. */
const WATCHDOG_SECONDS = 600;

async function main(): Promise<void> {
  // EC2_SWARM_LAB_DIR / _PREFIX / _NET pick another lab (e.g. beside one that is up): the lab reads them itself.
  const lc = new Lifecycle({});
  let stopping = false;
  const stop = (reason: string, code: number) => {
    if (stopping) return; // a second Ctrl-C does not abandon the clean-up
    stopping = true;
    void lc.interrupt(reason).finally(() => process.exit(code));
  };
  process.on('SIGINT', () => stop('interrupted (SIGINT)', 130));
  process.on('SIGTERM', () => stop('terminated (SIGTERM)', 143));
  const watchdog = setTimeout(() => stop(`still running after ${WATCHDOG_SECONDS}s`, 3), WATCHDOG_SECONDS * 1000);
  watchdog.unref();
  const result = await lc.run();
  if (stopping) return; // the signal handler exits
  clearTimeout(watchdog);
  // Sockets of the SDK may linger for a moment; the run is over.
  process.exit(result.exitCode);
}

if (require.main === module) void main();
