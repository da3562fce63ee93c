/**
 * The dependency rules of docs/design.md ("Parts and who may import whom"), checked on the source: every import,
 * export-from, require() and import() of every file under lib/ and bin/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const REPO = resolve(__dirname, '../..');

interface Edge {
  readonly file: string;
  /** A repository path (`lib/ops/types`) for relative specifiers, else the package name. */
  readonly target: string;
  readonly typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

function edgesOf(file: string): Edge[] {
  const text = readFileSync(join(REPO, file), 'utf8');
  const found: Edge[] = [];
  const patterns = [/^\s*(import|export)\s+(type\s+)?[^;'"]*?from\s+'([^']+)'/gm, /^\s*import\s+'([^']+)'/gm, /\b(?:require|import)\(\s*'([^']+)'\s*\)/g];
  for (const [i, re] of patterns.entries()) {
    for (const m of text.matchAll(re)) {
      const spec = i === 0 ? m[3] : m[1];
      const typeOnly = i === 0 && Boolean(m[2]);
      const target = spec.startsWith('.') ? relative(REPO, resolve(REPO, dirname(file), spec)) : spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
      found.push({ file, target, typeOnly });
    }
  }
  return found;
}

const edges = [...sourceFiles('lib'), ...sourceFiles('bin')].flatMap(edgesOf);
const under = (path: string, part: string) => path === part || path.startsWith(`${part}/`);
const CDK = ['aws-cdk-lib', 'constructs', 'cdk-nag'];

function violations(from: string, forbidden: (e: Edge) => boolean): string[] {
  return edges.filter((e) => under(e.file.replace(/\.ts$/, ''), from) && forbidden(e)).map((e) => `${e.file} → ${e.target}`);
}

test('the scan sees the imports it checks (a scan that finds nothing would pass every rule)', () => {
  expect(edges.length).toBeGreaterThan(100);
  expect(edges).toContainEqual({ file: 'lib/cli/program.ts', target: 'lib/ops/connect', typeOnly: true });
  expect(edges.some((e) => under(e.file, 'lib/cluster') && e.target === 'aws-cdk-lib')).toBe(true);
});

test('ops load no CDK and never import the construct, the lab or the CLI', () => {
  expect(violations('lib/ops', (e) => CDK.includes(e.target) || ['lib/cluster', 'lib/lab', 'lib/cli'].some((p) => under(e.target, p)))).toEqual([]);
});

test('the construct never imports ops, the lab or the CLI', () => {
  expect(violations('lib/cluster', (e) => ['lib/ops', 'lib/lab', 'lib/cli'].some((p) => under(e.target, p)))).toEqual([]);
});

test('config and errors import no other part', () => {
  for (const base of ['lib/config', 'lib/errors', 'lib/lab-location', 'lib/package-info']) {
    expect(violations(base, (e) => CDK.includes(e.target) || ['lib/ops', 'lib/cluster', 'lib/lab', 'lib/cli'].some((p) => under(e.target, p)))).toEqual([]);
  }
});

test('the lab uses ops only for types, never the CLI', () => {
  expect(violations('lib/lab', (e) => (under(e.target, 'lib/ops') && !e.typeOnly) || under(e.target, 'lib/cli'))).toEqual([]);
});

test('the CLI loads no CDK itself (the lab it calls may) and lib never imports bin', () => {
  expect(violations('lib/cli', (e) => CDK.includes(e.target) || under(e.target, 'lib/cluster'))).toEqual([]);
  expect(violations('lib', (e) => under(e.target, 'bin'))).toEqual([]);
});
