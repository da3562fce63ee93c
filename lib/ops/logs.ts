/**
 * `logs SERVICE [--since D] [--tail N]`: a service's recent output through the same transport as every other
 * command, so a failed deploy can be diagnosed without a shell. Bounded twice: docker's `--tail` per task and a
 * byte cap that keeps the newest output within SSM's 24,000-character stdout limit.
 */
import { SwarmError } from '../errors';
import { failed, runOnManager } from './swarm/manager';
import { script, sh } from './swarm/script';
import { assertServiceName } from './swarm/validate';
import type { OpsContext } from './types';

export interface LogsOptions {
  readonly service: string;
  /** Docker's `--since`: a duration (`10m`, `1h30m`, `45s`) or a timestamp (`2026-11-30T12:00:00Z`). */
  readonly since?: string;
  /** Lines per task. @default 100 */
  readonly tail?: number;
}

export interface LogsResult {
  readonly service: string;
  readonly text: string;
  /** Bytes docker printed; more than `text` holds when the cap cut the oldest lines. */
  readonly totalBytes: number;
  readonly truncated: boolean;
}

export const LOGS_BYTE_CAP = 20_000;
const TAIL_MAX = 10_000;
/** Seconds docker may take to gather the tasks' logs from their nodes. */
const LOGS_TIMEOUT_S = 60;
const SINCE = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$|^\d+(\.\d+)?$/;

export function planLogs(opts: LogsOptions): string {
  const service = assertServiceName(opts.service, 'SERVICE');
  const tail = opts.tail ?? 100;
  if (!Number.isInteger(tail) || tail < 1 || tail > TAIL_MAX) throw SwarmError.user('INVALID_OPTION', `--tail: ${tail} must be a whole number from 1 to ${TAIL_MAX}`);
  if (opts.since !== undefined && !SINCE.test(opts.since)) {
    throw SwarmError.user('INVALID_OPTION', `--since: ${JSON.stringify(opts.since)} is not a duration (10m, 1h30m) or a timestamp (2026-11-30T12:00:00Z)`);
  }
  const since = opts.since !== undefined ? sh`--since ${opts.since}` : '';
  return script(
    sh`name=${service}`,
    `if ! docker service inspect --format '{{.ID}}' -- "$name" > /dev/null 2>&1; then echo "EC2SWARM-NOSERVICE"; exit 0; fi`,
    'rc=0',
    `timeout ${LOGS_TIMEOUT_S} docker service logs --timestamps --no-trunc ${sh`--tail ${tail}`} ${since} -- "$name" > "$EC2SWARM_TMP/logs" 2>&1 || rc=$?`,
    `echo "EC2SWARM-LOGS $rc $(wc -c < "$EC2SWARM_TMP/logs")"`,
    `tail -c ${LOGS_BYTE_CAP} "$EC2SWARM_TMP/logs"`,
  );
}

export async function logs(ctx: OpsContext, opts: LogsOptions): Promise<LogsResult> {
  const s = planLogs(opts);
  const r = await runOnManager(ctx, s, { label: `logs ${opts.service}` });
  if (r.exitCode !== 0) throw failed(`docker service logs ${opts.service}`, r);
  if (/^EC2SWARM-NOSERVICE$/m.test(r.stdout)) throw SwarmError.user('NO_SUCH_SERVICE', `SERVICE: no service ${JSON.stringify(opts.service)} in the swarm (see \`ec2-swarm status\`)`);
  const m = /^EC2SWARM-LOGS (\d+) (\d+)\n/m.exec(r.stdout);
  if (!m) throw SwarmError.environment('UNEXPECTED_OUTPUT', `logs ${opts.service}: the manager's answer has no EC2SWARM-LOGS line`);
  const text = r.stdout.slice(m.index + m[0].length);
  const code = Number(m[1]);
  if (code === 124) throw SwarmError.cluster('LOGS_TIMEOUT', `docker service logs ${opts.service} did not finish within ${LOGS_TIMEOUT_S} s (a node holding its tasks may be unreachable)`);
  if (code !== 0) throw SwarmError.cluster('COMMAND_FAILED', `docker service logs ${opts.service} failed (exit ${code}): ${text.trim().split('\n').slice(-3).join(' / ')}`);
  const totalBytes = Number(m[2]);
  return { service: opts.service, text, totalBytes, truncated: totalBytes > Buffer.byteLength(text) };
}
