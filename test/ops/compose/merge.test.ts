import { mergeComposeFiles } from '../../../lib/ops/compose/merge';
import { normaliseCompose } from '../../../lib/ops/compose/normalise';

const norm = (d: Record<string, unknown>) => normaliseCompose(d, 'f.yml', []);
const merged = (...files: Record<string, unknown>[]) => mergeComposeFiles(files.map(norm)) as { services: Record<string, Record<string, unknown>>; [k: string]: unknown };

describe('merge: several -f files, later ones over earlier ones (Compose merge rules)', () => {
  test('scalars are replaced, mappings merged key by key, a new service is added', () => {
    const m = merged(
      { services: { web: { image: 'a:1', environment: ['A=1', 'B=1'], labels: { x: '1' }, deploy: { replicas: 1, resources: { limits: { memory: '1G' } } } } } },
      { services: { web: { image: 'a:2', environment: { B: '2', C: '3' }, deploy: { resources: { limits: { cpus: '1' } } } }, db: { image: 'pg' } } },
    );
    expect(m.services.web).toEqual({
      image: 'a:2',
      environment: { A: '1', B: '2', C: '3' },
      labels: { x: '1' },
      deploy: { replicas: 1, resources: { limits: { memory: '1G', cpus: '1' } } },
    });
    expect(m.services.db).toEqual({ image: 'pg' });
  });

  test('ports merge by published port, volumes by target, secrets and configs by source (then sorted as docker sorts them)', () => {
    const m = merged(
      { services: { web: { ports: ['8080:80', '9090:90'], volumes: ['data:/data', './logs:/logs'], secrets: ['a', { source: 'b', target: 'x' }], configs: ['c'] } } },
      { services: { web: { ports: [{ target: 8080, published: 8080, mode: 'host' }, '7070:70'], volumes: ['other:/data'], secrets: [{ source: 'b', target: 'y' }], configs: ['d'] } } },
    );
    expect(m.services.web.ports).toEqual([
      { mode: 'ingress', target: 70, published: 7070, protocol: 'tcp' },
      { target: 8080, published: 8080, mode: 'host' },
      { mode: 'ingress', target: 90, published: 9090, protocol: 'tcp' },
    ]);
    expect(m.services.web.volumes).toEqual([
      { type: 'volume', source: 'other', target: '/data' },
      { type: 'bind', source: './logs', target: '/logs' },
    ]);
    expect(m.services.web.secrets).toEqual([{ source: 'a' }, { source: 'b', target: 'y' }]);
    expect(m.services.web.configs).toEqual([{ source: 'c' }, { source: 'd' }]);
  });

  test('command, entrypoint and healthcheck.test are replaced; other lists appended without duplicates', () => {
    const m = merged(
      { services: { w: { command: ['a', 'b'], entrypoint: 'sh', healthcheck: { test: ['CMD', 'a'], retries: 3 }, dns: '1.1.1.1', cap_add: ['NET_ADMIN'], deploy: { placement: { constraints: ['node.role==worker'] } } } } },
      { services: { w: { command: 'c', healthcheck: { test: ['CMD', 'b'] }, dns: ['1.1.1.1', '8.8.8.8'], cap_add: ['SYS_TIME'], deploy: { placement: { constraints: ['node.labels.z==a'] } } } } },
    );
    expect(m.services.w).toEqual({
      command: 'c',
      entrypoint: 'sh',
      healthcheck: { test: ['CMD', 'b'], retries: 3 },
      dns: ['1.1.1.1', '8.8.8.8'],
      cap_add: ['NET_ADMIN', 'SYS_TIME'],
      deploy: { placement: { constraints: ['node.role==worker', 'node.labels.z==a'] } },
    });
  });

  test('logging: the same driver merges options, another driver replaces the section', () => {
    const base = { services: { w: { logging: { driver: 'json-file', options: { 'max-size': '1m', 'max-file': '3' } } } } };
    expect(merged(base, { services: { w: { logging: { options: { 'max-size': '5m' } } } } }).services.w.logging).toEqual({
      driver: 'json-file',
      options: { 'max-size': '5m', 'max-file': '3' },
    });
    expect(merged(base, { services: { w: { logging: { driver: 'syslog', options: { tag: 'x' } } } } }).services.w.logging).toEqual({ driver: 'syslog', options: { tag: 'x' } });
  });

  test('top-level networks, volumes, secrets and configs are replaced by name; the newer version wins', () => {
    const m = merged(
      { version: '3.5', services: {}, networks: { a: { driver: 'overlay', attachable: true } }, configs: { c: { file: './a' } } },
      { version: '3.8', services: {}, networks: { a: { driver: 'overlay' }, b: null }, configs: { d: { file: './d' } } },
    );
    expect(m.networks).toEqual({ a: { driver: 'overlay' }, b: {} });
    expect(m.configs).toEqual({ c: { file: './a' }, d: { file: './d' } });
    expect(m.version).toBe('3.8');
  });

  test('short syntax is normalised first: port ranges expand, host IPs are dropped with a warning', () => {
    const warnings: string[] = [];
    const n = normaliseCompose({ services: { w: { ports: ['127.0.0.1:3000-3001:4000-4001/udp', 80] } } }, 'f.yml', warnings) as { services: { w: { ports: unknown[] } } };
    expect(n.services.w.ports).toEqual([
      { mode: 'ingress', target: 4000, published: 3000, protocol: 'udp' },
      { mode: 'ingress', target: 4001, published: 3001, protocol: 'udp' },
      { mode: 'ingress', target: 80, protocol: 'tcp' },
    ]);
    expect(warnings).toEqual([expect.stringContaining('host IP')]);
    expect(() => normaliseCompose({ services: { w: { ports: ['80:90:100:1'] } } }, 'f.yml', [])).toThrow(/services\.w\.ports\[0\]: invalid port/);
    expect(() => normaliseCompose({ services: { w: { volumes: ['a:/b:bogus'] } } }, 'f.yml', [])).toThrow(/services\.w\.volumes\[0\]: invalid volume .*unknown option "bogus"/);
  });
});
