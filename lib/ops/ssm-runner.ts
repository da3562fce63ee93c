/**
 * The production CommandRunner: SSM Run Command (`AWS-RunShellScript`) on AWS or on the lab's SSM endpoint.
 *
 * Our own wait loop instead of the SDK's `waitUntilCommandExecuted`: same state machine (Pending/InProgress/
 * Delayed wait, InvocationDoesNotExist right after SendCommand is retried), but with an injectable clock so tests
 * run in milliseconds, one deadline for all instances, and a CommandResult (not an error) for a script's non-zero
 * exit. Throttling is the SDK's job (`retryMode: 'adaptive'`); a poll that still gets throttled just polls again.
 */
import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  SSMClient,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import { SwarmError, isSwarmError } from '../errors';
import { fromAwsError, isAwsError, redactSecrets, stderrTail } from './aws-errors';
import type { AwsConnection } from './target';
import { type CommandResult, type CommandRunner, type Reporter, type RunOptions, silentReporter } from './types';

/** Result polling: first GetCommandInvocation after 100 ms, then ×1.5 up to one per second (see pollIntervalMs). */
export const DEFAULT_POLL_INTERVAL_MS: readonly [number, number] = [100, 1000];

/** How long the runner keeps polling every `first` interval once a waiting script's answer is due (resultExpectedAfterMs). */
export const EXPECTED_FAST_POLL_MS = 1500;

/** SendCommand accepts at most 50 instance ids per call. */
export const MAX_INSTANCES_PER_COMMAND = 50;

/**
 * A run with a delivery bound (another instance could run it instead) asks SSM again whether the agent is Online when
 * it was last seen Online longer ago than this, ms: an instance stopped since is skipped instead of waited for.
 */
export const AGENT_RECHECK_MS = 5000;

/** SendCommand's TimeoutSeconds (the delivery timeout: a command not started by then never runs) is at least 30. */
export const SSM_MIN_DELIVERY_TIMEOUT_S = 30;

const THROTTLING = ['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded'];

/** An SSM client for a connection: adaptive retry (client-side rate limiting) because polls come in bursts. */
export function createSsmClient(conn: AwsConnection, overrides: Partial<SSMClientConfig> = {}): SSMClient {
  return new SSMClient({
    region: conn.region,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    ...(conn.credentials ? { credentials: conn.credentials } : {}),
    retryMode: 'adaptive',
    maxAttempts: conn.maxAttempts ?? 8,
    ...overrides,
  });
}

export interface SsmRunnerOptions {
  /** The client, or a factory called on first use (the CLI must not build clients it never uses). */
  readonly client: SSMClient | (() => SSMClient);
  readonly reporter?: Reporter;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long to wait for the instances' SSM agents to be Online before the first command. @default 300 */
  readonly agentOnlineTimeoutSeconds?: number;
  /**
   * The command's overall bound (ms, on `now`'s clock): every wait of every call ends by then — the agent-online
   * wait, the result polling, each SDK request (aborted) — and the SSM execution timeout never reaches past it.
   */
  readonly deadlineAt?: number;
  /** How the bound is described in errors, e.g. "--timeout 10 + 10s margin". */
  readonly deadlineDescription?: string;
  /** `executionTimeout` when the caller gives none. @default 600 */
  readonly defaultTimeoutSeconds?: number;
  /** Extra time on top of the execution timeout for delivery and result upload. @default 120 */
  readonly deliverySlackSeconds?: number;
  /** How long InvocationDoesNotExist is taken as "not yet visible" after SendCommand. @default 60 */
  readonly invocationVisibleTimeoutSeconds?: number;
  /**
   * Result polling, ms: the first GetCommandInvocation comes `first` after SendCommand (a query script takes a
   * fraction of a second), each pause after it is ×1.5 up to `max`. With the default a command of d seconds costs
   * about d + 4 calls once d > 2 s: one call per second per invocation, far below GetCommandInvocation's rate
   * limit, and throttling left after the SDK's adaptive retry just means polling again. @default [100, 1000]
   */
  readonly pollIntervalMs?: readonly [number, number];
  /** GetCommandInvocation calls in flight at once. @default 8 */
  readonly concurrency?: number;
  /** Shown in errors ("cannot reach …"). */
  readonly endpointDescription?: string;
}

/** `started`: the agent has picked the command up (InProgress); absent when this poll could not tell (throttled). */
type PollOutcome = { kind: 'wait'; started?: boolean; status?: string } | { kind: 'done'; result: CommandResult };

interface Invocation {
  readonly commandId: string;
  readonly instanceId: string;
  readonly sentAt: number;
}

export class SsmRunner implements CommandRunner {
  private client?: SSMClient;
  /** Instance → when its agent was last seen Online (ms on `now`'s clock); forgotten when a run on it fails. */
  private readonly online = new Map<string, number>();
  private readonly reporter: Reporter;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: SsmRunnerOptions) {
    this.reporter = options.reporter ?? silentReporter;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private ssm(): SSMClient {
    if (!this.client) {
      const c = this.options.client;
      this.client = typeof c === 'function' ? c() : c;
    }
    return this.client;
  }

  /** ms left before the overall deadline (Infinity without one). */
  private remainingMs(): number {
    return this.options.deadlineAt === undefined ? Infinity : this.options.deadlineAt - this.now();
  }

  private deadlineError(what: string): SwarmError {
    return SwarmError.environment(
      'DEADLINE_EXCEEDED',
      `${what}: no answer within the command's time bound${this.options.deadlineDescription ? ` (${this.options.deadlineDescription})` : ''}`,
    );
  }

  /** An SDK call that cannot outlive the deadline. */
  private async send<T>(call: (ssm: SSMClient, o: { abortSignal?: AbortSignal }) => Promise<T>, what: string): Promise<T> {
    const left = this.remainingMs();
    if (left <= 0) throw this.deadlineError(what);
    try {
      return await call(this.ssm(), Number.isFinite(left) ? { abortSignal: AbortSignal.timeout(Math.max(1, left)) } : {});
    } catch (e) {
      if (isAwsError(e, 'AbortError', 'TimeoutError') || (e as { name?: string })?.name === 'AbortError') throw this.deadlineError(what);
      throw e;
    }
  }

  async run(instanceIds: readonly string[], script: string, options: RunOptions = {}): Promise<CommandResult[]> {
    const ids = [...new Set(instanceIds)];
    if (ids.length === 0) return [];
    const label = options.label ?? 'command';
    const leftS = Math.floor(this.remainingMs() / 1000);
    if (leftS < 1) throw this.deadlineError(label);
    const timeoutSeconds = Math.max(1, Math.min(172800, leftS, Math.ceil(options.timeoutSeconds ?? this.options.defaultTimeoutSeconds ?? 600)));

    const bound = options.deliveryBoundSeconds;
    const deliveryBoundMs = bound !== undefined && Number.isFinite(bound) && bound > 0 ? bound * 1000 : undefined;
    try {
      return await this.sendAndWait(ids, script, options, label, timeoutSeconds, deliveryBoundMs);
    } catch (e) {
      // An instance that failed to answer is asked about its agent again before the next run.
      for (const id of ids) this.online.delete(id);
      throw e;
    }
  }

  private async sendAndWait(ids: string[], script: string, options: RunOptions, label: string, timeoutSeconds: number, deliveryBoundMs: number | undefined): Promise<CommandResult[]> {
    await this.waitForAgents(ids, deliveryBoundMs !== undefined);

    const invocations: Invocation[] = [];
    for (let i = 0; i < ids.length; i += MAX_INSTANCES_PER_COMMAND) {
      const batch = ids.slice(i, i + MAX_INSTANCES_PER_COMMAND);
      let commandId: string | undefined;
      try {
        const out = await this.send(
          (c, o) => c.send(new SendCommandCommand({
            DocumentName: 'AWS-RunShellScript',
            InstanceIds: batch,
            // The script is the whole payload; secrets never travel here (they stay in Parameter Store).
            Parameters: { commands: [script], executionTimeout: [String(timeoutSeconds)] },
            // With a delivery bound, SSM itself never starts the command late, should our cancel be lost.
            ...(deliveryBoundMs !== undefined ? { TimeoutSeconds: Math.max(SSM_MIN_DELIVERY_TIMEOUT_S, Math.ceil(deliveryBoundMs / 1000)) } : {}),
            Comment: `ec2-swarm: ${label}`.slice(0, 100),
          }), o),
          `SSM SendCommand (${label})`,
        );
        commandId = out.Command?.CommandId;
      } catch (e) {
        throw fromAwsError(e, `SSM SendCommand (${label})`, { endpoint: this.options.endpointDescription });
      }
      if (!commandId) throw SwarmError.environment('SSM_NO_COMMAND_ID', `SSM SendCommand (${label}) returned no command id`);
      const sentAt = this.now();
      for (const instanceId of batch) invocations.push({ commandId, instanceId, sentAt });
    }

    return this.waitForResults(invocations, ids, timeoutSeconds, label, options.resultExpectedAfterMs, deliveryBoundMs, options.pollMaxMs);
  }

  private async waitForResults(invocations: Invocation[], order: string[], timeoutSeconds: number, label: string, expectedAfterMs?: number, deliveryBoundMs?: number, pollMaxMs?: number): Promise<CommandResult[]> {
    const own = this.now() + (timeoutSeconds + (this.options.deliverySlackSeconds ?? 120)) * 1000;
    const deadline = Math.min(own, this.options.deadlineAt ?? Infinity);
    const [firstDelay, runnerMax] = this.options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    // The caller's cap for a short command, kept to ten polls a second for the command (one per pending instance each).
    const capFor = (pending: number): number =>
      pollMaxMs === undefined || !(pollMaxMs > 0) ? runnerMax : Math.min(runnerMax, Math.max(firstDelay, pollMaxMs, pending * 100));
    let maxDelay = capFor(invocations.length);
    const results = new Map<string, CommandResult>();
    let pending = invocations;
    let delay = firstDelay;
    const started = this.now();
    // Invocations the agent has picked up, and the last status of the others (for the delivery bound).
    const delivered = new Set<Invocation>();
    const lastStatus = new Map<Invocation, string>();
    // A script that waits on the host until a known moment: poll quickly again from then (once).
    let expectAt = expectedAfterMs !== undefined && Number.isFinite(expectedAfterMs) && expectedAfterMs > firstDelay ? started + expectedAfterMs : undefined;
    let fastUntil = -Infinity;
    // No poll at once: right after SendCommand the invocation is not even visible yet (a wasted call).
    await this.sleep(Math.min(firstDelay, Math.max(0, deadline - this.now())));
    delay = Math.min(maxDelay, Math.round(delay * 1.5));
    while (pending.length > 0) {
      let outcomes: PollOutcome[];
      try {
        outcomes = await mapLimit(pending, this.options.concurrency ?? 8, (inv) => this.poll(inv, timeoutSeconds, label));
      } catch (e) {
        if (!(isSwarmError(e) && e.code === 'DEADLINE_EXCEEDED')) throw e;
        await this.cancelQuietly(pending);
        throw this.deadlineError(`${label} on ${pending[0].instanceId} (SSM command ${pending[0].commandId}, cancelled)`);
      }
      pending = pending.filter((inv, i) => {
        const o = outcomes[i];
        if (o.kind === 'done') results.set(inv.instanceId, o.result);
        else {
          if (o.started) delivered.add(inv);
          if (o.status) lastStatus.set(inv, o.status);
        }
        return o.kind === 'wait';
      });
      if (pending.length === 0) break;
      const undelivered = deliveryBoundMs === undefined ? [] : pending.filter((inv) => !delivered.has(inv));
      const late = undelivered.filter((inv) => this.now() - inv.sentAt >= deliveryBoundMs!);
      if (late.length > 0) {
        await this.cancelQuietly(pending);
        const first = late[0];
        throw SwarmError.environment(
          'SSM_NOT_DELIVERED',
          `${label} on ${first.instanceId}: the SSM agent did not start command ${first.commandId} within ${deliveryBoundMs! / 1000}s ` +
            `(status ${lastStatus.get(first) ?? 'not visible yet'}); the command was cancelled`,
        );
      }
      if (invocations.length > 1) {
        const secs = Math.round((this.now() - started) / 1000);
        this.reporter.progress(`${label}: ${results.size}/${invocations.length} instances done (${secs}s)`);
      }
      if (this.now() >= deadline) {
        await this.cancelQuietly(pending);
        const first = pending[0];
        if (deadline < own) throw this.deadlineError(`${label} on ${first.instanceId} (SSM command ${first.commandId}, cancelled)`);
        throw SwarmError.environment(
          'SSM_WAIT_TIMEOUT',
          `${label} on ${first.instanceId}${pending.length > 1 ? ` and ${pending.length - 1} more` : ''}: no result from SSM command ${first.commandId} within ${timeoutSeconds}s (+ delivery slack); the command was cancelled`,
        );
      }
      maxDelay = capFor(pending.length);
      let pause = Math.min(delay, maxDelay);
      delay = Math.min(maxDelay, Math.round(delay * 1.5));
      if (expectAt !== undefined && this.now() + pause >= expectAt) {
        // From the expected moment, every `firstDelay` for a short while (the answer is due), then back off again.
        pause = Math.max(firstDelay, expectAt - this.now());
        delay = firstDelay;
        fastUntil = expectAt + EXPECTED_FAST_POLL_MS;
        expectAt = undefined;
      } else if (this.now() + pause < fastUntil) {
        delay = firstDelay;
      }
      // An undelivered command is looked at again right when its delivery bound is up.
      for (const inv of undelivered) {
        const left = inv.sentAt + deliveryBoundMs! - this.now();
        if (left > 0) pause = Math.min(pause, left);
      }
      await this.sleep(Math.min(pause, Math.max(0, deadline - this.now())));
    }
    if (invocations.length > 1) this.reporter.done();
    return order.map((id) => results.get(id)!);
  }

  private async poll(inv: Invocation, timeoutSeconds: number, label: string): Promise<PollOutcome> {
    let out: GetCommandInvocationCommandOutput;
    try {
      out = await this.send(
        (c, o) => c.send(new GetCommandInvocationCommand({ CommandId: inv.commandId, InstanceId: inv.instanceId }), o),
        `SSM GetCommandInvocation (${label})`,
      );
    } catch (e) {
      if (isSwarmError(e)) throw e;
      if (isAwsError(e, 'InvocationDoesNotExist')) {
        // SSM is eventually consistent: right after SendCommand the invocation may not be visible yet.
        const visibleWithin = (this.options.invocationVisibleTimeoutSeconds ?? 60) * 1000;
        if (this.now() - inv.sentAt <= visibleWithin) return { kind: 'wait', started: false, status: 'not visible yet' };
        throw SwarmError.environment(
          'SSM_INVOCATION_MISSING',
          `${label} on ${inv.instanceId}: SSM has no invocation of command ${inv.commandId} ${Math.round(visibleWithin / 1000)}s after it was sent`,
          e,
        );
      }
      if (isAwsError(e, ...THROTTLING)) return { kind: 'wait' };
      throw fromAwsError(e, `SSM GetCommandInvocation (${label})`, { endpoint: this.options.endpointDescription });
    }

    const status = out.Status ?? 'Pending';
    const details = (out.StatusDetails ?? '').replace(/\s+/g, '');
    const result: CommandResult = {
      instanceId: inv.instanceId,
      exitCode: out.ResponseCode ?? -1,
      stdout: out.StandardOutputContent ?? '',
      stderr: out.StandardErrorContent ?? '',
    };
    if (status === 'Pending' || status === 'InProgress' || status === 'Delayed') return { kind: 'wait', started: status === 'InProgress', status };
    if (status === 'Success') return { kind: 'done', result: { ...result, exitCode: result.exitCode > 0 ? result.exitCode : 0 } };
    const transportFailure = ['Undeliverable', 'Terminated', 'DeliveryTimedOut', 'ExecutionTimedOut', 'Cancelled', 'Canceled'].includes(details);
    // A script that ran and exited non-zero: the caller decides what that means.
    if (status === 'Failed' && !transportFailure && result.exitCode > 0) return { kind: 'done', result };

    throw SwarmError.environment(
      status === 'TimedOut' || details.endsWith('TimedOut') ? 'SSM_COMMAND_TIMED_OUT' : 'SSM_COMMAND_FAILED',
      `${label} on ${inv.instanceId}: SSM command ${inv.commandId} ${describeFailure(status, details, timeoutSeconds)}` +
        withTail(result.stderr),
    );
  }

  /**
   * Waits (bounded) until every instance's SSM agent reports Online; remembers the ones that did. `now`: a run another
   * instance could take over (a delivery bound) — an agent seen Online more than AGENT_RECHECK_MS ago is asked
   * about again, and one that is not Online fails at once instead of being waited for.
   */
  private async waitForAgents(ids: string[], now = false): Promise<void> {
    const asked = this.now();
    const todo = ids.filter((id) => {
      const seen = this.online.get(id);
      return seen === undefined || (now && asked - seen > AGENT_RECHECK_MS);
    });
    if (todo.length === 0) return;
    const started = this.now();
    // The agent wait is part of the command's budget: the smaller of its own bound and what is left.
    const boundSeconds = now ? 0 : Math.max(0, Math.min(this.options.agentOnlineTimeoutSeconds ?? 300, Math.floor(this.remainingMs() / 1000)));
    const deadline = started + boundSeconds * 1000;
    let waited = false;
    let last = new Map<string, string>();
    for (;;) {
      let ping: Map<string, string>;
      try {
        ping = await this.pingStatuses(todo);
      } catch (e) {
        // Out of time mid-request: report the agents as last seen.
        if (!(isSwarmError(e) && e.code === 'DEADLINE_EXCEEDED')) throw e;
        ping = last;
      }
      last = ping;
      const notOnline = todo.filter((id) => ping.get(id) !== 'Online');
      const seenAt = this.now();
      todo.filter((id) => ping.get(id) === 'Online').forEach((id) => this.online.set(id, seenAt));
      if (notOnline.length === 0) {
        if (waited) this.reporter.done();
        return;
      }
      const elapsed = Math.round((this.now() - started) / 1000);
      if (this.now() >= deadline || this.remainingMs() <= 0) {
        const first = notOnline[0];
        const state = ping.get(first) ? `is ${ping.get(first)}` : 'is not registered with SSM';
        throw SwarmError.environment(
          'SSM_AGENT_OFFLINE',
          `the SSM agent on ${first} ${state}${now ? ' (not waited for: another instance can run the command)' : ` after ${boundSeconds}s`}` +
            (!now && boundSeconds < (this.options.agentOnlineTimeoutSeconds ?? 300) && this.options.deadlineDescription ? ` (the command's time bound: ${this.options.deadlineDescription})` : '') +
            (notOnline.length > 1 ? ` (${notOnline.length - 1} more instances not Online either)` : '') +
            `: check that the instance is running, that its instance profile has the AmazonSSMManagedInstanceCore policy, ` +
            `and that it can reach the SSM endpoints (outbound HTTPS, or VPC endpoints for ssm, ssmmessages, ec2messages)`,
        );
      }
      waited = true;
      this.reporter.progress(`waiting for the SSM agent on ${notOnline.length} instance(s): ${notOnline.slice(0, 3).join(', ')}${notOnline.length > 3 ? ', …' : ''} (${elapsed}s)`);
      await this.sleep(Math.min(5000, Math.max(0, deadline - this.now())));
    }
  }

  private async pingStatuses(ids: string[]): Promise<Map<string, string>> {
    const ping = new Map<string, string>();
    for (let i = 0; i < ids.length; i += MAX_INSTANCES_PER_COMMAND) {
      const batch = ids.slice(i, i + MAX_INSTANCES_PER_COMMAND);
      let nextToken: string | undefined;
      do {
        try {
          const out = await this.send(
            (c, o) => c.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: 'InstanceIds', Values: batch }], MaxResults: 50, NextToken: nextToken }), o),
            'SSM DescribeInstanceInformation',
          );
          for (const info of out.InstanceInformationList ?? []) {
            if (info.InstanceId) ping.set(info.InstanceId, info.PingStatus ?? 'Unknown');
          }
          nextToken = out.NextToken;
        } catch (e) {
          if (isSwarmError(e)) throw e;
          if (isAwsError(e, ...THROTTLING)) return ping; // counts as "not yet": the outer loop is bounded
          // An id SSM has never seen is not an error here: it just is not Online (yet).
          if (isAwsError(e, 'InvalidInstanceId', 'InvalidInstanceInformationFilterValue')) break;
          throw fromAwsError(e, 'SSM DescribeInstanceInformation', { endpoint: this.options.endpointDescription });
        }
      } while (nextToken);
    }
    return ping;
  }

  private async cancelQuietly(pending: Invocation[]): Promise<void> {
    const byCommand = new Map<string, string[]>();
    for (const p of pending) byCommand.set(p.commandId, [...(byCommand.get(p.commandId) ?? []), p.instanceId]);
    for (const [CommandId, InstanceIds] of byCommand) {
      try {
        // Not bounded by the deadline (it has passed): its own short bound.
        await this.ssm().send(new CancelCommandCommand({ CommandId, InstanceIds }), { abortSignal: AbortSignal.timeout(5000) });
      } catch {
        // Best effort: the timeout error that follows is what the user needs to see.
      }
    }
  }
}

function describeFailure(status: string, details: string, timeoutSeconds: number): string {
  switch (details) {
    case 'ExecutionTimedOut':
      return `timed out after ${timeoutSeconds}s on the instance (raise --timeout if the work is legitimately slow)`;
    case 'DeliveryTimedOut':
      return 'was never picked up by the SSM agent: check the agent is Online (aws ssm describe-instance-information)';
    case 'Undeliverable':
      return 'is undeliverable: the instance is gone, stopped, or its SSM agent is not registered';
    case 'Terminated':
      return 'was terminated: the instance stopped or was replaced while the command ran';
    case 'Cancelled':
    case 'Canceled':
      return 'was cancelled';
    default:
      return `ended with status ${status}${details && details !== status ? ` (${details})` : ''}`;
  }
}

function withTail(stderr: string): string {
  const tail = stderrTail(stderr);
  return tail ? `\nstderr (last lines):\n${tail}` : '';
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  });
  await Promise.all(workers);
  return out;
}

export { redactSecrets };
