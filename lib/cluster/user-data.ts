/**
 * Renders a node's user-data (docs/round2-contracts.md, "Node environment"): the CloudFormation signal trap,
 * `export SWARM_…` lines, the scripts from `scripts/node/` unpacked to /opt/ec2-swarm/ (comments dropped,
 * compressed: script-archive.ts), then `bash /opt/ec2-swarm/<role>.sh`, whose exit code becomes the signal. The role
 * script records the environment in /opt/ec2-swarm/node.env and installs the per-boot hook.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Resource, Token } from 'aws-cdk-lib';
import { SwarmError } from '../errors';
import { HEREDOC_DELIMITER } from './heredoc';
import { OPTIONAL_VARIABLES, nodeEnvironment, type NodeEnvironmentOptions, type NodeRole } from './node-environment';
import { installerScript, packForUserData, stripComments } from './script-archive';

export { HEREDOC_DELIMITER } from './heredoc';
export { DEFAULT_JOIN_TIMEOUT_S, nodeEnvironment } from './node-environment';
export type { NodeEnvironmentOptions, NodeRole } from './node-environment';

/** Where the scripts land on the instance. */
export const NODE_SCRIPT_DIR = '/opt/ec2-swarm';
/** The per-boot step in `scripts/node/` (the role script installs the cloud-init hook that runs it). */
export const PER_BOOT_SCRIPT = 'boot.sh';
/** Every script user-data may embed, in the order they are written. */
export const NODE_SCRIPT_FILES = ['common.sh', 'manager.sh', 'worker.sh', PER_BOOT_SCRIPT, 'reconcile.sh', 'leave-on-shutdown.sh'] as const;
export type NodeScriptFile = (typeof NODE_SCRIPT_FILES)[number];
/** Scripts without which no node can work: a missing one is an error at synth time. */
export const REQUIRED_SCRIPT_FILES = ['common.sh', 'manager.sh', 'worker.sh'] as const satisfies ReadonlyArray<NodeScriptFile>;
/**
 * What each role writes to /opt/ec2-swarm, when present in `scripts/node/`: common.sh, its own script, the per-boot
 * step, the managers' reconciler; `leave-on-shutdown.sh` only while a worker script still installs it.
 */
export const ROLE_SCRIPT_FILES = {
  manager: ['common.sh', 'manager.sh', PER_BOOT_SCRIPT, 'reconcile.sh'],
  worker: ['common.sh', 'worker.sh', PER_BOOT_SCRIPT, 'leave-on-shutdown.sh'],
} as const satisfies Record<NodeRole, ReadonlyArray<NodeScriptFile>>;
/** EC2 rejects user-data larger than 16 KB (before base64). */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** Script texts by file name: the required ones always, the others when `scripts/node/` has them. */
export type NodeScripts = Record<(typeof REQUIRED_SCRIPT_FILES)[number], string> & Partial<Record<NodeScriptFile, string>>;

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
    const required = (REQUIRED_SCRIPT_FILES as readonly string[]).includes(file);
    if (!required && !existsSync(p)) continue;
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

/**
 * Single-quotes a value for bash after checking it holds only characters that need no escaping at all. A token
 * (a key ARN) is resolved by CloudFormation to such characters and passes unchecked; `allowEmpty` for optional values.
 */
export function shellQuote(name: string, value: string, options: { allowEmpty?: boolean } = {}): string {
  if (Token.isUnresolved(value) || (options.allowEmpty && value === '')) return `'${value}'`;
  if (!SAFE_VALUE.test(value)) {
    throw SwarmError.user('USER_DATA_VALUE_INVALID', `${name} may hold only letters, digits and / _ . : - (got ${JSON.stringify(value)})`);
  }
  return `'${value}'`;
}

export interface SwarmNodeUserDataOptions extends NodeEnvironmentOptions {
  /** Which role script runs. */
  readonly role: NodeRole;
  /** Cluster name (already validated by the config schema; checked again here because it reaches a shell). */
  readonly clusterName: string;
  /**
   * The resource whose CreationPolicy receives the signal (the manager or the worker Auto Scaling group).
   *
   * @default - no signal trap
   */
  readonly signalResource?: Resource;
  /** @default - read from `<package root>/scripts/node` */
  readonly scripts?: NodeScripts;
}

/** The swarm's part of a node's user-data, in two pieces so commands can be run between them. */
export interface SwarmNodeCommands {
  /** `set -euo pipefail`, the exports, the unpacked scripts. */
  readonly setup: string[];
  /** The role script: init or join, then the per-boot hook. */
  readonly join: string[];
}

/** The swarm node commands, without the signal trap (see `addSwarmNodeCommands`). */
export function swarmNodeCommands(options: SwarmNodeUserDataOptions): SwarmNodeCommands {
  const scripts = options.scripts ?? readNodeScripts();
  const env = nodeEnvironment(options.clusterName, options);
  const lines: string[] = ['set -euo pipefail'];
  for (const [k, v] of Object.entries(env)) lines.push(`export ${k}=${shellQuote(k, v, { allowEmpty: OPTIONAL_VARIABLES.has(k) })}`);
  lines.push(`mkdir -p ${NODE_SCRIPT_DIR}`, `chmod 0700 ${NODE_SCRIPT_DIR}`);
  // Only what this role runs, comments dropped, compressed: keeps user-data under 16 KB.
  const files = ROLE_SCRIPT_FILES[options.role].filter((f) => scripts[f] !== undefined);
  const installer = installerScript(files.map((f) => ({ path: `${NODE_SCRIPT_DIR}/${f}`, text: stripComments(scripts[f]!) })));
  lines.push(`base64 -d <<'${HEREDOC_DELIMITER}' | gzip -dc | bash`, packForUserData(installer), HEREDOC_DELIMITER);
  lines.push(`chmod 0700 ${files.map((f) => `${NODE_SCRIPT_DIR}/${f}`).join(' ')}`);
  return { setup: lines, join: [`bash ${NODE_SCRIPT_DIR}/${options.role}.sh`] };
}

/** Appends the swarm node commands to `userData` (which should be `UserData.forLinux()` and otherwise empty). */
export function addSwarmNodeCommands(userData: ec2.UserData, options: SwarmNodeUserDataOptions): void {
  const commands = swarmNodeCommands(options);
  if (options.signalResource) userData.addSignalOnExitCommand(options.signalResource);
  userData.addCommands(...commands.setup, ...commands.join);
}
