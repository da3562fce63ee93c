/**
 * Reads a synthesized CloudFormation template the way CloudFormation would for the lab: finds the manager
 * instance's and the worker launch template's user-data and resolves their intrinsic functions against lab
 * values, so the lab runs the exact bytes EC2 would hand to cloud-init. Also resolves the stack outputs
 * into a `cdk deploy --outputs-file` document.
 */
import { SwarmError } from '../../errors';

/** Values CloudFormation would supply: pseudo parameters, physical ids of resources, attributes. */
export interface LabStackValues {
  readonly stackName: string;
  readonly region: string;
  readonly accountId: string;
  /** Physical ids for `Ref` of a resource or a parameter, by logical id. */
  readonly refs: Readonly<Record<string, string>>;
  /** `Fn::GetAtt` values, by `LogicalId.Attribute`. */
  readonly attributes?: Readonly<Record<string, string>>;
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
  readonly Outputs?: Record<string, { Value: unknown }>;
  readonly Parameters?: Record<string, unknown>;
}

function pseudo(values: LabStackValues): Record<string, string> {
  return {
    'AWS::StackName': values.stackName,
    'AWS::Region': values.region,
    'AWS::AccountId': values.accountId,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackId': `arn:aws:cloudformation:${values.region}:${values.accountId}:stack/${values.stackName}/lab`,
    'AWS::NoValue': '',
  };
}

function refValue(name: string, values: LabStackValues): string {
  const p = pseudo(values)[name];
  if (p !== undefined) return p;
  const r = values.refs[name];
  if (r !== undefined) return r;
  throw SwarmError.environment('LAB_TEMPLATE_UNRESOLVED', `the lab has no value for Ref ${name}`);
}

function getAttValue(logicalId: string, attribute: string, values: LabStackValues): string {
  const v = values.attributes?.[`${logicalId}.${attribute}`];
  if (v !== undefined) return v;
  throw SwarmError.environment('LAB_TEMPLATE_UNRESOLVED', `the lab has no value for Fn::GetAtt ${logicalId}.${attribute}`);
}

function asString(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw SwarmError.environment('LAB_TEMPLATE_UNRESOLVED', `${where} did not resolve to a string`);
}

function substitute(text: string, vars: Record<string, unknown>, values: LabStackValues): string {
  return text.replace(/\$\{([^}]+)\}/g, (_whole, name: string) => {
    if (name.startsWith('!')) return `\${${name.slice(1)}}`; // ${!Literal} stays literal, minus the bang
    if (name in vars) return asString(vars[name], `Fn::Sub variable ${name}`);
    const dot = name.indexOf('.');
    if (dot > 0 && !name.startsWith('AWS::')) return getAttValue(name.slice(0, dot), name.slice(dot + 1), values);
    return refValue(name, values);
  });
}

/** Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Base64, Fn::Select, Fn::Split; anything else is an error. */
export function resolveIntrinsics(value: unknown, values: LabStackValues): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, values));
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::'))) {
    const [fn] = keys;
    const arg = obj[fn];
    switch (fn) {
      case 'Ref':
        return refValue(asString(arg, 'Ref'), values);
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? arg : asString(arg, 'Fn::GetAtt').split('.');
        return getAttValue(asString(id, 'Fn::GetAtt'), asString(attr, 'Fn::GetAtt'), values);
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, unknown[]];
        const resolved = resolveIntrinsics(parts, values) as unknown[];
        return resolved.map((p) => asString(p, 'Fn::Join part')).join(sep);
      }
      case 'Fn::Sub': {
        if (typeof arg === 'string') return substitute(arg, {}, values);
        const [text, vars] = arg as [string, Record<string, unknown>];
        const resolvedVars = resolveIntrinsics(vars ?? {}, values) as Record<string, unknown>;
        return substitute(text, resolvedVars, values);
      }
      case 'Fn::Base64':
        return Buffer.from(asString(resolveIntrinsics(arg, values), 'Fn::Base64'), 'utf8').toString('base64');
      case 'Fn::Select': {
        const [index, list] = arg as [unknown, unknown];
        const items = resolveIntrinsics(list, values) as unknown[];
        return items[Number(resolveIntrinsics(index, values))];
      }
      case 'Fn::Split': {
        const [sep, text] = arg as [string, unknown];
        return asString(resolveIntrinsics(text, values), 'Fn::Split').split(sep);
      }
      default:
        throw SwarmError.environment('LAB_TEMPLATE_UNSUPPORTED', `the lab cannot resolve ${fn}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = resolveIntrinsics(v, values);
  return out;
}

function tagValue(resource: CfnResource, key: string): string | undefined {
  const tags = resource.Properties?.Tags;
  if (!Array.isArray(tags)) return undefined;
  const tag = tags.find((t) => (t as { Key?: string }).Key === key) as { Value?: unknown } | undefined;
  return typeof tag?.Value === 'string' ? tag.Value : undefined;
}

export interface NodeUserData {
  /** Logical id of the resource that signals (the manager instance, or the worker Auto Scaling group). */
  readonly logicalId: string;
  /** The user-data script exactly as EC2 would hand it to cloud-init (decoded from base64). */
  readonly script: string;
}

export interface ClusterUserData {
  readonly manager: NodeUserData;
  /** Absent when the cluster has no workers. */
  readonly worker?: NodeUserData;
}

function decodeUserData(raw: unknown, values: LabStackValues, where: string): string {
  const resolved = resolveIntrinsics(raw, values);
  return Buffer.from(asString(resolved, where), 'base64').toString('utf8');
}

/**
 * Finds the user-data of the manager instance (tag `ec2-swarm:role=manager`) and of the worker group's
 * launch template (Auto Scaling group tagged `ec2-swarm:role=worker`), resolved and decoded.
 */
export function extractUserData(template: CfnTemplate, values: LabStackValues): ClusterUserData {
  const entries = Object.entries(template.Resources);
  const managers = entries.filter(([, r]) => r.Type === 'AWS::EC2::Instance' && tagValue(r, 'ec2-swarm:role') === 'manager');
  if (managers.length !== 1) {
    throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `expected one manager instance in the template, found ${managers.length}`);
  }
  const [managerId, managerResource] = managers[0];
  const manager = { logicalId: managerId, script: decodeUserData(managerResource.Properties?.UserData, values, `${managerId} UserData`) };

  const groups = entries.filter(([, r]) => r.Type === 'AWS::AutoScaling::AutoScalingGroup' && tagValue(r, 'ec2-swarm:role') === 'worker');
  if (groups.length === 0) return { manager };
  const [groupId, group] = groups[0];
  const spec = group.Properties?.LaunchTemplate as { LaunchTemplateId?: unknown } | undefined;
  const ref = spec?.LaunchTemplateId as { Ref?: string } | undefined;
  const ltId = typeof ref?.Ref === 'string' ? ref.Ref : undefined;
  const lt = ltId ? template.Resources[ltId] : undefined;
  if (!ltId || lt?.Type !== 'AWS::EC2::LaunchTemplate') {
    throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `worker group ${groupId} has no launch template (launch configurations are not supported)`);
  }
  const data = lt.Properties?.LaunchTemplateData as { UserData?: unknown } | undefined;
  return { manager, worker: { logicalId: groupId, script: decodeUserData(data?.UserData, values, `${ltId} UserData`) } };
}

/** The stack outputs resolved against lab values, in the `cdk deploy --outputs-file` format. */
export function resolveOutputs(template: CfnTemplate, values: LabStackValues): Record<string, Record<string, string>> {
  const outputs: Record<string, string> = {};
  for (const [key, output] of Object.entries(template.Outputs ?? {})) {
    outputs[key] = asString(resolveIntrinsics(output.Value, values), `output ${key}`);
  }
  return { [values.stackName]: outputs };
}
