/**
 * Shared types of the ops module: a cluster as ops see it, the transport that runs one script on instances,
 * and the reporter through which long waits show progress. Loads nothing (no SDK, no CDK).
 */

/** What ops know about a deployed cluster (from stack outputs, then EC2 tags for the workers). */
export interface ClusterInfo {
  /** Cluster name (`ec2-swarm:cluster` tag, `/ec2-swarm/<name>/…` parameters). */
  readonly name: string;
  /** CloudFormation stack name, when known. */
  readonly stackName?: string;
  readonly region: string;
  /** Instance ids of the managers; commands go to the first one that answers. */
  readonly managerInstanceIds: readonly string[];
  /** Runtime parameter prefix, e.g. `/ec2-swarm/demo`. */
  readonly parameterPrefix: string;
  /** Auto Scaling group of the managers, when known. */
  readonly managerGroupName?: string;
  /** Auto Scaling group of the workers, when known. */
  readonly workerGroupName?: string;
  /** S3 bucket for deploy bundles (output SwarmStagingBucket), when the stack has one. */
  readonly stagingBucket?: string;
  /** Names of the other clusters whose outputs the same stack holds (absent when none): `--destroy` would delete them too. */
  readonly otherClustersInStack?: readonly string[];
}

/** Result of one script on one instance. Output is as the transport returned it (SSM cuts stdout at 24,000 chars). */
export interface CommandResult {
  readonly instanceId: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Upper bound for the command itself, seconds (SSM `executionTimeout`). */
  readonly timeoutSeconds?: number;
  /** Short human label for progress lines and errors, e.g. "swarm status". */
  readonly label?: string;
  /**
   * A script that waits on the host until a known instant (verify's long poll) says when, in ms after it is sent:
   * the runner then polls quickly again from that moment instead of once a second.
   */
  readonly resultExpectedAfterMs?: number;
  /**
   * For a script another instance could run instead (another manager is left to try): how long this instance may
   * take to START it, seconds. Its SSM agent must be Online now (checked again when last seen Online more than a
   * few seconds ago; not waited for), and a command its agent has not picked up within this bound is cancelled and
   * fails as a transport error, so the caller moves on (design.md decision 23). Without it the runner waits for the
   * agent and for delivery up to its full bounds.
   */
  readonly deliveryBoundSeconds?: number;
  /**
   * A command of a few seconds whose end the caller waits on (teardown's steps): its result is polled at most this
   * far apart (ms) instead of the runner's cap (1 s), though never above ten polls a second for the whole command,
   * so a command on many instances polls no faster than before.
   */
  readonly pollMaxMs?: number;
}

/**
 * The one transport under every ops command: runs the same script text on instances. The SSM runner
 * (`AWS-RunShellScript`) is the only production implementation; the lab is just another SSM endpoint.
 * A non-zero exit code is returned, not thrown; transport failures throw SwarmError (fault environment).
 */
export interface CommandRunner {
  run(instanceIds: readonly string[], script: string, options?: RunOptions): Promise<CommandResult[]>;
}

/** The few AWS API calls ops make besides running scripts (EC2 tags, parameter deletion). */
export interface CloudApi {
  /** Worker instance ids of the cluster whose SSM agent is online, by tags `ec2-swarm:cluster` + `ec2-swarm:role=worker`. */
  listWorkerInstanceIds(): Promise<string[]>;
  /**
   * Manager instance ids of the cluster by tags (`ec2-swarm:role=manager`), agents online first. Used when the
   * outputs name no manager instance (managers are an Auto Scaling group).
   */
  listManagerInstanceIds?(): Promise<string[]>;
  /** The cluster's manager instances whose SSM agent is Online now (to skip waiting for agents that are not). */
  listOnlineManagerInstanceIds?(): Promise<string[]>;
  /** Deletes the cluster's runtime parameters; returns the names that existed and were deleted. */
  deleteRuntimeParameters(): Promise<string[]>;
}

/** Progress and messages for a person (TTY progress line) or a pipeline (plain lines); silent under --json. */
export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
  /** A progress update during a wait, e.g. `verify: 7/9 running (12s)`; may overwrite the previous one on a TTY. */
  progress(message: string): void;
  /** Ends a progress line, if one is showing. */
  done(): void;
}

export const silentReporter: Reporter = {
  info: () => undefined,
  warn: () => undefined,
  progress: () => undefined,
  done: () => undefined,
};

/** Everything an ops function needs. */
export interface OpsContext {
  readonly cluster: ClusterInfo;
  readonly runner: CommandRunner;
  readonly reporter: Reporter;
  readonly cloud: CloudApi;
  /** The cluster's staging bucket for deploy bundles (lib/ops/compose/staging.ts), when it has one. */
  readonly staging?: import('./compose/staging').StagingChannel;
  /** Injectable clock and sleep for tests. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

// ---- Results of the ops API (the CLI renders them as tables, or prints them as JSON under --json) ----

export interface NodeStatus {
  readonly id: string;
  readonly hostname: string;
  readonly role: 'manager' | 'worker';
  /** Ready, Down, Unknown, Disconnected */
  readonly status: string;
  /** Active, Pause, Drain */
  readonly availability: string;
  readonly leader: boolean;
  /** Managers only: Reachable, Unreachable or Unknown (Raft's view, as `docker node ls` shows it). */
  readonly reachability?: string;
  readonly address?: string;
  /** The node's EC2 instance (engine label `ec2-swarm.instance-id`), when it carries one. */
  readonly instanceId?: string;
}

/**
 * The managers' Raft quorum as the swarm reports it. Changes need a majority of ALL managers the swarm lists
 * (`quorum` = ⌊managers / 2⌋ + 1); `tolerates` = reachable − quorum (never negative) is how many more managers
 * can fail before the swarm can change nothing (README, "How many managers").
 */
export interface ManagerQuorum {
  /** Every manager the swarm lists, reachable or not. */
  readonly managers: number;
  readonly reachable: number;
  readonly quorum: number;
  readonly tolerates: number;
  /** reachable ≥ quorum. */
  readonly hasQuorum: boolean;
  /** Hostname of the leader, when there is one. */
  readonly leader?: string;
}

export interface TaskStatus {
  readonly slot?: number;
  readonly node?: string;
  readonly desiredState: string;
  readonly currentState: string;
  readonly error?: string;
}

/**
 * converged: every counted task runs the current spec, on a Ready node, stable for the update monitor;
 * converging: not yet; failed: cannot converge without a change (rolled back, update paused, crash loop, no node).
 */
export type Convergence = 'converged' | 'converging' | 'failed';

export interface ServiceReplicaStatus {
  readonly name: string;
  /** replicated, global, replicated-job, global-job */
  readonly mode: string;
  readonly desired: number;
  /** Tasks of the current spec with desired=running and current=running on a Ready node (decision 7). */
  readonly running: number;
  /** Jobs: tasks that completed successfully. */
  readonly completed?: number;
  readonly image?: string;
  /** Rolling update state when one is paused or failed, e.g. "paused: update paused due to failure". */
  readonly updateState?: string;
  /** Latest task error for a short service, e.g. "No such image: foo:1". */
  readonly lastError?: string;
  readonly convergence?: Convergence;
  /** Why the service is not converged, e.g. "2/3 running", "the update failed and was rolled back". */
  readonly reason?: string;
  readonly tasks?: readonly TaskStatus[];
}

export interface StatusReport {
  readonly nodes: readonly NodeStatus[];
  readonly managers: ManagerQuorum;
  readonly services: readonly ServiceReplicaStatus[];
}

export interface VerifyResult {
  readonly converged: boolean;
  /** A service cannot converge (convergence 'failed'): verify stopped before its timeout. */
  readonly failedFast?: boolean;
  readonly elapsedSeconds: number;
  readonly services: readonly ServiceReplicaStatus[];
}

export interface DeployResult {
  /** 'stack' for a compose file, 'services' for a service spec file. */
  readonly kind: 'stack' | 'services';
  /** Stack name (compose) or the service names created/updated (spec). */
  readonly name?: string;
  readonly services: readonly string[];
  /** Docker's warnings about the deploy, e.g. "Ignoring unsupported options: build". */
  readonly warnings?: readonly string[];
  /** Present when `wait` was asked for. */
  readonly verify?: VerifyResult;
}

export interface TeardownReport {
  /** Everything is gone: the manager and every worker said "not in a swarm", the parameters are deleted. */
  readonly complete: boolean;
  /** Why not complete: a node or AWS could not be reached (exit 3), or something answered but is not gone (exit 1). */
  readonly outcome?: 'unreachable' | 'incomplete';
  /** What was done, in order, e.g. "removed stack demo", "worker i-0abc left the swarm". */
  readonly done: readonly string[];
  /** What needed nothing or was not attempted, and why, e.g. "manager i-0abc: not in a swarm". */
  readonly skipped: readonly string[];
  /** What is still there, e.g. "manager i-0abc: unreachable (…)", "parameters under /ec2-swarm/x: kept for a retry". */
  readonly left: readonly string[];
}
