import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmError } from '../../../lib/errors';
import { loadComposeProject } from '../../../lib/ops/compose/project';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cp-project-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(rel: string, text: string): string {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

function userError(fn: () => unknown): SwarmError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    expect((e as SwarmError).exitCode).toBe(2);
    return e as SwarmError;
  }
  throw new Error('expected a SwarmError');
}

type Svc = Record<string, unknown> & { environment?: Record<string, string> };

describe('loadComposeProject: files, .env, env_file, paths, name', () => {
  test('the process environment wins over .env; --env-file replaces .env', () => {
    const f = write('My_App/docker-compose.yml', 'services:\n  web:\n    image: "app:${TAG}"\n    environment: [\"MODE=${MODE:-dev}\"]\n');
    write('My_App/.env', 'TAG=from-dotenv\nMODE=staging\n');
    const other = write('other.env', 'TAG=from-env-file\n');
    const svc = (p: ReturnType<typeof loadComposeProject>) => (p.model.services as Record<string, Svc>).web;
    expect(svc(loadComposeProject({ files: [f], env: {} }))).toMatchObject({ image: 'app:from-dotenv', environment: { MODE: 'staging' } });
    expect(svc(loadComposeProject({ files: [f], env: { TAG: 'sha-abc' } }))).toMatchObject({ image: 'app:sha-abc' });
    expect(svc(loadComposeProject({ files: [f], env: {}, envFile: other }))).toMatchObject({ image: 'app:from-env-file', environment: { MODE: 'dev' } });
    expect(userError(() => loadComposeProject({ files: [f], env: {}, envFile: join(dir, 'nope.env') })).message).toMatch(/--env-file .*nope\.env: ENOENT/);
  });

  test('the project name is the first file\'s directory normalised as compose does; --name overrides', () => {
    const f = write('My.App-2/compose.yaml', 'services:\n  api:\n    image: nginx\n');
    const p = loadComposeProject({ files: [f], env: {} });
    expect(p.name).toBe('myapp-2');
    expect(p.services).toEqual(['api']);
    expect(loadComposeProject({ files: [f], env: {}, projectName: 'prod' }).name).toBe('prod');
    expect(userError(() => loadComposeProject({ files: [f], env: {}, projectName: 'Bad Name' })).message).toMatch(/--name/);
  });

  test('paths in every file resolve against the FIRST file\'s directory, and the referenced files are listed', () => {
    const base = write('proj/docker-compose.yml', 'services:\n  web:\n    image: nginx\n    configs: [nginx]\n    env_file: ./web.env\n    volumes: ["./logs:/logs"]\nconfigs:\n  nginx:\n    file: ./nginx.conf\n');
    const over = write('proj/deploy/prod.yml', 'services:\n  web:\n    secrets: [db]\nsecrets:\n  db:\n    file: ./secrets/db.txt\n');
    write('proj/web.env', 'A=1\n');
    write('proj/nginx.conf', 'server {}\n');
    write('proj/secrets/db.txt', 'pw\n');
    const p = loadComposeProject({ files: [base, over], env: {} });
    expect(p.referencedFiles.map((r) => [r.path.join('.'), r.file])).toEqual([
      ['configs.nginx.file', join(dir, 'proj/nginx.conf')],
      ['secrets.db.file', join(dir, 'proj/secrets/db.txt')],
      ['services.web.env_file.0', join(dir, 'proj/web.env')],
    ]);
    expect((p.model.services as Record<string, Svc>).web.volumes).toEqual([{ type: 'bind', source: join(dir, 'proj/logs'), target: '/logs' }]);
  });

  test('env_file is folded into environment as docker does: files in order, then environment:, bare keys from the environment', () => {
    const f = write('p/docker-compose.yml', 'services:\n  web:\n    image: nginx\n    env_file: [a.env, b.env]\n    environment:\n      B: from-compose\n      FROM_ENV:\n      GONE:\n');
    write('p/a.env', '# comment\nA=1\nB=from-a\nQUOTED="kept literally"\nDOLLAR=$HOME\nBARE\n');
    write('p/b.env', 'A=2\n');
    const web = (loadComposeProject({ files: [f], env: { BARE: 'bare-value', FROM_ENV: 'e' } }).model.services as Record<string, Svc>).web;
    expect(web.environment).toEqual({ A: '2', B: 'from-compose', QUOTED: '"kept literally"', DOLLAR: '$HOME', BARE: 'bare-value', FROM_ENV: 'e' });
    expect(web.env_file).toBeUndefined();
  });

  test.each([
    ['a missing config file', 'services:\n  w:\n    image: a\n    configs: [c]\nconfigs:\n  c:\n    file: ./missing.conf\n', /configs\.c\.file: file .*missing\.conf cannot be read \(ENOENT\)/],
    ['a missing env_file', 'services:\n  w:\n    image: a\n    env_file: nope.env\n', /services\.w\.env_file\[0\]: file .*nope\.env cannot be read/],
    ['an undefined secret', 'services:\n  w:\n    image: a\n    secrets: [s]\n', /services\.w\.secrets\[0\]: secret "s" is not defined under top-level secrets:/],
    ['a config with neither file nor external', 'services:\n  w:\n    image: a\nconfigs:\n  c: {}\n', /configs\.c: needs file: \(a local file\) or external: true/],
    ['no services', 'services: {}\n', /services: a stack needs at least one service/],
    ['a required variable', 'services:\n  w:\n    image: "a:${GIT_SHA:?set GIT_SHA}"\n', /services\.w\.image: required variable GIT_SHA is missing or empty: set GIT_SHA/],
    ['a schema error', 'services:\n  w:\n    image: a\n    deploy: {replicas: many}\n', /services\.w\.deploy\.replicas: must be an integer/],
  ])('%s: exit 2 naming the key', (_what, text, expected) => {
    const f = write('p/docker-compose.yml', text);
    expect(userError(() => loadComposeProject({ files: [f], env: {} })).message).toMatch(expected);
  });

  test('a missing -f file and no files at all are the user\'s errors', () => {
    expect(userError(() => loadComposeProject({ files: [join(dir, 'nope.yml')], env: {} })).message).toMatch(/-f .*nope\.yml: ENOENT/);
    expect(userError(() => loadComposeProject({ files: [], env: {} })).message).toMatch(/-f: name at least one compose file/);
  });

  test('unset variables become warnings that name the variable only', () => {
    const f = write('p/docker-compose.yml', 'services:\n  w:\n    image: "a:${UNSET_TAG}"\n');
    expect(loadComposeProject({ files: [f], env: {} }).warnings).toEqual(['the UNSET_TAG variable is not set: defaulting to a blank string']);
  });
});
