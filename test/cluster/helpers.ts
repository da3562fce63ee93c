/** Synthesizes a SwarmStack the way bin/app.ts does (cdk.json feature flags, cdk-nag attached, not enforced). */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addSwarmStack, packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmStack } from '../../lib/cluster/swarm-stack';
import { ClusterConfigInput, parseClusterConfig } from '../../lib/config';
import { AwsSolutionsChecks } from 'cdk-nag';
import { gunzipSync } from 'node:zlib';

export const ENV = { account: '123456789012', region: 'eu-west-1' };

export interface Synth {
  readonly app: App;
  readonly stack: SwarmStack;
  readonly template: Template;
  readonly json: Record<string, any>;
  readonly checks: AwsSolutionsChecks;
}

const synthesized = new Map<string, Synth>();

/**
 * The synthesized stack of one configuration, shared by every test of the file that asks for the same input and
 * context (a synth costs a few tenths of a CPU-second): read it, never add to it — a test that adds constructs
 * uses freshSynth. `context` adds to cdk.json's feature flags (e.g. cached lookup values).
 */
export function synth(input: ClusterConfigInput = {}, context: Record<string, unknown> = {}): Synth {
  const key = JSON.stringify([input, context]);
  let s = synthesized.get(key);
  if (!s) {
    s = freshSynth(input, context);
    synthesized.set(key, s);
  }
  return s;
}

/** A stack of its own, for a test that adds constructs to it (see synth). */
export function freshSynth(input: ClusterConfigInput = {}, context: Record<string, unknown> = {}): Synth {
  const app = new App({ context: { ...packageCdkContext(), ...context } });
  const prev = { a: process.env.CDK_DEFAULT_ACCOUNT, r: process.env.CDK_DEFAULT_REGION };
  process.env.CDK_DEFAULT_ACCOUNT = ENV.account;
  process.env.CDK_DEFAULT_REGION = ENV.region;
  try {
    const { stack, checks } = addSwarmStack(app, parseClusterConfig(input), { enforceChecks: false });
    const template = Template.fromStack(stack);
    return { app, stack, template, json: template.toJSON(), checks };
  } finally {
    restore('CDK_DEFAULT_ACCOUNT', prev.a);
    restore('CDK_DEFAULT_REGION', prev.r);
  }
}

function restore(k: string, v: string | undefined): void {
  if (v === undefined) delete process.env[k];
  else process.env[k] = v;
}

export function resourcesOfType(json: Record<string, any>, type: string): Array<[string, any]> {
  return Object.entries<any>(json.Resources).filter(([, r]) => r.Type === type);
}

export interface IngressRule {
  readonly groupId: string;
  readonly protocol: string;
  readonly fromPort?: number;
  readonly toPort?: number;
  readonly cidr?: string;
  readonly sourceGroup?: string;
}

/** Every inbound rule in the template: inline on a security group or a separate SecurityGroupIngress. */
export function ingressRules(json: Record<string, any>): IngressRule[] {
  const out: IngressRule[] = [];
  const src = (r: any) => r.SourceSecurityGroupId?.['Fn::GetAtt']?.[0] ?? r.SourceSecurityGroupId?.Ref;
  for (const [id, sg] of resourcesOfType(json, 'AWS::EC2::SecurityGroup')) {
    for (const r of sg.Properties.SecurityGroupIngress ?? []) {
      out.push({ groupId: id, protocol: String(r.IpProtocol), fromPort: r.FromPort, toPort: r.ToPort, cidr: r.CidrIp ?? r.CidrIpv6, sourceGroup: src(r) });
    }
  }
  for (const [, res] of resourcesOfType(json, 'AWS::EC2::SecurityGroupIngress')) {
    const r = res.Properties;
    out.push({
      groupId: r.GroupId['Fn::GetAtt'][0],
      protocol: String(r.IpProtocol),
      fromPort: r.FromPort,
      toPort: r.ToPort,
      cidr: r.CidrIp ?? r.CidrIpv6,
      sourceGroup: src(r),
    });
  }
  return out;
}

export function logicalIdOf(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.resolve((construct.node.defaultChild as any).logicalId);
}

/** Renders an intrinsic value with `${X}` placeholders, for matching ARNs and user-data. */
export function text(v: any): string {
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  if (v?.Ref) return `\${${v.Ref}}`;
  if (v?.['Fn::GetAtt']) return `\${${v['Fn::GetAtt'].join('.')}}`;
  if (v?.['Fn::Join']) return v['Fn::Join'][1].map(text).join(v['Fn::Join'][0]);
  if (v?.['Fn::Base64']) return text(v['Fn::Base64']);
  return JSON.stringify(v);
}

/** The Auto Scaling group whose `ec2-swarm:role` tag is `role`, with its launch template. */
export function groupOf(json: Record<string, any>, role: 'manager' | 'worker'): { id: string; group: any; launchTemplateId: string; launchTemplate: any } {
  const found = resourcesOfType(json, 'AWS::AutoScaling::AutoScalingGroup').filter(([, r]) =>
    (r.Properties.Tags ?? []).some((t: any) => t.Key === 'ec2-swarm:role' && t.Value === role),
  );
  if (found.length !== 1) throw new Error(`expected one ${role} group, found ${found.length}`);
  const [id, group] = found[0];
  const spec = group.Properties.LaunchTemplate ?? group.Properties.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification;
  const launchTemplateId = spec.LaunchTemplateId.Ref;
  return { id, group, launchTemplateId, launchTemplate: json.Resources[launchTemplateId] };
}

/** The managers' and the workers' user-data exactly as EC2 would receive them (the region is concrete here). */
export function renderedUserData(input: Parameters<typeof synth>[0] = {}): { manager: string; worker: string; managerId: string; workerId: string } {
  const { json } = synth(input);
  const m = groupOf(json, 'manager');
  const w = groupOf(json, 'worker');
  return {
    manager: text(m.launchTemplate.Properties.LaunchTemplateData.UserData),
    worker: text(w.launchTemplate.Properties.LaunchTemplateData.UserData),
    managerId: m.id,
    workerId: w.id,
  };
}

/**
 * The files the user-data's packed installer writes, by path: decodes the base64 block, gunzips it, and reads the
 * installer's `cat > FILE <<'EC2SWARM_EOF'` blocks in order (a body never holds the delimiter line: refused at synth).
 */
export function unpackedScripts(userData: string): Record<string, string> {
  const m = /^base64 -d <<'EC2SWARM_EOF' \| gzip -dc \| bash\n([A-Za-z0-9+/=\n]+?)\nEC2SWARM_EOF$/m.exec(userData);
  if (!m) throw new Error('no packed installer in user-data');
  const installer = gunzipSync(Buffer.from(m[1].replace(/\n/g, ''), 'base64')).toString('utf8');
  const lines = installer.split('\n');
  if (lines[0] !== 'set -euo pipefail') throw new Error(`installer starts with ${lines[0]}`);
  const files: Record<string, string> = {};
  let i = 1;
  while (i < lines.length && lines[i] !== '') {
    const start = /^cat > (\S+) <<'EC2SWARM_EOF'$/.exec(lines[i]);
    if (!start) throw new Error(`unexpected installer line ${lines[i]}`);
    const end = lines.indexOf('EC2SWARM_EOF', i + 1);
    files[start[1]] = `${lines.slice(i + 1, end).join('\n')}\n`;
    i = end + 1;
  }
  return files;
}
