// The synthesized template holds the cluster: argv[2] is the template file.
'use strict';
const assert = require('node:assert/strict');
const template = require(require('node:path').resolve(process.argv[2]));

const types = Object.values(template.Resources).map((r) => r.Type);
for (const want of ['AWS::AutoScaling::AutoScalingGroup', 'AWS::EC2::SecurityGroup', 'AWS::IAM::Role']) {
  assert.ok(types.includes(want), `the synthesized template has no ${want}`);
}
const names = Object.entries(template.Outputs)
  .filter(([key]) => key.endsWith('ClusterName'))
  .map(([, output]) => output.Value);
assert.ok(names.includes('platform'), `no ClusterName output with the value platform (got ${JSON.stringify(names)})`);
console.log(`template: ${types.length} resources, the cluster platform among the outputs`);
