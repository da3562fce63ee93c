/** Small statistics for benchmark samples: medians and ratios, never a single run. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const min = (xs: readonly number[]): number => (xs.length ? Math.min(...xs) : NaN);
export const max = (xs: readonly number[]): number => (xs.length ? Math.max(...xs) : NaN);

/** Seconds with a fixed number of decimals; NaN as an en dash (not measured). */
export function fmt(x: number, decimals = 2): string {
  return Number.isFinite(x) ? x.toFixed(decimals) : '–';
}

/** "median (min–max)" of samples, in the samples' unit. */
export function spread(xs: readonly number[], decimals = 2): string {
  if (xs.length === 0) return '–';
  if (xs.length === 1) return fmt(xs[0], decimals);
  return `${fmt(median(xs), decimals)} (${fmt(min(xs), decimals)}–${fmt(max(xs), decimals)})`;
}

export function ratio(a: readonly number[], b: readonly number[]): number {
  return median(a) / median(b);
}

/** Seconds since `t0` (a `performance.now()` or `Date.now()` value in ms). */
export const secondsSince = (t0: number, now: number = Date.now()): number => (now - t0) / 1000;

/**
 * Runs each variant `runs` times, alternating (A B A B … then B A B A … on odd rounds, so neither always goes first
 * after a warm cache), and returns each variant's samples. Load that comes and goes hits both alike.
 */
export async function alternate<K extends string>(
  runs: number,
  variants: Record<K, () => Promise<number>>,
  onSample?: (variant: K, run: number, value: number) => void,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  const out = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const v = await variants[n]();
      out[n].push(v);
      onSample?.(n, r + 1, v);
    }
  }
  return out;
}
