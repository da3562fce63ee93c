/**
 * A node group's user-data: the signal trap, the swarm's setup, the app's commands before the join, the role
 * script, the app's commands after the join. The app's commands are kept apart so that the 16 KB EC2 limit can be
 * checked at synth and the error can name the call that crossed it.
 */
import { IResolvable, Lazy, Resource, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { IConstruct } from 'constructs';
import { SwarmError } from '../errors';
import { type SwarmNodeUserDataOptions, swarmNodeCommands, USER_DATA_LIMIT_BYTES } from './user-data';

/** Where added commands run, relative to the role script (`swarm init` / `join`). */
export type JoinPhase = 'beforeJoin' | 'afterJoin';

interface Addition {
  readonly phase: JoinPhase;
  /** Who added it, as the error will name it: `addUserDataBeforeJoin('workers', …) (call 2)`. */
  readonly by: string;
  readonly commands: readonly string[];
}

/**
 * Bytes a resolved value may take once CloudFormation has substituted it. Pseudo parameters count at their longest;
 * any other reference (an ARN, a parameter) at `UNKNOWN_TOKEN_BYTES`: the estimate errs high, never low.
 */
const PSEUDO_PARAMETER_BYTES: Record<string, number> = {
  'AWS::Region': 20,
  'AWS::Partition': 16,
  'AWS::AccountId': 12,
  'AWS::URLSuffix': 24,
  'AWS::StackName': 128,
  'AWS::StackId': 256,
};
const UNKNOWN_TOKEN_BYTES = 256;

export function estimatedBytes(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'boolean') return String(value).length;
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (Array.isArray(o['Fn::Join'])) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.reduce<number>((n, p) => n + estimatedBytes(p), 0) + Buffer.byteLength(sep, 'utf8') * Math.max(0, parts.length - 1);
    }
    if (typeof o.Ref === 'string') return PSEUDO_PARAMETER_BYTES[o.Ref] ?? UNKNOWN_TOKEN_BYTES;
  }
  return UNKNOWN_TOKEN_BYTES;
}

export class NodeUserData {
  public readonly userData: ec2.UserData = ec2.UserData.forLinux();
  private readonly additions: Addition[] = [];
  private calls = 0;

  constructor(
    /** `managers` or `workers`: how errors name the group. */
    private readonly groupName: string,
  ) {}

  /** Writes the signal trap and the swarm's commands, with the additions in place (rendered at synth). */
  addSwarmCommands(signalResource: Resource, options: SwarmNodeUserDataOptions): void {
    const swarm = swarmNodeCommands(options);
    this.userData.addSignalOnExitCommand(signalResource);
    const lines = (phase: JoinPhase) => this.additions.filter((a) => a.phase === phase).flatMap((a) => a.commands);
    this.userData.addCommands(
      Lazy.string({ produce: () => [...swarm.setup, ...lines('beforeJoin'), ...swarm.join, ...lines('afterJoin')].join('\n') }),
    );
  }

  /** Records commands for `phase`; `method` and `nodes` are how an error will name this call. */
  add(phase: JoinPhase, method: string, nodes: string, commands: readonly string[]): void {
    commands.forEach((c, i) => {
      if (typeof c !== 'string') throw SwarmError.user('PROPS_INVALID', `✖ ${method}: command ${i + 1} is not a string\n  → at ${method}`);
    });
    this.calls += 1;
    this.additions.push({ phase, by: `${method}('${nodes}', …) (call ${this.calls} on the ${this.groupName})`, commands: [...commands] });
  }

  /**
   * Errors for `node.addValidation`: the rendered user-data over EC2's limit, naming the addition that crossed it
   * (or, without one, what was there before any).
   */
  validate(scope: IConstruct): string[] {
    const stack = Stack.of(scope);
    const total = estimatedBytes(stack.resolve(this.userData.render() as string | IResolvable));
    if (total <= USER_DATA_LIMIT_BYTES) return [];
    // Each addition costs its lines plus one newline per line.
    const sizes = this.additions.map((a) => a.commands.reduce((n, c) => n + estimatedBytes(stack.resolve(c)) + 1, 0));
    let running = total - sizes.reduce((a, b) => a + b, 0);
    const head = `the ${this.groupName}' user-data would be about ${total} bytes, over EC2's limit of ${USER_DATA_LIMIT_BYTES} (before base64)`;
    if (running > USER_DATA_LIMIT_BYTES) {
      return [`${head}: the node scripts and commands added to the user-data directly already take ${running} bytes`];
    }
    for (const [i, a] of this.additions.entries()) {
      running += sizes[i];
      if (running > USER_DATA_LIMIT_BYTES) {
        return [`${head}: ${a.by}, ${sizes[i]} bytes, pushed it over; ${USER_DATA_LIMIT_BYTES - (running - sizes[i])} bytes were left. Put large scripts in S3 or an image and fetch them instead`];
      }
    }
    return [head];
  }
}
