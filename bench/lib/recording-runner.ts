/**
 * A CommandRunner wrapper that records every call the ops code makes (label, instances, seconds, stdout size),
 * so a benchmark can say where the time went and how much crossed the transport, without touching ops code.
 */
import type { CommandResult, CommandRunner, RunOptions } from '../../lib/ops';

export interface RecordedCall {
  readonly label: string;
  readonly instances: number;
  readonly seconds: number;
  readonly maxStdoutChars: number;
  readonly startedAt: number;
}

export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  constructor(private readonly inner: CommandRunner) {}

  async run(instanceIds: readonly string[], script: string, options?: RunOptions): Promise<CommandResult[]> {
    const startedAt = Date.now();
    const t0 = performance.now();
    let results: CommandResult[] = [];
    try {
      results = await this.inner.run(instanceIds, script, options);
      return results;
    } finally {
      this.calls.push({
        label: options?.label ?? 'command',
        instances: instanceIds.length,
        seconds: (performance.now() - t0) / 1000,
        maxStdoutChars: Math.max(0, ...results.map((r) => r.stdout.length)),
        startedAt,
      });
    }
  }

  reset(): void {
    this.calls.length = 0;
  }
}
