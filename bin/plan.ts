#!/usr/bin/env node
/**
 * `npm run plan`: synthesize the default cluster in-process — 1 manager + 3 workers, the classic first
 * swarm — and print what would be created, which ports are open to whom, and who may use which parameter.
 * Needs no AWS account. Exits 1 if cdk-nag reports a finding that is not acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { formatPlan } from '../lib/cluster/plan';
import { planCluster } from '../lib/cluster/swarm-app';
import { parseClusterConfig } from '../lib/config';
import { exitCodeOf, isSwarmError } from '../lib/errors';

const outdir = mkdtempSync(path.join(tmpdir(), 'ec2-swarm-plan-'));
try {
  const { plan, findings } = planCluster(parseClusterConfig({ workers: 3 }), { outdir });
  process.stdout.write(`${formatPlan(plan)}\n\n`);
  if (findings.length > 0) {
    process.stdout.write(`cdk-nag AwsSolutions: ${findings.length} unacknowledged finding(s):\n${findings.map((f) => `  ✖ ${f}`).join('\n')}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write('cdk-nag AwsSolutions: no unacknowledged findings (every acknowledgement carries its reason in lib/cluster).\n');
    process.stdout.write('Deploy it with: npx cdk deploy   (options: -c managers=3 for high availability, -c workers=N, -c config=cluster.json; see README)\n');
  }
} catch (e) {
  process.stderr.write(`${isSwarmError(e) ? e.message : (e as Error).stack}\n`);
  process.exitCode = exitCodeOf(e);
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
