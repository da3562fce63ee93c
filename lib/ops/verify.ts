/**
 * `verify`: polls the swarm state (one query per poll, whatever the number of services) until every service has
 * converged (convergence.ts), a service cannot converge (it fails fast with the reason), or the timeout. Returns the
 * last state; the CLI maps converged=false to exit 1.
 */
import { SwarmError } from '../errors';
import type { OpsContext, ServiceReplicaStatus, VerifyResult } from './types';
import { type DeployedVersion, type ServiceJudgement, judgeServices } from './swarm/convergence';
import { requireSwarm } from './swarm/query';

export interface VerifyOptions {
  readonly timeoutSeconds: number;
  /** Seconds between polls. @default 2 */
  readonly intervalSeconds?: number;
  /** Only these services count (deploy, scale); default every service. A listed service that does not exist is not converged. */
  readonly services?: readonly string[];
  /** Versions around the deploy that just ran (deploy --wait): each changed service's update must start and finish. */
  readonly deployed?: ReadonlyMap<string, DeployedVersion>;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function strip(v: ServiceJudgement): ServiceReplicaStatus {
  const { stableInMs: _s, ...rest } = v;
  return rest;
}

export async function verify(ctx: OpsContext, opts: VerifyOptions): Promise<VerifyResult> {
  const { timeoutSeconds } = opts;
  const interval = opts.intervalSeconds ?? 2;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) {
    throw SwarmError.user('INVALID_TIMEOUT', `timeout: ${timeoutSeconds} must be a number of seconds ≥ 0`);
  }
  if (!Number.isFinite(interval) || interval <= 0) {
    throw SwarmError.user('INVALID_INTERVAL', `interval: ${interval} must be a number of seconds > 0`);
  }
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? defaultSleep;
  const start = now();
  const deadline = start + timeoutSeconds * 1000;
  for (;;) {
    const snapshot = await requireSwarm(ctx);
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
    // When every service only waits for its tasks to be stable, wake when they are (the window is paid once).
    const waiting = verdicts.filter((v) => v.convergence !== 'converged');
    const onlyStability = waiting.every((v) => v.stableInMs !== undefined);
    const pause = onlyStability ? Math.min(interval * 1000, Math.max(...waiting.map((v) => v.stableInMs ?? 0)) + 200) : interval * 1000;
    await sleep(Math.max(0, Math.min(pause, deadline - now())));
  }
}
