/**
 * The lab's EC2: instances with ids, tags, private addresses and the EC2 state machine
 * (pending → running → stopping → stopped → pending …; shutting-down → terminated). What a state change does to
 * the host is the `HostDriver`'s business (ec2/host-driver.ts: dockerd and every process stopped with the disk
 * kept; started again with the per-boot scripts; removed), so this model is unit-tested without hosts.
 *
 * Calls return at once with the transitional state, as EC2 does; the work runs in the background, one change at a
 * time per instance. Terminated instances stay listed (as on EC2, for a while) so "gone" is observable.
 */

export type InstanceStateName = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

/** EC2's numeric state codes (low byte). */
export const STATE_CODES: Record<InstanceStateName, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

export interface Ec2Instance {
  readonly instanceId: string;
  /** Lab host index: namespace `<prefix>-h<index>`, address 192.168.<net>.<10+index>. Never reused. */
  readonly index: number;
  readonly privateIp: string;
  readonly hostname: string;
  readonly ns: string;
  readonly availabilityZone: string;
  readonly launchTime: number;
  readonly tags: Readonly<Record<string, string>>;
  /** @default - t3.small (what the lab reports when the launch asked for no type) */
  readonly instanceType?: string;
  /** EC2's InstanceLifecycle: `spot` for a Spot instance, absent for On-Demand. */
  readonly instanceLifecycle?: 'spot';
  state: InstanceStateName;
  /** Why the last transition happened (EC2's StateTransitionReason). */
  reason?: string;
}

/** What a state change does to the lab host behind an instance. */
export interface HostDriver {
  /** Create the host (network, holder, dockerd, image) and start `userData` in it (in the background). */
  launch(inst: Ec2Instance, userData: string | undefined): Promise<void>;
  /** dockerd and every process of the host stopped; the disk kept. */
  stop(inst: Ec2Instance): Promise<void>;
  /** dockerd again, then the host's per-boot scripts (never the user-data). */
  start(inst: Ec2Instance): Promise<void>;
  /** The host removed. */
  terminate(inst: Ec2Instance): Promise<void>;
}

export interface Allocation {
  readonly index: number;
  readonly instanceId: string;
  readonly privateIp: string;
  readonly hostname: string;
  readonly ns: string;
}

export interface Ec2ServiceOptions {
  readonly driver: HostDriver;
  /** A fresh identity for the n-th host (index = n). */
  readonly allocate: (index: number) => Allocation;
  readonly availabilityZones: readonly string[];
  /** Upper bound of instances that are not terminated (the machine's memory). */
  readonly maxLive: number;
  /** Upper bound of host indexes (the lab's address range). */
  readonly maxIndex: number;
  /** Called after every state change (the controller persists the table for IMDS and the operator). */
  readonly onChange?: () => void;
  /** Called when a background transition fails (the instance is then left as it got). */
  readonly onError?: (inst: Ec2Instance, what: string, e: unknown) => void;
  readonly now?: () => number;
}

export class Ec2Error extends Error {
  constructor(
    public readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StateChange {
  readonly instanceId: string;
  readonly previous: InstanceStateName;
  readonly current: InstanceStateName;
}

export class Ec2Service {
  private readonly instances = new Map<string, Ec2Instance>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly terminatedListeners: ((inst: Ec2Instance) => void)[] = [];
  private nextIndex = 0;
  private readonly now: () => number;

  constructor(private readonly opts: Ec2ServiceOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Registers a host that is already running (started by `lab up` before the controller took over). */
  adopt(a: Allocation & { tags: Record<string, string>; availabilityZone?: string; launchTime?: number }): Ec2Instance {
    const inst: Ec2Instance = {
      instanceId: a.instanceId,
      index: a.index,
      privateIp: a.privateIp,
      hostname: a.hostname,
      ns: a.ns,
      availabilityZone: a.availabilityZone ?? this.zoneFor(a.index),
      launchTime: a.launchTime ?? this.now(),
      tags: { ...a.tags },
      state: 'running',
    };
    this.instances.set(inst.instanceId, inst);
    this.nextIndex = Math.max(this.nextIndex, a.index + 1);
    this.changed();
    return inst;
  }

  /** Every instance, terminated ones included, in launch order. */
  list(): Ec2Instance[] {
    return [...this.instances.values()].sort((a, b) => a.index - b.index);
  }

  get(instanceId: string): Ec2Instance | undefined {
    return this.instances.get(instanceId);
  }

  byIp(ip: string): Ec2Instance | undefined {
    return this.list().find((i) => i.privateIp === ip && i.state !== 'terminated');
  }

  onTerminated(listener: (inst: Ec2Instance) => void): void {
    this.terminatedListeners.push(listener);
  }

  /** RunInstances for one instance: pending until the host's dockerd answers, then running. */
  runInstance(o: { tags: Record<string, string>; userData?: string; availabilityZone?: string; instanceType?: string; instanceLifecycle?: 'spot' }): Ec2Instance {
    const live = this.list().filter((i) => i.state !== 'terminated').length;
    if (live >= this.opts.maxLive) throw new Ec2Error('InstanceLimitExceeded', `the lab runs at most ${this.opts.maxLive} instances at once`);
    if (this.nextIndex >= this.opts.maxIndex) throw new Ec2Error('InsufficientInstanceCapacity', `the lab has used all of its ${this.opts.maxIndex} host addresses`);
    const a = this.opts.allocate(this.nextIndex++);
    const inst: Ec2Instance = {
      ...a,
      availabilityZone: o.availabilityZone ?? this.zoneFor(a.index),
      launchTime: this.now(),
      tags: { ...o.tags },
      ...(o.instanceType ? { instanceType: o.instanceType } : {}),
      ...(o.instanceLifecycle ? { instanceLifecycle: o.instanceLifecycle } : {}),
      state: 'pending',
    };
    this.instances.set(inst.instanceId, inst);
    this.changed();
    this.enqueue(inst, 'launch', async () => {
      await this.opts.driver.launch(inst, o.userData);
      this.set(inst, 'running');
    });
    return inst;
  }

  stopInstances(ids: readonly string[]): StateChange[] {
    return this.transition(ids, (inst) => {
      if (inst.state === 'stopped' || inst.state === 'stopping') return undefined;
      if (inst.state !== 'running' && inst.state !== 'pending') throw new Ec2Error('IncorrectInstanceState', `The instance '${inst.instanceId}' is not in a state from which it can be stopped.`);
      this.set(inst, 'stopping', 'User initiated');
      return async () => {
        await this.opts.driver.stop(inst);
        this.set(inst, 'stopped', 'User initiated');
      };
    });
  }

  startInstances(ids: readonly string[]): StateChange[] {
    return this.transition(ids, (inst) => {
      if (inst.state === 'running' || inst.state === 'pending') return undefined;
      if (inst.state !== 'stopped') throw new Ec2Error('IncorrectInstanceState', `The instance '${inst.instanceId}' is not in a state from which it can be started.`);
      this.set(inst, 'pending');
      return async () => {
        await this.opts.driver.start(inst);
        this.set(inst, 'running');
      };
    });
  }

  terminateInstances(ids: readonly string[], reason = 'User initiated'): StateChange[] {
    return this.transition(ids, (inst) => {
      if (inst.state === 'terminated' || inst.state === 'shutting-down') return undefined;
      this.set(inst, 'shutting-down', reason);
      return async () => {
        await this.opts.driver.terminate(inst);
        this.set(inst, 'terminated', reason);
        for (const l of this.terminatedListeners) l(inst);
      };
    });
  }

  /** Resolves when every queued transition has run (tests, and `lab down` waiting for a quiet cloud). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = [...this.queues.values()];
      await Promise.all(pending);
      if ([...this.queues.values()].every((q, i) => q === pending[i]) && this.queues.size === pending.length) return;
    }
  }

  private transition(ids: readonly string[], plan: (inst: Ec2Instance) => (() => Promise<void>) | undefined): StateChange[] {
    const found = this.requireAll(ids);
    // Validate every instance first: EC2 changes none when one of them is in the wrong state.
    const results: StateChange[] = [];
    const works: [Ec2Instance, () => Promise<void>][] = [];
    for (const inst of found) {
      const previous = inst.state;
      const work = plan(inst);
      results.push({ instanceId: inst.instanceId, previous, current: inst.state });
      if (work) works.push([inst, work]);
    }
    for (const [inst, work] of works) this.enqueue(inst, 'state change', work);
    return results;
  }

  /** Unknown ids → InvalidInstanceID.NotFound naming them (before anything changes). */
  requireAll(ids: readonly string[]): Ec2Instance[] {
    for (const id of ids) {
      if (!/^i-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    }
    const missing = ids.filter((id) => !this.instances.has(id));
    if (missing.length > 0) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID${missing.length > 1 ? 's' : ''} '${missing.join(', ')}' do${missing.length > 1 ? '' : 'es'} not exist`);
    return ids.map((id) => this.instances.get(id)!);
  }

  private enqueue(inst: Ec2Instance, what: string, work: () => Promise<void>): void {
    const prev = this.queues.get(inst.instanceId) ?? Promise.resolve();
    const next = prev.then(work).catch((e: unknown) => this.opts.onError?.(inst, what, e));
    this.queues.set(inst.instanceId, next);
    void next.then(() => {
      if (this.queues.get(inst.instanceId) === next) this.queues.delete(inst.instanceId);
    });
  }

  private set(inst: Ec2Instance, state: InstanceStateName, reason?: string): void {
    inst.state = state;
    if (reason !== undefined) inst.reason = reason;
    this.changed();
  }

  private changed(): void {
    this.opts.onChange?.();
  }

  private zoneFor(index: number): string {
    const zones = this.opts.availabilityZones;
    return zones[index % zones.length];
  }
}
