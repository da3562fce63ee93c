#!/usr/bin/env node
/**
 * The CDK app of cdk.json: `npx cdk synth|deploy -c workers=5 -c config=cluster.json`. A bad configuration prints
 * the message naming the field and exits 2 before any stack exists, so nothing is synthesized.
 */
import { App } from 'aws-cdk-lib';
import { addSwarmStack } from '../lib/cluster/swarm-app';
import { ClusterConfig, configFromContext } from '../lib/config';
import { isSwarmError } from '../lib/errors';

const app = new App();
let config: ClusterConfig;
try {
  config = configFromContext(app.node.getAllContext() as Record<string, unknown>);
} catch (e) {
  if (!isSwarmError(e)) throw e;
  process.stderr.write(`${e.message}\n`);
  process.exit(e.exitCode);
}
addSwarmStack(app, config);
