/**
 * One error type for the toolkit. `fault` says who must act, and maps to the CLI's exit code
 * (design.md): the user's input → 2 (nothing was changed), the cluster answered but is not as asked → 1,
 * the environment/transport/AWS → 3.
 */
export type Fault = 'user' | 'cluster' | 'environment';

const EXIT_CODES: Record<Fault, number> = { cluster: 1, user: 2, environment: 3 };

export class SwarmError extends Error {
  /** Stable, machine-readable code, e.g. `CONFIG_INVALID`, `SSM_COMMAND_FAILED`. */
  public readonly code: string;
  public readonly fault: Fault;

  constructor(code: string, message: string, options: { fault: Fault; cause?: unknown }) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'SwarmError';
    this.code = code;
    this.fault = options.fault;
  }

  /** The CLI exit code for this error (design.md: 1 not as asked, 2 usage/config, 3 transport/environment). */
  get exitCode(): number {
    return EXIT_CODES[this.fault];
  }

  static user(code: string, message: string, cause?: unknown): SwarmError {
    return new SwarmError(code, message, { fault: 'user', cause });
  }

  static cluster(code: string, message: string, cause?: unknown): SwarmError {
    return new SwarmError(code, message, { fault: 'cluster', cause });
  }

  static environment(code: string, message: string, cause?: unknown): SwarmError {
    return new SwarmError(code, message, { fault: 'environment', cause });
  }
}

export function isSwarmError(e: unknown): e is SwarmError {
  return e instanceof SwarmError;
}

/** Exit code for any thrown value: SwarmError by its fault, anything unexpected as an environment error. */
export function exitCodeOf(e: unknown): number {
  return isSwarmError(e) ? e.exitCode : 3;
}
