/**
 * The one function the deploy path calls for a compose project: load and bundle it locally (every input error
 * is a SwarmError(user), thrown before any connection) and build the manager script.
 */
import { script } from '../swarm/script';
import { buildComposeBundle, type ComposeBundle } from './bundle';
import { composeDeployBody, type ResolveImage } from './deploy-script';
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
  };
}

/** What the operator should read after a compose deploy: the loader's warnings and the configs/secrets pruned. */
export function reportComposeDeploy(reporter: { info(m: string): void; warn(m: string): void }, warnings: readonly string[], stdout: string): void {
  for (const w of warnings) reporter.warn(w);
  for (const m of stdout.matchAll(/^EC2SWARM-(PRUNED|INUSE) (config|secret) (\S+)$/gm)) {
    reporter.info(m[1] === 'PRUNED' ? `removed superseded ${m[2]} ${m[3]}` : `kept superseded ${m[2]} ${m[3]} (still in use; a later deploy removes it)`);
  }
}
