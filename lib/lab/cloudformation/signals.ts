/**
 * The lab's stand-in for CloudFormation resource signals (decision 3: `cdk deploy` waits for the real swarm).
 * The cfn-signal stand-in on each host reports {stack, resource, exit code}; the controller attributes it to the
 * host by source IP and appends it to `<labdir>/signals.json`. The lab reads it back to decide whether the
 * "deploy" succeeded: every host's latest signal SUCCESS.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { validation } from '../ssm/errors';

export type SignalStatus = 'SUCCESS' | 'FAILURE';

export interface SignalRecord {
  /** The host that sent it (by source IP), when it is one of the lab's instances. */
  readonly instanceId?: string;
  readonly sourceIp?: string;
  readonly stack: string;
  readonly resource: string;
  readonly region?: string;
  readonly status: SignalStatus;
  /** The `-e` value; null when only `--success` was given. */
  readonly exitCode: number | null;
  readonly reason?: string;
  /** `--id`: CloudFormation's UniqueId (defaults to the instance id on EC2). */
  readonly uniqueId?: string;
  /** ISO 8601. */
  readonly time: string;
}

export const SIGNALS_FILE = 'signals.json';

export function signalsFile(labDir: string): string {
  return join(labDir, SIGNALS_FILE);
}

const STACK = /^(arn:aws[a-z-]*:cloudformation:[a-z0-9-]+:\d{12}:stack\/)?[A-Za-z][A-Za-z0-9-]{0,127}(\/[0-9a-f-]+)?$/;
const RESOURCE = /^[A-Za-z0-9]{1,255}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

/**
 * Validates a signal as the stand-in posts it (form fields stack, resource, region, exitCode, success, reason, id).
 * Throws a ValidationException naming the field.
 */
export function parseSignal(fields: Record<string, string | undefined>, who: { instanceId?: string; sourceIp?: string }, now: () => number = Date.now): SignalRecord {
  const { stack, resource, region, exitCode, success, reason, id } = fields;
  if (!stack || !STACK.test(stack)) throw validation(`signal: stack must be a stack name or ARN (got ${JSON.stringify(stack ?? '')})`);
  if (!resource || !RESOURCE.test(resource)) throw validation(`signal: resource must be a logical resource id (got ${JSON.stringify(resource ?? '')})`);
  if (region !== undefined && region !== '' && !REGION.test(region)) throw validation(`signal: region must be a region such as us-east-1 (got ${JSON.stringify(region)})`);
  let code: number | null = null;
  if (exitCode !== undefined && exitCode !== '') {
    if (!/^-?\d{1,10}$/.test(exitCode)) throw validation(`signal: exitCode must be an integer (got ${JSON.stringify(exitCode)})`);
    code = Number(exitCode);
  }
  if (success !== undefined && success !== '' && success !== 'true' && success !== 'false') {
    throw validation(`signal: success must be true or false (got ${JSON.stringify(success)})`);
  }
  // cfn-signal: -e non-zero means failure whatever --success says; --success false alone is a failure too.
  const status: SignalStatus = (code !== null && code !== 0) || success === 'false' ? 'FAILURE' : 'SUCCESS';
  return {
    ...(who.instanceId ? { instanceId: who.instanceId } : {}),
    ...(who.sourceIp ? { sourceIp: who.sourceIp } : {}),
    stack,
    resource,
    ...(region ? { region } : {}),
    status,
    exitCode: code,
    ...(reason ? { reason: reason.slice(0, 4096) } : {}),
    ...(id ? { uniqueId: id.slice(0, 255) } : {}),
    time: new Date(now()).toISOString(),
  };
}

/** Appends signals to the JSON file, replacing it atomically so a reader never sees half a file. */
export class SignalRecorder {
  constructor(public readonly file: string) {}

  record(signal: SignalRecord): void {
    const all = readSignals(this.file);
    all.push(signal);
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o644 });
    renameSync(tmp, this.file);
  }

  list(): SignalRecord[] {
    return readSignals(this.file);
  }
}

/** The recorded signals; an absent file means none yet. */
export function readSignals(file: string): SignalRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new Error(`${file} does not hold a JSON array of signals`);
  return parsed as SignalRecord[];
}

/** The latest signal of each instance (a re-run of user-data signals again; the last word counts). */
export function latestByInstance(signals: readonly SignalRecord[]): Map<string, SignalRecord> {
  const latest = new Map<string, SignalRecord>();
  for (const s of signals) if (s.instanceId) latest.set(s.instanceId, s);
  return latest;
}

export interface SignalSummary {
  /** Every expected instance's latest signal is SUCCESS. */
  readonly allSucceeded: boolean;
  readonly succeeded: string[];
  readonly failed: SignalRecord[];
  /** Expected instances that have not signalled yet. */
  readonly missing: string[];
}

export function summarizeSignals(signals: readonly SignalRecord[], expectedInstanceIds: readonly string[]): SignalSummary {
  const latest = latestByInstance(signals);
  const succeeded: string[] = [];
  const failed: SignalRecord[] = [];
  const missing: string[] = [];
  for (const id of expectedInstanceIds) {
    const s = latest.get(id);
    if (!s) missing.push(id);
    else if (s.status === 'SUCCESS') succeeded.push(id);
    else failed.push(s);
  }
  return { allSucceeded: expectedInstanceIds.length > 0 && succeeded.length === expectedInstanceIds.length, succeeded, failed, missing };
}
