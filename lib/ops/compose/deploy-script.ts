/**
 * The manager-side half of a compose deploy: unpack the bundle into a private directory, `docker stack deploy`
 * from it, then prune this stack's content-hashed configs and secrets that the deploy superseded. Swarm refuses
 * to remove one a service still uses; those stay until a later deploy finds them unused.
 */
import { sh } from '../swarm/script';
import type { ComposeBundle } from './bundle';
import type { StagedObject } from './staging';

export type ResolveImage = 'always' | 'changed' | 'never';

export interface ComposeScriptOptions {
  readonly resolveImage: ResolveImage;
}

/** Shell that writes base64 content to a fixed path (both quoted; content never interpolated raw). */
function writeFile(path: string, content: Buffer | string): string {
  return `printf '%s' ${sh`${Buffer.from(content).toString('base64')}`} | base64 -d > "$bundle"/${sh`${path}`}`;
}

/** Script body (after the common preamble, which provides the private `$EC2SWARM_TMP`): the bundle inline. */
export function composeDeployBody(bundle: ComposeBundle, opts: ComposeScriptOptions): string[] {
  return [
    'bundle="$EC2SWARM_TMP/bundle"',
    'mkdir -m 700 "$bundle" "$bundle/files"',
    writeFile('docker-compose.yml', bundle.compose),
    ...bundle.files.map((f) => writeFile(f.path, f.content)),
    ...deployAndPrune(bundle, opts),
  ];
}

/**
 * Script body for a bundle in the staging bucket: only its bucket, key and SHA-256 are in the command. The
 * archive is checked before anything is unpacked or deployed.
 */
export function composeStagedDeployBody(bundle: ComposeBundle, staged: StagedObject, opts: ComposeScriptOptions): string[] {
  return [
    'bundle="$EC2SWARM_TMP/bundle"',
    'mkdir -m 700 "$bundle"',
    sh`aws s3api get-object --region ${staged.region} --bucket ${staged.bucket} --key ${staged.key} "$EC2SWARM_TMP/bundle.tgz" > /dev/null`,
    `if ! printf '%s  %s\\n' ${sh`${staged.sha256}`} "$EC2SWARM_TMP/bundle.tgz" | sha256sum -c --status -; then echo "the deploy bundle does not match its SHA-256: refused" >&2; exit 1; fi`,
    'tar -xzf "$EC2SWARM_TMP/bundle.tgz" -C "$bundle" --no-same-owner --no-same-permissions',
    'rm -f "$EC2SWARM_TMP/bundle.tgz"',
    ...deployAndPrune(bundle, opts),
  ];
}

function deployAndPrune(bundle: ComposeBundle, opts: ComposeScriptOptions): string[] {
  const keep = bundle.objects.map((o) => `${o.kind} ${o.name}`);
  return [
    // Relative paths in the resolved file (./files/…) are resolved against the file's directory.
    sh`docker stack deploy --resolve-image ${opts.resolveImage} -c "$bundle/docker-compose.yml" ${bundle.stack}`,
    sh`stack=${bundle.stack}`,
    `keep=(${keep.length ? sh`${keep}` : ''})`,
    'for kind in config secret; do',
    '  docker "$kind" ls --filter "label=com.docker.stack.namespace=$stack" --format "{{.Name}}" | while IFS= read -r n; do',
    '    [[ "$n" =~ _[0-9a-f]{12}$ ]] || continue',
    '    for k in "${keep[@]}"; do [ "$k" = "$kind $n" ] && continue 2; done',
    '    if docker "$kind" rm "$n" > /dev/null 2>&1; then echo "EC2SWARM-PRUNED $kind $n"; else echo "EC2SWARM-INUSE $kind $n"; fi',
    '  done',
    'done',
  ];
}
