/**
 * The lab's SSM Run Command (document AWS-RunShellScript only) and the instance inventory it targets.
 *
 * Mimics what callers notice on AWS:
 * - right after SendCommand, GetCommandInvocation answers InvocationDoesNotExist for a short while (the SDK's
 *   `waitUntilCommandExecuted` retries on it; naive pollers must too);
 * - Pending → InProgress → Success | Failed | TimedOut, ResponseCode = the script's exit code (-1 until it ends);
 * - executionTimeout (default 3600 s) kills the script's process group → TimedOut / ExecutionTimedOut, ResponseCode
 *   137, as the Linux agent reports; an instance that is not Online stays Pending until TimeoutSeconds (delivery
 *   timeout) → TimedOut / DeliveryTimedOut;
 * - StandardOutputContent is cut at 24,000 characters, StandardErrorContent at 8,000.
 *
 * Scripts run through an injected executor (the lab wires it to the host's namespaces). Every SendCommand's
 * parameters are appended to a log file so tests can prove no join token ever travelled in one.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { defaultHostname, LabInstance, validateInstances } from '../imds/imds';
import { SsmServiceError, validation } from './errors';

export const STDOUT_LIMIT = 24_000;
export const STDERR_LIMIT = 8_000;
/** ListCommandInvocations' CommandPlugins[].Output holds only the first 2,500 characters. */
export const PLUGIN_OUTPUT_LIMIT = 2_500;
/** What the Linux agent reports for a command it had to kill (128 + SIGKILL). */
export const TIMED_OUT_EXIT_CODE = 137;
export const DEFAULT_EXECUTION_TIMEOUT_S = 3600;
export const MAX_EXECUTION_TIMEOUT_S = 172_800;

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a script on an instance. Must stop the script when `signal` aborts (execution timeout) and may then
 * resolve with the partial output.
 */
export type CommandExecutor = (instanceId: string, script: string, opts: { timeoutSeconds: number; signal: AbortSignal }) => Promise<ExecResult>;

export type PingStatus = 'Online' | 'ConnectionLost' | 'Inactive';

/** Who made a request: TCP on 127.0.0.1 is the operator; the unix socket carries the host's IP from the gateway. */
export interface Caller {
  readonly via: 'tcp' | 'unix';
  readonly sourceIp?: string;
  readonly instanceId?: string;
}

export interface RunCommandOptions {
  /** The instances the agent runs on: a fixed table, or a function of now (the lab's EC2 launches and terminates). */
  readonly instances: readonly LabInstance[] | (() => readonly LabInstance[]);
  readonly executor: CommandExecutor;
  readonly region?: string;
  /** JSON lines, one per SendCommand: id, instances, document, parameters, caller. */
  readonly commandLog?: string;
  /** How long a new invocation stays invisible (InvocationDoesNotExist). @default 300 */
  readonly invisibleForMs?: number;
  /**
   * Asked whenever the lab needs an instance's ping status (e.g. is its host's dockerd/netns alive).
   * @default - the status set with setPingStatus (Online initially)
   */
  readonly isOnline?: (instanceId: string) => boolean | Promise<boolean>;
  readonly now?: () => number;
}

type InvocationStatus = 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';

interface Invocation {
  readonly commandId: string;
  readonly instanceId: string;
  readonly visibleAt: number;
  status: InvocationStatus;
  details: string;
  responseCode: number;
  stdout: string;
  stderr: string;
  start?: number;
  end?: number;
  abort?: AbortController;
}

interface CommandRecord {
  readonly commandId: string;
  readonly comment: string;
  readonly parameters: Record<string, string[]>;
  readonly instanceIds: string[];
  readonly requested: number;
  readonly deliveryTimeoutS: number;
  readonly executionTimeoutS: number;
  readonly invocations: Invocation[];
}

const COMMAND_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DOCUMENT = 'AWS-RunShellScript';
const PLUGIN = 'aws:runShellScript';

/** Cuts at a character count without splitting a surrogate pair. */
export function cutChars(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString();
}

function elapsed(start?: number, end?: number): string {
  return start === undefined || end === undefined ? '' : `PT${((end - start) / 1000).toFixed(3)}S`;
}

function page<T>(items: T[], input: Record<string, unknown>, dflt: number, min: number, max: number): { items: T[]; NextToken?: string } {
  const size = input.MaxResults === undefined ? dflt : input.MaxResults;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < min || size > max) {
    throw validation(`1 validation error detected: Value '${String(size)}' at 'maxResults' failed to satisfy constraint: Member must have value between ${min} and ${max}`);
  }
  let start = 0;
  if (input.NextToken !== undefined) {
    const n = typeof input.NextToken === 'string' ? Number(Buffer.from(input.NextToken, 'base64').toString('utf8')) : NaN;
    if (!Number.isInteger(n) || n < 0) throw new SsmServiceError('InvalidNextToken', 'The specified token is not valid.');
    start = n;
  }
  const slice = items.slice(start, start + size);
  return start + size < items.length ? { items: slice, NextToken: Buffer.from(String(start + size)).toString('base64') } : { items: slice };
}

export class RunCommandService {
  private readonly fixed?: Map<string, LabInstance>;
  private readonly ping = new Map<string, { status: PingStatus; last: number }>();
  private readonly commands = new Map<string, CommandRecord>();
  private readonly order: string[] = [];
  private readonly now: () => number;
  private readonly invisibleForMs: number;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: RunCommandOptions) {
    if (typeof opts.instances !== 'function') {
      validateInstances(opts.instances);
      this.fixed = new Map(opts.instances.map((i) => [i.instanceId, i]));
    }
    this.now = opts.now ?? Date.now;
    this.invisibleForMs = opts.invisibleForMs ?? 300;
  }

  /** The current instance table (a fresh view each call when it is dynamic). */
  private get instances(): Map<string, LabInstance> {
    const list = this.fixed ? undefined : (this.opts.instances as () => readonly LabInstance[])();
    const map = this.fixed ?? new Map(list!.map((i) => [i.instanceId, i]));
    for (const id of map.keys()) if (!this.ping.has(id)) this.ping.set(id, { status: 'Online', last: this.now() });
    return map;
  }

  /** The instance with this source IP, if any (identity of requests arriving through the gateway). */
  instanceByIp(ip: string | undefined): LabInstance | undefined {
    return ip ? [...this.instances.values()].find((i) => i.privateIp === ip) : undefined;
  }

  /** Marks an instance as reachable or not (the lab does this when it stops or cuts a host). */
  setPingStatus(instanceId: string, status: PingStatus): void {
    const p = this.ping.get(instanceId);
    if (!p) throw new Error(`no lab instance ${instanceId}`);
    p.status = status;
    if (status === 'Online') p.last = this.now();
  }

  async pingStatus(instanceId: string): Promise<PingStatus> {
    let p = this.ping.get(instanceId);
    if (!p) this.ping.set(instanceId, (p = { status: 'Online', last: this.now() }));
    if (this.opts.isOnline) {
      const online = await this.opts.isOnline(instanceId);
      p.status = online ? 'Online' : 'ConnectionLost';
    }
    if (p.status === 'Online') p.last = this.now();
    return p.status;
  }

  async describeInstanceInformation(input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const wanted: Record<string, string[]> = {};
    // Tag filters (`tag:<key>`, `tag-key`) exist only in Filters, as in SSM.
    const addFilter = (key: unknown, values: unknown, tags: boolean): void => {
      if (typeof key !== 'string' || !Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
        throw new SsmServiceError('InvalidInstanceInformationFilterValue', 'Filters must have a key and a list of string values.');
      }
      const isTag = tags && (/^tag:.{1,128}$/.test(key) || key === 'tag-key');
      if (!isTag && !['InstanceIds', 'PingStatus', 'PlatformTypes', 'ResourceType'].includes(key)) {
        throw new SsmServiceError('InvalidFilterKey', `The lab supports the filter keys InstanceIds, PingStatus, PlatformTypes, ResourceType${tags ? ', tag:<key> and tag-key' : ''} (got ${key}).`);
      }
      wanted[key] = values as string[];
    };
    if (input.InstanceInformationFilterList !== undefined) {
      if (!Array.isArray(input.InstanceInformationFilterList)) throw validation('InstanceInformationFilterList must be a list');
      for (const f of input.InstanceInformationFilterList as Record<string, unknown>[]) addFilter(f?.key, f?.valueSet, false);
    }
    if (input.Filters !== undefined) {
      if (!Array.isArray(input.Filters)) throw validation('Filters must be a list');
      for (const f of input.Filters as Record<string, unknown>[]) addFilter(f?.Key, f?.Values, true);
    }
    const tagsMatch = (inst: LabInstance): boolean =>
      Object.entries(wanted).every(([k, values]) => {
        if (k === 'tag-key') return values.some((v) => inst.tags?.[v] !== undefined);
        if (!k.startsWith('tag:')) return true;
        const v = inst.tags?.[k.slice(4)];
        return v !== undefined && values.includes(v);
      });
    const list: Record<string, unknown>[] = [];
    for (const inst of this.instances.values()) {
      const status = await this.pingStatus(inst.instanceId);
      const row = {
        InstanceId: inst.instanceId,
        PingStatus: status,
        LastPingDateTime: this.ping.get(inst.instanceId)!.last / 1000,
        AgentVersion: '3.3.0.0',
        IsLatestVersion: true,
        PlatformType: 'Linux',
        PlatformName: 'Amazon Linux',
        PlatformVersion: '2023',
        ResourceType: 'EC2Instance',
        IPAddress: inst.privateIp,
        ComputerName: inst.hostname ?? defaultHostname(inst.privateIp, this.opts.region ?? 'us-east-1'),
        AssociationStatus: 'Success',
      };
      const match = (k: string, v: string): boolean => !wanted[k] || wanted[k].includes(v);
      if (match('InstanceIds', row.InstanceId) && match('PingStatus', row.PingStatus) && match('PlatformTypes', 'Linux') && match('ResourceType', 'EC2Instance') && tagsMatch(inst)) {
        list.push(row);
      }
    }
    const { items, NextToken } = page(list, input, 50, 5, 50);
    return NextToken ? { InstanceInformationList: items, NextToken } : { InstanceInformationList: items };
  }

  async sendCommand(input: Record<string, unknown>, caller: Caller): Promise<{ Command: Record<string, unknown> }> {
    if (this.closed) throw new SsmServiceError('InternalServerError', 'the lab is shutting down', 500);
    const doc = input.DocumentName;
    if (typeof doc !== 'string' || doc.length === 0) throw validation("1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null");
    if (doc !== DOCUMENT) throw new SsmServiceError('InvalidDocument', `The lab supports only the ${DOCUMENT} document (got ${doc}).`);
    if (input.Targets !== undefined) throw validation('The lab supports InstanceIds, not Targets.');
    const ids = input.InstanceIds;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 50 || !ids.every((i) => typeof i === 'string')) {
      throw validation('InstanceIds must list 1 to 50 instance ids.');
    }
    const unknown = (ids as string[]).filter((i) => !this.instances.has(i));
    if (unknown.length > 0) throw new SsmServiceError('InvalidInstanceId', `Instances [[${unknown.join(', ')}]] not in a valid state for account 123456789012`);

    const params = input.Parameters ?? {};
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new SsmServiceError('InvalidParameters', 'Parameters must be a map of name to list of strings.');
    const p = params as Record<string, unknown>;
    for (const [k, v] of Object.entries(p)) {
      if (!['commands', 'executionTimeout', 'workingDirectory'].includes(k)) {
        throw new SsmServiceError('InvalidParameters', `Document ${DOCUMENT} does not support parameter ${k}.`);
      }
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new SsmServiceError('InvalidParameters', `Parameter ${k} must be a list of strings.`);
    }
    const commands = p.commands as string[] | undefined;
    if (!commands || commands.length === 0) throw new SsmServiceError('InvalidParameters', 'Parameter commands is required.');
    let executionTimeoutS = DEFAULT_EXECUTION_TIMEOUT_S;
    if (p.executionTimeout !== undefined) {
      const t = (p.executionTimeout as string[])[0];
      if (!/^\d{1,6}$/.test(t ?? '') || Number(t) < 1 || Number(t) > MAX_EXECUTION_TIMEOUT_S) {
        throw new SsmServiceError('InvalidParameters', `Parameter executionTimeout must be a number of seconds from 1 to ${MAX_EXECUTION_TIMEOUT_S} (got ${String(t)}).`);
      }
      executionTimeoutS = Number(t);
    }
    let deliveryTimeoutS = 3600;
    if (input.TimeoutSeconds !== undefined) {
      const t = input.TimeoutSeconds;
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 30 || t > 2_592_000) {
        throw validation(`1 validation error detected: Value '${String(t)}' at 'timeoutSeconds' failed to satisfy constraint: Member must have value between 30 and 2592000`);
      }
      deliveryTimeoutS = t;
    }
    const comment = input.Comment === undefined ? '' : input.Comment;
    if (typeof comment !== 'string' || comment.length > 100) throw validation('Comment must be a string of at most 100 characters.');
    let script = commands.join('\n');
    const wd = (p.workingDirectory as string[] | undefined)?.[0];
    if (wd) script = `cd '${wd.replace(/'/g, `'\\''`)}' || exit 1\n${script}`;

    const commandId = randomUUID();
    const requested = this.now();
    const rec: CommandRecord = {
      commandId,
      comment,
      parameters: p as Record<string, string[]>,
      instanceIds: [...new Set(ids as string[])],
      requested,
      deliveryTimeoutS,
      executionTimeoutS,
      invocations: [],
    };
    for (const instanceId of rec.instanceIds) {
      rec.invocations.push({ commandId, instanceId, visibleAt: requested + this.invisibleForMs, status: 'Pending', details: 'Pending', responseCode: -1, stdout: '', stderr: '' });
    }
    this.commands.set(commandId, rec);
    this.order.push(commandId);
    this.logCommand(rec, caller);
    for (const inv of rec.invocations) void this.dispatch(rec, inv, script);
    return { Command: this.commandView(rec) };
  }

  getCommandInvocation(input: Record<string, unknown>): Record<string, unknown> {
    const { CommandId, InstanceId, PluginName } = input;
    if (typeof CommandId !== 'string' || !COMMAND_ID.test(CommandId)) throw new SsmServiceError('InvalidCommandId');
    if (typeof InstanceId !== 'string' || !/^(i|mi)-[0-9a-f]{8,17}$/.test(InstanceId)) throw new SsmServiceError('InvalidInstanceId');
    if (PluginName !== undefined && PluginName !== PLUGIN) throw new SsmServiceError('InvalidPluginName');
    const rec = this.commands.get(CommandId);
    const inv = rec?.invocations.find((i) => i.instanceId === InstanceId);
    if (!rec || !inv || this.now() < inv.visibleAt) throw new SsmServiceError('InvocationDoesNotExist');
    return {
      CommandId,
      InstanceId,
      Comment: rec.comment,
      DocumentName: DOCUMENT,
      DocumentVersion: '$DEFAULT',
      PluginName: PLUGIN,
      ResponseCode: inv.responseCode,
      ExecutionStartDateTime: iso(inv.start),
      ExecutionElapsedTime: elapsed(inv.start, inv.end),
      ExecutionEndDateTime: iso(inv.end),
      Status: inv.status,
      StatusDetails: inv.details,
      StandardOutputContent: cutChars(inv.stdout, STDOUT_LIMIT),
      StandardOutputUrl: '',
      StandardErrorContent: cutChars(inv.stderr, STDERR_LIMIT),
      StandardErrorUrl: '',
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
    };
  }

  listCommandInvocations(input: Record<string, unknown>): Record<string, unknown> {
    const { CommandId, InstanceId } = input;
    if (CommandId !== undefined && (typeof CommandId !== 'string' || !COMMAND_ID.test(CommandId))) throw new SsmServiceError('InvalidCommandId');
    const now = this.now();
    const rows: Record<string, unknown>[] = [];
    for (const id of [...this.order].reverse()) {
      if (CommandId !== undefined && id !== CommandId) continue;
      const rec = this.commands.get(id)!;
      for (const inv of rec.invocations) {
        if (InstanceId !== undefined && inv.instanceId !== InstanceId) continue;
        if (now < inv.visibleAt) continue;
        const row: Record<string, unknown> = {
          CommandId: id,
          InstanceId: inv.instanceId,
          InstanceName: this.instances.get(inv.instanceId)?.hostname ?? '',
          Comment: rec.comment,
          DocumentName: DOCUMENT,
          DocumentVersion: '$DEFAULT',
          RequestedDateTime: rec.requested / 1000,
          Status: inv.status,
          StatusDetails: inv.details,
          TraceOutput: '',
          StandardOutputUrl: '',
          StandardErrorUrl: '',
          CommandPlugins: [],
          ServiceRole: '',
          NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
          CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
        };
        if (input.Details === true) {
          const output = inv.stderr ? `${inv.stdout}\n----------ERROR-------\n${inv.stderr}` : inv.stdout;
          row.CommandPlugins = [
            {
              Name: PLUGIN,
              Status: inv.status,
              StatusDetails: inv.details,
              ResponseCode: inv.responseCode,
              ...(inv.start !== undefined ? { ResponseStartDateTime: inv.start / 1000 } : {}),
              ...(inv.end !== undefined ? { ResponseFinishDateTime: inv.end / 1000 } : {}),
              Output: cutChars(output, PLUGIN_OUTPUT_LIMIT),
              StandardOutputUrl: '',
              StandardErrorUrl: '',
              OutputS3Region: this.opts.region ?? 'us-east-1',
              OutputS3BucketName: '',
              OutputS3KeyPrefix: '',
            },
          ];
        }
        rows.push(row);
      }
    }
    const { items, NextToken } = page(rows, input, 50, 1, 50);
    return NextToken ? { CommandInvocations: items, NextToken } : { CommandInvocations: items };
  }

  listCommands(input: Record<string, unknown>): Record<string, unknown> {
    const { CommandId, InstanceId } = input;
    if (CommandId !== undefined && (typeof CommandId !== 'string' || !COMMAND_ID.test(CommandId))) throw new SsmServiceError('InvalidCommandId');
    const rows = [...this.order]
      .reverse()
      .map((id) => this.commands.get(id)!)
      .filter((r) => (CommandId === undefined || r.commandId === CommandId) && (InstanceId === undefined || r.instanceIds.includes(String(InstanceId))))
      .map((r) => this.commandView(r));
    const { items, NextToken } = page(rows, input, 50, 1, 50);
    return NextToken ? { Commands: items, NextToken } : { Commands: items };
  }

  /**
   * CancelCommand: pending or running invocations (all, or those of InstanceIds) become Cancelled, and a running
   * script is killed. Finished invocations keep their result. The service answers before the cancel lands.
   */
  cancelCommand(input: Record<string, unknown>): Record<string, never> {
    const { CommandId, InstanceIds } = input;
    if (typeof CommandId !== 'string' || !COMMAND_ID.test(CommandId)) throw new SsmServiceError('InvalidCommandId');
    const rec = this.commands.get(CommandId);
    if (!rec) throw new SsmServiceError('InvalidCommandId');
    if (InstanceIds !== undefined && (!Array.isArray(InstanceIds) || !InstanceIds.every((i) => typeof i === 'string'))) {
      throw validation('InstanceIds must be a list of instance ids.');
    }
    for (const inv of rec.invocations) {
      if (InstanceIds !== undefined && !(InstanceIds as string[]).includes(inv.instanceId)) continue;
      if (inv.status !== 'Pending' && inv.status !== 'InProgress') continue;
      this.finish(inv, 'Cancelled', 'Cancelled', -1);
      inv.abort?.abort();
    }
    return {};
  }

  /** Kills every running script and stops waiting for offline instances. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const rec of this.commands.values()) {
      for (const inv of rec.invocations) {
        inv.abort?.abort();
        if (inv.status === 'Pending' || inv.status === 'InProgress') this.finish(inv, 'Cancelled', 'Cancelled', -1);
      }
    }
  }

  private commandView(rec: CommandRecord): Record<string, unknown> {
    const invs = rec.invocations;
    const done = invs.filter((i) => !['Pending', 'InProgress'].includes(i.status));
    const errors = invs.filter((i) => ['Failed', 'TimedOut'].includes(i.status));
    const deliveryTimedOut = invs.filter((i) => i.details === 'DeliveryTimedOut');
    let status: string;
    if (done.length < invs.length) status = invs.some((i) => i.status === 'InProgress' || i.status === 'Success' || i.status === 'Failed') ? 'InProgress' : 'Pending';
    else if (errors.length === 0) status = invs.some((i) => i.status === 'Cancelled') ? 'Cancelled' : 'Success';
    else if (invs.every((i) => i.status === 'TimedOut')) status = 'TimedOut';
    else status = 'Failed';
    return {
      CommandId: rec.commandId,
      DocumentName: DOCUMENT,
      DocumentVersion: '$DEFAULT',
      Comment: rec.comment,
      ExpiresAfter: (rec.requested + (rec.deliveryTimeoutS + rec.executionTimeoutS) * 1000) / 1000,
      Parameters: rec.parameters,
      InstanceIds: rec.instanceIds,
      Targets: [],
      RequestedDateTime: rec.requested / 1000,
      Status: status,
      StatusDetails: status,
      OutputS3Region: this.opts.region ?? 'us-east-1',
      OutputS3BucketName: '',
      OutputS3KeyPrefix: '',
      MaxConcurrency: '50',
      MaxErrors: '0',
      TargetCount: invs.length,
      CompletedCount: done.length,
      ErrorCount: errors.length,
      DeliveryTimedOutCount: deliveryTimedOut.length,
      ServiceRole: '',
      NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
      TimeoutSeconds: rec.deliveryTimeoutS,
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private async dispatch(rec: CommandRecord, inv: Invocation, script: string): Promise<void> {
    // Delivery: an unreachable instance keeps the invocation Pending until the delivery timeout.
    const deliverBy = rec.requested + rec.deliveryTimeoutS * 1000;
    for (;;) {
      if (this.closed) return;
      let status: PingStatus;
      try {
        status = await this.pingStatus(inv.instanceId);
      } catch {
        status = 'ConnectionLost';
      }
      if (inv.status !== 'Pending') return; // cancelled while waiting for the instance
      if (status === 'Online') break;
      if (this.now() >= deliverBy) return this.finish(inv, 'TimedOut', 'DeliveryTimedOut', -1);
      await this.sleep(Math.min(500, Math.max(1, deliverBy - this.now())));
    }
    if (this.closed) return;
    inv.status = 'InProgress';
    inv.details = 'InProgress';
    inv.start = this.now();
    const abort = new AbortController();
    inv.abort = abort;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
      this.finish(inv, 'TimedOut', 'ExecutionTimedOut', TIMED_OUT_EXIT_CODE);
    }, rec.executionTimeoutS * 1000);
    try {
      const r = await this.opts.executor(inv.instanceId, script, { timeoutSeconds: rec.executionTimeoutS, signal: abort.signal });
      // Keep what the script printed before it was killed.
      inv.stdout = r.stdout;
      inv.stderr = r.stderr;
      if (!timedOut && inv.status === 'InProgress') {
        const code = Number.isInteger(r.exitCode) ? r.exitCode : -1;
        this.finish(inv, code === 0 ? 'Success' : 'Failed', code === 0 ? 'Success' : 'Failed', code);
      }
    } catch (e) {
      if (!timedOut && inv.status === 'InProgress') {
        inv.stderr = `failed to run commands: ${(e as Error).message}`;
        this.finish(inv, 'Failed', 'Failed', 1);
      }
    } finally {
      clearTimeout(timer);
      inv.abort = undefined;
    }
  }

  private finish(inv: Invocation, status: InvocationStatus, details: string, code: number): void {
    inv.status = status;
    inv.details = details;
    inv.responseCode = code;
    inv.end = this.now();
    inv.start ??= inv.end;
  }

  private logCommand(rec: CommandRecord, caller: Caller): void {
    if (!this.opts.commandLog) return;
    mkdirSync(dirname(this.opts.commandLog), { recursive: true });
    const line = {
      time: new Date(rec.requested).toISOString(),
      commandId: rec.commandId,
      documentName: DOCUMENT,
      instanceIds: rec.instanceIds,
      comment: rec.comment,
      parameters: rec.parameters,
      caller,
    };
    appendFileSync(this.opts.commandLog, JSON.stringify(line) + '\n');
  }
}

export interface SpawnExecutorOptions {
  /** Characters kept per stream (beyond the API's cuts, for diagnostics). @default 1_000_000 */
  readonly maxChars?: number;
  /** After the script exits, how long to wait for background children to release stdout/stderr. @default 1000 */
  readonly drainMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Reads the script from fd 3 and runs it. The script never appears in argv (visible in `ps`), stdin stays
 * /dev/null as under the SSM agent, and fd 3 is closed before the script runs. (Node's extra stdio is a socket
 * pair, which `bash /dev/fd/3` cannot open: hence read-then-eval.)
 */
export const SCRIPT_FROM_FD3 = ['bash', '-c', 'eval "$(cat <&3)" 3<&-'];

/**
 * An executor that spawns `<prefix…> bash -c 'eval "$(cat <&3)"'` and feeds the script on fd 3. `prefixFor` gives the argv that
 * enters the instance (e.g. `nsenter --target <pid> --net --mount --uts --`), or [] to run right here.
 * The process gets its own process group, killed with SIGKILL on abort, as the agent does.
 */
export function spawnExecutor(prefixFor: (instanceId: string) => string[], opts: SpawnExecutorOptions = {}): CommandExecutor {
  const maxChars = opts.maxChars ?? 1_000_000;
  const drainMs = opts.drainMs ?? 1000;
  return (instanceId, script, { signal }) =>
    new Promise<ExecResult>((resolve, reject) => {
      const argv = [...prefixFor(instanceId), ...SCRIPT_FROM_FD3];
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], detached: true, env: opts.env ?? process.env });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < maxChars) stdout += d.slice(0, maxChars - stdout.length);
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < maxChars) stderr += d.slice(0, maxChars - stderr.length);
      });
      const fd3 = child.stdio[3] as NodeJS.WritableStream & { on: (e: string, f: () => void) => void };
      fd3.on('error', () => undefined); // bash may exit before reading everything
      fd3.end(script);
      const kill = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      };
      if (signal.aborted) kill();
      signal.addEventListener('abort', kill, { once: true });
      let settled = false;
      const settle = (code: number): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', kill);
        resolve({ exitCode: code, stdout, stderr });
      };
      child.on('error', (e) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', kill);
        reject(e);
      });
      child.on('exit', (code, sig) => {
        const exitCode = code ?? (sig === 'SIGKILL' ? TIMED_OUT_EXIT_CODE : 128 + 15);
        // A background child may hold stdout open: wait for 'close' only briefly, bounded.
        const t = setTimeout(() => settle(exitCode), drainMs);
        child.on('close', () => {
          clearTimeout(t);
          settle(exitCode);
        });
      });
    });
}
