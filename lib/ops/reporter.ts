/**
 * Progress for a person or a pipeline, always on stderr (stdout carries the result: a table or one JSON document).
 * On a TTY one progress line is rewritten in place; otherwise plain lines, only when something changed.
 */
import { redactSecrets } from './aws-errors';
import type { Reporter } from './types';

export interface ReporterOptions {
  /** --json: progress and info are silent; warnings still go to stderr. */
  readonly json?: boolean;
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Overrides the stream's own isTTY (tests). */
  readonly tty?: boolean;
  readonly now?: () => number;
  /** Non-TTY: repeat an unchanged progress message at most this often. @default 15000 */
  readonly plainRepeatMs?: number;
}

export class StreamReporter implements Reporter {
  private readonly stream: NonNullable<ReporterOptions['stream']>;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly started: number;
  private showing = false;
  private lastPlain?: { key: string; at: number };

  constructor(private readonly options: ReporterOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  info(message: string): void {
    if (this.options.json) return;
    this.line(message);
  }

  warn(message: string): void {
    this.line(`warning: ${message}`);
  }

  progress(message: string): void {
    if (this.options.json) return;
    const text = redactSecrets(message);
    if (this.tty) {
      const elapsed = `[${formatElapsed(this.now() - this.started)}] `;
      const width = (this.stream.columns ?? 100) - 1;
      const full = elapsed + text;
      this.stream.write(`\r\x1b[2K${full.length > width ? full.slice(0, width - 1) + '…' : full}`);
      this.showing = true;
      return;
    }
    // Elapsed seconds change every poll: print again when anything else (e.g. a count) changes, or now and then.
    const key = text.replace(/\b\d+(m\d+)?s\b/g, '#');
    const t = this.now();
    if (this.lastPlain && this.lastPlain.key === key && t - this.lastPlain.at < (this.options.plainRepeatMs ?? 15000)) return;
    this.lastPlain = { key, at: t };
    this.stream.write(`${text}\n`);
  }

  done(): void {
    if (this.showing) {
      this.stream.write('\r\x1b[2K');
      this.showing = false;
    }
    this.lastPlain = undefined;
  }

  private line(message: string): void {
    this.done();
    this.stream.write(`${redactSecrets(message)}\n`);
  }
}

function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export function createReporter(options: ReporterOptions = {}): Reporter {
  return new StreamReporter(options);
}
