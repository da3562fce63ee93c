/**
 * Validation of CLI arguments, before any AWS call (a bad argument exits 2 and changes nothing).
 */
import { SwarmError } from '../errors';

/** Docker (swarmkit) service names: a DNS label, letters/digits with inner `-` or `_`, at most 63 characters. */
const SERVICE_NAME = /^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*$/;
export const MAX_REPLICAS = 10000;

export function isServiceName(name: string): boolean {
  return name.length <= 63 && SERVICE_NAME.test(name);
}

/** `SERVICE=N …` → { SERVICE: N }. */
export function parseScaleTargets(args: readonly string[]): Record<string, number> {
  if (args.length === 0) throw SwarmError.user('SCALE_ARGS', 'scale needs at least one SERVICE=N, e.g. ec2-swarm scale demo_web=6');
  const targets: Record<string, number> = {};
  for (const arg of args) {
    const eq = arg.lastIndexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : '';
    const count = eq > 0 ? arg.slice(eq + 1) : '';
    if (!name || !/^\d+$/.test(count)) {
      throw SwarmError.user('SCALE_ARGS', `"${arg}" is not SERVICE=N (e.g. demo_web=6)`);
    }
    if (!isServiceName(name)) {
      throw SwarmError.user(
        'SCALE_ARGS',
        `"${name}" is not a Docker service name: letters and digits, with "-" or "_" inside, at most 63 characters`,
      );
    }
    const n = Number(count);
    if (n > MAX_REPLICAS) throw SwarmError.user('SCALE_ARGS', `${name}=${count}: replicas must be from 0 to ${MAX_REPLICAS}`);
    if (name in targets) throw SwarmError.user('SCALE_ARGS', `${name} is given twice`);
    targets[name] = n;
  }
  return targets;
}

/** A whole number of seconds, 1 … 86400. `field` names the flag in the error. */
export function parseSeconds(value: string, field: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 86400) {
    throw SwarmError.user('ARG_INVALID', `${field} must be a whole number of seconds from 1 to 86400 (got "${value}")`);
  }
  return Number(value);
}

export function parseCount(value: string, field: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw SwarmError.user('ARG_INVALID', `${field} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}
