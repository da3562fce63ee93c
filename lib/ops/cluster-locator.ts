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

/** Stack output keys the construct writes (docs/round2-contracts.md, "Ops"; SwarmStack's construct id is `Swarm`). */
export const OUTPUT_KEYS = {
  clusterName: 'SwarmClusterName',
  parameterPrefix: 'SwarmParameterPrefix',
  managerGroupName: 'SwarmManagerGroupName',
  workerGroupName: 'SwarmWorkerGroupName',
  region: 'SwarmRegion',
  /**
   * Not written by the construct any more (managers are an Auto Scaling group); the lab's outputs still name its
   * manager hosts, so it is read when present.
   */
  managerInstanceId: 'SwarmManagerInstanceId',
  stagingBucket: 'SwarmStagingBucket',
} as const;

const REQUIRED_KEYS = [OUTPUT_KEYS.clusterName, OUTPUT_KEYS.parameterPrefix, OUTPUT_KEYS.region];
const CLUSTER_KEYS: readonly string[] = Object.values(OUTPUT_KEYS);

const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;
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
 * Picks the cluster stack from a parsed outputs file. Several cluster stacks → `--stack` must say which.
 * `source` names the file in errors.
 */
export function pickStackOutputs(doc: unknown, source: string, stack?: string): { stackName: string; outputs: StackOutputs } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw SwarmError.user('OUTPUTS_INVALID', `${source} must hold a JSON object { "<StackName>": { "<OutputKey>": "<value>" } } as written by cdk deploy --outputs-file`);
  }
  const stacks = Object.entries(doc as Record<string, unknown>).filter(
    ([, v]) => typeof v === 'object' && v !== null && !Array.isArray(v),
  ) as [string, Record<string, unknown>][];
  if (stack !== undefined) {
    const found = stacks.find(([name]) => name === stack);
    if (!found) {
      throw SwarmError.user('OUTPUTS_STACK_MISSING', `${source} has no stack "${stack}" (stacks in it: ${stacks.map(([n]) => n).join(', ') || 'none'})`);
    }
    return { stackName: found[0], outputs: stringValues(found[1]) };
  }
  const clusters = stacks.filter(([, outputs]) => Object.keys(outputs).some((k) => CLUSTER_KEYS.includes(k)));
  if (clusters.length === 0) {
    throw SwarmError.user(
      'OUTPUTS_KEY_MISSING',
      `${source} has no ec2-swarm cluster stack: no stack has the output ${OUTPUT_KEYS.clusterName} (stacks in it: ${stacks.map(([n]) => n).join(', ') || 'none'})`,
    );
  }
  if (clusters.length > 1) {
    throw SwarmError.user(
      'OUTPUTS_AMBIGUOUS',
      `${source} holds ${clusters.length} cluster stacks (${clusters.map(([n]) => n).join(', ')}): choose one with --stack NAME`,
    );
  }
  return { stackName: clusters[0][0], outputs: stringValues(clusters[0][1]) };
}

function stringValues(o: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Builds ClusterInfo from one stack's outputs, naming the source and the key for anything missing or malformed. */
export function clusterFromOutputs(outputs: StackOutputs, source: string, stackName?: string, region?: string): ClusterInfo {
  const where = stackName ? `${source} (stack ${stackName})` : source;
  for (const key of REQUIRED_KEYS) {
    if (!outputs[key]) throw SwarmError.user('OUTPUTS_KEY_MISSING', `${where} has no output ${key}; was the stack deployed with the SwarmCluster construct?`);
  }
  const name = outputs[OUTPUT_KEYS.clusterName];
  if (!clusterConfigSchema.shape.name.safeParse(name).success) {
    throw SwarmError.user('OUTPUTS_INVALID', `${where}: ${OUTPUT_KEYS.clusterName} "${name}" is not a cluster name`);
  }
  const listed = outputs[OUTPUT_KEYS.managerInstanceId];
  const managerInstanceIds = (listed ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const badId = managerInstanceIds.find((id) => !INSTANCE_ID.test(id));
  if ((listed !== undefined && managerInstanceIds.length === 0) || badId !== undefined) {
    throw SwarmError.user('OUTPUTS_INVALID', `${where}: ${OUTPUT_KEYS.managerInstanceId} "${badId ?? ''}" is not an instance id such as i-0123456789abcdef0`);
  }
  const stackRegion = outputs[OUTPUT_KEYS.region];
  const chosen = region ?? stackRegion;
  if (!REGION.test(chosen)) throw SwarmError.user('OUTPUTS_INVALID', `${where}: region "${chosen}" is not an AWS region such as eu-west-1`);
  return {
    name,
    ...(stackName ? { stackName } : {}),
    region: chosen,
    managerInstanceIds,
    parameterPrefix: outputs[OUTPUT_KEYS.parameterPrefix],
    ...(outputs[OUTPUT_KEYS.managerGroupName] ? { managerGroupName: outputs[OUTPUT_KEYS.managerGroupName] } : {}),
    ...(outputs[OUTPUT_KEYS.workerGroupName] ? { workerGroupName: outputs[OUTPUT_KEYS.workerGroupName] } : {}),
    ...(outputs[OUTPUT_KEYS.stagingBucket] ? { stagingBucket: outputs[OUTPUT_KEYS.stagingBucket] } : {}),
  };
}

/** Reads a `cdk deploy --outputs-file` file; user errors name the file and what is wrong with it. */
export function clusterFromOutputsFile(file: string, stack?: string, region?: string): ClusterInfo {
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
  const picked = pickStackOutputs(doc, `outputs file ${file}`, stack);
  return clusterFromOutputs(picked.outputs, `outputs file ${file}`, picked.stackName, region);
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
  /** --region (wins over the outputs' SwarmRegion) */
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: AwsConnection['credentials'];
}

/** `--outputs FILE` (with `--stack` to choose) or `--stack NAME` alone (CloudFormation) → ClusterInfo. */
export async function locateCluster(opts: LocateOptions): Promise<ClusterInfo> {
  if (opts.stack !== undefined) validateStackName(opts.stack);
  if (opts.outputsFile) return clusterFromOutputsFile(opts.outputsFile, opts.stack, opts.region);
  if (!opts.stack) {
    throw SwarmError.user('CLUSTER_UNKNOWN', 'say which cluster: --outputs FILE (from cdk deploy --outputs-file FILE) or --stack NAME');
  }
  if (!opts.region) {
    throw SwarmError.user('REGION_UNKNOWN', `--stack ${opts.stack} needs a region: pass --region or set AWS_REGION`);
  }
  const outputs = await describeStackOutputs(opts.stack, { region: opts.region, endpoint: opts.endpoint, credentials: opts.credentials });
  return clusterFromOutputs(outputs, `CloudFormation outputs`, opts.stack, opts.region);
}
