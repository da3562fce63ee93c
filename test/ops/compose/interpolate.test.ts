import { SwarmError } from '../../../lib/errors';
import { interpolateCompose, substitute } from '../../../lib/ops/compose/interpolate';

const ENV: Record<string, string> = { SET: 'value', EMPTY: '', TAG: '1.27', N: '3', YES: 'yes' };
const lookup = (n: string) => ENV[n];
const sub = (t: string) => substitute(t, lookup, new Set());

describe('interpolate: the Compose specification\'s syntax', () => {
  test.each([
    ['${SET}', 'value'],
    ['$SET', 'value'],
    ['pre-${SET}-post', 'pre-value-post'],
    ['$SET.x', 'value.x'],
    ['${UNSET}', ''],
    // :- uses the default when unset or empty; - only when unset.
    ['${UNSET:-default}', 'default'],
    ['${EMPTY:-default}', 'default'],
    ['${SET:-default}', 'value'],
    ['${UNSET-default}', 'default'],
    ['${EMPTY-default}', ''],
    // :+ / + give the replacement when set (and non-empty for :+).
    ['${SET:+replacement}', 'replacement'],
    ['${EMPTY:+replacement}', ''],
    ['${EMPTY+replacement}', 'replacement'],
    ['${UNSET+replacement}', ''],
    // $$ is a literal $, and is not a variable.
    ['$$SET', '$SET'],
    ['$${SET}', '${SET}'],
    ['a $$ b', 'a $ b'],
    // Defaults may hold substitutions.
    ['${UNSET:-${SET}}', 'value'],
    ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep'],
    ['registry/app:${TAG:-latest}', 'registry/app:1.27'],
    ['${SET:?must be set}', 'value'],
    ['${EMPTY?may be empty}', ''],
  ])('%s → %s', (template, expected) => {
    expect(sub(template)).toBe(expected);
  });

  test('unset variables are reported (for the "defaulting to a blank string" warning), each once', () => {
    const r = interpolateCompose({ services: { a: { image: '${NOPE}', user: '$NOPE', hostname: '${NOPE2:-x}' } } }, lookup, 'f.yml');
    expect(r.unset).toEqual(['NOPE']);
  });

  test('keys are not interpolated; values in lists and nested mappings are', () => {
    const r = interpolateCompose({ services: { web: { labels: { '${SET}': '${SET}' }, command: ['echo', '${TAG}'] } } }, lookup, 'f.yml');
    expect(r.value).toEqual({ services: { web: { labels: { '${SET}': 'value' }, command: ['echo', '1.27'] } } });
  });

  test('values docker casts after interpolation are cast: replicas, ports, booleans', () => {
    const r = interpolateCompose(
      { services: { web: { deploy: { replicas: '${N}' }, ports: [{ target: '${N}', published: '80' }], read_only: '${YES}', image: '${N}' } } },
      lookup,
      'f.yml',
    );
    expect(r.value).toEqual({ services: { web: { deploy: { replicas: 3 }, ports: [{ target: 3, published: 80 }], read_only: true, image: '3' } } });
  });

  test.each([
    ['${REQUIRED:?set REQUIRED to the release}', /^f\.yml: services\.web\.image: required variable REQUIRED is missing or empty: set REQUIRED to the release$/],
    ['${EMPTY:?no empties}', /required variable EMPTY is missing or empty: no empties/],
    ['${REQUIRED?is required}', /required variable REQUIRED is missing: is required/],
    ['${SET', /services\.web\.image: invalid interpolation format: "\$\{" without a closing "\}"/],
    ['$(id)', /services\.web\.image: invalid interpolation format: "\$" must start a variable/],
    ['${1BAD}', /must start with a variable name/],
    ['${SET:=x}', /invalid interpolation format for variable SET/],
  ])('%s is the user\'s error, naming the key path and no value', (template, message) => {
    let err: unknown;
    try {
      interpolateCompose({ services: { web: { image: template } } }, lookup, 'f.yml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwarmError);
    expect((err as SwarmError).exitCode).toBe(2);
    expect((err as SwarmError).message).toMatch(message);
    expect((err as SwarmError).message).not.toContain('value');
  });
});
