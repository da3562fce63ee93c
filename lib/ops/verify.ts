/**
 * `verify`: polls the swarm state (one query per poll, whatever the number of services) until every service
 * runs its desired replicas, or the timeout. Returns the last state; the CLI maps converged=false to exit 1.
 */
import { SwarmError } from '../errors';
import type { OpsContext, ServiceReplicaStatus, VerifyResult } from './types';
import { requireSwarm } from './swarm/query';
import { summariseServices, type ServiceVerdict } from './swarm/snapshot';

export interface VerifyOptions {
  readonly timeoutSeconds: number;
  /** Seconds between polls. @default 2 */
  readonly intervalSeconds?: number;
  /** Only these services count (scale); default every service. */
  readonly services?: readonly string[];
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function strip(v: ServiceVerdict): ServiceReplicaStatus {
  const { converged: _c, ...rest } = v;
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
    let verdicts = summariseServices(snapshot);
    if (opts.services) {
      const wanted = new Set(opts.services);
      verdicts = verdicts.filter((v) => wanted.has(v.name));
    }
    const elapsedSeconds = Math.round((now() - start) / 100) / 10;
    const ok = verdicts.filter((v) => v.converged).length;
    const running = verdicts.reduce((n, v) => n + v.running, 0);
    const desired = verdicts.reduce((n, v) => n + (v.mode.endsWith('job') ? 0 : v.desired), 0);
    ctx.reporter.progress(`verify: ${ok}/${verdicts.length} services converged, ${running}/${desired} tasks running (${Math.round(elapsedSeconds)}s)`);
    if (ok === verdicts.length || now() >= deadline) {
      ctx.reporter.done();
      return { converged: ok === verdicts.length, elapsedSeconds, services: verdicts.map(strip) };
    }
    await sleep(Math.max(0, Math.min(interval * 1000, deadline - now())));
  }
}
