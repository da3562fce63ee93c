/**
 * The `ec2-swarm` CLI (design.md "CLI contract"): parse, call the ops API, print, exit with the contract's code.
 *
 * Start-up loads commander and nothing else: the ops module (and with it the AWS SDK) and the lab are required
 * inside the actions, so `--help` and usage errors are instant and need no SDK.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { SwarmError, exitCodeOf, isSwarmError } from '../errors';
import { redactSecrets as redact } from '../ops/aws-errors';
import type { ConnectOptions, Connection } from '../ops/connect';
import type { DeployResult, OpsContext, Reporter, StatusReport, TeardownReport, VerifyResult } from '../ops/types';
import { packageVersion } from '../package-info';
import { parseCount, parseScaleTargets, parseSeconds } from './args';

/** The slice of `lib/ops` the CLI uses (injectable for tests). */
export interface OpsApi {
  connect(opts: ConnectOptions): Promise<Connection>;
  deploy(ctx: OpsContext, opts: { file: string; files?: string[]; envFile?: string; env?: NodeJS.ProcessEnv; name?: string; wait?: boolean; timeoutSeconds?: number; resolveImage?: 'always' | 'changed' | 'never'; registryAuth?: boolean }): Promise<DeployResult>;
  verify(ctx: OpsContext, opts: { timeoutSeconds: number }): Promise<VerifyResult>;
  status(ctx: OpsContext): Promise<StatusReport>;
  scale(ctx: OpsContext, opts: { targets: Record<string, number>; timeoutSeconds: number }): Promise<VerifyResult>;
  teardown(ctx: OpsContext, opts?: { force?: boolean }): Promise<TeardownReport>;
  /** Optional so injected fakes need not provide it; the default loads lib/ops/logs. */
  logs?(ctx: OpsContext, opts: import('../ops/logs').LogsOptions): Promise<import('../ops/logs').LogsResult>;
  /** Optional like logs; the default loads lib/ops/rotate-tokens. */
  rotateTokens?(ctx: OpsContext, opts: import('../ops/rotate-tokens').RotateTokensOptions): Promise<import('../ops/rotate-tokens').RotateTokensResult>;
}

/** What `lib/lab/cli` provides (built by the lab engineers). Either name is accepted. */
export interface LabApi {
  up?(opts: { workers: number; managers: number; reporter: Reporter; json: boolean; registryPassword?: string }): Promise<unknown>;
  labUp?(opts: { workers: number; managers: number; reporter: Reporter; json: boolean; registryPassword?: string }): Promise<unknown>;
  down?(opts: { reporter: Reporter; json: boolean }): Promise<unknown>;
  labDown?(opts: { reporter: Reporter; json: boolean }): Promise<unknown>;
}

export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface CliDeps {
  readonly loadOps?: () => OpsApi;
  readonly loadLab?: () => LabApi;
  /** Runs a program (no shell) with output to stderr; resolves its exit code. */
  readonly runProcess?: (command: string, args: string[], timeoutSeconds: number, io: CliIo) => Promise<number>;
}

interface GlobalOptions {
  json?: boolean;
  stack?: string;
  outputs?: string;
  cluster?: string;
  target: 'aws' | 'lab';
  region?: string;
}

const DEFAULT_TIMEOUT_S = '300';
const STATUS_TIMEOUT_S = '120';
const TEARDOWN_TIMEOUT_S = '600';
const ROTATE_TIMEOUT_S = '120';
/**
 * Every command ends within its --timeout plus this margin (a poll under way at the timeout finishes, requests are
 * aborted, clients closed), plus the CLI's own start-up. Documented in README and --help.
 */
export const TIMEOUT_MARGIN_S = 10;
const CDK_DESTROY_TIMEOUT_S = 3600;

const GLOBAL_HELP = `
Which cluster: --outputs FILE (from cdk deploy --outputs-file) or --stack NAME (its CloudFormation outputs; with
--outputs, a stack in the file). When that holds several clusters, --cluster NAME picks one: its name (the
construct's \`name\`, as in its tags) or its construct id without non-alphanumerics (outputs <id>ClusterName, …).
Several clusters and no --cluster, or a --cluster that names none, exit 2 listing the clusters found.

Exit codes:
  0  success
  1  the cluster answered but is not as asked (not converged, rolled back, teardown left something,
     tokens not rotated: no quorum, or a step failed on the manager)
  2  usage or configuration error, or input Docker rejects; nothing was changed, nothing contacted
  3  transport, AWS or environment error (e.g. a manager that did not answer within --timeout)

An exit code never says more than was observed. Every command ends within its --timeout plus a 10 s margin;
the wait for the SSM agent is part of it.

Examples:
  $ cdk deploy --outputs-file out.json
  $ ec2-swarm status --outputs out.json
  $ ec2-swarm deploy --outputs out.json -f docker-compose.yml --wait
  $ ec2-swarm verify --stack ec2-swarm-prod --region eu-west-1 --timeout 600 --json
  $ ec2-swarm rotate-tokens --outputs out.json
  $ ec2-swarm status --stack platform --cluster blue --region eu-west-1
  $ ec2-swarm lab up && ec2-swarm status --target lab`;

/* eslint-disable @typescript-eslint/no-require-imports */
/** Each command loads only the ops module it runs (and the SDK through it), on first call. */
function loadOpsDefault(): OpsApi {
  return {
    connect: (o) => (require('../ops/connect') as typeof import('../ops/connect')).connect(o),
    deploy: (c, o) => (require('../ops/deploy') as typeof import('../ops/deploy')).deploy(c, o),
    verify: (c, o) => (require('../ops/verify') as typeof import('../ops/verify')).verify(c, o),
    status: (c) => (require('../ops/status') as typeof import('../ops/status')).status(c),
    scale: (c, o) => (require('../ops/scale') as typeof import('../ops/scale')).scale(c, o),
    teardown: (c, o) => (require('../ops/teardown') as typeof import('../ops/teardown')).teardown(c, o),
    logs: (c, o) => (require('../ops/logs') as typeof import('../ops/logs')).logs(c, o),
    rotateTokens: (c, o) => (require('../ops/rotate-tokens') as typeof import('../ops/rotate-tokens')).rotateTokens(c, o),
  };
}
/* eslint-enable @typescript-eslint/no-require-imports */

function loadLabDefault(): LabApi {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../lab/cli') as LabApi;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && /lab[\\/]cli/.test(err.message)) {
      throw SwarmError.environment('LAB_UNAVAILABLE', 'lab not available: this installation has no lib/lab/cli (the lab ships with a checkout of ec2-swarm)', e);
    }
    throw e;
  }
}

function runProcessDefault(command: string, args: string[], timeoutSeconds: number, io: CliIo): Promise<number> {
  return new Promise((resolveExit, reject) => {
    const child = spawn(command, args, { cwd: io.cwd, env: io.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutSeconds * 1000 });
    // stdout stays reserved for our own result (one JSON document under --json).
    child.stdout.on('data', (d) => io.stderr.write(d));
    child.stderr.on('data', (d) => io.stderr.write(d));
    child.once('error', (e) => reject(SwarmError.environment('PROCESS_FAILED', `cannot run ${command}: ${e.message}`, e)));
    child.once('close', (code, signal) => {
      if (signal) reject(SwarmError.environment('PROCESS_TIMEOUT', `${command} ${args.join(' ')} stopped by ${signal} (bound: ${timeoutSeconds}s)`));
      else resolveExit(code ?? 1);
    });
  });
}

/** Runs the CLI; resolves the exit code (never throws, never calls process.exit). */
export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  const loadOps = deps.loadOps ?? loadOpsDefault;
  const loadLab = deps.loadLab ?? loadLabDefault;
  const runProcess = deps.runProcess ?? runProcessDefault;
  let exitCode = 0;
  let json = false;

  const out = (text: string) => io.stdout.write(text);
  const makeReporter = async (): Promise<Reporter> => {
    const { createReporter } = await import('../ops/reporter');
    return createReporter({ json, stream: io.stderr });
  };
  const print = async (value: unknown, human: () => Promise<string>) => {
    if (json) {
      const { renderJson } = await import('../ops/render');
      out(renderJson(value));
    } else out(await human());
  };

  /** Connects, runs `fn`, always closes the clients. */
  const withCluster = async <T>(cmd: Command, timeoutSeconds: number, fn: (ops: OpsApi, ctx: Connection, g: GlobalOptions) => Promise<T>): Promise<T> => {
    const g = cmd.optsWithGlobals() as GlobalOptions;
    // Checked here too, so a bad --cluster is exit 2 whatever ops implementation is loaded.
    if (g.cluster !== undefined) (await import('../ops/cluster-locator')).validateClusterSelector(g.cluster);
    const ops = loadOps();
    const reporter = await makeReporter();
    const ctx = await ops.connect({
      target: g.target,
      outputsFile: g.outputs,
      stack: g.stack,
      ...(g.cluster !== undefined ? { cluster: g.cluster } : {}),
      region: g.region,
      reporter,
      env: io.env,
      cwd: io.cwd,
      // The whole command, SSM agent wait included, ends within --timeout + margin.
      deadlineAt: Date.now() + (timeoutSeconds + TIMEOUT_MARGIN_S) * 1000,
      deadlineDescription: `--timeout ${timeoutSeconds}s + ${TIMEOUT_MARGIN_S}s margin`,
    });
    try {
      return await fn(ops, ctx, g);
    } finally {
      ctx.close();
    }
  };

  const program = new Command('ec2-swarm')
    .description('Operate a Docker Swarm cluster deployed with the ec2-swarm CDK construct, over SSM Run Command (no SSH).')
    .version(packageVersion(), '-V, --version', 'print the version of ec2-swarm')
    .option('--json', 'print one JSON document on stdout (progress and warnings go to stderr)')
    .option('--stack <name>', 'CloudFormation stack of the cluster (reads its outputs; or picks a stack in --outputs)')
    .option('--outputs <file>', 'outputs file written by `cdk deploy --outputs-file <file>`')
    .option('--cluster <name>', "which cluster when the stack (or outputs file) holds several: its name (the construct's `name`) or its construct id (outputs <id>ClusterName, …)")
    .addOption(new Option('--target <target>', 'where the cluster runs').choices(['aws', 'lab']).default('aws'))
    .option('--region <region>', 'AWS region (default: the cluster\'s <id>Region output, then AWS_REGION)')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', GLOBAL_HELP)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .hook('preAction', (_root, action) => {
      json = Boolean((action.optsWithGlobals() as GlobalOptions).json);
    });

  program
    .command('status')
    .description('show nodes (hostname, role, status, availability, leader or reachability, instance), the managers\' quorum and services (mode, desired, running, tasks)')
    .option('--timeout <seconds>', 'give up after this long (plus a 10 s margin)', STATUS_TIMEOUT_S)
    .addHelpText('after', '\nManagers: how many, how many Raft calls reachable, the leader, the quorum (a majority of all managers) and how many\nmore manager failures the swarm survives (reachable - quorum; 0 means the next one stops every change).\n\nExit: 0 the cluster answered, 1 no manager has the swarm (no leader: the quorum is lost; or not in a swarm),\n3 it could not be reached within --timeout.\n\nExamples:\n  $ ec2-swarm status --outputs out.json\n  $ ec2-swarm status --stack ec2-swarm-prod --region eu-west-1 --json')
    .action(async (opts: { timeout: string }, cmd: Command) => {
      const timeoutSeconds = parseSeconds(opts.timeout, '--timeout');
      const report = await withCluster(cmd, timeoutSeconds, (ops, ctx) => ops.status(ctx));
      await print(report, async () => (await import('../ops/render')).renderStatus(report));
    });

  program
    .command('deploy')
    .description('deploy a docker-compose file as a stack, or a service spec file (YAML/JSON) as services')
    .requiredOption('-f, --file <file>', 'docker-compose file, or service spec file (top-level "services:" list); repeat to merge compose files in order', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--env-file <file>', 'compose: variables for interpolation instead of the project\'s .env (the process environment still wins)')
    .option('--name <stack>', 'stack name for a compose file (default: the file\'s directory name, normalised as docker compose does)')
    .option('--wait', 'verify afterwards: wait until every service runs its desired replicas')
    .option('--timeout <seconds>', 'bound for --wait', DEFAULT_TIMEOUT_S)
    .option('--registry-auth', "compose: ship your `docker login` credentials for the images' registries with the staged bundle (never in the SSM command) and deploy --with-registry-auth; removed from the manager afterwards")
    .addOption(
      new Option('--resolve-image <when>', 'query the registry for image digests (the lab has no registry: use never)').choices(['always', 'changed', 'never']),
    )
    .addHelpText(
      'after',
      '\nInput is checked before anything is contacted. --wait passes only once the update this deploy started has begun and\n' +
        'finished and every service has converged (see `verify --help`); --timeout bounds the deploy and the wait together.\n' +
        '\nExit: 0 deployed (and converged with --wait), 1 not converged or rolled back, 2 bad input (also input Docker rejects).\n\nExamples:\n' +
        '  $ ec2-swarm deploy --outputs out.json -f docker-compose.yml --wait\n' +
        '  $ ec2-swarm deploy --stack ec2-swarm-prod -f services.yaml --wait --timeout 600\n' +
        '  $ docker login registry.example.com && ec2-swarm deploy --outputs out.json -f docker-compose.yml --registry-auth --wait\n' +
        '  $ ec2-swarm deploy --target lab -f examples/demo/docker-compose.yml --resolve-image never --wait',
    )
    .action(async (opts: { file: string[]; envFile?: string; name?: string; wait?: boolean; timeout: string; resolveImage?: 'always' | 'changed' | 'never'; registryAuth?: boolean }, cmd: Command) => {
      const timeoutSeconds = parseSeconds(opts.timeout, '--timeout');
      for (const f of opts.file) if (!existsSync(f) || !statSync(f).isFile()) throw SwarmError.user('DEPLOY_FILE_MISSING', `-f ${f}: no such file`);
      const deployOpts = {
        file: opts.file[0],
        ...(opts.file.length > 1 ? { files: opts.file } : {}),
        ...(opts.envFile !== undefined ? { envFile: opts.envFile } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        wait: Boolean(opts.wait),
        timeoutSeconds,
        ...(opts.resolveImage ? { resolveImage: opts.resolveImage } : {}),
        ...(opts.registryAuth ? { registryAuth: true } : {}),
        env: io.env,
      };
      // Input errors (compose loading included) exit 2 before any connection (issue 10 item 3, compose part).
      (require('../ops/deploy') as typeof import('../ops/deploy')).planDeploy(deployOpts);
      const result = await withCluster(cmd, timeoutSeconds, (ops, ctx) => ops.deploy(ctx, deployOpts));
      await print(result, async () => (await import('../ops/render')).renderDeploy(result));
      if (result.verify && !result.verify.converged) exitCode = 1;
    });

  program
    .command('verify')
    .description('wait until every service runs its desired replicas; print desired vs running')
    .option('--timeout <seconds>', 'give up after this long', DEFAULT_TIMEOUT_S)
    .addHelpText(
      'after',
      '\nConverged: every service runs its tasks of the current spec on Ready nodes, as many as desired, each running for at\n' +
        "least the service's update monitor (5 s by default; judged from the tasks' timestamps, paid once for all services).\n" +
        'A rolled-back or paused update, a crash loop, a missing image or no suitable node stops the wait at once.\n' +
        '\nExit: 0 converged, 1 not converged (the table says which and why), 3 the manager did not answer in time.\n\nExamples:\n' +
        '  $ ec2-swarm verify --outputs out.json --timeout 600\n  $ ec2-swarm verify --stack ec2-swarm-prod --json | jq .services',
    )
    .action(async (opts: { timeout: string }, cmd: Command) => {
      const timeoutSeconds = parseSeconds(opts.timeout, '--timeout');
      const result = await withCluster(cmd, timeoutSeconds, (ops, ctx) => ops.verify(ctx, { timeoutSeconds }));
      await print(result, async () => (await import('../ops/render')).renderVerify(result));
      if (!result.converged) exitCode = 1;
    });

  program
    .command('scale')
    .description('set the replica count of services, then verify')
    .argument('<SERVICE=N...>', 'service name and replica count (0 to 10000)')
    .option('--timeout <seconds>', 'bound for the verification', DEFAULT_TIMEOUT_S)
    .addHelpText('after', '\nExit: 0 converged, 1 not converged within --timeout.\n\nExamples:\n  $ ec2-swarm scale --outputs out.json demo_web=6 demo_worker=2')
    .action(async (args: string[], opts: { timeout: string }, cmd: Command) => {
      const targets = parseScaleTargets(args);
      const timeoutSeconds = parseSeconds(opts.timeout, '--timeout');
      const result = await withCluster(cmd, timeoutSeconds, (ops, ctx) => ops.scale(ctx, { targets, timeoutSeconds }));
      await print(result, async () => (await import('../ops/render')).renderVerify(result));
      if (!result.converged) exitCode = 1;
    });

  program
    .command('logs')
    .description("a service's recent output (all its tasks), through SSM like every command; bounded")
    .argument('<SERVICE>', 'service name as `status` lists it (a stack\'s services are STACK_SERVICE)')
    .option('--since <when>', 'only output since a duration ago (10m, 1h30m) or a timestamp (2026-11-30T12:00:00Z)')
    .option('--tail <lines>', 'lines per task', '100')
    .addHelpText('after', '\nOutput is capped at the newest 20,000 bytes; narrow with --tail or --since.\n\nExit: 0 printed, 2 no such service.\n\nExamples:\n  $ ec2-swarm logs --outputs out.json demo_web --since 10m\n  $ ec2-swarm logs --target lab demo_worker --tail 20')
    .action(async (service: string, opts: { since?: string; tail: string }, cmd: Command) => {
      if (!/^\d+$/.test(opts.tail)) throw SwarmError.user('INVALID_OPTION', `--tail: ${JSON.stringify(opts.tail)} must be a whole number of lines`);
      const logsOpts = { service, tail: Number(opts.tail), ...(opts.since !== undefined ? { since: opts.since } : {}) };
      // Bad input exits 2 before any connection.
      (require('../ops/logs') as typeof import('../ops/logs')).planLogs(logsOpts);
      const result = await withCluster(cmd, 120, (ops, ctx) =>
        (ops.logs ?? (require('../ops/logs') as typeof import('../ops/logs')).logs)(ctx, logsOpts),
      );
      await print(result, async () =>
        result.truncated ? `${result.text}\n(only the newest ${Buffer.byteLength(result.text)} of ${result.totalBytes} bytes; narrow with --tail or --since)` : result.text,
      );
    });

  program
    .command('teardown')
    .description('remove stacks and services, workers leave, managers leave, delete runtime parameters (idempotent)')
    .option('--destroy', 'then delete the CloudFormation stack with `npx cdk destroy --force <stack>` (only once the teardown is complete, or with --force)')
    .option('--force', 'when a manager cannot be reached or fails, still force the workers out and delete the runtime parameters (says what it skipped; the exit code stays non-zero)')
    .addHelpText(
      'after',
      '\nDone means observed: only a manager that says "not in a swarm" counts as gone. When a manager cannot be reached\n' +
        'or fails, the workers keep their membership and the runtime parameters stay (a retry needs them), unless --force.\n' +
        'Safe to run twice: it says what it did, what it skipped and what is left.\n' +
        '\nExit: 0 everything is gone, 1 something answered but is not gone (see "left:"), 3 a manager, worker or AWS could not be reached.\n\nExamples:\n' +
        '  $ ec2-swarm teardown --outputs out.json\n  $ ec2-swarm teardown --stack ec2-swarm-prod --region eu-west-1 --destroy',
    )
    .option('--timeout <seconds>', 'bound for the whole teardown (plus a 10 s margin); --destroy has its own', TEARDOWN_TIMEOUT_S)
    .action(async (opts: { destroy?: boolean; force?: boolean; timeout: string }, cmd: Command) => {
      const timeoutSeconds = parseSeconds(opts.timeout, '--timeout');
      const g = cmd.optsWithGlobals() as GlobalOptions;
      if (opts.destroy && g.target === 'lab') throw SwarmError.user('DESTROY_LAB', '--destroy deletes an AWS stack; for the lab run `ec2-swarm lab down`');
      let stackName: string | undefined;
      const report = await withCluster(cmd, timeoutSeconds, async (ops, ctx) => {
        stackName = g.stack ?? ctx.cluster.stackName;
        if (opts.destroy && !stackName) throw SwarmError.user('STACK_UNKNOWN', '--destroy needs the stack name: pass --stack NAME');
        const others = ctx.cluster.otherClustersInStack ?? [];
        if (opts.destroy && others.length > 0) {
          throw SwarmError.user(
            'DESTROY_SHARED_STACK',
            `--destroy would delete stack ${stackName}, which also holds cluster${others.length === 1 ? '' : 's'} ${others.join(', ')}: tear down without --destroy, then remove this cluster's construct from the app and cdk deploy`,
          );
        }
        return ops.teardown(ctx, opts.force ? { force: true } : {});
      });
      // Exit codes (design.md): 0 only when done; 3 when something could not be reached; 1 when it answered but is not gone.
      if (report.complete === false) exitCode = report.outcome === 'unreachable' ? 3 : 1;
      let destroyed: string | undefined;
      if (opts.destroy && stackName && (report.complete !== false || opts.force)) {
        const { validateStackName } = await import('../ops/cluster-locator');
        validateStackName(stackName);
        const args = ['cdk', 'destroy', '--force', stackName];
        io.stderr.write(`running: npx ${args.join(' ')}\n`);
        const code = await runProcess('npx', args, CDK_DESTROY_TIMEOUT_S, io);
        if (code !== 0) throw SwarmError.environment('CDK_DESTROY_FAILED', `npx ${args.join(' ')} exited with ${code}`);
        destroyed = stackName;
      }
      await print({ ...report, ...(destroyed ? { destroyedStack: destroyed } : {}) }, async () => {
        const text = (await import('../ops/render')).renderTeardown(report);
        return destroyed ? `${text}done: stack ${destroyed} destroyed\n` : text;
      });
    });

  program
    .command('rotate-tokens')
    .description('rotate both join tokens on a healthy manager (the leader when known) and republish them to Parameter Store')
    .option('--timeout <seconds>', 'give up after this long (plus a 10 s margin)', ROTATE_TIMEOUT_S)
    .addHelpText(
      'after',
      '\nThe manager runs `docker swarm join-token --rotate` for workers and managers and writes the new tokens to the\n' +
        "cluster's worker-token and manager-token parameters (SecureString); done means it read them back holding the\n" +
        "swarm's current tokens. Nodes that join from now on use them; the old tokens are refused. No token is ever in the\n" +
        "SSM command, its output or this command's output. Refused, changing nothing, when the managers have no quorum.\n" +
        '\nExit: 0 rotated and published (observed), 1 the cluster answered but did not rotate (no quorum, not a manager of the\n' +
        "cluster's swarm, a step failed: the message says which), 2 usage, 3 no manager could be reached within --timeout.\n\nExamples:\n" +
        '  $ ec2-swarm rotate-tokens --outputs out.json\n  $ ec2-swarm rotate-tokens --stack ec2-swarm-prod --region eu-west-1 --json',
    )
    .action(async (opts: { timeout: string }, cmd: Command) => {
      const timeoutSeconds = parseSeconds(opts.timeout, '--timeout');
      const result = await withCluster(cmd, timeoutSeconds, (ops, ctx) =>
        (ops.rotateTokens ?? (require('../ops/rotate-tokens') as typeof import('../ops/rotate-tokens')).rotateTokens)(ctx, { timeoutSeconds }),
      );
      await print(result, async () => (await import('../ops/render')).renderRotateTokens(result));
    });

  const lab = program
    .command('lab')
    .description('a local stand-in for EC2: real dockerd hosts in network namespaces and a local SSM endpoint (Linux, root)')
    .addHelpText('after', '\nExamples:\n  $ sudo ec2-swarm lab up --workers 3\n  $ ec2-swarm status --target lab\n  $ sudo ec2-swarm lab down');

  lab
    .command('up')
    .description('start the lab: hosts run the synthesized user-data and form a swarm')
    .option('--workers <n>', 'worker hosts (0 to 20)', '3')
    .option('--managers <m>', 'manager hosts: 1, 3, 5 or 7', '1')
    .option('--with-registry', 'also a login-protected registry in the lab network (user lab, password from EC2_SWARM_LAB_REGISTRY_PASSWORD) holding the lab image; swarm tasks pull')
    .addHelpText(
      'after',
      '\nExamples:\n  $ ec2-swarm lab up\n  $ ec2-swarm lab up --workers 5\n  $ ec2-swarm lab up --managers 3 --workers 2\n' +
        '  $ EC2_SWARM_LAB_REGISTRY_PASSWORD=… ec2-swarm lab up --with-registry   # then deploy --registry-auth with the DOCKER_CONFIG it names',
    )
    .action(async (opts: { workers: string; managers: string; withRegistry?: boolean }) => {
      const workers = parseCount(opts.workers, '--workers', 0, 20);
      const managers = parseCount(opts.managers, '--managers', 1, 7);
      if (managers % 2 === 0) throw SwarmError.user('LAB_MANAGERS_INVALID', `--managers must be 1, 3, 5 or 7 (got ${managers}): an even count adds no fault tolerance`);
      // The password comes from the environment: an argument would be in the process list and shell history.
      const registryPassword = opts.withRegistry ? io.env.EC2_SWARM_LAB_REGISTRY_PASSWORD ?? '' : undefined;
      if (registryPassword !== undefined && (registryPassword.length < 8 || /[\0\r\n]/.test(registryPassword))) {
        throw SwarmError.user('LAB_REGISTRY_PASSWORD', '--with-registry needs EC2_SWARM_LAB_REGISTRY_PASSWORD: at least 8 characters on one line');
      }
      const labApi = loadLab();
      const up = labApi.up ?? labApi.labUp;
      if (!up) throw SwarmError.environment('LAB_UNAVAILABLE', 'lab not available: lib/lab/cli exports no up()');
      const result = await up.call(labApi, { workers, managers, reporter: await makeReporter(), json, ...(registryPassword !== undefined ? { registryPassword } : {}) });
      await print(result ?? { ok: true }, async () => 'lab is up: try `ec2-swarm status --target lab`\n');
    });

  lab
    .command('down')
    .description('stop the lab and remove everything it created (safe to run twice)')
    .option('--purge', 'also delete the lab directory (logs, cached image, lab CA)')
    .addHelpText('after', '\nExamples:\n  $ ec2-swarm lab down\n  $ ec2-swarm lab down --purge')
    .action(async (opts: { purge?: boolean }) => {
      const labApi = loadLab();
      const down = labApi.down ?? labApi.labDown;
      if (!down) throw SwarmError.environment('LAB_UNAVAILABLE', 'lab not available: lib/lab/cli exports no down()');
      const result = await down.call(labApi, { reporter: await makeReporter(), json, purge: opts.purge === true });
      await print(result ?? { ok: true }, async () => 'lab is down\n');
    });

  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed its message; help and version are successes, the rest is usage (exit 2).
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2;
      return 2;
    }
    const message = redact(e instanceof Error ? e.message : String(e));
    io.stderr.write(`error: ${message}\n`);
    if (!isSwarmError(e) && e instanceof Error && io.env.EC2_SWARM_DEBUG) io.stderr.write(`${redact(e.stack ?? '')}\n`);
    if (json && isSwarmError(e)) {
      io.stdout.write(`${JSON.stringify({ error: { code: e.code, fault: e.fault, exitCode: e.exitCode, message } }, null, 2)}\n`);
    }
    return exitCodeOf(e);
  }
}
