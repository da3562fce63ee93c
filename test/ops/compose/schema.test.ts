import { SwarmError } from '../../../lib/errors';
import { validateCompose } from '../../../lib/ops/compose/schema';

function message(data: Record<string, unknown>): string {
  try {
    validateCompose(data, 'f.yml');
  } catch (e) {
    expect(e).toBeInstanceOf(SwarmError);
    expect((e as SwarmError).exitCode).toBe(2);
    return (e as SwarmError).message;
  }
  return '';
}

describe('schema: the Compose file format docker stack deploy reads (3.x)', () => {
  test('a full 3.x file with long and short syntax and x- extensions is valid', () => {
    expect(
      message({
        version: '3.8',
        'x-common': { anything: [1, 2] },
        services: {
          web: {
            image: 'nginx:1.27',
            'x-note': 'ok',
            deploy: { replicas: 2, mode: 'replicated', labels: ['a=b'], update_config: { parallelism: 1, order: 'start-first' }, placement: { constraints: ['node.role==worker'] }, resources: { limits: { cpus: '0.5', memory: '64M' } } },
            ports: ['8080:80', 443, { target: 53, published: 53, protocol: 'udp', mode: 'host' }],
            volumes: ['data:/data', { type: 'bind', source: './x', target: '/x', read_only: true }],
            environment: { A: '1', B: 2, C: null },
            env_file: './web.env',
            configs: ['nginx', { source: 'nginx', target: '/etc/nginx.conf', mode: 0o444 }],
            secrets: ['db'],
            networks: { front: { aliases: ['w'] }, back: null },
            healthcheck: { test: ['CMD', 'true'], interval: '5s', retries: 3 },
            ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 65535 },
            command: 'nginx -g "daemon off;"',
          },
          worker: null,
        },
        networks: { front: { driver: 'overlay', attachable: true }, back: null },
        volumes: { data: {} },
        configs: { nginx: { file: './nginx.conf' } },
        secrets: { db: { external: true } },
      }),
    ).toBe('');
  });

  test.each([
    ['an unknown top-level key', { services: {}, servces: {} }, /^f\.yml: does not match the Compose file schema:\nservces: unknown key \(allowed: version, services, networks, volumes, secrets, configs\)$/],
    ['replicas: "many"', { services: { web: { image: 'a', deploy: { replicas: 'many' } } } }, /\nservices\.web\.deploy\.replicas: must be an integer$/],
    ['replicas: 1.5', { services: { web: { image: 'a', deploy: { replicas: 1.5 } } } }, /services\.web\.deploy\.replicas: must be an integer/],
    ['an unknown service key', { services: { web: { image: 'a', replicas: 2 } } }, /services\.web\.replicas: unknown key/],
    ['a bad port object', { services: { web: { ports: [{ target: '80x' }] } } }, /services\.web\.ports\[0\]\.target: must be an integer/],
    ['a port of the wrong type', { services: { web: { ports: [true] } } }, /services\.web\.ports\[0\]: must be a port/],
    ['environment with a boolean (docker refuses it too)', { services: { web: { environment: { DEBUG: true } } } }, /services\.web\.environment\.DEBUG: must be a string, a number or null/],
    ['a volume object without type', { services: { web: { volumes: [{ target: '/x' }] } } }, /services\.web\.volumes\[0\]\.type: is required/],
    ['a bad service name', { services: { 'we b': { image: 'a' } } }, /services\.we b: invalid service name/],
    ['a numeric version', { version: 3.8, services: {} }, /version: must be a string/],
    ['a bad update order', { services: { w: { deploy: { update_config: { order: 'sideways' } } } } }, /services\.w\.deploy\.update_config\.order: must be start-first or stop-first/],
  ])('%s is named by its key path', (_what, data, expected) => {
    expect(message(data as Record<string, unknown>)).toMatch(expected);
  });

  test('version 2 files are refused: docker stack deploy reads 3.x only', () => {
    expect(message({ version: '2.4', services: {} })).toMatch(/version: unsupported Compose file version "2\.4"/);
    expect(message({ version: '3', services: {} })).toBe('');
    expect(message({ version: '3.13', services: {} })).toBe('');
  });
});
