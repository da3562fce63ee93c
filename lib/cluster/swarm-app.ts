/**
 * Building blocks of the CDK app (bin/app.ts) and the in-process plan (bin/plan.ts, `npm run plan`): the stack with cdk-nag's
 * AwsSolutions checks attached, and the feature flags of cdk.json for apps the CDK CLI does not start.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, AppProps, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ClusterConfig } from '../config';
import { ClusterPlan, planFromTemplate } from './plan';
import { SwarmStack } from './swarm-stack';
import { packageRoot } from './user-data';

/** The `context` of the package's cdk.json (the recommended feature flags), for apps started in-process. */
export function packageCdkContext(): Record<string, unknown> {
  const file = path.join(packageRoot(), 'cdk.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { context?: Record<string, unknown> }).context ?? {};
}

export interface SwarmApp {
  readonly app: App;
  readonly stack: SwarmStack;
  /** Run `checks.validateScope(app)` for the findings that are not acknowledged. */
  readonly checks: AwsSolutionsChecks;
}

/**
 * Adds the stack for `config` to `app` with the AwsSolutions checks. With `enforceChecks` (default) they run as a
 * validation plugin, so synth fails on any unacknowledged finding; without, call `checks.validateScope(app)`.
 */
export function addSwarmStack(app: App, config: ClusterConfig, options: { enforceChecks?: boolean } = {}): SwarmApp {
  const stack = new SwarmStack(app, undefined, { cluster: config });
  const checks = new AwsSolutionsChecks(app);
  if (options.enforceChecks ?? true) Validations.of(app).addPlugins(checks);
  return { app, stack, checks };
}

/** Synthesizes `config` in-process (no AWS access) and returns the plan plus any unacknowledged cdk-nag finding. */
export function planCluster(config: ClusterConfig, appProps: AppProps = {}): { plan: ClusterPlan; findings: string[] } {
  const app = new App({ ...appProps, context: { ...packageCdkContext(), ...appProps.context } });
  const { stack, checks } = addSwarmStack(app, config, { enforceChecks: false });
  const template = Template.fromStack(stack).toJSON();
  const findings = checks
    .validateScope(app)
    .violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.locations?.[0] ?? r.resourceLogicalId}`));
  return { plan: planFromTemplate(stack.cluster, template), findings };
}
