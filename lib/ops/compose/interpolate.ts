/**
 * Pass 2: variable substitution in every string value (keys are left alone), with the Compose
 * specification's syntax: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
 * `${VAR?message}`, `${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for a literal `$`. Defaults and
 * replacements may themselves hold substitutions. Then the values docker's loader casts after interpolation
 * (replicas, ports, booleans, …) are cast the same way, so `replicas: ${N}` is an integer.
 *
 * Errors name the key path and never the value: values may be secrets.
 */
import { composeError, formatPath, type KeyPath } from './errors';

export type Lookup = (name: string) => string | undefined;

export interface InterpolateResult {
  readonly value: Record<string, unknown>;
  /** Variables used but unset (each once), as docker warns "defaulting to a blank string". */
  readonly unset: string[];
}

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;

class TemplateError extends Error {}

/** Substitutes one string; throws TemplateError with a message free of values. */
export function substitute(template: string, lookup: Lookup, unset: Set<string>): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = template[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(template, i + 2);
      if (end < 0) throw new TemplateError('invalid interpolation format: "${" without a closing "}"');
      out += braced(template.slice(i + 2, end), lookup, unset);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(template.slice(i + 1));
    if (!m) throw new TemplateError('invalid interpolation format: "$" must start a variable (write "$$" for a literal "$")');
    out += value(m[0], lookup, unset);
    i += 1 + m[0].length;
  }
  return out;
}

/** Index of the "}" closing a "${" whose body starts at `from`, counting nested "${…}". */
function closingBrace(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '$') {
      i++;
    } else if (s[i] === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (s[i] === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

function value(name: string, lookup: Lookup, unset: Set<string>): string {
  const v = lookup(name);
  if (v === undefined) {
    unset.add(name);
    return '';
  }
  return v;
}

function braced(body: string, lookup: Lookup, unset: Set<string>): string {
  const m = NAME.exec(body);
  if (!m) throw new TemplateError('invalid interpolation format: "${…}" must start with a variable name');
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return value(name, lookup, unset);
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest);
  if (!op) throw new TemplateError(`invalid interpolation format for variable ${name}`);
  const arg = rest.slice(op[0].length);
  const v = lookup(name);
  const set = v !== undefined;
  const nonEmpty = set && v !== '';
  switch (op[0]) {
    case ':-':
      return nonEmpty ? v : substitute(arg, lookup, unset);
    case '-':
      return set ? v : substitute(arg, lookup, unset);
    case ':+':
      return nonEmpty ? substitute(arg, lookup, unset) : '';
    case '+':
      return set ? substitute(arg, lookup, unset) : '';
    case ':?':
      if (!nonEmpty) throw new TemplateError(`required variable ${name} is missing or empty: ${arg || 'no message'}`);
      return v;
    default:
      if (!set) throw new TemplateError(`required variable ${name} is missing: ${arg || 'no message'}`);
      return v;
  }
}

type Cast = (v: string) => unknown;

const toInt: Cast = (v) => (/^[+-]?\d+$/.test(v.trim()) ? Number(v) : undefined);
const toFloat: Cast = (v) => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);
const toBool: Cast = (v) => {
  const s = v.toLowerCase();
  if (['y', 'yes', 'true', 'on'].includes(s)) return true;
  if (['n', 'no', 'false', 'off'].includes(s)) return false;
  return undefined;
};

/** Where docker's loader casts interpolated strings; `*` is any mapping key, `[]` any list item. */
const CASTS: [string, Cast][] = [
  ['services.*.configs.[].mode', toInt],
  ['services.*.secrets.[].mode', toInt],
  ['services.*.healthcheck.retries', toInt],
  ['services.*.healthcheck.disable', toBool],
  ['services.*.deploy.replicas', toInt],
  ['services.*.deploy.update_config.parallelism', toInt],
  ['services.*.deploy.update_config.max_failure_ratio', toFloat],
  ['services.*.deploy.rollback_config.parallelism', toInt],
  ['services.*.deploy.rollback_config.max_failure_ratio', toFloat],
  ['services.*.deploy.restart_policy.max_attempts', toInt],
  ['services.*.deploy.placement.max_replicas_per_node', toInt],
  ['services.*.ports.[].target', toInt],
  ['services.*.ports.[].published', toInt],
  ['services.*.ulimits.*', toInt],
  ['services.*.ulimits.*.hard', toInt],
  ['services.*.ulimits.*.soft', toInt],
  ['services.*.privileged', toBool],
  ['services.*.oom_score_adj', toInt],
  ['services.*.read_only', toBool],
  ['services.*.stdin_open', toBool],
  ['services.*.tty', toBool],
  ['services.*.volumes.[].read_only', toBool],
  ['services.*.volumes.[].volume.nocopy', toBool],
  ['networks.*.external', toBool],
  ['networks.*.internal', toBool],
  ['networks.*.attachable', toBool],
  ['volumes.*.external', toBool],
  ['secrets.*.external', toBool],
  ['configs.*.external', toBool],
];

function castFor(path: KeyPath): Cast | undefined {
  for (const [pattern, cast] of CASTS) {
    const segs = pattern.split('.');
    if (segs.length !== path.length) continue;
    const ok = segs.every((s, i) => (s === '[]' ? typeof path[i] === 'number' : typeof path[i] === 'string' && (s === '*' || s === path[i])));
    if (ok) return cast;
  }
  return undefined;
}

/**
 * Interpolates a parsed compose file. Every error (`:?` included) is thrown before anything is returned,
 * so a missing required variable stops the deploy before anything changes.
 */
export function interpolateCompose(data: Record<string, unknown>, lookup: Lookup, source: string): InterpolateResult {
  const unset = new Set<string>();
  const walk = (v: unknown, path: (string | number)[]): unknown => {
    if (typeof v === 'string') {
      let s: string;
      try {
        s = substitute(v, lookup, unset);
      } catch (e) {
        if (e instanceof TemplateError) throw composeError(source, path, e.message);
        throw e;
      }
      // As docker does, a string where a number or boolean belongs is cast; one that does not cast is left for
      // the schema pass to name ("must be an integer").
      const cast = castFor(path);
      const c = cast ? cast(s) : undefined;
      return c === undefined ? s : c;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(data, []) as Record<string, unknown>, unset: [...unset] };
}

export { formatPath };
