/**
 * Compose's own behaviour is the reference (issue 11): `docker stack config` on the original files and on our
 * resolved bundle must describe the same stack. Runs where the docker CLI is installed (no daemon needed).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { planComposeStack } from '../../../lib/ops/compose/plan';

const hasDockerCli = spawnSync('docker', ['stack', 'config', '--help'], { encoding: 'utf8' }).status === 0;
const APP = join(__dirname, '../../fixtures/compose/conformance/app');
const ENV = { GIT_SHA: 'abc123', PORT: '8081', WORKERS: '2', EMPTY: '', PATH: process.env.PATH, HOME: process.env.HOME };

function stackConfig(files: string[], env: NodeJS.ProcessEnv): Record<string, any> {
  const r = spawnSync('docker', ['stack', 'config', ...files.flatMap((f) => ['-c', f])], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`docker stack config: ${r.stderr}`);
  return parseYaml(r.stdout);
}

/** What may differ by design: our names carry content hashes and files live in the bundle; env_file is folded. */
function comparable(c: Record<string, any>): Record<string, any> {
  const out = structuredClone(c);
  for (const k of Object.keys(out)) if (k.startsWith('x-')) delete out[k];
  for (const kind of ['configs', 'secrets']) for (const d of Object.values<any>(out[kind] ?? {})) (delete d.name, delete d.file);
  for (const s of Object.values<any>(out.services)) delete s.env_file;
  return out;
}

(hasDockerCli ? describe : describe.skip)('conformance with docker stack config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cp-conf-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    ['one file: interpolation, anchors and merge keys, short syntax', ['docker-compose.yml']],
    ['two files: the override merged by Compose rules', ['docker-compose.yml', 'deploy/prod.yml']],
  ])('%s', (_what, rel) => {
    const files = rel.map((f) => join(APP, f));
    const plan = planComposeStack({ files, env: ENV, resolveImage: 'never' });
    for (const [path, content] of [['docker-compose.yml', plan.bundle.compose] as const, ...plan.bundle.files.map((f) => [f.path, f.content] as const)]) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    // The bundle is read on the manager with an unrelated environment: it must not depend on it.
    const ours = stackConfig([join(dir, 'docker-compose.yml')], { PATH: process.env.PATH, HOME: process.env.HOME, GIT_SHA: 'wrong', MODE: 'wrong' });
    const docker = stackConfig(files, ENV);
    expect(comparable(ours)).toEqual(comparable(docker));
    expect(ours.services.web.environment.LITERAL).toBe('price: $5');
  });
});
