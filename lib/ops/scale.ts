/** `scale SERVICE=N …`: one script scales every service (`docker service scale --detach`), then verify. */
import { SwarmError } from '../errors';
import type { OpsContext, VerifyResult } from './types';
import { failed, runOnManager } from './swarm/manager';
import { dockerRejection } from './swarm/docker-errors';
import { script, sh } from './swarm/script';
import { assertServiceName } from './swarm/validate';
import { verify } from './verify';

/** Upper bound on replicas per service: far above any real use, low enough to catch typos like 10000000. */
export const MAX_REPLICAS = 10000;

export interface ScaleOptions {
  readonly targets: Record<string, number>;
  readonly timeoutSeconds: number;
  readonly intervalSeconds?: number;
}

export function buildScaleScript(targets: Record<string, number>): string {
  const pairs = Object.entries(targets).map(([name, n]) => `${name}=${n}`);
  const names = Object.keys(targets);
  return script(
    // Exact-name existence check (`--filter name=` is a prefix match); a missing service is the user's mistake.
    `docker service ls --format '{{.Name}}' > "$EC2SWARM_TMP/names"`,
    `for s in ${sh`${names}`}; do`,
    `  grep -qxF -- "$s" "$EC2SWARM_TMP/names" || { echo "EC2SWARM-MISSING $s"; exit 3; }`,
    'done',
    sh`docker service scale --detach ${pairs}`,
  );
}

export async function scale(ctx: OpsContext, opts: ScaleOptions): Promise<VerifyResult> {
  const entries = Object.entries(opts.targets);
  if (entries.length === 0) throw SwarmError.user('NOTHING_TO_SCALE', 'scale: give at least one SERVICE=N');
  for (const [name, n] of entries) {
    assertServiceName(name, 'scale: service name');
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_REPLICAS) {
      throw SwarmError.user('INVALID_REPLICAS', `scale: ${name}=${n}: replicas must be a whole number from 0 to ${MAX_REPLICAS}`);
    }
  }
  const r = await runOnManager(ctx, buildScaleScript(opts.targets), { label: 'scale' });
  const missing = /^EC2SWARM-MISSING (.+)$/m.exec(r.stdout);
  if (missing) throw SwarmError.user('SERVICE_NOT_FOUND', `scale: no service named ${JSON.stringify(missing[1])}`);
  if (r.exitCode !== 0) {
    const rejection = dockerRejection(r.stderr);
    if (rejection) throw SwarmError.user('DOCKER_REJECTED_INPUT', `docker service scale: Docker rejected the input: ${rejection}`);
    throw failed('docker service scale', r);
  }
  ctx.reporter.info(`scaled ${entries.map(([s, n]) => `${s}=${n}`).join(' ')}`);
  return verify(ctx, { timeoutSeconds: opts.timeoutSeconds, intervalSeconds: opts.intervalSeconds, services: Object.keys(opts.targets) });
}
