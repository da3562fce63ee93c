/**
 * The bundle as one gzip'd tar (POSIX ustar), so one object with one SHA-256 carries it and the manager unpacks
 * it with the `tar` every node has. Written here (a few dozen lines) because Node has no tar writer.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { ComposeBundle } from './bundle';

const BLOCK = 512;

function field(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'utf8');
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(path: string, size: number): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`tar: path too long: ${path}`);
  const h = Buffer.alloc(BLOCK);
  field(h, 0, 100, path);
  field(h, 100, 8, octal(0o600, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(size, 12));
  field(h, 136, 12, octal(0, 12));
  field(h, 148, 8, '        ');
  field(h, 156, 1, '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** A tar of path → content, in the given order, with fixed metadata (same input, same bytes). */
export function tar(entries: readonly { path: string; content: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e.path, e.content.length), e.content);
    const pad = (BLOCK - (e.content.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

export interface BundleArchive {
  readonly body: Buffer;
  /** Hex SHA-256 of `body`: the manager refuses a bundle that does not match. */
  readonly sha256: string;
}

export function archiveBundle(bundle: ComposeBundle): BundleArchive {
  const body = gzipSync(tar([{ path: 'docker-compose.yml', content: Buffer.from(bundle.compose) }, ...bundle.files]), { level: 9 });
  return { body, sha256: createHash('sha256').update(body).digest('hex') };
}
