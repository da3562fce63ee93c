import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { buildComposeBundle, contentHash, hashedName } from '../../../lib/ops/compose/bundle';
import { planComposeStack } from '../../../lib/ops/compose/plan';
import { loadComposeProject } from '../../../lib/ops/compose/project';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cp-bundle-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(rel: string, text: string): string {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

const SECRET = 'pa$$word-with-$HOME-and-${X}';

function project(nginx = 'server { listen 80; }\n') {
  write('shop/nginx.conf', nginx);
  write('shop/db.txt', SECRET);
  write('shop/web.env', 'FROM_FILE=1\n');
  write('shop/unused.txt', 'not referenced\n');
  return write(
    'shop/docker-compose.yml',
    [
      'version: "3.2"',
      'services:',
      '  web:',
      '    image: "nginx:${TAG}"',
      '    env_file: web.env',
      '    environment: {LITERAL: "cost: $$5"}',
      '    configs: [{source: nginx, target: /etc/nginx/conf.d/default.conf}]',
      '    secrets: [db]',
      'configs:',
      '  nginx: {file: ./nginx.conf}',
      'secrets:',
      '  db: {file: ./db.txt}',
      '  ext: {external: true}',
      '',
    ].join('\n'),
  );
}

describe('bundle: the resolved file plus every referenced file, and nothing else', () => {
  test('configs and secrets ship under content-hashed names; env_file is folded in; $ is escaped for the manager', () => {
    const b = buildComposeBundle(loadComposeProject({ files: [project()], env: { TAG: '1.27' } }));
    const doc = parseYaml(b.compose);
    expect(doc.version).toBe('3.5');
    expect(doc.services.web).toEqual({
      image: 'nginx:1.27',
      environment: { FROM_FILE: '1', LITERAL: 'cost: $$5' },
      configs: [{ source: 'nginx', target: '/etc/nginx/conf.d/default.conf' }],
      secrets: [{ source: 'db' }],
    });
    const nginxName = `shop_nginx_${contentHash(Buffer.from('server { listen 80; }\n'))}`;
    expect(doc.configs).toEqual({ nginx: { file: './files/config-0', name: nginxName } });
    expect(doc.secrets.db).toEqual({ file: './files/secret-1', name: `shop_db_${contentHash(Buffer.from(SECRET))}` });
    expect(doc.secrets.ext).toEqual({ external: true });
    expect(b.files.map((f) => [f.path, f.content.toString()])).toEqual([
      ['files/config-0', 'server { listen 80; }\n'],
      ['files/secret-1', SECRET],
    ]);
    // The secret's content is in the shipped file only, never in the compose text.
    expect(b.compose).not.toContain('pa$$word');
    expect(b.objects).toEqual([
      { kind: 'config', key: 'nginx', name: nginxName },
      { kind: 'secret', key: 'db', name: expect.stringMatching(/^shop_db_[0-9a-f]{12}$/) },
    ]);
  });

  test('a changed file changes its name (so the service rolls); an unchanged one keeps it', () => {
    const a = buildComposeBundle(loadComposeProject({ files: [project()], env: { TAG: '1' } }));
    const b = buildComposeBundle(loadComposeProject({ files: [project('server { listen 8080; }\n')], env: { TAG: '1' } }));
    expect(b.objects[0].name).not.toBe(a.objects[0].name);
    expect(b.objects[1].name).toBe(a.objects[1].name);
  });

  test('names stay within swarm\'s 64 characters and keep the hash', () => {
    const n = hashedName('x'.repeat(100), Buffer.from('c'));
    expect(n).toHaveLength(64);
    expect(n).toMatch(/_[0-9a-f]{12}$/);
  });
});

/** A docker stub: `stack deploy` copies the bundle directory; config/secret ls/rm answer from files. */
const STUB = `#!/bin/bash
set -u
printf '%s\\n' "$*" >> "$STUB_DIR/calls"
case "$1 $2" in
  "stack deploy") prev=; for a in "$@"; do [ "$prev" = -c ] && { cp -r "$(dirname "$a")" "$STUB_DIR/bundle-copy"; stat -c %a "$(dirname "$a")" > "$STUB_DIR/mode"; }; prev=$a; done ;;
  "config ls"|"secret ls") cat "$STUB_DIR/$1s" 2>/dev/null || true ;;
  "config rm"|"secret rm") if grep -qxF "$3" "$STUB_DIR/inuse" 2>/dev/null; then echo "in use" >&2; exit 1; fi ;;
esac
`;

describe('deploy script: unpack privately, deploy, prune superseded configs and secrets', () => {
  test('the bundle reaches docker byte for byte from a 0700 directory that is gone afterwards; old hashed objects are pruned unless in use', () => {
    const stub = join(dir, 'stub');
    mkdirSync(join(stub, 'bin'), { recursive: true });
    writeFileSync(join(stub, 'bin/docker'), STUB);
    chmodSync(join(stub, 'bin/docker'), 0o755);
    const plan = planComposeStack({ files: [project()], env: { TAG: '1' }, resolveImage: 'never' });
    const [cfg, sec] = plan.bundle.objects;
    writeFileSync(join(stub, 'configs'), `${cfg.name}\nshop_nginx_000000000000\nshop_nginx_111111111111\nshop_handmade\n`);
    writeFileSync(join(stub, 'secrets'), `${sec.name}\nshop_db_222222222222\n`);
    writeFileSync(join(stub, 'inuse'), 'shop_nginx_111111111111\n');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const r = spawnSync('bash', ['-c', plan.script], {
      env: { ...process.env, PATH: `${join(stub, 'bin')}:${process.env.PATH}`, STUB_DIR: stub, TMPDIR: tmp },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(stub, 'bundle-copy/docker-compose.yml'), 'utf8')).toBe(plan.bundle.compose);
    expect(readFileSync(join(stub, 'bundle-copy/files/secret-1'), 'utf8')).toBe(SECRET);
    expect(readdirSync(join(stub, 'bundle-copy/files')).sort()).toEqual(['config-0', 'secret-1']);
    expect(readFileSync(join(stub, 'mode'), 'utf8').trim()).toBe('700');
    expect(readdirSync(tmp)).toEqual([]);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual([
      'EC2SWARM-INUSE config shop_nginx_111111111111',
      'EC2SWARM-PRUNED config shop_nginx_000000000000',
      'EC2SWARM-PRUNED secret shop_db_222222222222',
    ]);
    const calls = readFileSync(join(stub, 'calls'), 'utf8');
    expect(calls).toContain('stack deploy --resolve-image never -c');
    expect(calls).not.toContain('rm shop_handmade');
    expect(calls).not.toContain(`rm ${cfg.name}`);
    // No secret in the script text except base64-encoded inside the bundle it writes (step 3 moves it out).
    expect(plan.script).not.toContain(SECRET);
  });
});
