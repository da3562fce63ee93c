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
  /** Auto Scaling group of the workers, when known. */
  readonly workerGroupName?: string;
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
  /** Running worker instance ids of the cluster, by tags `ec2-swarm:cluster` + `ec2-swarm:role=worker`. */
  listWorkerInstanceIds(): Promise<string[]>;
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
  /** Injectable clock and sleep for tests. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}
