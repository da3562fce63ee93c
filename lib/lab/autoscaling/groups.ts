/**
 * The lab's Auto Scaling: groups from the template (ManagerGroup, WorkerGroup) keep their desired capacity by
 * launching instances (the launch template's user-data) through the lab's EC2, and replace an instance that was
 * terminated outside the group (new id, new address). Scale-in (SetDesiredCapacity, UpdateAutoScalingGroup) and
 * TerminateInstanceInAutoScalingGroup go through the termination lifecycle hook: `Terminating:Wait` until
 * CompleteLifecycleAction or the heartbeat timeout (then the hook's DefaultResult), then `Terminating:Proceed`
 * and the instance is terminated.
 *
 * A group with a mixed instances policy starts every instance from the policy's launch template (its user-data),
 * as AWS does; the lab has no prices, so each gets the policy's first instance type, and On-Demand or Spot by the
 * policy's distribution (`marketForNext`).
 *
 * Lab simplifications: a stopped instance is not replaced (real groups mark it unhealthy), so stop/start of a
 * group member can be exercised; a terminated one is. The hosts `lab up` starts itself (adopted) count as
 * On-Demand of the default type.
 */
import { Ec2Instance, Ec2Service } from '../ec2/instances';

export type LifecycleState = 'Pending' | 'InService' | 'Terminating:Wait' | 'Terminating:Proceed' | 'Terminated';

export interface LifecycleHookSpec {
  readonly name: string;
  /** Seconds. */
  readonly heartbeatTimeout: number;
  readonly defaultResult: 'CONTINUE' | 'ABANDON';
}

/** A group's mixed instances policy as the lab uses it (cloudformation/template.ts reads it from the template). */
export interface MixedInstancesSpec {
  /** Instance types in priority order. */
  readonly instanceTypes: readonly string[];
  readonly onDemandBaseCapacity: number;
  /** 0 … 100: the On-Demand share of the capacity above the base. */
  readonly onDemandPercentageAboveBaseCapacity: number;
}

/**
 * On-Demand or Spot for the next instance of a group that runs `running` instances, `onDemand` of them On-Demand:
 * the first `onDemandBaseCapacity` are On-Demand, then the percentage of the capacity above it (rounded up).
 */
export function marketForNext(policy: MixedInstancesSpec, running: number, onDemand: number): 'on-demand' | 'spot' {
  const total = running + 1;
  const base = Math.min(total, policy.onDemandBaseCapacity);
  const above = Math.ceil((Math.max(0, total - policy.onDemandBaseCapacity) * policy.onDemandPercentageAboveBaseCapacity) / 100);
  return onDemand < base + above ? 'on-demand' : 'spot';
}

export interface GroupSpec {
  readonly name: string;
  readonly minSize: number;
  readonly maxSize: number;
  readonly desiredCapacity: number;
  /** The launch template's user-data, resolved (template.ts). */
  readonly userData?: string;
  readonly launchTemplate: { readonly id: string; readonly name: string; readonly version: string };
  /** Instead of the plain launch template: several instance types and Spot, over the same launch template. */
  readonly mixedInstancesPolicy?: MixedInstancesSpec;
  /** Tags of the group; those with propagateAtLaunch go on every instance. */
  readonly tags: readonly { readonly key: string; readonly value: string; readonly propagateAtLaunch: boolean }[];
  readonly terminationHook?: LifecycleHookSpec;
  readonly availabilityZones: readonly string[];
}

interface Member {
  readonly instanceId: string;
  state: LifecycleState;
  /** Terminating:Wait ends here (epoch ms) unless completed first. */
  waitUntil?: number;
  actionToken?: string;
  /** The desired capacity already accounts for this instance's leaving (scale-in, decrement). */
  decremented?: boolean;
}

interface Group {
  spec: GroupSpec;
  minSize: number;
  maxSize: number;
  desired: number;
  readonly createdTime: number;
  readonly members: Map<string, Member>;
}

export class AsgError extends Error {
  constructor(
    public readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AutoScalingOptions {
  readonly ec2: Ec2Service;
  readonly groups: readonly GroupSpec[];
  readonly now?: () => number;
  readonly onChange?: () => void;
  /** A new activity (launch, terminate) for the lab's log. */
  readonly onActivity?: (group: string, description: string) => void;
}

export class AutoScalingService {
  private readonly groups = new Map<string, Group>();
  private readonly now: () => number;
  private tokenSeq = 0;

  constructor(private readonly opts: AutoScalingOptions) {
    this.now = opts.now ?? Date.now;
    for (const spec of opts.groups) {
      this.groups.set(spec.name, { spec, minSize: spec.minSize, maxSize: spec.maxSize, desired: spec.desiredCapacity, createdTime: this.now(), members: new Map() });
    }
    opts.ec2.onTerminated(() => this.tick());
  }

  /** An instance `lab up` launched for this group before the controller took over. */
  adopt(groupName: string, instanceId: string): void {
    this.group(groupName).members.set(instanceId, { instanceId, state: 'InService' });
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /** The group of an instance and its lifecycle state (IMDS target-lifecycle-state, DescribeAutoScalingInstances). */
  membership(instanceId: string): { group: string; state: LifecycleState } | undefined {
    for (const g of this.groups.values()) {
      const m = g.members.get(instanceId);
      if (m) return { group: g.spec.name, state: m.state };
    }
    return undefined;
  }

  /**
   * One pass: heartbeat timeouts, instances gone from EC2, pending → in service, then desired capacity
   * (launch what is missing; terminate the newest surplus through the hook). Idempotent; the controller calls it
   * every second.
   */
  tick(): void {
    const now = this.now();
    for (const g of this.groups.values()) {
      for (const m of [...g.members.values()]) {
        const inst = this.opts.ec2.get(m.instanceId);
        if (!inst || inst.state === 'terminated') {
          g.members.delete(m.instanceId);
          this.activity(g, `Instance ${m.instanceId} ${m.state.startsWith('Terminating') ? 'terminated' : 'was taken out of service in response to an EC2 instance status check failure (terminated)'}`);
          continue;
        }
        if (m.state === 'Pending' && inst.state === 'running') m.state = 'InService';
        if (m.state === 'Terminating:Wait' && m.waitUntil !== undefined && now >= m.waitUntil) this.proceed(g, m);
      }
      const active = [...g.members.values()].filter((m) => m.state === 'Pending' || m.state === 'InService');
      if (active.length < g.desired) {
        for (let n = active.length; n < g.desired; n++) this.launch(g);
      } else if (active.length > g.desired) {
        const surplus = active.sort((a, b) => (this.opts.ec2.get(b.instanceId)?.launchTime ?? 0) - (this.opts.ec2.get(a.instanceId)?.launchTime ?? 0)).slice(0, active.length - g.desired);
        for (const m of surplus) this.beginTermination(g, m, true);
      }
    }
    this.opts.onChange?.();
  }

  setDesiredCapacity(name: string, desired: number): void {
    const g = this.group(name);
    if (desired > g.maxSize) throw new AsgError('ValidationError', `New SetDesiredCapacity value ${desired} is above max value ${g.maxSize} for the AutoScalingGroup.`);
    if (desired < g.minSize) throw new AsgError('ValidationError', `New SetDesiredCapacity value ${desired} is below min value ${g.minSize} for the AutoScalingGroup.`);
    g.desired = desired;
    this.tick();
  }

  /** What `cdk deploy -c workers=N` does to the group. */
  updateGroup(name: string, o: { minSize?: number; maxSize?: number; desiredCapacity?: number }): void {
    const g = this.group(name);
    const min = o.minSize ?? g.minSize;
    const max = o.maxSize ?? g.maxSize;
    const desired = o.desiredCapacity ?? Math.min(Math.max(g.desired, min), max);
    if (min > max) throw new AsgError('ValidationError', `Max bound, ${max}, must be greater than or equal to min bound, ${min}`);
    if (desired < min || desired > max) throw new AsgError('ValidationError', `Desired capacity:${desired} must be between the specified min size:${min} and max size:${max}`);
    g.minSize = min;
    g.maxSize = max;
    g.desired = desired;
    this.tick();
  }

  terminateInstanceInGroup(instanceId: string, decrement: boolean): { group: string; description: string } {
    const g = [...this.groups.values()].find((x) => x.members.has(instanceId));
    if (!g) throw new AsgError('ValidationError', `Instance Id not found - No managed instance found for instance ID: ${instanceId}`);
    const m = g.members.get(instanceId)!;
    if (decrement) {
      if (g.desired - 1 < g.minSize) throw new AsgError('ValidationError', `Currently, desiredSize equals minSize (${g.minSize}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.`);
      g.desired -= 1;
    }
    this.beginTermination(g, m, decrement);
    this.tick();
    return { group: g.spec.name, description: `Terminating EC2 instance: ${instanceId}` };
  }

  completeLifecycleAction(o: { group: string; hook: string; instanceId?: string; token?: string; result: string }): void {
    const g = this.group(o.group);
    const hook = g.spec.terminationHook;
    if (!hook || hook.name !== o.hook) throw new AsgError('ValidationError', `No Lifecycle Hook found with name ${o.hook} for group ${o.group}`);
    if (o.result !== 'CONTINUE' && o.result !== 'ABANDON') throw new AsgError('ValidationError', `LifecycleActionResult must be CONTINUE or ABANDON (got ${o.result})`);
    const m = [...g.members.values()].find((x) => x.state === 'Terminating:Wait' && (o.instanceId ? x.instanceId === o.instanceId : x.actionToken === o.token));
    if (!m) throw new AsgError('ValidationError', `No active Lifecycle Action found with ${o.instanceId ? `instance ID ${o.instanceId}` : `token ${o.token}`}`);
    // For termination hooks CONTINUE and ABANDON both terminate; they only differ for other hooks.
    this.proceed(g, m);
    this.opts.onChange?.();
  }

  describeGroups(names: readonly string[]): { spec: GroupSpec; minSize: number; maxSize: number; desired: number; createdTime: number; members: { instanceId: string; state: LifecycleState; inst?: Ec2Instance }[] }[] {
    const wanted = names.length > 0 ? names.filter((n) => this.groups.has(n)) : [...this.groups.keys()];
    return wanted.map((n) => {
      const g = this.groups.get(n)!;
      return {
        spec: g.spec,
        minSize: g.minSize,
        maxSize: g.maxSize,
        desired: g.desired,
        createdTime: g.createdTime,
        members: [...g.members.values()].map((m) => ({ instanceId: m.instanceId, state: m.state, inst: this.opts.ec2.get(m.instanceId) })),
      };
    });
  }

  private group(name: string): Group {
    const g = this.groups.get(name);
    if (!g) throw new AsgError('ValidationError', `AutoScalingGroup name not found - AutoScalingGroup ${name} not found`);
    return g;
  }

  private launch(g: Group): void {
    const tags: Record<string, string> = { 'aws:autoscaling:groupName': g.spec.name };
    for (const t of g.spec.tags) if (t.propagateAtLaunch) tags[t.key] = t.value;
    // Spread like the real group: the zone with the fewest members first.
    const counts = new Map(g.spec.availabilityZones.map((z) => [z, 0]));
    for (const m of g.members.values()) {
      const z = this.opts.ec2.get(m.instanceId)?.availabilityZone;
      if (z && counts.has(z)) counts.set(z, counts.get(z)! + 1);
    }
    const zone = [...counts.entries()].sort((a, b) => a[1] - b[1])[0]?.[0];
    let inst: Ec2Instance;
    try {
      inst = this.opts.ec2.runInstance({ tags, userData: g.spec.userData, ...(zone ? { availabilityZone: zone } : {}), ...this.purchase(g) });
    } catch (e) {
      this.activity(g, `Launching a new EC2 instance failed: ${(e as Error).message}`);
      return;
    }
    g.members.set(inst.instanceId, { instanceId: inst.instanceId, state: 'Pending' });
    this.activity(g, `Launching a new EC2 instance: ${inst.instanceId}`);
  }

  /** Instance type and market of the next instance of a mixed group (nothing for a plain launch template). */
  private purchase(g: Group): { instanceType?: string; instanceLifecycle?: 'spot' } {
    const policy = g.spec.mixedInstancesPolicy;
    if (!policy) return {};
    const active = [...g.members.values()].filter((m) => m.state === 'Pending' || m.state === 'InService').map((m) => this.opts.ec2.get(m.instanceId));
    const onDemand = active.filter((i) => i?.instanceLifecycle !== 'spot').length;
    const market = marketForNext(policy, active.length, onDemand);
    return { instanceType: policy.instanceTypes[0], ...(market === 'spot' ? { instanceLifecycle: 'spot' as const } : {}) };
  }

  private beginTermination(g: Group, m: Member, decremented: boolean): void {
    if (m.state.startsWith('Terminating')) return;
    m.decremented = decremented;
    const hook = g.spec.terminationHook;
    if (hook) {
      m.state = 'Terminating:Wait';
      m.waitUntil = this.now() + hook.heartbeatTimeout * 1000;
      m.actionToken = `${(++this.tokenSeq).toString(16).padStart(8, '0')}-lab0-4000-8000-${m.instanceId.slice(2, 14)}`;
      this.activity(g, `Instance ${m.instanceId} is waiting for lifecycle hook ${hook.name} (Terminating:Wait, heartbeat ${hook.heartbeatTimeout}s)`);
    } else {
      this.proceed(g, m);
    }
  }

  private proceed(g: Group, m: Member): void {
    m.state = 'Terminating:Proceed';
    m.waitUntil = undefined;
    this.opts.ec2.terminateInstances([m.instanceId], `User initiated (Auto Scaling group ${g.spec.name})`);
  }

  private activity(g: Group, description: string): void {
    this.opts.onActivity?.(g.spec.name, description);
  }
}
