/**
 * The templates pass the CDK's built-in CloudFormation validation (cdk.json: @aws-cdk/core:validateAgainstDefaultRules,
 * so an error finding fails synth) for every shape of configuration. The other unit tests synthesize without it
 * (test/support/cdk-validation.js: its rule engine costs ~10 CPU-s in every test file that starts it); this file
 * turns it back on. `CDK_VALIDATION=true npx jest` runs every synth of the suite with it.
 *
 * Every shape is a stack of ONE app, next to a stack with a known-bad resource, synthesized once: the engine runs
 * once per synth (~2.5 CPU-s each after its ~10 CPU-s start), and one run validates every stack of the app.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { packageCdkContext } from '../../lib/cluster/swarm-app';
import { SwarmStack } from '../../lib/cluster/swarm-stack';
import { ClusterConfigInput, parseClusterConfig } from '../../lib/config';
import { ENV } from './helpers';

process.env.CDK_VALIDATION = 'true';

interface Finding {
  readonly plugin: string;
  readonly rule: string;
  readonly severity: string;
  /** The template files the violating resources are in (one per stack). */
  readonly templates: string[];
}

/**
 * The findings of the validation plugins, from the assembly's report (acknowledged ones are not listed). Construct
 * annotations (warnings such as too few AZs for the managers) are the construct's own; their tests assert them.
 */
function findings(outdir: string): Finding[] {
  const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{
      pluginName: string;
      violations: Array<{ ruleName: string; severity?: string; violatingConstructs?: Array<{ cloudFormationResource?: { templatePath?: string } }> }>;
    }>;
  };
  return report.pluginReports
    .filter((p) => p.pluginName !== 'Construct Annotations')
    .flatMap((p) =>
      p.violations.map((v) => ({
        plugin: p.pluginName,
        rule: v.ruleName,
        severity: v.severity ?? '?',
        templates: [...new Set((v.violatingConstructs ?? []).map((c) => c.cloudFormationResource?.templatePath ?? '?'))],
      })),
    );
}

/** Every option that changes which resources or properties the template has, each in at least one shape. */
const SHAPES: Array<[string, ClusterConfigInput]> = [
  ['default', {}],
  ['3 managers in 3 AZs, named, no workers, ports without an NLB', { name: 'blue', managers: 3, maxAzs: 3, workers: 0, publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }] }],
  ['a scaling range, mixed instance types on Spot', { workers: 4, minWorkers: 2, maxWorkers: 10, workerInstanceTypes: ['t3.large', 't3a.large'], workerSpot: { onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 25 } }],
  ['Graviton workers on Spot, a custom AMI and root volume', { workerInstanceType: 'c7g.large', workerSpot: {}, ami: 'ami-0123456789abcdef0', rootVolumeGiB: 42 }],
  ['published ports, NLB, encrypted overlay, IPv6', { workers: 2, encryptedOverlay: true, loadBalancer: true, publishedPorts: [{ port: 80, cidrs: ['0.0.0.0/0', '::/0'] }, { port: 53, protocol: 'udp', cidrs: ['10.0.0.0/8'] }] }],
];

describe('CloudFormation validation, every shape and a positive control in one synth', () => {
  let found: Finding[];
  let error: unknown;
  let templateOf: Map<string, string>;

  beforeAll(() => {
    const app = new App({ context: packageCdkContext() });
    // As addSwarmStack does for bin/app.ts (cdk-nag attached, not enforced), one SwarmStack per shape: distinct
    // construct ids, each config exactly as the shape gives it.
    new AwsSolutionsChecks(app);
    const stacks = SHAPES.map(([, input], i) => new SwarmStack(app, `Shape${i}`, { cluster: parseClusterConfig(input), env: ENV }));
    templateOf = new Map(SHAPES.map(([name], i) => [name, stacks[i].templateFile]));
    const control = new Stack(app, 'Control', { env: ENV });
    new CfnResource(control, 'Broken', { type: 'AWS::SQS::Queue', properties: { NotAQueueProperty: 1 } });
    try {
      app.synth();
    } catch (e) {
      error = e;
    }
    // Written before synth throws: the report covers every stack of the app.
    found = findings(app.outdir);
  });

  test('the validation does run: the control stack’s unknown property fails synth, reported against its template', () => {
    expect(String(error)).toMatch(/NotAQueueProperty/);
    expect(found.length).toBeGreaterThan(0);
    expect(found.filter((f) => f.templates.includes('Control.template.json'))).not.toEqual([]);
    // Nothing else: every finding is the control's.
    expect(found.filter((f) => f.templates.join() !== 'Control.template.json')).toEqual([]);
  });

  test.each(SHAPES.map(([name]) => [name]))('%s: no finding against its template', (name) => {
    const file = templateOf.get(name)!;
    expect(found.flatMap((f) => f.templates)).toContain('Control.template.json'); // the report does name templates
    expect(found.filter((f) => f.templates.includes(file) || f.templates.includes('?'))).toEqual([]);
  });
});
