/**
 * `<labDir>/state.json`: what a running lab is, for `--target lab` (lib/ops/target.ts reads `ssmEndpoint`, `region`,
 * `outputsFile`; docs/contracts.md) and for tests and `npm start` (hosts, instance ids, log files). Written once
 * `lab up` has every signal, atomically; removed by `lab down`.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmError } from '../errors';

export const STATE_FILE = 'state.json';

export interface LabHostInfo {
  /** The lab's short name: `h0` (the manager), `h1` … `hN` (workers). */
  readonly name: string;
  readonly role: 'manager' | 'worker';
  /** `i-` + 17 hex digits, stable for a lab dir + prefix + index. */
  readonly instanceId: string;
  /** Address on the lab bridge (EC2's private IP). */
  readonly ip: string;
  /** What the host calls itself (and `docker node ls` shows): EC2's default `ip-a-b-c-d.ec2.internal`. */
  readonly hostname: string;
  /** Network namespace `<prefix>-h<index>`. */
  readonly ns: string;
  readonly index: number;
}

export interface LabState {
  readonly version: 1;
  readonly labDir: string;
  readonly prefix: string;
  readonly net: number;
  /** `http://127.0.0.1:<port>`: the controller's SSM endpoint for the operator (ops `--target lab`). */
  readonly ssmEndpoint: string;
  /** `http://127.0.0.1:<port>`: the lab S3 (the staging bucket) for the operator, when the template has the bucket. */
  readonly s3Endpoint?: string;
  readonly region: string;
  readonly stackName: string;
  readonly clusterName: string;
  /** Absolute path of the `cdk deploy --outputs-file` style document. */
  readonly outputsFile: string;
  /** The lab CA: give it as AWS_CA_BUNDLE to an AWS CLI talking to the gateway's HTTPS front. */
  readonly caBundle: string;
  readonly hubAddress: string;
  readonly controllerPid: number;
  readonly gatewayPid: number;
  readonly hosts: readonly LabHostInfo[];
  /** ISO 8601. */
  readonly startedAt: string;
  /** Seconds `lab up` took. */
  readonly upSeconds: number;
}

export function statePath(labDir: string): string {
  return join(labDir, STATE_FILE);
}

export function writeLabStateFile(state: LabState): void {
  mkdirSync(state.labDir, { recursive: true });
  const file = statePath(state.labDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

/** The state of the lab in `labDir`, or undefined when none is up there. */
export function readLabStateFile(labDir: string): LabState | undefined {
  const file = statePath(labDir);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as LabState;
    if (s?.version !== 1 || !Array.isArray(s.hosts)) throw new Error('not a lab state (version 1)');
    return s;
  } catch (e) {
    throw SwarmError.environment('LAB_STATE_INVALID', `${file} is unreadable (${(e as Error).message}): run \`ec2-swarm lab down\``, e);
  }
}

export function removeLabStateFile(labDir: string): boolean {
  const file = statePath(labDir);
  if (!existsSync(file)) return false;
  rmSync(file, { force: true });
  return true;
}
