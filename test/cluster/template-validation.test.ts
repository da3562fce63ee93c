/**
 * The templates pass the CDK's built-in CloudFormation validation (cdk.json: @aws-cdk/core:validateAgainstDefaultRules,
 * so an error finding fails synth) for every shape of configuration. The other unit tests synthesize without it
 * (test/support/cdk-validation.js: its rule engine costs ~10 CPU-s in every test file that starts it); this file
 * turns it back on. `CDK_VALIDATION=true npx jest` runs every synth of the suite with it.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, CfnResource } from 'aws-cdk-lib';
import { addSwarmStack, packageCdkContext } from '../../lib/cluster/swarm-app';
import { ClusterConfigInput, parseClusterConfig } from '../../lib/config';
import { synth } from './helpers';

process.env.CDK_VALIDATION = 'true';

/**
 * The findings of the validation plugins, from the assembly's report (acknowledged ones are not listed). Construct
 * annotations (warnings such as too few AZs for the managers) are the construct's own; their tests assert them.
 */
function findings(outdir: string): string[] {
  const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string; severity?: string }> }>;
  };
  return report.pluginReports.filter((p) => p.pluginName !== 'Construct Annotations').flatMap((p) => p.violations.map((v) => `${p.pluginName} ${v.ruleName} (${v.severity ?? '?'})`));
}

/** Every option that changes which resources or properties the template has, each in at least one shape. */
const SHAPES: Array<[string, ClusterConfigInput]> = [
  ['default', {}],
  ['3 managers in 3 AZs, named, no workers, ports without an NLB', { name: 'blue', managers: 3, maxAzs: 3, workers: 0, publishedPorts: [{ port: 80, cidrs: ['203.0.113.0/24'] }] }],
  ['a scaling range, mixed instance types on Spot', { workers: 4, minWorkers: 2, maxWorkers: 10, workerInstanceTypes: ['t3.large', 't3a.large'], workerSpot: { onDemandBaseCapacity: 1, onDemandPercentageAboveBaseCapacity: 25 } }],
  ['Graviton workers on Spot, a custom AMI and root volume', { workerInstanceType: 'c7g.large', workerSpot: {}, ami: 'ami-0123456789abcdef0', rootVolumeGiB: 42 }],
  ['published ports, NLB, encrypted overlay, IPv6', { workers: 2, encryptedOverlay: true, loadBalancer: true, publishedPorts: [{ port: 80, cidrs: ['0.0.0.0/0', '::/0'] }, { port: 53, protocol: 'udp', cidrs: ['10.0.0.0/8'] }] }],
];

describe('CloudFormation validation', () => {
  test.each(SHAPES)('%s: synth passes with no finding', (_, input) => {
    const { app } = synth(input);
    expect(findings(app.outdir)).toEqual([]);
  });

  test('the validation does run: a resource with an unknown property in the same app fails synth', () => {
    const app = new App({ context: packageCdkContext() });
    const { stack } = addSwarmStack(app, parseClusterConfig({}), { enforceChecks: false });
    new CfnResource(stack, 'Broken', { type: 'AWS::SQS::Queue', properties: { NotAQueueProperty: 1 } });
    expect(() => app.synth()).toThrow(/NotAQueueProperty/);
  });
});
