import { parseComposeYaml } from '../../../lib/ops/compose/parse';
import { SwarmError } from '../../../lib/errors';

function userError(fn: () => unknown): SwarmError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    expect((e as SwarmError).fault).toBe('user');
    expect((e as SwarmError).exitCode).toBe(2);
    return e as SwarmError;
  }
  throw new Error('expected a SwarmError');
}

describe('parse: YAML with anchors, aliases and merge keys', () => {
  test('a 300-service file merging one anchor into every service parses (the yaml default of 100 aliases would refuse it)', () => {
    const services = Array.from({ length: 300 }, (_, i) => `  s${i}:\n    <<: *defaults\n    image: app:${i}\n`).join('');
    const text = `x-defaults: &defaults\n  deploy:\n    replicas: 2\n    labels: [team=a]\n  environment:\n    MODE: prod\nservices:\n${services}`;
    const data = parseComposeYaml(text, 'big.yml') as { services: Record<string, { image: string; deploy: { replicas: number }; environment: Record<string, string> }> };
    expect(Object.keys(data.services)).toHaveLength(300);
    expect(data.services.s299).toEqual({ image: 'app:299', deploy: { replicas: 2, labels: ['team=a'] }, environment: { MODE: 'prod' } });
  });

  test('merge keys in a service spec: the service\'s own keys win, a list of anchors merges in order', () => {
    const text = 'x-a: &a {image: a, user: "1"}\nx-b: &b {image: b, hostname: h}\nservices:\n  web:\n    <<: [*a, *b]\n    user: "2"\n';
    expect(parseComposeYaml(text, 'f.yml')).toMatchObject({ services: { web: { image: 'a', user: '2', hostname: 'h' } } });
  });

  test('an alias bomb (billion laughs) is refused as the user\'s error, quickly', () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const started = Date.now();
    const e = userError(() => parseComposeYaml(lines.join('\n'), 'bomb.yml'));
    expect(e.message).toMatch(/^bomb\.yml: YAML aliases expand to more than 1000000 nodes/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('the bound is on expansion, not on alias count: many small aliases pass, a small bound refuses a big expansion', () => {
    const many = `x: &x v\nlist: [${Array(2000).fill('*x').join(',')}]\n`;
    expect((parseComposeYaml(many, 'f.yml').list as string[]).length).toBe(2000);
    expect(() => parseComposeYaml(many, 'f.yml', { maxExpandedNodes: 1000 })).toThrow(/expand to more than 1000 nodes/);
  });

  test.each([
    ['invalid YAML', 'services: [a\n', /^f\.yml: not valid YAML/],
    ['a duplicate key', 'services: {}\nservices: {}\n', /^f\.yml: not valid YAML: .*unique/i],
    ['an empty file', '', /^f\.yml: the file is empty$/],
    ['a list at the top', '- a\n', /^f\.yml: a compose file is a mapping/],
    ['an alias with no anchor', 'a: *nope\n', /^f\.yml: not valid YAML/],
  ])('%s is the user\'s error naming the file', (_what, text, message) => {
    expect(userError(() => parseComposeYaml(text, 'f.yml')).message).toMatch(message);
  });
});
