/**
 * `verify`: looks at the swarm state (one query per look, whatever the number of services) until every service
 * has converged (convergence.ts), a service cannot converge (it fails fast with the reason), or the timeout. Returns
 * the last state; the CLI maps converged=false to exit 1.
 *
 * Between two looks the operator does not sleep: the next query waits on the manager until the state changes, until
 * the next instant a time rule can flip a judgement (the end of a stability window), or a bound — a long poll
 * (design.md decision 19), so convergence is seen a fraction of a second after it happens.
 */
import { SwarmError } from '../errors';
import type { OpsContext, ServiceReplicaStatus, VerifyResult } from './types';
import { type DeployedVersion, type ServiceJudgement, judgeServices, nextTimedChangeMs } from './swarm/convergence';
import { type QueryOptions, watchSwarm } from './swarm/query';
import type { SwarmSnapshot } from './swarm/snapshot';

export interface VerifyOptions {
  readonly timeoutSeconds: number;
  /** Seconds between looks when the manager cannot wait for a change itself (an answer without a fingerprint). @default 2 */
  readonly intervalSeconds?: number;
  /**
   * The longest a look waits on the manager for a change (so progress is printed at least this often); never past
   * the timeout. @default 10
   */
  readonly longPollSeconds?: number;
  /** Only these services count (deploy, scale); default every service. A listed service that does not exist is not converged. */
  readonly services?: readonly string[];
  /** Versions around the deploy that just ran (deploy --wait): each changed service's update must start and finish. */
  readonly deployed?: ReadonlyMap<string, DeployedVersion>;
}

export const DEFAULT_LONG_POLL_SECONDS = 10;

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function strip(v: ServiceJudgement): ServiceReplicaStatus {
  const { stableInMs: _s, ...rest } = v;
  return rest;
}

/**
 * When the manager should answer if nothing changes (manager clock): when every service still waiting only waits for
 * its tasks' stability window, the instant the last window ends (one answer, right then); otherwise the next instant
 * any time rule can flip a judgement (convergence.ts). A skipped intermediate instant only changes progress lines.
 */
function wakeUpAt(snapshot: SwarmSnapshot, verdicts: readonly ServiceJudgement[], deployed?: ReadonlyMap<string, DeployedVersion>): number | undefined {
  const waiting = verdicts.filter((v) => v.convergence !== 'converged');
  if (waiting.length > 0 && waiting.every((v) => v.stableInMs !== undefined)) return snapshot.nowMs + Math.max(...waiting.map((v) => v.stableInMs ?? 0));
  return nextTimedChangeMs(snapshot, { deployed });
}

/** The runner is told to look for the answer this much before it is due (the transport's lag is not known). */
export const EXPECT_EARLY_MS = 250;

export async function verify(ctx: OpsContext, opts: VerifyOptions): Promise<VerifyResult> {
  const { timeoutSeconds } = opts;
  const interval = opts.intervalSeconds ?? 2;
  const longPoll = opts.longPollSeconds ?? DEFAULT_LONG_POLL_SECONDS;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) {
    throw SwarmError.user('INVALID_TIMEOUT', `timeout: ${timeoutSeconds} must be a number of seconds ≥ 0`);
  }
  if (!Number.isFinite(interval) || interval <= 0) {
    throw SwarmError.user('INVALID_INTERVAL', `interval: ${interval} must be a number of seconds > 0`);
  }
  if (!Number.isFinite(longPoll) || longPoll < 0) {
    throw SwarmError.user('INVALID_INTERVAL', `long poll: ${longPoll} must be a number of seconds ≥ 0`);
  }
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? defaultSleep;
  const start = now();
  const deadline = start + timeoutSeconds * 1000;
  // The first look answers at once (and brings the fingerprint the next one waits on).
  let query: QueryOptions = { watch: { maxWaitMs: 0 } };
  // What a look costs besides its wait (the snapshot, the transport): the last look's wait ends that much before
  // the timeout, so verify answers by its timeout and the command's time bound keeps its margin.
  let overheadMs = 0;
  for (;;) {
    const sent = now();
    const { snapshot, held, fingerprint, timing } = await watchSwarm(ctx, query);
    const received = now();
    overheadMs = Math.max(overheadMs, received - sent - (query.watch?.maxWaitMs ?? 0));
    let verdicts = judgeServices(snapshot, { deployed: opts.deployed });
    if (opts.services) {
      const byName = new Map(verdicts.map((v) => [v.name, v]));
      verdicts = opts.services.map(
        (name): ServiceJudgement =>
          byName.get(name) ?? { name, mode: 'replicated', desired: 0, running: 0, convergence: 'converging', reason: 'service not found' },
      );
      verdicts.sort((a, b) => a.name.localeCompare(b.name));
    }
    const elapsedSeconds = Math.round((now() - start) / 100) / 10;
    const ok = verdicts.filter((v) => v.convergence === 'converged').length;
    const failed = verdicts.filter((v) => v.convergence === 'failed');
    const running = verdicts.reduce((n, v) => n + v.running, 0);
    const desired = verdicts.reduce((n, v) => n + (v.mode.endsWith('job') ? 0 : v.desired), 0);
    ctx.reporter.progress(`verify: ${ok}/${verdicts.length} services converged, ${running}/${desired} tasks running (${Math.round(elapsedSeconds)}s)`);
    if (ok === verdicts.length || failed.length > 0 || now() >= deadline) {
      ctx.reporter.done();
      return { converged: ok === verdicts.length, ...(failed.length > 0 ? { failedFast: true } : {}), elapsedSeconds, services: verdicts.map(strip) };
    }
    if (fingerprint) {
      // The manager waits: for a change, the next time rule, or the bound (never past the timeout).
      const maxWaitMs = Math.max(0, Math.floor(Math.min(longPoll * 1000, deadline - now() - overheadMs)));
      const wakeAtMs = wakeUpAt(snapshot, verdicts, opts.deployed);
      // When the answer comes if nothing changes, on the operator's side of the wire (a hint for the runner's
      // polling): the wait on the manager from its clock at the last answer, plus one look at the state.
      const answeredAt = timing?.answeredAtMs ?? snapshot.nowMs;
      const waitMs = wakeAtMs === undefined ? maxWaitMs : Math.min(maxWaitMs, Math.max(0, wakeAtMs - answeredAt - (now() - received)));
      query = {
        watch: { since: fingerprint, maxWaitMs, ...(wakeAtMs !== undefined ? { wakeAtMs } : {}), base: held.md5 },
        previous: held,
        resultExpectedAfterMs: Math.max(0, waitMs + (timing?.fingerprintMs ?? 0) - EXPECT_EARLY_MS),
      };
      continue;
    }
    // No fingerprint (the manager could not take one): poll from here. When every service only waits for its
    // tasks to be stable, wake when they are (the window is paid once).
    query = { watch: { maxWaitMs: 0 } };
    const waiting = verdicts.filter((v) => v.convergence !== 'converged');
    const onlyStability = waiting.every((v) => v.stableInMs !== undefined);
    const pause = onlyStability ? Math.min(interval * 1000, Math.max(...waiting.map((v) => v.stableInMs ?? 0)) + 200) : interval * 1000;
    await sleep(Math.max(0, Math.min(pause, deadline - now())));
  }
}
