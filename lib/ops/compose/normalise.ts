/**
 * Pass 4a: each service's short syntax becomes the long form docker's loader builds (environment and labels as
 * mappings, ports/volumes/secrets/configs as objects, single strings as lists), so files can be merged key by
 * key and the resolved file says exactly what will run.
 */
import { composeError } from './errors';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `["A=1", "B"]` or `{A: 1, B: null}` → `{A: "1", B: null}` (null: take it from the environment). */
export function toDict(v: unknown): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v as string[]) {
      const eq = item.indexOf('=');
      if (eq < 0) out[item] = null;
      else out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  } else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) out[k] = x === null || x === undefined ? null : String(x);
  }
  return out;
}

function toList(v: unknown): string[] {
  return typeof v === 'string' ? [v] : (v as string[]);
}

/** `[ip:][published[-end]:]target[-end][/protocol]` → port objects (ranges expand, as docker does). */
export function parsePort(spec: string | number, source: string, path: (string | number)[], warnings: string[]): Obj[] {
  const s = String(spec);
  const [body, protocol = 'tcp', extra] = s.split('/');
  if (extra !== undefined || !/^(tcp|udp|sctp)$/.test(protocol)) throw composeError(source, path, `invalid port ${JSON.stringify(s)}: protocol must be tcp, udp or sctp`);
  const parts = body.split(':');
  if (parts.length > 3) throw composeError(source, path, `invalid port ${JSON.stringify(s)}`);
  const target = parts[parts.length - 1];
  const published = parts.length >= 2 ? parts[parts.length - 2] : '';
  if (parts.length === 3) warnings.push(`${path.join('.')}: the host IP of ${JSON.stringify(s)} is ignored: a swarm service publishes on every node`);
  const range = (r: string): [number, number] | undefined => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(r);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    return a >= 1 && b <= 65535 && a <= b ? [a, b] : undefined;
  };
  const t = range(target);
  const p = published === '' ? undefined : range(published);
  if (!t || (published !== '' && !p)) throw composeError(source, path, `invalid port ${JSON.stringify(s)}: ports are 1-65535, ranges low-high`);
  const n = t[1] - t[0] + 1;
  if (p && p[1] - p[0] + 1 !== n) throw composeError(source, path, `invalid port ${JSON.stringify(s)}: published and target ranges differ in size`);
  const out: Obj[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ mode: 'ingress', target: t[0] + i, ...(p ? { published: p[0] + i } : {}), protocol });
  }
  return out;
}

const PROPAGATION = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];

/** `[source:]target[:options]` → a volume object; a source starting with `.`, `/` or `~` is a bind mount. */
export function parseVolume(spec: string, source: string, path: (string | number)[]): Obj {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw composeError(source, path, `invalid volume ${JSON.stringify(spec)}: use [source:]target[:ro|rw|…]`);
  if (parts.length === 1) return { type: 'volume', target: parts[0] };
  const [src, target, opts] = parts;
  const bind = /^[./~]/.test(src);
  const v: Obj = { type: bind ? 'bind' : 'volume', source: src, target };
  for (const o of opts ? opts.split(',') : []) {
    if (o === 'ro') v.read_only = true;
    else if (o === 'rw') v.read_only = false;
    else if (o === 'nocopy' && !bind) v.volume = { nocopy: true };
    else if (PROPAGATION.includes(o) && bind) v.bind = { propagation: o };
    else if (o === 'z' || o === 'Z' || o === 'cached' || o === 'delegated' || o === 'consistent') continue;
    else throw composeError(source, path, `invalid volume ${JSON.stringify(spec)}: unknown option ${JSON.stringify(o)}`);
  }
  return v;
}

/** Normalises every service of one validated, interpolated file in place of a copy; returns the copy. */
export function normaliseCompose(data: Obj, source: string, warnings: string[]): Obj {
  const out: Obj = { ...data };
  const services: Obj = {};
  for (const [name, raw] of Object.entries((data.services as Obj | undefined) ?? {})) {
    const s: Obj = { ...((raw as Obj | null) ?? {}) };
    const at = (...p: (string | number)[]) => ['services', name, ...p];
    for (const k of ['environment', 'labels', 'sysctls'] as const) if (s[k] !== undefined) s[k] = toDict(s[k]);
    if (isObj(s.deploy) && s.deploy.labels !== undefined) s.deploy = { ...s.deploy, labels: toDict(s.deploy.labels) };
    if (s.extra_hosts !== undefined && isObj(s.extra_hosts)) {
      s.extra_hosts = Object.entries(s.extra_hosts).map(([h, ip]) => `${h}:${ip}`);
    }
    for (const k of ['env_file', 'dns', 'dns_search', 'tmpfs'] as const) if (s[k] !== undefined) s[k] = toList(s[k]);
    if (Array.isArray(s.ports)) {
      s.ports = s.ports.flatMap((p, i) => (isObj(p) ? [p] : parsePort(p as string | number, source, at('ports', i), warnings)));
    }
    if (Array.isArray(s.volumes)) s.volumes = s.volumes.map((v, i) => (isObj(v) ? v : parseVolume(v as string, source, at('volumes', i))));
    for (const k of ['secrets', 'configs'] as const) {
      if (Array.isArray(s[k])) s[k] = (s[k] as unknown[]).map((r) => (typeof r === 'string' ? { source: r } : r));
    }
    if (Array.isArray(s.networks)) s.networks = Object.fromEntries((s.networks as string[]).map((n) => [n, null]));
    services[name] = s;
  }
  out.services = services;
  for (const k of ['networks', 'volumes', 'secrets', 'configs'] as const) {
    if (isObj(data[k])) out[k] = Object.fromEntries(Object.entries(data[k] as Obj).map(([n, v]) => [n, v ?? {}]));
  }
  return out;
}
