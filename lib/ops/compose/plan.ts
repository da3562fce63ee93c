/**
 * The one function the deploy path calls for a compose project: load and bundle it locally (every input error
 * is a SwarmError(user), thrown before any connection) and build the manager script.
 */
import { script } from '../swarm/script';
import { buildComposeBundle, type ComposeBundle } from './bundle';
import { archiveBundle } from './archive';
import { composeDeployBody, composeStagedDeployBody, type ResolveImage } from './deploy-script';
import { stagingKey, type StagingChannel } from './staging';
import { loadComposeProject, type ComposeProject } from './project';

export interface ComposeStackOptions {
  /** `-f` files in merge order. */
  readonly files: readonly string[];
  readonly envFile?: string;
  /** `--name`; default: the first file's directory, normalised. */
  readonly name?: string;
  readonly resolveImage: ResolveImage;
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Already-read content of `files[0]` (the deploy path reads it once to classify it). */
  readonly content?: string;
}

export interface ComposeStackPlan {
  readonly kind: 'stack';
  readonly stack: string;
  /** STACK_SERVICE names. */
  readonly services: string[];
  readonly script: string;
  readonly warnings: readonly string[];
  readonly project: ComposeProject;
  readonly bundle: ComposeBundle;
  readonly resolveImage: ResolveImage;
}

export function planComposeStack(opts: ComposeStackOptions): ComposeStackPlan {
  const project = loadComposeProject({
    files: opts.files,
    ...(opts.envFile !== undefined ? { envFile: opts.envFile } : {}),
    ...(opts.name !== undefined ? { projectName: opts.name } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(opts.content !== undefined ? { contents: { [opts.files[0]]: opts.content } } : {}),
  });
  const bundle = buildComposeBundle(project);
  return {
    kind: 'stack',
    stack: project.name,
    services: project.services.map((s) => `${project.name}_${s}`),
    script: script(...composeDeployBody(bundle, { resolveImage: opts.resolveImage })),
    warnings: project.warnings,
    project,
    bundle,
    resolveImage: opts.resolveImage,
  };
}

export interface StagedScript {
  /** The manager script naming only the object's bucket, key and SHA-256. */
  readonly script: string;
  /** Deletes the object (call once the command ended, whatever its outcome). */
  cleanup(): Promise<void>;
}

/** Uploads the bundle to the staging channel and builds the script that fetches, checks and deploys it. */
export async function stageComposePlan(
  plan: ComposeStackPlan,
  channel: StagingChannel,
  build: (body: readonly string[]) => string = (body) => script(...body),
): Promise<StagedScript> {
  const archive = archiveBundle(plan.bundle);
  const key = stagingKey(plan.stack);
  await channel.put(key, archive.body);
  const staged = { bucket: channel.bucket, region: channel.region, key, sha256: archive.sha256 };
  return {
    script: build(composeStagedDeployBody(plan.bundle, staged, { resolveImage: plan.resolveImage })),
    cleanup: () => channel.delete(key),
  };
}

/** What the operator should read after a compose deploy: the loader's warnings and the configs/secrets pruned. */
export function reportComposeDeploy(reporter: { info(m: string): void; warn(m: string): void }, warnings: readonly string[], stdout: string): void {
  for (const w of warnings) reporter.warn(w);
  for (const m of stdout.matchAll(/^EC2SWARM-(PRUNED|INUSE) (config|secret) (\S+)$/gm)) {
    reporter.info(m[1] === 'PRUNED' ? `removed superseded ${m[2]} ${m[3]}` : `kept superseded ${m[2]} ${m[3]} (still in use; a later deploy removes it)`);
  }
}

/**
 * Runs a compose plan through `run` (the manager runner): through the staging channel when the cluster has one,
 * deleting the object afterwards; otherwise inline, saying so, since the bundle then sits in SSM's history.
 */
export async function runComposeStack<R>(
  ctx: { readonly staging?: StagingChannel; readonly reporter: { warn(m: string): void } },
  plan: ComposeStackPlan,
  run: (script: string) => Promise<R>,
  /** Wraps a body into the full script (the deploy path adds its own checks around `docker stack deploy`). */
  build?: (body: readonly string[]) => string,
): Promise<R> {
  if (!ctx.staging) {
    if (plan.bundle.files.length > 0 || hasEnvironment(plan)) {
      ctx.reporter.warn('the cluster has no staging bucket (output SwarmStagingBucket): the bundle travels inside the SSM command');
    }
    return run(plan.script);
  }
  const staged = await stageComposePlan(plan, ctx.staging, build);
  try {
    return await run(staged.script);
  } finally {
    await staged.cleanup();
  }
}

function hasEnvironment(plan: ComposeStackPlan): boolean {
  return Object.values(plan.project.model.services as Record<string, { environment?: object }>).some((s) => s.environment && Object.keys(s.environment).length > 0);
}
