#!/usr/bin/env node
/**
 * The CDK app of cdk.json: `npx cdk synth|deploy -c workers=5 -c config=cluster.json`. A bad configuration (a field,
 * or a combination only the construct can check, e.g. an overlay pool inside the VPC) prints the message naming
 * the field and exits 2 before any stack is synthesized.
 */
import { App } from 'aws-cdk-lib';
import { addSwarmStack } from '../lib/cluster/swarm-app';
import { configFromContext } from '../lib/config';
import { isSwarmError } from '../lib/errors';

const app = new App();
try {
  addSwarmStack(app, configFromContext(app.node.getAllContext() as Record<string, unknown>));
} catch (e) {
  if (!isSwarmError(e)) throw e;
  process.stderr.write(`${e.message}\n`);
  process.exit(e.exitCode);
}
