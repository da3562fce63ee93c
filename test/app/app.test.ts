/**
 * bin/app.ts as the CDK CLI runs it: a subprocess that gets its context in CDK_CONTEXT_JSON (what `-c key=value`
 * and cdk.json become; values from `-c` are strings) and writes the cloud assembly to CDK_OUTDIR.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(__dirname, '../..');
const TSX = pathToFileURL(require.resolve('tsx')).href;
const FLAGS = (JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

let outdir: string;
beforeEach(() => {
  outdir = mkdtempSync(path.join(tmpdir(), 'ec2-swarm-app-'));
});
afterEach(() => rmSync(outdir, { recursive: true, force: true }));

function runApp(context: Record<string, unknown>) {
  const env: NodeJS.ProcessEnv = { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify({ ...FLAGS, ...context }) };
  delete env.CDK_DEFAULT_ACCOUNT;
  delete env.CDK_DEFAULT_REGION;
  // What `npx tsx bin/app.ts` (cdk.json's app) starts, without the launcher process.
  return spawnSync(process.execPath, ['--import', TSX, 'bin/app.ts'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
}

const templates = () => readdirSync(outdir).filter((f) => f.endsWith('.template.json'));

// bin/app.ts's exit-2 path as a process (exit code, message, no stack trace, nothing written), with the error that
// comes last: a combination only the construct can check, raised while the stack is being built. Every SwarmError
// takes the same path out of bin/app.ts; the field errors and an unknown key are checked in-process.
test.each([[{ overlayAddressPool: '10.0.128.0/17' }, 'overlayAddressPool']])('bad config %j: exit 2, a message naming %s, nothing synthesized', (context, field) => {
  const r = runApp(context);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(`→ at ${field}`);
  expect(r.stderr).not.toMatch(/\n\s+at .*\.(ts|js):\d+/); // no stack trace for a user's mistake
  expect(templates()).toEqual([]);
  expect(existsSync(path.join(outdir, 'manifest.json'))).toBe(false);
});

// The other bad configs go through the same steps in-process in test/cluster/construct.test.ts, 'the app' (aws-cdk-lib
// is loaded there already; here only the processes load it).
test('a config file and -c values: the template is written with the merged config, cdk-nag passes', () => {
  const file = path.join(outdir, 'cluster.json');
  writeFileSync(file, JSON.stringify({ name: 'blue', workers: 2, managers: 3, encryptedOverlay: true }));
  const r = runApp({ config: file, workers: '5' });
  expect(r.stderr).not.toMatch(/AwsSolutions/);
  expect(r.status).toBe(0);
  expect(templates()).toEqual(['ec2-swarm-blue.template.json']);
  const t = JSON.parse(readFileSync(path.join(outdir, 'ec2-swarm-blue.template.json'), 'utf8'));
  const group = (role: string) =>
    Object.values<any>(t.Resources).find(
      (x) => x.Type === 'AWS::AutoScaling::AutoScalingGroup' && x.Properties.Tags.some((tag: any) => tag.Key === 'ec2-swarm:role' && tag.Value === role),
    );
  expect(group('worker').Properties.MinSize).toBe('5');
  expect(group('worker').CreationPolicy.ResourceSignal.Count).toBe(5);
  expect(group('manager').CreationPolicy.ResourceSignal.Count).toBe(3);
  expect(Object.values<any>(t.Resources).some((x) => x.Type === 'AWS::EC2::SecurityGroupIngress' && x.Properties.IpProtocol === '50')).toBe(true);
});
