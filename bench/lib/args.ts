/** Command-line options every benchmark understands: `--runs N` (repetitions) and `--quick` (smallest sizes only). */

export interface BenchArgs {
  readonly runs: number;
  readonly quick: boolean;
  /** Every `--name value` pair, for a benchmark's own options. */
  readonly extra: ReadonlyMap<string, string>;
}

export function parseBenchArgs(argv: readonly string[], defaultRuns: number): BenchArgs {
  const extra = new Map<string, string>();
  let runs = defaultRuns;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--runs') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 50) usage(`--runs must be a whole number from 1 to 50 (got ${JSON.stringify(argv[i])})`);
      runs = n;
    } else if (a.startsWith('--') && i + 1 < argv.length) extra.set(a.slice(2), argv[++i]);
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  return { runs, quick, extra };
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npx tsx bench/<name>.ts [--runs N] [--quick]\n`);
  process.exit(2);
}
