/**
 * Renders a node's user-data (docs/contracts.md, "Node scripts and user-data"): the CloudFormation signal trap,
 * `export SWARM_…` lines, the scripts from `scripts/node/` written to /opt/ec2-swarm/ byte-for-byte through quoted
 * heredocs, then `bash /opt/ec2-swarm/<role>.sh`, whose exit code becomes the signal.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Resource } from 'aws-cdk-lib';
import { parameterNames } from '../config';
import { SwarmError } from '../errors';

export type NodeRole = 'manager' | 'worker';

/** Where the scripts land on the instance. */
export const NODE_SCRIPT_DIR = '/opt/ec2-swarm';
/** The scripts embedded into user-data, in the order they are written. */
export const NODE_SCRIPT_FILES = ['common.sh', 'manager.sh', 'worker.sh', 'leave-on-shutdown.sh'] as const;
/** What each role writes: common.sh, its own script, and for workers the ExecStop of their leave-on-shutdown unit. */
export const ROLE_SCRIPT_FILES = {
  manager: ['common.sh', 'manager.sh'],
  worker: ['common.sh', 'worker.sh', 'leave-on-shutdown.sh'],
} as const satisfies Record<NodeRole, ReadonlyArray<(typeof NODE_SCRIPT_FILES)[number]>>;
/** Quoted heredoc delimiter: the shell expands nothing between it and its closing line. */
export const HEREDOC_DELIMITER = 'EC2SWARM_EOF';
/** EC2 rejects user-data larger than 16 KB (before base64). */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;
/** Default upper bound a worker waits for the manager's token and address (contract default). */
export const DEFAULT_JOIN_TIMEOUT_S = 900;

export type NodeScripts = Record<(typeof NODE_SCRIPT_FILES)[number], string>;

/**
 * The package root: the first directory upwards from this file holding a package.json. Works from `lib/cluster`
 * (tsx, jest) and from `dist/lib/cluster` (the published package ships `scripts/node/` next to `dist/`).
 */
export function packageRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw SwarmError.environment('PACKAGE_ROOT_NOT_FOUND', `no package.json above ${from}`);
    dir = parent;
  }
}

/** Reads the node scripts from disk (default: `<package root>/scripts/node`) at synth time. */
export function readNodeScripts(dir: string = path.join(packageRoot(), 'scripts', 'node')): NodeScripts {
  const out: Partial<NodeScripts> = {};
  for (const file of NODE_SCRIPT_FILES) {
    const p = path.join(dir, file);
    let text: string;
    try {
      text = readFileSync(p, 'utf8');
    } catch (e) {
      throw SwarmError.environment('NODE_SCRIPT_MISSING', `cannot read node script ${p}: ${(e as Error).message}`, e);
    }
    // A line equal to the delimiter would end the heredoc early and run the rest of the script as user-data.
    if (text.split('\n').some((line) => line.trimEnd() === HEREDOC_DELIMITER)) {
      throw SwarmError.environment('NODE_SCRIPT_DELIMITER', `node script ${p} contains the heredoc delimiter line ${HEREDOC_DELIMITER}`);
    }
    out[file] = text;
  }
  return out as NodeScripts;
}

const SAFE_VALUE = /^[A-Za-z0-9/_.:-]+$/;

/** Single-quotes a value for bash after checking it holds only characters that need no escaping at all. */
export function shellQuote(name: string, value: string): string {
  if (!SAFE_VALUE.test(value)) {
    throw SwarmError.user('USER_DATA_VALUE_INVALID', `${name} may hold only letters, digits and / _ . : - (got ${JSON.stringify(value)})`);
  }
  return `'${value}'`;
}

/** The environment the role scripts read (docs/contracts.md). */
export function nodeEnvironment(clusterName: string, joinTimeoutSeconds: number = DEFAULT_JOIN_TIMEOUT_S): Record<string, string> {
  if (!Number.isInteger(joinTimeoutSeconds) || joinTimeoutSeconds < 1) {
    throw SwarmError.user('USER_DATA_VALUE_INVALID', `joinTimeoutSeconds must be a positive whole number (got ${joinTimeoutSeconds})`);
  }
  const names = parameterNames(clusterName);
  return {
    SWARM_CLUSTER: clusterName,
    SWARM_PARAM_WORKER_TOKEN: names.workerToken,
    SWARM_PARAM_MANAGER_TOKEN: names.managerToken,
    SWARM_PARAM_MANAGER_ADDRESS: names.managerAddress,
    SWARM_JOIN_TIMEOUT_S: String(joinTimeoutSeconds),
  };
}

export interface SwarmNodeUserDataOptions {
  /** Which role script runs. */
  readonly role: NodeRole;
  /** Cluster name (already validated by the config schema; checked again here because it reaches a shell). */
  readonly clusterName: string;
  /**
   * The resource whose CreationPolicy receives the signal (the manager Instance, the worker AutoScalingGroup).
   *
   * @default - no signal trap
   */
  readonly signalResource?: Resource;
  /** @default 900 */
  readonly joinTimeoutSeconds?: number;
  /** @default - read from `<package root>/scripts/node` */
  readonly scripts?: NodeScripts;
}

/** Appends the swarm node commands to `userData` (which should be `UserData.forLinux()` and otherwise empty). */
export function addSwarmNodeCommands(userData: ec2.UserData, options: SwarmNodeUserDataOptions): void {
  const scripts = options.scripts ?? readNodeScripts();
  if (options.signalResource) userData.addSignalOnExitCommand(options.signalResource);
  const env = nodeEnvironment(options.clusterName, options.joinTimeoutSeconds);
  const lines: string[] = ['set -euo pipefail'];
  for (const [k, v] of Object.entries(env)) lines.push(`export ${k}=${shellQuote(k, v)}`);
  lines.push(`mkdir -p ${NODE_SCRIPT_DIR}`, `chmod 0700 ${NODE_SCRIPT_DIR}`);
  // Only what this role runs (keeps user-data under 16 KB).
  const files = ROLE_SCRIPT_FILES[options.role];
  for (const file of files) {
    const body = scripts[file].endsWith('\n') ? scripts[file] : `${scripts[file]}\n`;
    lines.push(`cat > ${NODE_SCRIPT_DIR}/${file} <<'${HEREDOC_DELIMITER}'\n${body}${HEREDOC_DELIMITER}`);
  }
  lines.push(`chmod 0700 ${files.map((f) => `${NODE_SCRIPT_DIR}/${f}`).join(' ')}`, `bash ${NODE_SCRIPT_DIR}/${options.role}.sh`);
  userData.addCommands(...lines);
}
