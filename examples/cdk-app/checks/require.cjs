// CommonJS consumers: both entry points load, `ec2-swarm/ops` without the CDK, and planCluster works from the
// installed package (it reads the package's cdk.json and scripts/node at run time).
'use strict';
const assert = require('node:assert/strict');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const ops = require('ec2-swarm/ops');
for (const name of ['connect', 'deploy', 'verify', 'status', 'scale', 'teardown']) assert.equal(typeof ops[name], 'function', `ec2-swarm/ops exports ${name}`);
const cdkLoaded = Object.keys(require.cache).filter((f) => f.includes('/node_modules/aws-cdk-lib/'));
assert.deepEqual(cdkLoaded, [], 'ec2-swarm/ops must not load aws-cdk-lib');

const swarm = require('ec2-swarm');
assert.equal(typeof swarm.SwarmCluster, 'function', 'ec2-swarm exports SwarmCluster');
const outdir = mkdtempSync(join(tmpdir(), 'ec2-swarm-consumer-plan-'));
try {
  const { plan, findings } = swarm.planCluster(swarm.parseClusterConfig({ name: 'planned', workers: 1 }), { outdir });
  assert.deepEqual(findings, [], 'no unacknowledged cdk-nag finding');
  assert.match(swarm.formatPlan(plan), /planned/, 'the plan names the cluster');
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
console.log('require: ec2-swarm and ec2-swarm/ops load; planCluster works from the installed package');
