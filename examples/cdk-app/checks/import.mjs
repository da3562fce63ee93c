// ESM consumers: named imports from both entry points (Node resolves them from the CommonJS build; a missing
// name fails at link time, before any line runs).
import assert from 'node:assert/strict';
import { SwarmCluster, parseClusterConfig } from 'ec2-swarm';
import { connect, deploy, verify } from 'ec2-swarm/ops';
import swarmDefault from 'ec2-swarm';

assert.equal(typeof SwarmCluster, 'function');
assert.equal(typeof parseClusterConfig, 'function');
for (const f of [connect, deploy, verify]) assert.equal(typeof f, 'function');
assert.equal(swarmDefault.SwarmCluster, SwarmCluster, 'the default import is the CommonJS exports object');
console.log('import: ec2-swarm and ec2-swarm/ops resolve for ESM with named exports');
