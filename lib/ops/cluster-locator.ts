/**
 * Finds the cluster ops talk to: from a `cdk deploy --outputs-file` file or from the stack's CloudFormation
 * outputs (output keys fixed in docs/contracts.md). The CloudFormation SDK is loaded only for `--stack`.
 */
import { readFileSync } from 'node:fs';
import { clusterConfigSchema } from '../config';
import { SwarmError } from '../errors';
import { fromAwsError } from './aws-errors';
import type { AwsConnection } from './target';
import type { ClusterInfo } from './types';

/**
 * Output key suffixes the construct writes (`OUTPUT_SUFFIXES` in lib/cluster/swarm-cluster.ts; ops load no CDK, so
 * they are repeated here and a template test keeps the two in step): a cluster's key is `<P><suffix>`, P its
 * construct id without non-alphanumerics (docs/round2-contracts.md, "Ops").
 */
const SUFFIXES = {
  clusterName: 'ClusterName',
  parameterPrefix: 'ParameterPrefix',
  managerGroupName: 'ManagerGroupName',
  workerGroupName: 'WorkerGroupName',
  region: 'Region',
  /**
   * Not written by the construct any more (managers are an Auto Scaling group); the lab's outputs still name its
   * manager hosts, so it is read when present.
   */
  managerInstanceId: 'ManagerInstanceId',
  stagingBucket: 'StagingBucket',
  sessionCommand: 'SessionCommand',
} as const;

type OutputKeys = { readonly [K in keyof typeof SUFFIXES]: string };

/** The output keys of the cluster whose construct id gives the prefix `prefix` (`Swarm` → `SwarmClusterName`, …). */
export function outputKeysOf(prefix: string): OutputKeys {
  return Object.fromEntries(Object.entries(SUFFIXES).map(([k, suffix]) => [k, `${prefix}${suffix}`])) as unknown as OutputKeys;
}

/** The output keys of the ready-made SwarmStack's cluster (construct id `Swarm`). */
export const OUTPUT_KEYS = {
  clusterName: 'SwarmClusterName',
  parameterPrefix: 'SwarmParameterPrefix',
  managerGroupName: 'SwarmManagerGroupName',
  workerGroupName: 'SwarmWorkerGroupName',
  region: 'SwarmRegion',
  managerInstanceId: 'SwarmManagerInstanceId',
  stagingBucket: 'SwarmStagingBucket',
} as const;

const REQUIRED = ['clusterName', 'parameterPrefix', 'region'] as const;
/** Keys that, beside `<P>ClusterName`, mark P as a cluster (an unrelated `EcsClusterName` output alone does not). */
const COMPANIONS = Object.values(SUFFIXES).filter((s) => s !== SUFFIXES.clusterName);

const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;
const OUTPUT_PREFIX = /^[A-Za-z0-9]{1,200}$/;
const INSTANCE_ID = /^(i|mi)-[0-9A-Za-z]{1,40}$/;
const REGION = /^[a-z]{2,}(-[a-z0-9]+)+$/;

export type StackOutputs = Readonly<Record<string, string>>;

/** Throws a user error unless `name` is a CloudFormation stack name (it reaches `cdk destroy`'s argv). */
export function validateStackName(name: string, field = '--stack'): string {
  if (!STACK_NAME.test(name)) {
    throw SwarmError.user('STACK_NAME_INVALID', `${field} "${name}" is not a CloudFormation stack name (letters, digits and hyphens, starting with a letter, at most 128)`);
  }
  return name;
}

/**
 * Throws a user error unless `selector` can name a cluster: a cluster name (the construct's `name` prop, as in the
 * tags and parameter names) or the output prefix of its construct id (letters and digits: `Blue` for id `Blue`).
 */
export function validateClusterSelector(selector: string, field = '--cluster'): string {
  if (!clusterConfigSchema.shape.name.safeParse(selector).success && !OUTPUT_PREFIX.test(selector)) {
    throw SwarmError.user(
      'CLUSTER_SELECTOR_INVALID',
      `${field} "${selector}" is neither a cluster name (1-32 lowercase letters, digits and hyphens, starting with a letter) nor a construct id's output prefix (letters and digits, e.g. Blue for outputs BlueClusterName)`,
    );
  }
  return selector;
}

/** One cluster whose outputs a stack holds. */
export interface ClusterOutputsRef {
  /** The keys' prefix P (the construct id without non-alphanumerics). */
  readonly prefix: string;
  /** The value of `<P>ClusterName`. */
  readonly name: string;
}

/** Every cluster in one stack's outputs: each `<P>ClusterName` with at least one other `<P>…` key of the construct beside it. */
export function clustersInOutputs(outputs: StackOutputs): ClusterOutputsRef[] {
  const found: ClusterOutputsRef[] = [];
  for (const [key, value] of Object.entries(outputs)) {
    if (!key.endsWith(SUFFIXES.clusterName)) continue;
    const prefix = key.slice(0, -SUFFIXES.clusterName.length);
    if (!/^[A-Za-z0-9]*$/.test(prefix) || !COMPANIONS.some((s) => outputs[`${prefix}${s}`] !== undefined)) continue;
    found.push({ prefix, name: value });
  }
  return found;
}

interface Candidate extends ClusterOutputsRef {
  readonly stackName?: string;
  readonly outputs: StackOutputs;
}

function label(c: Candidate): string {
  return `${c.name} (outputs ${c.prefix}ClusterName${c.stackName ? `, stack ${c.stackName}` : ''})`;
}

/**
 * Picks the cluster: the one `selector` names (by cluster name or output prefix), or the only one. `where` names
 * the outputs in errors. Several clusters and no selector, or a selector that names none, are user errors listing
 * the clusters found.
 */
function chooseCluster(candidates: readonly Candidate[], where: string, selector: string | undefined, multipleStacks: boolean): Candidate {
  const list = () => candidates.map(label).join(', ');
  if (selector === undefined) {
    if (candidates.length === 1) return candidates[0];
    if (candidates.length === 0) {
      throw SwarmError.user('OUTPUTS_KEY_MISSING', `${where} has no ec2-swarm cluster: no output <P>ClusterName (such as ${OUTPUT_KEYS.clusterName}) beside the construct's other outputs; was the stack deployed with the SwarmCluster construct?`);
    }
    throw SwarmError.user(
      'CLUSTER_AMBIGUOUS',
      `${where} holds ${candidates.length} clusters: ${list()}; choose one with --cluster NAME (its name or construct id)${multipleStacks ? ' or --stack NAME' : ''}`,
    );
  }
  const byName = candidates.filter((c) => c.name === selector);
  const matches = byName.length > 0 ? byName : candidates.filter((c) => c.prefix === selector);
  const both = byName.length > 0 && candidates.some((c) => c.prefix === selector && !byName.includes(c));
  if (matches.length === 1 && !both) return matches[0];
  if (matches.length === 0) {
    throw SwarmError.user('CLUSTER_NOT_FOUND', `${where} has no cluster "${selector}" (clusters in it: ${candidates.length > 0 ? list() : 'none'})`);
  }
  const advice = multipleStacks ? 'add --stack NAME' : "name it by its other identifier (each cluster's name and output prefix are listed)";
  throw SwarmError.user('CLUSTER_AMBIGUOUS', `--cluster ${selector} matches more than one cluster in ${where}: ${list()}; ${advice}`);
}

/** Builds ClusterInfo from one stack's outputs, naming the source and the key for anything missing or malformed. */
export function clusterFromOutputs(outputs: StackOutputs, source: string, stackName?: string, region?: string, cluster?: string): ClusterInfo {
  const where = stackName ? `${source} (stack ${stackName})` : source;
  const found = clustersInOutputs(outputs);
  // A stack with only the ready-made stack's keys, some missing, is still read so the error names the missing key.
  const candidates = found.length > 0 || cluster !== undefined ? found : [{ prefix: 'Swarm', name: outputs[OUTPUT_KEYS.clusterName] ?? '' }];
  const chosen = chooseCluster(candidates.map((c) => ({ ...c, outputs, ...(stackName ? { stackName } : {}) })), where, cluster, false);
  const others = found.filter((c) => c.prefix !== chosen.prefix).map((c) => c.name);
  return buildClusterInfo(outputs, chosen.prefix, where, stackName, region, others);
}

function buildClusterInfo(outputs: StackOutputs, prefix: string, where: string, stackName: string | undefined, region: string | undefined, others: readonly string[]): ClusterInfo {
  const keys = outputKeysOf(prefix);
  for (const k of REQUIRED) {
    if (!outputs[keys[k]]) throw SwarmError.user('OUTPUTS_KEY_MISSING', `${where} has no output ${keys[k]}; was the stack deployed with the SwarmCluster construct?`);
  }
  const name = outputs[keys.clusterName];
  if (!clusterConfigSchema.shape.name.safeParse(name).success) {
    throw SwarmError.user('OUTPUTS_INVALID', `${where}: ${keys.clusterName} "${name}" is not a cluster name`);
  }
  const listed = outputs[keys.managerInstanceId];
  const managerInstanceIds = (listed ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const badId = managerInstanceIds.find((id) => !INSTANCE_ID.test(id));
  if ((listed !== undefined && managerInstanceIds.length === 0) || badId !== undefined) {
    throw SwarmError.user('OUTPUTS_INVALID', `${where}: ${keys.managerInstanceId} "${badId ?? ''}" is not an instance id such as i-0123456789abcdef0`);
  }
  const stackRegion = outputs[keys.region];
  const chosen = region ?? stackRegion;
  if (!REGION.test(chosen)) throw SwarmError.user('OUTPUTS_INVALID', `${where}: region "${chosen}" is not an AWS region such as eu-west-1`);
  return {
    name,
    ...(stackName ? { stackName } : {}),
    region: chosen,
    managerInstanceIds,
    parameterPrefix: outputs[keys.parameterPrefix],
    ...(outputs[keys.managerGroupName] ? { managerGroupName: outputs[keys.managerGroupName] } : {}),
    ...(outputs[keys.workerGroupName] ? { workerGroupName: outputs[keys.workerGroupName] } : {}),
    ...(outputs[keys.stagingBucket] ? { stagingBucket: outputs[keys.stagingBucket] } : {}),
    ...(others.length > 0 ? { otherClustersInStack: others } : {}),
  };
}

/**
 * Picks the cluster from a parsed outputs file: in the stack `stack` when given, the cluster `cluster` (name or
 * construct id) when given, else the only cluster in the file. `source` names the file in errors.
 */
export function clusterFromOutputsDocument(doc: unknown, source: string, opts: { stack?: string; cluster?: string; region?: string } = {}): ClusterInfo {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw SwarmError.user('OUTPUTS_INVALID', `${source} must hold a JSON object { "<StackName>": { "<OutputKey>": "<value>" } } as written by cdk deploy --outputs-file`);
  }
  const stacks = Object.entries(doc as Record<string, unknown>)
    .filter(([, v]) => typeof v === 'object' && v !== null && !Array.isArray(v))
    .map(([name, v]) => [name, stringValues(v as Record<string, unknown>)] as const);
  if (opts.stack !== undefined) {
    const found = stacks.find(([name]) => name === opts.stack);
    if (!found) {
      throw SwarmError.user('OUTPUTS_STACK_MISSING', `${source} has no stack "${opts.stack}" (stacks in it: ${stacks.map(([n]) => n).join(', ') || 'none'})`);
    }
    return clusterFromOutputs(found[1], source, found[0], opts.region, opts.cluster);
  }
  const candidates: Candidate[] = stacks.flatMap(([stackName, outputs]) => clustersInOutputs(outputs).map((c) => ({ ...c, stackName, outputs })));
  if (candidates.length === 0 && opts.cluster === undefined) {
    throw SwarmError.user(
      'OUTPUTS_KEY_MISSING',
      `${source} has no ec2-swarm cluster stack: no stack has the output ${OUTPUT_KEYS.clusterName} or another <P>ClusterName beside the construct's other outputs (stacks in it: ${stacks.map(([n]) => n).join(', ') || 'none'})`,
    );
  }
  const multipleStacks = new Set(candidates.map((c) => c.stackName)).size > 1;
  const chosen = chooseCluster(candidates, source, opts.cluster, multipleStacks);
  const others = candidates.filter((c) => c.stackName === chosen.stackName && c.prefix !== chosen.prefix).map((c) => c.name);
  return buildClusterInfo(chosen.outputs, chosen.prefix, `${source} (stack ${chosen.stackName})`, chosen.stackName, opts.region, others);
}

function stringValues(o: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Reads a `cdk deploy --outputs-file` file; user errors name the file and what is wrong with it. */
export function clusterFromOutputsFile(file: string, stack?: string, region?: string, cluster?: string): ClusterInfo {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw SwarmError.user(
      'OUTPUTS_UNREADABLE',
      code === 'ENOENT'
        ? `outputs file ${file} does not exist (write it with: cdk deploy --outputs-file ${file})`
        : `cannot read outputs file ${file}: ${(e as Error).message}`,
      e,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw SwarmError.user('OUTPUTS_INVALID', `outputs file ${file} is not valid JSON: ${(e as Error).message}`, e);
  }
  return clusterFromOutputsDocument(doc, `outputs file ${file}`, { stack, region, cluster });
}

/** The stack's outputs from CloudFormation DescribeStacks. */
export async function describeStackOutputs(stackName: string, conn: AwsConnection): Promise<StackOutputs> {
  // Loaded here so commands that never look up a stack do not pay for (or require) this client.
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const cfn = new CloudFormationClient({
    region: conn.region,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    ...(conn.credentials ? { credentials: conn.credentials } : {}),
    retryMode: 'adaptive',
    maxAttempts: conn.maxAttempts ?? 8,
  });
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const s = out.Stacks?.[0];
    if (!s) throw SwarmError.user('STACK_NOT_FOUND', `stack ${stackName} does not exist in ${conn.region}`);
    const outputs: Record<string, string> = {};
    for (const o of s.Outputs ?? []) if (o.OutputKey && o.OutputValue !== undefined) outputs[o.OutputKey] = o.OutputValue;
    return outputs;
  } catch (e) {
    if (e instanceof SwarmError) throw e;
    if ((e as { name?: string }).name === 'ValidationError' && /does not exist/.test(String((e as Error).message))) {
      throw SwarmError.user('STACK_NOT_FOUND', `stack ${stackName} does not exist in ${conn.region} (check --stack and --region)`, e);
    }
    throw fromAwsError(e, `CloudFormation DescribeStacks ${stackName}`);
  } finally {
    cfn.destroy();
  }
}

export interface LocateOptions {
  readonly outputsFile?: string;
  readonly stack?: string;
  /** Which cluster of the stack (or outputs file): its name or its construct id's output prefix. @default - the only one */
  readonly cluster?: string;
  /** --region (wins over the outputs' SwarmRegion) */
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: AwsConnection['credentials'];
}

/**
 * `--outputs FILE` (with `--stack` to choose) or `--stack NAME` alone (CloudFormation) → ClusterInfo; `--cluster`
 * picks among several clusters. Every argument is validated before CloudFormation is asked.
 */
export async function locateCluster(opts: LocateOptions): Promise<ClusterInfo> {
  if (opts.stack !== undefined) validateStackName(opts.stack);
  if (opts.cluster !== undefined) validateClusterSelector(opts.cluster);
  if (opts.outputsFile) return clusterFromOutputsFile(opts.outputsFile, opts.stack, opts.region, opts.cluster);
  if (!opts.stack) {
    throw SwarmError.user('CLUSTER_UNKNOWN', 'say which cluster: --outputs FILE (from cdk deploy --outputs-file FILE) or --stack NAME');
  }
  if (!opts.region) {
    throw SwarmError.user('REGION_UNKNOWN', `--stack ${opts.stack} needs a region: pass --region or set AWS_REGION`);
  }
  const outputs = await describeStackOutputs(opts.stack, { region: opts.region, endpoint: opts.endpoint, credentials: opts.credentials });
  return clusterFromOutputs(outputs, `CloudFormation outputs`, opts.stack, opts.region, opts.cluster);
}
