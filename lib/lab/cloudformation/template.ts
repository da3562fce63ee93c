/**
 * Reads a synthesized CloudFormation template the way CloudFormation would for the lab: finds the manager
 * instance's and the worker launch template's user-data (the group's `LaunchTemplate`, or its mixed instances
 * policy's) and resolves their intrinsic functions against lab values, so the lab runs the exact bytes EC2 would
 * hand to cloud-init. Also resolves the stack outputs into a `cdk deploy --outputs-file` document.
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
  /** A value for any other `Fn::GetAtt` (the lab's stable fakes). @default - unknown attributes are an error */
  readonly attributeFallback?: (logicalId: string, attribute: string) => string | undefined;
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
  const v = values.attributes?.[`${logicalId}.${attribute}`] ?? values.attributeFallback?.(logicalId, attribute);
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

export interface GroupTemplate {
  /** The group's name (its `AutoScalingGroupName`, or the lab's physical id for it). */
  readonly name: string;
  readonly minSize: number;
  readonly maxSize: number;
  readonly desiredCapacity: number;
  readonly launchTemplate: { readonly logicalId: string; readonly id: string };
  readonly tags: readonly { readonly key: string; readonly value: string; readonly propagateAtLaunch: boolean }[];
  /** The group's mixed instances policy (several instance types, Spot), when it has one instead of `LaunchTemplate`. */
  readonly mixedInstancesPolicy?: MixedInstancesTemplate;
  /** The `autoscaling:EC2_INSTANCE_TERMINATING` hook, when the template has one for this group. */
  readonly terminationHook?: { readonly name: string; readonly heartbeatTimeout: number; readonly defaultResult: 'CONTINUE' | 'ABANDON' };
}

/** What the lab keeps of a `MixedInstancesPolicy`: the instance types and how On-Demand and Spot are shared. */
export interface MixedInstancesTemplate {
  /** The overrides' instance types in priority order (the launch template's own type when there are none). */
  readonly instanceTypes: readonly string[];
  /** @default 0 */
  readonly onDemandBaseCapacity: number;
  /** @default 100 */
  readonly onDemandPercentageAboveBaseCapacity: number;
}

export interface NodeUserData {
  /** Logical id of the resource that signals (the manager group or instance, or the worker group). */
  readonly logicalId: string;
  /** The user-data script exactly as EC2 would hand it to cloud-init (decoded from base64). */
  readonly script: string;
  /** The Auto Scaling group the nodes belong to (absent for a plain manager instance). */
  readonly group?: GroupTemplate;
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

function wholeNumber(v: unknown, where: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `${where} is not a whole number`);
  return n;
}

interface MixedInstancesPolicyProperty {
  readonly LaunchTemplate?: {
    readonly LaunchTemplateSpecification?: { readonly LaunchTemplateId?: unknown };
    readonly Overrides?: readonly { readonly InstanceType?: unknown; readonly LaunchTemplateSpecification?: unknown }[];
  };
  readonly InstancesDistribution?: { readonly OnDemandBaseCapacity?: unknown; readonly OnDemandPercentageAboveBaseCapacity?: unknown };
}

/**
 * The group's launch template as AWS reads it: `LaunchTemplate`, or with a mixed instances policy its
 * `LaunchTemplate.LaunchTemplateSpecification` (the launch template every instance starts from, whatever type it
 * gets). An override with a launch template of its own is refused: which override an instance gets depends on
 * prices the lab does not have.
 */
function launchTemplateOf(groupId: string, props: Record<string, unknown>): { spec: { LaunchTemplateId?: unknown } | undefined; mixed?: MixedInstancesPolicyProperty } {
  const mixed = props.MixedInstancesPolicy as MixedInstancesPolicyProperty | undefined;
  if (!mixed) return { spec: props.LaunchTemplate as { LaunchTemplateId?: unknown } | undefined };
  if (props.LaunchTemplate !== undefined) {
    throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `group ${groupId} has both LaunchTemplate and MixedInstancesPolicy (CloudFormation accepts only one)`);
  }
  const withOwn = (mixed.LaunchTemplate?.Overrides ?? []).findIndex((o) => o.LaunchTemplateSpecification !== undefined);
  if (withOwn >= 0) {
    throw SwarmError.environment('LAB_TEMPLATE_UNSUPPORTED', `group ${groupId}: MixedInstancesPolicy override ${withOwn} has its own launch template; the lab starts every instance from the policy's`);
  }
  return { spec: mixed.LaunchTemplate?.LaunchTemplateSpecification, mixed };
}

function mixedInstancesTemplate(groupId: string, mixed: MixedInstancesPolicyProperty, lt: CfnResource, values: LabStackValues): MixedInstancesTemplate {
  const overrides = (mixed.LaunchTemplate?.Overrides ?? []).map((o, i) => asString(resolveIntrinsics(o.InstanceType, values), `${groupId} override ${i} InstanceType`));
  const own = (lt.Properties?.LaunchTemplateData as { InstanceType?: unknown } | undefined)?.InstanceType;
  const instanceTypes = overrides.length > 0 ? overrides : own !== undefined ? [asString(resolveIntrinsics(own, values), `${groupId} launch template InstanceType`)] : [];
  if (instanceTypes.length === 0) throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `group ${groupId}: MixedInstancesPolicy has no overrides and its launch template no InstanceType`);
  const d = mixed.InstancesDistribution ?? {};
  const percentage = wholeNumber(resolveIntrinsics(d.OnDemandPercentageAboveBaseCapacity ?? 100, values), `${groupId} OnDemandPercentageAboveBaseCapacity`);
  if (percentage > 100) throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `${groupId} OnDemandPercentageAboveBaseCapacity is above 100`);
  return {
    instanceTypes,
    onDemandBaseCapacity: wholeNumber(resolveIntrinsics(d.OnDemandBaseCapacity ?? 0, values), `${groupId} OnDemandBaseCapacity`),
    onDemandPercentageAboveBaseCapacity: percentage,
  };
}

/** An Auto Scaling group of the template, with its launch template's user-data and its termination hook. */
function groupUserData(template: CfnTemplate, groupId: string, group: CfnResource, values: LabStackValues): NodeUserData {
  const { spec, mixed } = launchTemplateOf(groupId, group.Properties ?? {});
  const ref = spec?.LaunchTemplateId as { Ref?: string } | undefined;
  const ltId = typeof ref?.Ref === 'string' ? ref.Ref : undefined;
  const lt = ltId ? template.Resources[ltId] : undefined;
  if (!ltId || lt?.Type !== 'AWS::EC2::LaunchTemplate') {
    throw SwarmError.environment('LAB_TEMPLATE_SHAPE', `group ${groupId} has no launch template (launch configurations are not supported)`);
  }
  const data = lt.Properties?.LaunchTemplateData as { UserData?: unknown } | undefined;
  // Only the properties the lab needs (others may name attributes the lab has no value for).
  const props = group.Properties ?? {};
  const p: Record<string, unknown> = {};
  for (const k of ['AutoScalingGroupName', 'MinSize', 'MaxSize', 'DesiredCapacity', 'Tags']) if (props[k] !== undefined) p[k] = resolveIntrinsics(props[k], values);
  const hooks = Object.values(template.Resources).filter(
    (r) =>
      r.Type === 'AWS::AutoScaling::LifecycleHook' &&
      (r.Properties?.AutoScalingGroupName as { Ref?: string } | undefined)?.Ref === groupId &&
      r.Properties?.LifecycleTransition === 'autoscaling:EC2_INSTANCE_TERMINATING',
  );
  const hook = hooks[0]?.Properties;
  const tags = Array.isArray(p.Tags) ? (p.Tags as { Key?: unknown; Value?: unknown; PropagateAtLaunch?: unknown }[]) : [];
  const desired = p.DesiredCapacity ?? p.MinSize ?? 0;
  return {
    logicalId: groupId,
    script: decodeUserData(data?.UserData, values, `${ltId} UserData`),
    group: {
      name: typeof p.AutoScalingGroupName === 'string' ? p.AutoScalingGroupName : refValue(groupId, values),
      minSize: wholeNumber(p.MinSize ?? 0, `${groupId} MinSize`),
      maxSize: wholeNumber(p.MaxSize ?? desired, `${groupId} MaxSize`),
      desiredCapacity: wholeNumber(desired, `${groupId} DesiredCapacity`),
      launchTemplate: { logicalId: ltId, id: refValue(ltId, values) },
      ...(mixed ? { mixedInstancesPolicy: mixedInstancesTemplate(groupId, mixed, lt, values) } : {}),
      tags: tags.map((t) => ({ key: String(t.Key), value: String(t.Value), propagateAtLaunch: t.PropagateAtLaunch === true || t.PropagateAtLaunch === 'true' })),
      ...(hook
        ? {
            terminationHook: {
              name: String(resolveIntrinsics(hook.LifecycleHookName, values) ?? `${groupId}-terminating`),
              heartbeatTimeout: hook.HeartbeatTimeout !== undefined ? wholeNumber(hook.HeartbeatTimeout, 'HeartbeatTimeout') : 3600,
              defaultResult: hook.DefaultResult === 'ABANDON' ? 'ABANDON' : 'CONTINUE',
            },
          }
        : {}),
    },
  };
}

/**
 * Finds the managers' user-data — an Auto Scaling group tagged `ec2-swarm:role=manager` with its launch template,
 * or (older templates) one instance with that tag — and the worker group's, resolved and decoded.
 */
export function extractUserData(template: CfnTemplate, values: LabStackValues): ClusterUserData {
  const entries = Object.entries(template.Resources);
  const groupsOf = (role: string) => entries.filter(([, r]) => r.Type === 'AWS::AutoScaling::AutoScalingGroup' && tagValue(r, 'ec2-swarm:role') === role);
  const managerGroups = groupsOf('manager');
  const managerInstances = entries.filter(([, r]) => r.Type === 'AWS::EC2::Instance' && tagValue(r, 'ec2-swarm:role') === 'manager');
  let manager: NodeUserData;
  if (managerGroups.length === 1 && managerInstances.length === 0) {
    manager = groupUserData(template, managerGroups[0][0], managerGroups[0][1], values);
  } else if (managerInstances.length === 1 && managerGroups.length === 0) {
    const [managerId, managerResource] = managerInstances[0];
    manager = { logicalId: managerId, script: decodeUserData(managerResource.Properties?.UserData, values, `${managerId} UserData`) };
  } else {
    throw SwarmError.environment(
      'LAB_TEMPLATE_SHAPE',
      `expected one manager group (or one manager instance) in the template, found ${managerGroups.length} groups and ${managerInstances.length} instances`,
    );
  }
  const workers = groupsOf('worker');
  if (workers.length === 0) return { manager };
  return { manager, worker: groupUserData(template, workers[0][0], workers[0][1], values) };
}

/** The stack outputs resolved against lab values, in the `cdk deploy --outputs-file` format. */
export function resolveOutputs(template: CfnTemplate, values: LabStackValues): Record<string, Record<string, string>> {
  const outputs: Record<string, string> = {};
  for (const [key, output] of Object.entries(template.Outputs ?? {})) {
    outputs[key] = asString(resolveIntrinsics(output.Value, values), `output ${key}`);
  }
  return { [values.stackName]: outputs };
}
