/**
 * Pass 4b: several `-f` files merged in order, as docker's loader merges them: a service named in a later file
 * is merged into the earlier one (mappings key by key, later wins); ports merge by published port, volumes by
 * target, secrets and configs by source; command, entrypoint and healthcheck.test are replaced; a logging
 * section with another driver replaces the earlier one; other lists are appended (duplicates dropped, as the
 * Compose specification asks). Top-level networks, volumes, secrets and configs are replaced by name.
 */
type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function portKey(p: Obj): string {
  // Unpublished ports have no published port to merge by: key them by target so two of them stay two.
  return p.published !== undefined ? `p${String(p.published)}` : `t${String(p.target)}/${String(p.protocol ?? 'tcp')}`;
}

/** Lists merged by key, then ordered as docker orders them (published port, target, source). */
const KEYED: Record<string, { key: (item: Obj) => string; order: (a: Obj, b: Obj) => number }> = {
  ports: { key: portKey, order: (a, b) => Number(a.published ?? 0) - Number(b.published ?? 0) },
  volumes: { key: (v) => String(v.target), order: (a, b) => compare(a.target, b.target) },
  secrets: { key: (v) => String(v.source), order: (a, b) => compare(a.source, b.source) },
  configs: { key: (v) => String(v.source), order: (a, b) => compare(a.source, b.source) },
};

function compare(a: unknown, b: unknown): number {
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const REPLACED = new Set(['command', 'entrypoint', 'healthcheck.test']);

function mergeKeyed(base: Obj[], over: Obj[], by: (typeof KEYED)[string]): Obj[] {
  const m = new Map<string, Obj>();
  for (const o of base) m.set(by.key(o), o);
  for (const o of over) m.set(by.key(o), o);
  return [...m.values()].sort(by.order);
}

function appendUnique(base: unknown[], over: unknown[]): unknown[] {
  const out = [...base];
  const seen = new Set(base.map((x) => JSON.stringify(x)));
  for (const x of over) {
    const k = JSON.stringify(x);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(x);
    }
  }
  return out;
}

function mergeValue(base: unknown, over: unknown, path: string): unknown {
  if (over === undefined) return base;
  if (base === undefined || REPLACED.has(path)) return over;
  if (path === 'logging' && isObj(base) && isObj(over)) {
    const bd = base.driver;
    const od = over.driver;
    if (bd !== undefined && od !== undefined && bd !== od) return over;
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    const by = KEYED[path];
    return by ? mergeKeyed(base as Obj[], over as Obj[], by) : appendUnique(base, over);
  }
  if (isObj(base) && isObj(over)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = mergeValue(base[k], v, path === '' ? k : `${path}.${k}`);
    return out;
  }
  return over;
}

/** Merges one service definition over another (both normalised). */
export function mergeService(base: Obj, over: Obj): Obj {
  return mergeValue(base, over, '') as Obj;
}

/** Merges normalised compose files in order; the first file's settings are the base. */
export function mergeComposeFiles(files: readonly Obj[]): Obj {
  const [first, ...rest] = files;
  let out: Obj = { ...first, services: { ...((first.services as Obj) ?? {}) } };
  for (const f of rest) {
    const services: Obj = { ...(out.services as Obj) };
    for (const [name, s] of Object.entries((f.services as Obj) ?? {})) {
      services[name] = services[name] === undefined ? s : mergeService(services[name] as Obj, s as Obj);
    }
    out = { ...out, services };
    for (const k of ['networks', 'volumes', 'secrets', 'configs']) {
      if (isObj(f[k])) out[k] = { ...((out[k] as Obj) ?? {}), ...(f[k] as Obj) };
    }
    for (const [k, v] of Object.entries(f)) {
      if (!['services', 'networks', 'volumes', 'secrets', 'configs', 'version'].includes(k)) out[k] = v;
    }
    if (f.version !== undefined) out.version = newerVersion(out.version as string | undefined, f.version as string);
  }
  return out;
}

function newerVersion(a: string | undefined, b: string): string {
  if (a === undefined) return b;
  const minor = (v: string) => (v === '3' ? 99 : Number(v.split('.')[1] ?? 0));
  return minor(b) > minor(a) ? b : a;
}
