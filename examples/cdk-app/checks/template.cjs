// The synthesized template holds the cluster as examples/cdk-app/app.ts asked for it: argv[2] is the template file.
'use strict';
const assert = require('node:assert/strict');
const template = require(require('node:path').resolve(process.argv[2]));

const resources = Object.entries(template.Resources);
const types = resources.map(([, r]) => r.Type);
for (const want of ['AWS::AutoScaling::AutoScalingGroup', 'AWS::EC2::SecurityGroup', 'AWS::IAM::Role', 'AWS::AutoScaling::ScalingPolicy']) {
  assert.ok(types.includes(want), `the synthesized template has no ${want}`);
}
const names = Object.entries(template.Outputs)
  .filter(([key]) => key.endsWith('ClusterName'))
  .map(([, output]) => output.Value);
assert.ok(names.includes('platform'), `no ClusterName output with the value platform (got ${JSON.stringify(names)})`);

const groups = resources.filter(([, r]) => r.Type === 'AWS::AutoScaling::AutoScalingGroup');
const workers = groups.find(([, r]) => r.Properties.Tags.some((t) => t.Key === 'ec2-swarm:role' && t.Value === 'worker'));
assert.ok(workers, 'no worker group');
const w = workers[1].Properties;
assert.deepEqual([w.MinSize, w.DesiredCapacity, w.MaxSize], ['1', '2', '6'], 'worker capacity min/desired/max');
assert.deepEqual(w.MixedInstancesPolicy.LaunchTemplate.Overrides, [{ InstanceType: 't3.medium' }, { InstanceType: 't3a.medium' }]);
assert.equal(w.MixedInstancesPolicy.InstancesDistribution.OnDemandBaseCapacity, 1);

const policies = resources.filter(([, r]) => r.Type === 'AWS::IAM::Policy').flatMap(([, r]) => r.Properties.PolicyDocument.Statement);
assert.ok(
  policies.some((s) => s.Action === 'ssm:SendCommand' && s.Condition?.StringEquals?.['ssm:resourceTag/ec2-swarm:cluster'] === 'platform'),
  'grantOperate: no SendCommand scoped to the cluster tag',
);
const prefixList = resources.some(([, r]) => r.Type === 'AWS::EC2::SecurityGroupIngress' && r.Properties.SourcePrefixListId === 'pl-0123456789abcdef0')
  || resources.some(([, r]) => (r.Properties?.SecurityGroupIngress ?? []).some((i) => i.SourcePrefixListId === 'pl-0123456789abcdef0'));
assert.ok(prefixList, 'the published port from a prefix list');
console.log(`template: ${types.length} resources, the cluster platform with Spot workers 1..6, grantOperate, a prefix-list source`);
