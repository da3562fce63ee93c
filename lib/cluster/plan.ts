/**
 * A plan a person can read, derived from the synthesized template (not from the config), so it shows what
 * CloudFormation will really be asked for: resources, every inbound rule, and who may do what to which parameter.
 */
import { CfnElement, Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { failuresTolerated, parameterNames, SWARM_PORTS } from '../config';
import { SwarmCluster } from './swarm-cluster';

export interface PlanIngressRule {
  /** Which security group the rule belongs to. */
  readonly group: 'nodes' | 'load balancer';
  /** `2377/tcp`, `ESP`, `all traffic`. */
  readonly traffic: string;
  /** A CIDR, `cluster nodes` or `load balancer`. */
  readonly from: string;
  readonly description: string;
}

export interface PlanParameterAccess {
  readonly name: string;
  readonly type: 'SecureString' | 'String';
  /** Who may do what, e.g. `{ manager: ['read', 'write', 'delete'], workers: ['read'] }`. */
  readonly access: Record<string, string[]>;
}

export interface ClusterPlan {
  readonly stackName: string;
  readonly summary: string[];
  /** CloudFormation resource type → count. */
  readonly resources: Record<string, number>;
  readonly ingress: PlanIngressRule[];
  readonly parameters: PlanParameterAccess[];
  readonly outputs: string[];
}

type Json = Record<string, any>;

/** Renders an intrinsic function as text: `{Ref: X}` → `${X}`, Fn::Join joined, Fn::GetAtt → `${X.Attr}`. */
export function intrinsicText(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v && typeof v === 'object') {
    const o = v as Json;
    if ('Ref' in o) return `\${${o.Ref}}`;
    if ('Fn::GetAtt' in o) return `\${${(o['Fn::GetAtt'] as string[]).join('.')}}`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(intrinsicText).join(sep);
    }
  }
  return JSON.stringify(v);
}

function logicalId(c: IConstruct | undefined): string | undefined {
  return c ? Stack.of(c).getLogicalId(c as CfnElement) : undefined;
}

function refersTo(v: unknown, id: string | undefined): boolean {
  if (!id || !v || typeof v !== 'object') return false;
  const o = v as Json;
  return o.Ref === id || (Array.isArray(o['Fn::GetAtt']) && o['Fn::GetAtt'][0] === id);
}

function traffic(rule: Json): string {
  const proto = String(rule.IpProtocol);
  if (proto === '-1') return 'all traffic';
  if (proto === '50') return 'ESP (IP protocol 50)';
  if (proto === 'tcp' || proto === 'udp') {
    return rule.FromPort === rule.ToPort ? `${rule.FromPort}/${proto}` : `${rule.FromPort}-${rule.ToPort}/${proto}`;
  }
  return `IP protocol ${proto}`;
}

/** Matches an IAM resource glob (`*` only) against a name. */
function globMatches(glob: string, name: string): boolean {
  const re = new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(name);
}

const VERB_ORDER = ['read', 'write', 'delete'];

function verbs(actions: string[]): string[] {
  const out = new Set<string>();
  for (const a of actions) {
    if (/^ssm:(GetParameter|GetParameters|GetParameterHistory|DescribeParameters|\*)$/.test(a)) out.add('read');
    if (/^ssm:(PutParameter|\*)$/.test(a)) out.add('write');
    if (/^ssm:(DeleteParameter|DeleteParameters|\*)$/.test(a)) out.add('delete');
  }
  return [...out];
}

/** Builds the plan from the cluster and its stack's synthesized template (`Template.fromStack(...).toJSON()`). */
export function planFromTemplate(cluster: SwarmCluster, template: Json): ClusterPlan {
  const stack = Stack.of(cluster);
  const resources: Json = template.Resources ?? {};
  const config = cluster.config;

  const counts: Record<string, number> = {};
  for (const r of Object.values<Json>(resources)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;

  // Inbound rules of the node group and the load balancer group, inline or as separate resources.
  const groups: Array<[string | undefined, PlanIngressRule['group']]> = [
    [logicalId(cluster.securityGroup.node.defaultChild), 'nodes'],
    [logicalId(cluster.loadBalancer?.connections.securityGroups[0]?.node.defaultChild), 'load balancer'],
  ];
  const sourceName = (rule: Json): string => {
    if (rule.CidrIp) return rule.CidrIp;
    if (rule.CidrIpv6) return rule.CidrIpv6;
    for (const [id, label] of groups) if (refersTo(rule.SourceSecurityGroupId, id)) return label === 'nodes' ? 'cluster nodes' : 'load balancer';
    return intrinsicText(rule.SourceSecurityGroupId ?? rule.SourcePrefixListId ?? '?');
  };
  const ingress: PlanIngressRule[] = [];
  for (const [id, label] of groups) {
    if (!id) continue;
    for (const rule of (resources[id]?.Properties?.SecurityGroupIngress ?? []) as Json[]) {
      ingress.push({ group: label, traffic: traffic(rule), from: sourceName(rule), description: rule.Description ?? '' });
    }
    for (const r of Object.values<Json>(resources)) {
      if (r.Type === 'AWS::EC2::SecurityGroupIngress' && refersTo(r.Properties?.GroupId, id)) {
        ingress.push({ group: label, traffic: traffic(r.Properties), from: sourceName(r.Properties), description: r.Properties.Description ?? '' });
      }
    }
  }

  // Parameter access, from the IAM policies attached to each role.
  const principals: Array<[string | undefined, string]> = [
    [logicalId(cluster.managerRole.node.defaultChild), 'managers'],
    [logicalId(cluster.workerRole.node.defaultChild), 'workers'],
    [logicalId((cluster.parameterCleanup.grantPrincipal as unknown as IConstruct).node.defaultChild), 'stack deletion (cleanup)'],
  ];
  const names = parameterNames(config.name);
  const parameters: PlanParameterAccess[] = [
    { name: names.workerToken, type: 'SecureString', access: {} },
    { name: names.managerToken, type: 'SecureString', access: {} },
    { name: names.managerAddresses, type: 'String', access: {} },
    { name: names.initLock, type: 'String', access: {} },
    { name: names.clusterId, type: 'String', access: {} },
  ];
  for (const r of Object.values<Json>(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    for (const [id, who] of principals) {
      if (!(r.Properties.Roles as unknown[]).some((role) => refersTo(role, id))) continue;
      for (const st of r.Properties.PolicyDocument.Statement as Json[]) {
        if (st.Effect !== 'Allow') continue;
        const actions = ([] as string[]).concat(st.Action);
        const arns = ([] as unknown[]).concat(st.Resource).map(intrinsicText);
        for (const p of parameters) {
          if (!arns.some((arn) => arn === '*' || (arn.includes(':parameter/') && globMatches(arn.slice(arn.indexOf(':parameter/') + ':parameter'.length), p.name)))) {
            continue;
          }
          const v = verbs(actions);
          if (v.length > 0) p.access[who] = VERB_ORDER.filter((x) => v.includes(x) || (p.access[who] ?? []).includes(x));
        }
      }
    }
  }

  const workers = String(config.workers);
  const m = config.managers;
  const workerRange =
    config.minWorkers === undefined && config.maxWorkers === undefined
      ? `min = desired = ${workers}`
      : `desired ${workers}, min ${config.minWorkers ?? workers}, max ${config.maxWorkers ?? workers}`;
  const workerTypes = (config.workerInstanceTypes ?? [config.workerInstanceType]).join(', ');
  const spot = config.workerSpot
    ? `; Spot above ${config.workerSpot.onDemandBaseCapacity} On-Demand (${config.workerSpot.onDemandPercentageAboveBaseCapacity}% On-Demand above that, ${config.workerSpot.allocationStrategy})`
    : '';
  const image = cluster.machineImage
    ? 'the machineImage given to the construct'
    : (config.ami ?? 'latest Amazon Linux 2023, resolved by EC2 at each launch (an AMI release changes no template, replaces no manager)');
  const summary = [
    `cluster "${config.name}": ${m} manager${m === 1 ? '' : 's'} + ${workers} workers (${Number(workers) + m} EC2 instances); the managers survive ${failuresTolerated(m)} failure${failuresTolerated(m) === 1 ? '' : 's'}`,
    `managers: ${config.managerInstanceType} in an Auto Scaling group across the subnets' AZs (min = desired = ${m}, max ${m + 1} for rolling updates); workers: ${workerTypes} in an Auto Scaling group (${workerRange})${spot}`,
    `image: ${image}; root volume ${config.rootVolumeGiB} GiB gp3, encrypted; IMDSv2 only; no key pair, no SSH`,
    `network: ${config.vpcId ? `existing VPC ${config.vpcId}` : `new VPC, ${config.maxAzs} AZs, public subnets, no NAT gateway`}; overlay networks from ${config.overlayAddressPool} in /${config.overlayAddressPoolMask}s${config.loadBalancer ? '; internet-facing Network Load Balancer in front of the workers' : ''}`,
    `deploy waits for: ${m} manager signal${m === 1 ? '' : 's'} (after init or join)${config.workers === 0 ? '' : ` and ${workers} worker signals (one per successful join)`}; updates roll one node at a time, the new one joined before the old one is drained`,
    `join tokens: written at boot by the initialising manager to SSM SecureString parameters under the cluster's KMS key; never in the template, user-data, tags or outputs`,
  ];
  return { stackName: stack.stackName, summary, resources: counts, ingress, parameters, outputs: Object.keys(template.Outputs ?? {}) };
}

const SWARM_PORT_NAMES = new Map<string, string>(SWARM_PORTS.map((p) => [`${p.port}/${p.protocol}`, p.what]));

/** The plan as text for a terminal. */
export function formatPlan(plan: ClusterPlan): string {
  const lines: string[] = [];
  const total = Object.values(plan.resources).reduce((a, b) => a + b, 0);
  lines.push(`Plan for stack ${plan.stackName}`, '');
  for (const s of plan.summary) lines.push(`  • ${s}`);
  lines.push('', `Resources (${total} in CloudFormation; the same count for 1 or 1000 workers):`);
  const types = Object.entries(plan.resources).sort(([a], [b]) => a.localeCompare(b));
  const w = Math.max(...types.map(([t]) => t.length));
  for (const [t, n] of types) lines.push(`  ${t.padEnd(w)}  ${n}`);

  lines.push('', 'Inbound traffic (everything else is closed; there is no port 22):');
  const tw = Math.max(8, ...plan.ingress.map((r) => r.traffic.length));
  const fw = Math.max(8, ...plan.ingress.map((r) => r.from.length));
  for (const r of plan.ingress) {
    const what = SWARM_PORT_NAMES.get(r.traffic) ? `swarm ${SWARM_PORT_NAMES.get(r.traffic)}` : r.description;
    lines.push(`  to ${r.group.padEnd(13)} ${r.traffic.padEnd(tw)}  from ${r.from.padEnd(fw)}  ${what}`);
  }

  lines.push('', 'Runtime parameters (SSM Parameter Store) and who may use them:');
  const nw = Math.max(...plan.parameters.map((p) => p.name.length));
  for (const p of plan.parameters) {
    const who = Object.entries(p.access)
      .map(([k, v]) => `${k}: ${v.join('/')}`)
      .join('; ');
    lines.push(`  ${p.name.padEnd(nw)}  ${p.type.padEnd(12)}  ${who || 'nobody'}`);
  }
  lines.push('', `Outputs: ${plan.outputs.join(', ')}`);
  return lines.join('\n');
}
